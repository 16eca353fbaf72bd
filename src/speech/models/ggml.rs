//! CTranslate2 Whisper → whisper.cpp's ggml file, as a pure function from bytes to a writer.
//!
//! The ggml file (the layout whisper.cpp's `models/convert-pt-to-ggml.py` writes and
//! `whisper_model_load` reads), all `i32`/`f32` little-endian:
//!
//! 1. magic `0x67676d6c` and eleven hparams: n_vocab, n_audio_ctx, n_audio_state,
//!    n_audio_head, n_audio_layer, n_text_ctx, n_text_state, n_text_head, n_text_layer,
//!    n_mels, ftype (1: the weight matrices are f16; 2007: Q8_0, ggml's type 7 plus its
//!    quantization version 2 × 1000);
//! 2. the mel filter bank: n_mel, n_freq, then n_mel × n_freq `f32`;
//! 3. the vocabulary: a count, then per token its byte length and bytes. Only the ordinary
//!    tokens (before `<|endoftext|>`); whisper.cpp numbers the special tokens itself;
//! 4. the tensors until the end of the file: n_dims, name length, type (0 f32, 1 f16, 8 Q8_0),
//!    the dimensions innermost first, the name, the data (row-major, as PyTorch holds it).
//!
//! whisper.cpp gives every weight matrix one type ([`Matrices`]); convolutions stay f16, norms,
//! biases and positions f32. Q8_0 is ggml's 8-bit block format: each run of 32 values of a row
//! becomes an f16 scale (the largest magnitude / 127) and 32 signed bytes (value / scale,
//! rounded), as ggml's own `quantize_row_q8_0_ref` writes it.
//!
//! Whisper's PyTorch names are the ggml names. CTranslate2 fuses some matrices: encoder and
//! decoder self-attention `linear_0` is Q, K and V stacked by rows; cross-attention `linear_0`
//! is Q and `linear_1` is K and V stacked. Whisper's key projection has no bias: CTranslate2
//! stores zeros there (and a key bias would not change the softmax anyway), so it is dropped.

use std::collections::BTreeSet;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;

use half::{bf16, f16};

use super::ct2::{self, Ct2Model, DType, Variable};
use super::ModelError;

/// `ggml` in ASCII, the first word of the file.
pub const GGML_MAGIC: u32 = 0x6767_6d6c;
/// Whisper's audio front end: 16 kHz, 400-sample FFT, so 201 frequency bins.
pub const SAMPLE_RATE: u32 = 16_000;
pub const N_FFT: usize = 400;
pub const N_FREQS: usize = N_FFT / 2 + 1;

/// The model dimensions in the ggml header, in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hparams {
    pub n_vocab: i32,
    pub n_audio_ctx: i32,
    pub n_audio_state: i32,
    pub n_audio_head: i32,
    pub n_audio_layer: i32,
    pub n_text_ctx: i32,
    pub n_text_state: i32,
    pub n_text_head: i32,
    pub n_text_layer: i32,
    pub n_mels: i32,
    pub ftype: i32,
}

impl Hparams {
    /// Whisper tiny.en, what `hark models fetch` produces.
    pub const TINY_EN: Hparams = Hparams {
        n_vocab: 51864,
        n_audio_ctx: 1500,
        n_audio_state: 384,
        n_audio_head: 6,
        n_audio_layer: 4,
        n_text_ctx: 448,
        n_text_state: 384,
        n_text_head: 6,
        n_text_layer: 4,
        n_mels: 80,
        ftype: Matrices::Q8_0.ftype(),
    };

    fn to_array(self) -> [i32; 11] {
        [
            self.n_vocab,
            self.n_audio_ctx,
            self.n_audio_state,
            self.n_audio_head,
            self.n_audio_layer,
            self.n_text_ctx,
            self.n_text_state,
            self.n_text_head,
            self.n_text_layer,
            self.n_mels,
            self.ftype,
        ]
    }

    fn from_array(a: [i32; 11]) -> Self {
        Hparams {
            n_vocab: a[0],
            n_audio_ctx: a[1],
            n_audio_state: a[2],
            n_audio_head: a[3],
            n_audio_layer: a[4],
            n_text_ctx: a[5],
            n_text_state: a[6],
            n_text_head: a[7],
            n_text_layer: a[8],
            n_mels: a[9],
            ftype: a[10],
        }
    }
}

/// How the weight matrices are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Matrices {
    /// float16, as CTranslate2 ships them.
    F16,
    /// ggml's Q8_0 blocks: half the bytes of f16 and a faster decode on x86, with the same word
    /// error rate on the fixtures (docs/PERFORMANCE.md, "Speech"). hark's default.
    #[default]
    Q8_0,
}

impl Matrices {
    /// The header's `ftype` for files of this kind.
    pub const fn ftype(self) -> i32 {
        match self {
            Matrices::F16 => 1,
            Matrices::Q8_0 => 7 + 2 * 1000,
        }
    }

    fn ggml_type(self) -> GgmlType {
        match self {
            Matrices::F16 => GgmlType::F16,
            Matrices::Q8_0 => GgmlType::Q8_0,
        }
    }
}

impl std::fmt::Display for Matrices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Matrices::F16 => "f16",
            Matrices::Q8_0 => "q8_0",
        })
    }
}

impl std::str::FromStr for Matrices {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Matrices::F16, Matrices::Q8_0]
            .into_iter()
            .find(|m| m.to_string() == s)
            .ok_or_else(|| format!("unknown matrix type {s:?}: f16 or q8_0"))
    }
}

/// Values per Q8_0 block, and the block's bytes (an f16 scale and 32 bytes).
const QK8_0: usize = 32;
const Q8_0_BLOCK_BYTES: usize = 2 + QK8_0;

/// What a conversion wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversion {
    pub hparams: Hparams,
    /// Tensors written (167 for tiny.en).
    pub tensors: usize,
    /// Ordinary vocabulary tokens written (50256 for the English-only models).
    pub vocab_tokens: usize,
    pub bytes: u64,
}

/// Converts a CTranslate2 Whisper model (`model.bin` bytes and `vocabulary.txt` text) into a
/// ggml file that whisper.cpp loads. Every tensor's shape is checked against the dimensions
/// the model declares, so a model of another architecture is an error, not a broken file.
pub fn convert_ct2_to_ggml(
    model_bin: &[u8],
    vocabulary: &str,
    matrices: Matrices,
    out: &mut impl Write,
) -> Result<Conversion, ModelError> {
    let model = ct2::parse(model_bin)?;
    if model.spec != "WhisperSpec" || model.revision != 3 {
        return Err(ModelError::Ct2Spec { spec: model.spec, revision: model.revision });
    }
    let plan = plan(&model, matrices)?;
    let tokens = decode_vocabulary(vocabulary, plan.hparams.n_vocab as usize)?;
    let mut w = Counting { inner: out, bytes: 0 };
    write_ggml(&mut w, &plan, &tokens).map_err(ModelError::Write)?;
    Ok(Conversion { hparams: plan.hparams, tensors: plan.tensors.len(), vocab_tokens: tokens.len(), bytes: w.bytes })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GgmlType {
    F32 = 0,
    F16 = 1,
    Q8_0 = 8,
}

/// One output tensor: a range of a CTranslate2 variable's elements, reshaped and retyped.
struct Tensor<'a> {
    name: String,
    shape: Vec<usize>,
    ty: GgmlType,
    source: &'a Variable<'a>,
    elements: Range<usize>,
}

struct Plan<'a> {
    hparams: Hparams,
    tensors: Vec<Tensor<'a>>,
}

struct Planner<'a> {
    model: &'a Ct2Model<'a>,
    matrices: Matrices,
    tensors: Vec<Tensor<'a>>,
    used: BTreeSet<&'a str>,
}

impl<'a> Planner<'a> {
    /// A float variable by name.
    fn var(&mut self, name: &str) -> Result<&'a Variable<'a>, ModelError> {
        let (key, var) =
            self.model.variables.get_key_value(name).ok_or_else(|| ModelError::Ct2Missing(name.to_string()))?;
        if !matches!(var.dtype, DType::F32 | DType::F16 | DType::BF16) {
            return Err(ModelError::Ct2Malformed {
                context: format!("variable `{name}`"),
                reason: format!(
                    "stored as {}: quantized models are not supported, convert from a float16 or float32 export",
                    var.dtype.name()
                ),
            });
        }
        self.used.insert(key.as_str());
        Ok(var)
    }

    fn shaped(&mut self, name: &str, expected: &[usize]) -> Result<&'a Variable<'a>, ModelError> {
        let var = self.var(name)?;
        if var.shape != expected {
            return Err(ModelError::Ct2Shape {
                name: name.to_string(),
                got: var.shape.clone(),
                expected: expected.to_vec(),
            });
        }
        Ok(var)
    }

    /// Rows `part*rows..(part+1)*rows` of `var` as a tensor of `shape`.
    fn push(&mut self, name: String, var: &'a Variable<'a>, shape: Vec<usize>, part: usize, ty: GgmlType) {
        let n: usize = shape.iter().product();
        self.tensors.push(Tensor { name, shape, ty, source: var, elements: part * n..(part + 1) * n });
    }

    fn norm(&mut self, out: &str, src: &str, n: usize) -> Result<(), ModelError> {
        let gamma = self.shaped(&format!("{src}/gamma"), &[n])?;
        let beta = self.shaped(&format!("{src}/beta"), &[n])?;
        self.push(format!("{out}.weight"), gamma, vec![n], 0, GgmlType::F32);
        self.push(format!("{out}.bias"), beta, vec![n], 0, GgmlType::F32);
        Ok(())
    }

    /// Part `part` of `parts` stacked `n_out × n_in` projections in `src`; the bias too if
    /// `bias`.
    fn linear(
        &mut self,
        out: &str,
        src: &str,
        stack: (usize, usize),
        n_out: usize,
        n_in: usize,
        bias: bool,
    ) -> Result<(), ModelError> {
        let (part, parts) = stack;
        let weight = self.shaped(&format!("{src}/weight"), &[parts * n_out, n_in])?;
        let b = self.shaped(&format!("{src}/bias"), &[parts * n_out])?;
        let ty = self.matrix_type(&format!("{src}/weight"), n_in)?;
        self.push(format!("{out}.weight"), weight, vec![n_out, n_in], part, ty);
        if bias {
            self.push(format!("{out}.bias"), b, vec![n_out], part, GgmlType::F32);
        }
        Ok(())
    }

    fn conv(&mut self, out: &str, src: &str, n_out: usize, n_in: usize) -> Result<(), ModelError> {
        let weight = self.shaped(&format!("{src}/weight"), &[n_out, n_in, 3])?;
        let bias = self.shaped(&format!("{src}/bias"), &[n_out])?;
        self.push(format!("{out}.weight"), weight, vec![n_out, n_in, 3], 0, GgmlType::F16);
        // whisper.cpp adds the bias to a (frames, channels) result: it wants it (channels, 1).
        self.push(format!("{out}.bias"), bias, vec![n_out, 1], 0, GgmlType::F32);
        Ok(())
    }

    /// Self-attention, its layer norm and the MLP of one block (shared by encoder and decoder).
    fn block(&mut self, out: &str, src: &str, n: usize) -> Result<(), ModelError> {
        let attn = format!("{src}/self_attention");
        self.norm(&format!("{out}.attn_ln"), &format!("{attn}/layer_norm"), n)?;
        let qkv = format!("{attn}/linear_0");
        self.linear(&format!("{out}.attn.query"), &qkv, (0, 3), n, n, true)?;
        self.linear(&format!("{out}.attn.key"), &qkv, (1, 3), n, n, false)?;
        self.linear(&format!("{out}.attn.value"), &qkv, (2, 3), n, n, true)?;
        self.linear(&format!("{out}.attn.out"), &format!("{attn}/linear_1"), (0, 1), n, n, true)?;
        self.norm(&format!("{out}.mlp_ln"), &format!("{src}/ffn/layer_norm"), n)?;
        // whisper.cpp's MLP is 4× wide, fixed.
        self.linear(&format!("{out}.mlp.0"), &format!("{src}/ffn/linear_0"), (0, 1), 4 * n, n, true)?;
        self.linear(&format!("{out}.mlp.2"), &format!("{src}/ffn/linear_1"), (0, 1), n, 4 * n, true)?;
        Ok(())
    }

    fn cross_attention(&mut self, out: &str, src: &str, n: usize) -> Result<(), ModelError> {
        let attn = format!("{src}/attention");
        self.norm(&format!("{out}.cross_attn_ln"), &format!("{attn}/layer_norm"), n)?;
        self.linear(&format!("{out}.cross_attn.query"), &format!("{attn}/linear_0"), (0, 1), n, n, true)?;
        let kv = format!("{attn}/linear_1");
        self.linear(&format!("{out}.cross_attn.key"), &kv, (0, 2), n, n, false)?;
        self.linear(&format!("{out}.cross_attn.value"), &kv, (1, 2), n, n, true)?;
        self.linear(&format!("{out}.cross_attn.out"), &format!("{attn}/linear_2"), (0, 1), n, n, true)?;
        Ok(())
    }

    /// The type of a weight matrix whose rows hold `cols` values: Q8_0 needs whole blocks.
    fn matrix_type(&self, name: &str, cols: usize) -> Result<GgmlType, ModelError> {
        if self.matrices == Matrices::Q8_0 && cols % QK8_0 != 0 {
            return Err(ModelError::Ct2Malformed {
                context: format!("variable `{name}`"),
                reason: format!("rows of {cols} values do not split into Q8_0 blocks of {QK8_0}; convert to f16"),
            });
        }
        Ok(self.matrices.ggml_type())
    }

    /// A `[rows, cols]` variable's two dimensions.
    fn matrix(&mut self, name: &str) -> Result<(&'a Variable<'a>, usize, usize), ModelError> {
        let var = self.var(name)?;
        match var.shape[..] {
            [rows, cols] => Ok((var, rows, cols)),
            _ => Err(ModelError::Ct2Malformed {
                context: format!("variable `{name}`"),
                reason: format!("shape {:?}, expected two dimensions", var.shape),
            }),
        }
    }

    fn heads(&mut self, name: &str, n_state: usize) -> Result<usize, ModelError> {
        let (key, var) =
            self.model.variables.get_key_value(name).ok_or_else(|| ModelError::Ct2Missing(name.to_string()))?;
        self.used.insert(key.as_str());
        match var.as_int() {
            Some(h) if h > 0 && n_state % (h as usize) == 0 => Ok(h as usize),
            _ => Err(ModelError::Ct2Malformed {
                context: format!("variable `{name}`"),
                reason: format!("not a head count that divides the width {n_state}"),
            }),
        }
    }

    /// Layers are `{side}/layer_N/...`; `{side}/layer_norm` is not one.
    fn layers(&self, side: &str) -> Result<usize, ModelError> {
        let prefix = format!("{side}/");
        let max = self
            .model
            .variables
            .keys()
            .filter_map(|name| layer_index(name.strip_prefix(&prefix)?))
            .max()
            .ok_or_else(|| ModelError::Ct2Missing(format!("{side}/layer_0")))?;
        Ok(max + 1)
    }
}

/// `N` of `layer_N/rest`, `None` for any other name (such as `layer_norm/gamma`).
fn layer_index(rest: &str) -> Option<usize> {
    let rest = rest.strip_prefix("layer_")?;
    let digits = &rest[..rest.find('/')?];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn plan<'a>(model: &'a Ct2Model<'a>, matrices: Matrices) -> Result<Plan<'a>, ModelError> {
    let mut p = Planner { model, matrices, tensors: Vec::new(), used: BTreeSet::new() };

    // Encoder: two convolutions over the mel frames, sinusoidal positions, the blocks.
    let (pe, n_audio_ctx, s) = p.matrix("encoder/position_encodings/encodings")?;
    let conv1 = p.var("encoder/conv1/weight")?;
    let n_mels = match conv1.shape[..] {
        [_, n_mels, _] => n_mels,
        _ => {
            return Err(ModelError::Ct2Shape {
                name: "encoder/conv1/weight".into(),
                got: conv1.shape.clone(),
                expected: vec![s, 80, 3],
            })
        }
    };
    p.push("encoder.positional_embedding".into(), pe, vec![n_audio_ctx, s], 0, GgmlType::F32);
    p.conv("encoder.conv1", "encoder/conv1", s, n_mels)?;
    p.conv("encoder.conv2", "encoder/conv2", s, s)?;
    let n_audio_layer = p.layers("encoder")?;
    for i in 0..n_audio_layer {
        p.block(&format!("encoder.blocks.{i}"), &format!("encoder/layer_{i}"), s)?;
    }
    p.norm("encoder.ln_post", "encoder/layer_norm", s)?;
    let n_audio_head = p.heads("encoder/num_heads", s)?;

    // Decoder: token and position embeddings, blocks with cross-attention, the final norm.
    let (te, n_vocab, t) = p.matrix("decoder/embeddings/weight")?;
    let (dpe, n_text_ctx, _) = p.matrix("decoder/position_encodings/encodings")?;
    p.shaped("decoder/position_encodings/encodings", &[n_text_ctx, t])?;
    let ty = p.matrix_type("decoder/embeddings/weight", t)?;
    p.push("decoder.token_embedding.weight".into(), te, vec![n_vocab, t], 0, ty);
    p.push("decoder.positional_embedding".into(), dpe, vec![n_text_ctx, t], 0, GgmlType::F32);
    let n_text_layer = p.layers("decoder")?;
    for i in 0..n_text_layer {
        let (out, src) = (format!("decoder.blocks.{i}"), format!("decoder/layer_{i}"));
        p.block(&out, &src, t)?;
        p.cross_attention(&out, &src, t)?;
    }
    p.norm("decoder.ln", "decoder/layer_norm", t)?;
    let n_text_head = p.heads("decoder/num_heads", t)?;

    // whisper.cpp computes the logits with the token embedding: the output projection must
    // be that same matrix.
    if model.variables.contains_key("decoder/projection/weight") {
        return Err(ModelError::Ct2Malformed {
            context: "variable `decoder/projection/weight`".into(),
            reason: "an output projection of its own; whisper.cpp ties it to the token embedding".into(),
        });
    }
    if let Some(target) = model.aliases.get("decoder/projection/weight") {
        if target != "decoder/embeddings/weight" {
            return Err(ModelError::Ct2Malformed {
                context: "alias `decoder/projection/weight`".into(),
                reason: format!("points to `{target}`, expected `decoder/embeddings/weight`"),
            });
        }
    }
    // A tensor nobody asked for means another architecture: refuse rather than drop it.
    // One-element variables are settings (activation, pre_norm, ...), not weights.
    if let Some(name) =
        model.variables.iter().find(|(n, v)| v.elements() > 1 && !p.used.contains(n.as_str())).map(|(n, _)| n)
    {
        return Err(ModelError::Ct2Malformed {
            context: format!("variable `{name}`"),
            reason: "not part of whisper.cpp's Whisper model".into(),
        });
    }

    let int = |name: &str, v: usize| {
        i32::try_from(v)
            .map_err(|_| ModelError::Ct2Malformed { context: name.to_string(), reason: format!("{v} is too large") })
    };
    let hparams = Hparams {
        n_vocab: int("n_vocab", n_vocab)?,
        n_audio_ctx: int("n_audio_ctx", n_audio_ctx)?,
        n_audio_state: int("n_audio_state", s)?,
        n_audio_head: int("n_audio_head", n_audio_head)?,
        n_audio_layer: int("n_audio_layer", n_audio_layer)?,
        n_text_ctx: int("n_text_ctx", n_text_ctx)?,
        n_text_state: int("n_text_state", t)?,
        n_text_head: int("n_text_head", n_text_head)?,
        n_text_layer: int("n_text_layer", n_text_layer)?,
        n_mels: int("n_mels", n_mels)?,
        ftype: matrices.ftype(),
    };
    Ok(Plan { hparams, tensors: p.tensors })
}

fn write_ggml(w: &mut impl Write, plan: &Plan<'_>, tokens: &[Vec<u8>]) -> io::Result<()> {
    w.write_all(&GGML_MAGIC.to_le_bytes())?;
    for v in plan.hparams.to_array() {
        write_i32(w, v as usize)?;
    }
    let n_mels = plan.hparams.n_mels as usize;
    write_i32(w, n_mels)?;
    write_i32(w, N_FREQS)?;
    for v in mel_filters(n_mels) {
        w.write_all(&v.to_le_bytes())?;
    }
    write_i32(w, tokens.len())?;
    for token in tokens {
        write_i32(w, token.len())?;
        w.write_all(token)?;
    }
    let (mut floats, mut buf) = (Vec::new(), Vec::new());
    for t in &plan.tensors {
        write_i32(w, t.shape.len())?;
        write_i32(w, t.name.len())?;
        write_i32(w, t.ty as usize)?;
        for &d in t.shape.iter().rev() {
            write_i32(w, d)?;
        }
        w.write_all(t.name.as_bytes())?;
        let size = t.source.dtype.size();
        let bytes = &t.source.data[t.elements.start * size..t.elements.end * size];
        match (t.source.dtype, t.ty) {
            (DType::F16, GgmlType::F16) | (DType::F32, GgmlType::F32) => w.write_all(bytes)?,
            (from, to) => {
                // 4096 values at a time: a whole number of Q8_0 blocks (rows are, see the plan).
                for chunk in bytes.chunks(size * 4096) {
                    floats.clear();
                    floats.extend(chunk.chunks_exact(size).map(|e| match from {
                        DType::F16 => f16::from_le_bytes([e[0], e[1]]).to_f32(),
                        DType::BF16 => bf16::from_le_bytes([e[0], e[1]]).to_f32(),
                        _ => f32::from_le_bytes([e[0], e[1], e[2], e[3]]),
                    }));
                    buf.clear();
                    match to {
                        GgmlType::F16 => {
                            floats.iter().for_each(|x| buf.extend_from_slice(&f16::from_f32(*x).to_le_bytes()))
                        }
                        GgmlType::F32 => floats.iter().for_each(|x| buf.extend_from_slice(&x.to_le_bytes())),
                        GgmlType::Q8_0 => floats.chunks(QK8_0).for_each(|block| quantize_q8_0(block, &mut buf)),
                    }
                    w.write_all(&buf)?;
                }
            }
        }
    }
    w.flush()
}

/// One Q8_0 block of 32 values: the scale (largest magnitude / 127) as f16, then each value
/// divided by the scale and rounded, as ggml's `quantize_row_q8_0_ref`.
fn quantize_q8_0(block: &[f32], out: &mut Vec<u8>) {
    let amax = block.iter().fold(0f32, |m, x| m.max(x.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
    out.extend(block.iter().map(|x| (x * id).round() as i8 as u8));
}

fn write_i32(w: &mut impl Write, v: usize) -> io::Result<()> {
    let v = i32::try_from(v)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("{v} does not fit the ggml header")))?;
    w.write_all(&v.to_le_bytes())
}

struct Counting<'w, W> {
    inner: &'w mut W,
    bytes: u64,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The mel filter bank Whisper uses (`mel_filters.npz`), computed: `librosa.filters.mel(sr=16000,
/// n_fft=400, n_mels)` with its defaults (Slaney mel scale, Slaney area normalization), row
/// by row, `n_mels` × 201, step by step as librosa does it in float32 and float64, so that
/// the values equal Whisper's own bit for bit.
pub fn mel_filters(n_mels: usize) -> Vec<f32> {
    // Slaney's mel scale: linear below 1 kHz, logarithmic above.
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;
    let logstep = 6.4f64.ln() / 27.0;
    let hz_to_mel = |f: f64| if f >= MIN_LOG_HZ { MIN_LOG_MEL + (f / MIN_LOG_HZ).ln() / logstep } else { f / F_SP };
    let mel_to_hz = |m: f64| if m >= MIN_LOG_MEL { MIN_LOG_HZ * (logstep * (m - MIN_LOG_MEL)).exp() } else { F_SP * m };

    let sr = f64::from(SAMPLE_RATE);
    // numpy.fft.rfftfreq(400, 1/16000).
    let bin_hz = 1.0 / (N_FFT as f64 * (1.0 / sr));
    let fft_freqs: Vec<f64> = (0..N_FREQS).map(|k| k as f64 * bin_hz).collect();
    // n_mels + 2 points evenly spaced in mel from 0 Hz to Nyquist (numpy.linspace).
    let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(sr / 2.0));
    let step = (hi - lo) / (n_mels + 1) as f64;
    let mel_hz: Vec<f64> =
        (0..n_mels + 2).map(|i| if i == n_mels + 1 { hi } else { i as f64 * step + lo }).map(mel_to_hz).collect();

    let mut weights = Vec::with_capacity(n_mels * N_FREQS);
    for i in 0..n_mels {
        let (left, center, right) = (mel_hz[i], mel_hz[i + 1], mel_hz[i + 2]);
        let enorm = 2.0 / (right - left);
        for &f in &fft_freqs {
            let lower = -(left - f) / (center - left);
            let upper = (right - f) / (right - center);
            // librosa keeps the triangle in float32, then scales it in float64. numpy's
            // `maximum(0, x)` keeps x when both are zero: Whisper's file has a -0.0 (first
            // filter, DC bin), so this is written out rather than `f64::max`.
            let v = lower.min(upper);
            let tri = if v >= 0.0 { v as f32 } else { 0.0 };
            weights.push((f64::from(tri) * enorm) as f32);
        }
    }
    weights
}

/// GPT-2's byte-level alphabet: each byte is shown as a printable character (printable
/// Latin-1 bytes as themselves, the rest as U+0100 onwards, in byte order). The inverse, as
/// a table indexed by code point.
fn gpt2_char_to_byte() -> Vec<Option<u8>> {
    let printable = |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    let mut table = vec![None; 256 + 68];
    let mut next = 256;
    for b in 0..=255u8 {
        let c = if printable(u32::from(b)) {
            u32::from(b)
        } else {
            next += 1;
            next - 1
        };
        table[c as usize] = Some(b);
    }
    table
}

/// The ordinary tokens of a CTranslate2 `vocabulary.txt` (one token a line, in GPT-2's
/// byte-level form, id = line number) as raw bytes: every token before `<|endoftext|>`.
/// The file must hold exactly `n_vocab` tokens, so it belongs to the model.
pub fn decode_vocabulary(text: &str, n_vocab: usize) -> Result<Vec<Vec<u8>>, ModelError> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    let lines: Vec<&str> = body.split('\n').collect();
    if lines.len() != n_vocab {
        return Err(ModelError::Vocabulary {
            line: 0,
            reason: format!("{} tokens, but the model has {n_vocab}", lines.len()),
        });
    }
    let eot = lines
        .iter()
        .position(|l| *l == "<|endoftext|>")
        .ok_or_else(|| ModelError::Vocabulary { line: 0, reason: "no `<|endoftext|>` token".into() })?;
    let table = gpt2_char_to_byte();
    lines[..eot]
        .iter()
        .enumerate()
        .map(|(i, line)| {
            line.chars()
                .map(|c| {
                    table.get(c as usize).copied().flatten().ok_or_else(|| ModelError::Vocabulary {
                        line: i + 1,
                        reason: format!("character {c:?} (U+{:04X}) is not in GPT-2's byte alphabet", c as u32),
                    })
                })
                .collect()
        })
        .collect()
}

/// What a ggml Whisper file holds, from walking its headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgmlSummary {
    pub hparams: Hparams,
    pub n_mel: i32,
    pub n_freq: i32,
    pub vocab_tokens: usize,
    pub tensors: usize,
    pub bytes: u64,
}

/// Walks a ggml Whisper file (f32, f16 and Q8_0 tensors) without loading it: every length must fit the
/// file, and the last tensor must end where the file ends. A cheap check that a file on disk
/// is whole, used before trusting one that is already there.
pub fn inspect_ggml(mut r: impl Read + Seek) -> Result<GgmlSummary, ModelError> {
    let len = r.seek(SeekFrom::End(0)).map_err(ModelError::Read)?;
    r.seek(SeekFrom::Start(0)).map_err(ModelError::Read)?;
    let mut w = Walker { r, pos: 0, len };
    let magic = w.i32("the magic")? as u32;
    if magic != GGML_MAGIC {
        return Err(w.bad(format!("magic {magic:#x}, expected {GGML_MAGIC:#x}: not a ggml file")));
    }
    let mut a = [0i32; 11];
    for v in &mut a {
        *v = w.i32("the hparams")?;
    }
    let hparams = Hparams::from_array(a);
    let n_mel = w.i32("the mel filter rows")?;
    let n_freq = w.i32("the mel filter columns")?;
    let filters = w.count(n_mel)?.saturating_mul(w.count(n_freq)?).saturating_mul(4);
    w.skip(filters, "the mel filters")?;
    let vocab_tokens = w.len_field("the vocabulary size")?;
    for _ in 0..vocab_tokens {
        let n = w.len_field("a token length")?;
        w.skip(n, "a token")?;
    }
    let mut tensors = 0;
    while w.pos < w.len {
        let n_dims = w.i32("a tensor's rank")?;
        let name_len = w.i32("a tensor's name length")?;
        let ty = w.i32("a tensor's type")?;
        if !(1..=4).contains(&n_dims) || !(1..=1024).contains(&name_len) {
            return Err(w.bad(format!("tensor {tensors}: rank {n_dims}, name length {name_len}")));
        }
        let mut elements = 1usize;
        for _ in 0..n_dims {
            let d = w.len_field("a tensor's dimensions")?;
            elements = elements.saturating_mul(d);
        }
        let bytes = match ty {
            0 => elements.saturating_mul(4),
            1 => elements.saturating_mul(2),
            8 if elements % QK8_0 == 0 => elements / QK8_0 * Q8_0_BLOCK_BYTES,
            8 => return Err(w.bad(format!("tensor {tensors}: {elements} values are not whole Q8_0 blocks"))),
            _ => return Err(w.bad(format!("tensor {tensors}: type {ty}; hark checks f32, f16 and Q8_0 files only"))),
        };
        w.skip(name_len as usize, "a tensor's name")?;
        w.skip(bytes, "a tensor's data")?;
        tensors += 1;
    }
    Ok(GgmlSummary { hparams, n_mel, n_freq, vocab_tokens, tensors, bytes: len })
}

struct Walker<R> {
    r: R,
    pos: u64,
    len: u64,
}

impl<R: Read + Seek> Walker<R> {
    fn bad(&self, reason: String) -> ModelError {
        ModelError::Ggml { offset: self.pos, reason }
    }

    fn i32(&mut self, what: &str) -> Result<i32, ModelError> {
        let mut b = [0u8; 4];
        if self.len - self.pos < 4 {
            return Err(self.bad(format!("truncated in {what}")));
        }
        self.r.read_exact(&mut b).map_err(ModelError::Read)?;
        self.pos += 4;
        Ok(i32::from_le_bytes(b))
    }

    fn count(&self, v: i32) -> Result<usize, ModelError> {
        usize::try_from(v).map_err(|_| self.bad(format!("negative count {v}")))
    }

    fn len_field(&mut self, what: &str) -> Result<usize, ModelError> {
        let v = self.i32(what)?;
        self.count(v)
    }

    fn skip(&mut self, n: usize, what: &str) -> Result<(), ModelError> {
        if (n as u64) > self.len - self.pos {
            return Err(self.bad(format!("truncated in {what} ({n} bytes, {} left)", self.len - self.pos)));
        }
        self.r.seek(SeekFrom::Current(n as i64)).map_err(ModelError::Read)?;
        self.pos += n as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use sha2::{Digest, Sha256};

    use super::super::ct2::tests::Ct2Builder;
    use super::*;

    #[test]
    fn mel_filters_equal_whispers_own_bit_for_bit() {
        let m = mel_filters(80);
        assert_eq!(m.len(), 80 * 201);
        let at = |row: usize, col: usize| m[row * 201 + col].to_bits();
        // Values of openai-whisper's assets/mel_filters.npz (`mel_80`), as bits.
        assert_eq!(at(0, 1), 0x3ccb_aca4);
        assert_eq!(at(1, 1), 0x3b02_7873);
        assert_eq!(at(1, 2), 0x3cbb_5d95);
        assert_eq!(at(20, 19), 0x3c33_c4be);
        assert_eq!(at(40, 43), 0x3c71_6d72);
        assert_eq!(at(60, 90), 0x3abc_06fc);
        assert_eq!(at(79, 186), 0x39c0_473c);
        assert_eq!(at(79, 190), 0x3b12_47ab);
        assert_eq!((at(0, 0), at(0, 2), at(79, 200)), (0x8000_0000, 0, 0)); // -0.0 first, as in Whisper's
    }

    #[test]
    fn mel_filters_are_slaney_triangles_equal_to_whispers() {
        for (n_mels, sha256) in [
            (80, "4f2701b1d287d74a0dc9871026e9519d98cb76426615f2539b0d151a0ae4ec2e"),
            (128, "2a5f9822897750e047c85dea37cc268d3be0ecfd23c28a5f10da129d99d05afe"),
        ] {
            let m = mel_filters(n_mels);
            for row in m.chunks(201) {
                // Non-negative triangles that touch a few adjacent bins.
                assert!(row.iter().all(|&v| v >= 0.0));
                let nz: Vec<usize> = (0..201).filter(|&k| row[k] > 0.0).collect();
                assert!(!nz.is_empty() && nz.windows(2).all(|w| w[1] == w[0] + 1), "{nz:?}");
            }
            // The DC bin and Nyquist bin carry nothing (Whisper's bank starts at 0 Hz).
            assert_eq!(m[0], 0.0);
            assert_eq!(m[n_mels * 201 - 1], 0.0);
            // Whisper's `mel_80` and `mel_128` (large-v3), bit for bit.
            let bytes: Vec<u8> = m.iter().flat_map(|v| v.to_le_bytes()).collect();
            assert_eq!(hex::encode(Sha256::digest(&bytes)), sha256, "mel_{n_mels}");
        }
    }

    #[test]
    fn gpt2_alphabet_decodes() {
        let t = gpt2_char_to_byte();
        assert_eq!(t['!' as usize], Some(b'!'));
        assert_eq!(t['Ġ' as usize], Some(b' ')); // U+0120: the space
        assert_eq!(t['Ċ' as usize], Some(b'\n')); // U+010A
        assert_eq!(t['Ā' as usize], Some(0)); // U+0100: the first unprintable byte, 0x00
        assert_eq!(t['ÿ' as usize], Some(0xff));
        assert_eq!(t['Ń' as usize], Some(0xad)); // U+0143: the soft hyphen, the last one
        assert_eq!(t.iter().flatten().count(), 256);
        assert_eq!(t[' ' as usize], None);
    }

    #[test]
    fn vocabulary_keeps_the_ordinary_tokens_as_bytes() {
        let text = "!\nĠthe\nÃ©\nĊĊ\n\n<|endoftext|>\n<|startoftranscript|>\n";
        let tokens = decode_vocabulary(text, 7).unwrap();
        assert_eq!(tokens, vec![b"!".to_vec(), b" the".to_vec(), "é".as_bytes().to_vec(), b"\n\n".to_vec(), vec![]]);
        // Without the trailing newline too.
        assert_eq!(decode_vocabulary(text.trim_end(), 7).unwrap().len(), 5);
    }

    #[test]
    fn vocabulary_errors_say_what_and_where() {
        let err = decode_vocabulary("a\nb\n<|endoftext|>\n", 4).unwrap_err().to_string();
        assert!(err.contains("3 tokens") && err.contains("4"), "{err}");
        let err = decode_vocabulary("a\nb\n", 2).unwrap_err().to_string();
        assert!(err.contains("<|endoftext|>"), "{err}");
        let err = decode_vocabulary("a\nb c\n<|endoftext|>\n", 3).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("U+0020"), "{err}");
    }

    #[test]
    fn layer_names_are_matched_by_pattern() {
        assert_eq!(layer_index("layer_0/ffn/linear_0/weight"), Some(0));
        assert_eq!(layer_index("layer_12/x"), Some(12));
        assert_eq!(layer_index("layer_norm/gamma"), None);
        assert_eq!(layer_index("layer_/x"), None);
        assert_eq!(layer_index("layer_3"), None);
    }

    /// A complete, tiny Whisper in CTranslate2 form: width `s`, 2 heads, 1 layer each side,
    /// 3 mel bins, 5 audio positions, 3 text positions, vocabulary of 4.
    fn whisper_ct2(s: u32, skip: Option<&str>) -> Vec<u8> {
        let (mels, actx, tctx, vocab) = (3u32, 5u32, 3u32, 4u32);
        let mut vars: Vec<(String, Vec<u32>, u8)> = vec![
            ("encoder/conv1/weight".into(), vec![s, mels, 3], 4),
            ("encoder/conv1/bias".into(), vec![s], 4),
            ("encoder/conv2/weight".into(), vec![s, s, 3], 4),
            ("encoder/conv2/bias".into(), vec![s], 4),
            ("encoder/position_encodings/encodings".into(), vec![actx, s], 0),
            ("encoder/layer_norm/gamma".into(), vec![s], 4),
            ("encoder/layer_norm/beta".into(), vec![s], 4),
            ("decoder/embeddings/weight".into(), vec![vocab, s], 4),
            ("decoder/position_encodings/encodings".into(), vec![tctx, s], 4),
            ("decoder/layer_norm/gamma".into(), vec![s], 4),
            ("decoder/layer_norm/beta".into(), vec![s], 4),
        ];
        for side in ["encoder", "decoder"] {
            let l = format!("{side}/layer_0");
            for (name, shape) in [
                ("self_attention/layer_norm/gamma", vec![s]),
                ("self_attention/layer_norm/beta", vec![s]),
                ("self_attention/linear_0/weight", vec![3 * s, s]),
                ("self_attention/linear_0/bias", vec![3 * s]),
                ("self_attention/linear_1/weight", vec![s, s]),
                ("self_attention/linear_1/bias", vec![s]),
                ("ffn/layer_norm/gamma", vec![s]),
                ("ffn/layer_norm/beta", vec![s]),
                ("ffn/linear_0/weight", vec![4 * s, s]),
                ("ffn/linear_0/bias", vec![4 * s]),
                ("ffn/linear_1/weight", vec![s, 4 * s]),
                ("ffn/linear_1/bias", vec![s]),
            ] {
                vars.push((format!("{l}/{name}"), shape, 4));
            }
        }
        for (name, shape) in [
            ("attention/layer_norm/gamma", vec![s]),
            ("attention/layer_norm/beta", vec![s]),
            ("attention/linear_0/weight", vec![s, s]),
            ("attention/linear_0/bias", vec![s]),
            ("attention/linear_1/weight", vec![2 * s, s]),
            ("attention/linear_1/bias", vec![2 * s]),
            ("attention/linear_2/weight", vec![s, s]),
            ("attention/linear_2/bias", vec![s]),
        ] {
            vars.push((format!("decoder/layer_0/{name}"), shape, 4));
        }
        vars.retain(|(n, _, _)| Some(n.as_str()) != skip);
        let mut b = Ct2Builder::default().header("WhisperSpec", 3, vars.len() as u32 + 3);
        // Element k of every variable holds k (so slices can be told apart).
        for (name, shape, dtype) in &vars {
            let n: u32 = shape.iter().product();
            let data: Vec<u8> = if *dtype == 0 {
                (0..n).flat_map(|k| (k as f32).to_le_bytes()).collect()
            } else {
                (0..n).flat_map(|k| f16::from_f32(k as f32).to_le_bytes()).collect()
            };
            b = b.variable(name, shape, *dtype, &data);
        }
        b.variable("encoder/num_heads", &[], 2, &2i16.to_le_bytes())
            .variable("decoder/num_heads", &[], 2, &2i16.to_le_bytes())
            .variable("decoder/pre_norm", &[], 1, &[1])
            .u32(1)
            .string("decoder/projection/weight")
            .string("decoder/embeddings/weight")
            .bytes
    }

    /// Width 4.
    fn tiny_ct2(skip: Option<&str>) -> Vec<u8> {
        whisper_ct2(4, skip)
    }

    const TINY_VOCAB: &str = "a\nĠb\n<|endoftext|>\n<|startoftranscript|>\n";

    fn rd(r: &mut Cursor<&[u8]>) -> i32 {
        let mut b = [0; 4];
        r.read_exact(&mut b).unwrap();
        i32::from_le_bytes(b)
    }

    /// Reads back the tensors of a ggml file: (name, dims innermost first, type, data bytes).
    fn read_tensors(file: &[u8]) -> Vec<(String, Vec<i32>, i32, Vec<u8>)> {
        let mut r = Cursor::new(file);
        for _ in 0..12 {
            rd(&mut r);
        }
        let (rows, cols) = (rd(&mut r), rd(&mut r));
        r.seek(SeekFrom::Current(i64::from(rows * cols * 4))).unwrap();
        let n_tokens = rd(&mut r);
        for _ in 0..n_tokens {
            let n = rd(&mut r);
            r.seek(SeekFrom::Current(i64::from(n))).unwrap();
        }
        let mut out = Vec::new();
        while (r.position() as usize) < file.len() {
            let (n_dims, name_len, ty) = (rd(&mut r), rd(&mut r), rd(&mut r));
            let dims: Vec<i32> = (0..n_dims).map(|_| rd(&mut r)).collect();
            let mut name = vec![0; name_len as usize];
            r.read_exact(&mut name).unwrap();
            let n: i32 = dims.iter().product();
            let bytes = match ty {
                0 => n as usize * 4,
                1 => n as usize * 2,
                _ => n as usize / QK8_0 * Q8_0_BLOCK_BYTES,
            };
            let mut data = vec![0; bytes];
            r.read_exact(&mut data).unwrap();
            out.push((String::from_utf8(name).unwrap(), dims, ty, data));
        }
        out
    }

    fn f16s(data: &[u8]) -> Vec<f32> {
        data.chunks(2).map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32()).collect()
    }

    fn f32s(data: &[u8]) -> Vec<f32> {
        data.chunks(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
    }

    #[test]
    fn converts_a_tiny_whisper_with_whisper_cpp_names_shapes_and_types() {
        let mut out = Vec::new();
        let conv = convert_ct2_to_ggml(&tiny_ct2(None), TINY_VOCAB, Matrices::F16, &mut out).unwrap();
        let expected = Hparams {
            n_vocab: 4,
            n_audio_ctx: 5,
            n_audio_state: 4,
            n_audio_head: 2,
            n_audio_layer: 1,
            n_text_ctx: 3,
            n_text_state: 4,
            n_text_head: 2,
            n_text_layer: 1,
            n_mels: 3,
            ftype: 1,
        };
        // 5 + 15 + 2 encoder tensors, 2 + 24 + 2 decoder tensors.
        assert_eq!(conv, Conversion { hparams: expected, tensors: 50, vocab_tokens: 2, bytes: out.len() as u64 });
        let summary = inspect_ggml(Cursor::new(&out)).unwrap();
        assert_eq!(
            (summary.hparams, summary.n_mel, summary.n_freq, summary.vocab_tokens, summary.tensors),
            (expected, 3, 201, 2, 50)
        );

        let tensors = read_tensors(&out);
        let get = |name: &str| tensors.iter().find(|t| t.0 == name).unwrap_or_else(|| panic!("{name} missing"));
        // Shapes innermost first; f16 matrices, f32 vectors, conv biases and positions.
        let t = get("encoder.conv1.weight");
        assert_eq!((t.1.clone(), t.2), (vec![3, 3, 4], 1));
        let t = get("encoder.conv1.bias");
        assert_eq!((t.1.clone(), t.2, f32s(&t.3)), (vec![1, 4], 0, vec![0.0, 1.0, 2.0, 3.0]));
        let t = get("encoder.positional_embedding");
        assert_eq!((t.1.clone(), t.2), (vec![4, 5], 0));
        let t = get("decoder.positional_embedding");
        assert_eq!((t.1.clone(), t.2, f32s(&t.3)[11]), (vec![4, 3], 0, 11.0));
        let t = get("decoder.token_embedding.weight");
        assert_eq!((t.1.clone(), t.2), (vec![4, 4], 1));
        assert_eq!(get("encoder.ln_post.weight").1, vec![4]);
        assert_eq!(get("decoder.ln.bias").2, 0);
        // Fused Q, K, V split by rows: each 4 × 4 block, elements 0..16, 16..32, 32..48.
        for (side, n) in [("encoder", "attn"), ("decoder", "attn")] {
            let q = get(&format!("{side}.blocks.0.{n}.query.weight"));
            let k = get(&format!("{side}.blocks.0.{n}.key.weight"));
            let v = get(&format!("{side}.blocks.0.{n}.value.weight"));
            assert_eq!(q.1, vec![4, 4]);
            assert_eq!((f16s(&q.3)[0], f16s(&k.3)[0], f16s(&v.3)[15]), (0.0, 16.0, 47.0));
            assert_eq!(f32s(&get(&format!("{side}.blocks.0.{n}.query.bias")).3), vec![0.0, 1.0, 2.0, 3.0]);
            assert_eq!(f32s(&get(&format!("{side}.blocks.0.{n}.value.bias")).3), vec![8.0, 9.0, 10.0, 11.0]);
            assert!(tensors.iter().all(|t| t.0 != format!("{side}.blocks.0.{n}.key.bias")));
            assert_eq!(get(&format!("{side}.blocks.0.mlp.0.weight")).1, vec![4, 16]);
            assert_eq!(get(&format!("{side}.blocks.0.mlp.2.weight")).1, vec![16, 4]);
            assert_eq!(get(&format!("{side}.blocks.0.attn_ln.weight")).2, 0);
            assert_eq!(get(&format!("{side}.blocks.0.mlp_ln.bias")).2, 0);
        }
        // Cross-attention: query alone, K and V stacked.
        let k = get("decoder.blocks.0.cross_attn.key.weight");
        let v = get("decoder.blocks.0.cross_attn.value.weight");
        assert_eq!((f16s(&k.3)[0], f16s(&v.3)[0]), (0.0, 16.0));
        assert_eq!(f32s(&get("decoder.blocks.0.cross_attn.value.bias").3), vec![4.0, 5.0, 6.0, 7.0]);
        assert_eq!(get("decoder.blocks.0.cross_attn.out.weight").2, 1);
        assert_eq!(get("decoder.blocks.0.cross_attn_ln.weight").2, 0);
    }

    #[test]
    fn q8_0_blocks_are_a_scale_and_rounded_bytes() {
        let block: Vec<f32> = (0..32).map(|i| i as f32 - 16.0).collect();
        let mut out = Vec::new();
        quantize_q8_0(&block, &mut out);
        assert_eq!(out.len(), Q8_0_BLOCK_BYTES);
        let d = f16::from_le_bytes([out[0], out[1]]).to_f32();
        assert!((d - 16.0 / 127.0).abs() < 1e-4, "{d}");
        let q: Vec<i8> = out[2..].iter().map(|&b| b as i8).collect();
        // −16 is the largest magnitude: −127; 0 stays 0; 1 × 127/16 = 7.94 rounds to 8.
        assert_eq!((q[0], q[16], q[17], q[31]), (-127, 0, 8, 119));
        for (x, q) in block.iter().zip(&q) {
            assert!((f32::from(*q) * d - x).abs() <= d / 2.0 + 1e-3, "{x} → {q}");
        }
        out.clear();
        quantize_q8_0(&[0.0; 32], &mut out);
        assert_eq!(out, vec![0; Q8_0_BLOCK_BYTES], "an all-zero block has scale 0");
    }

    #[test]
    fn q8_0_conversion_quantizes_the_weight_matrices_only() {
        let mut out = Vec::new();
        let conv = convert_ct2_to_ggml(&whisper_ct2(32, None), TINY_VOCAB, Matrices::Q8_0, &mut out).unwrap();
        assert_eq!((conv.hparams.ftype, conv.tensors), (2007, 50));
        let summary = inspect_ggml(Cursor::new(&out)).unwrap();
        assert_eq!((summary.tensors, summary.bytes), (50, out.len() as u64));
        let tensors = read_tensors(&out);
        let get = |name: &str| tensors.iter().find(|t| t.0 == name).unwrap_or_else(|| panic!("{name} missing"));
        for (name, ty) in [
            ("encoder.blocks.0.attn.query.weight", 8),
            ("decoder.blocks.0.cross_attn.value.weight", 8),
            ("decoder.blocks.0.mlp.2.weight", 8),
            ("decoder.token_embedding.weight", 8),
            ("encoder.conv2.weight", 1),
            ("encoder.positional_embedding", 0),
            ("encoder.blocks.0.attn.query.bias", 0),
        ] {
            assert_eq!(get(name).2, ty, "{name}");
        }
        // The value projection is rows 64..96 of the fused QKV: element k holds k.
        let v = get("encoder.blocks.0.attn.value.weight");
        assert_eq!(v.3.len(), 32 * 32 / QK8_0 * Q8_0_BLOCK_BYTES);
        for (b, block) in v.3.chunks(Q8_0_BLOCK_BYTES).enumerate() {
            let d = f16::from_le_bytes([block[0], block[1]]).to_f32();
            for (i, &q) in block[2..].iter().enumerate() {
                let want = (2048 + b * 32 + i) as f32;
                assert!((f32::from(q as i8) * d - want).abs() <= want / 127.0, "block {b} value {i}");
            }
        }
        // Rows that are not whole blocks: an error naming the variable.
        let err = convert_ct2_to_ggml(&tiny_ct2(None), TINY_VOCAB, Matrices::Q8_0, &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("encoder/layer_0/self_attention/linear_0/weight"), "{err}");
    }

    #[test]
    fn conversion_errors_name_the_variable() {
        let err = convert_ct2_to_ggml(
            &tiny_ct2(Some("decoder/layer_0/attention/linear_2/bias")),
            TINY_VOCAB,
            Matrices::F16,
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(matches!(&err, ModelError::Ct2Missing(n) if n == "decoder/layer_0/attention/linear_2/bias"), "{err}");
        let err =
            convert_ct2_to_ggml(&tiny_ct2(None), "a\n<|endoftext|>\n", Matrices::F16, &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("vocabulary"), "{err}");
        let other = Ct2Builder::default().header("TransformerSpec", 7, 0).u32(0).bytes;
        let err = convert_ct2_to_ggml(&other, TINY_VOCAB, Matrices::F16, &mut Vec::new()).unwrap_err().to_string();
        assert!(err.contains("TransformerSpec") && err.contains("revision 7"), "{err}");
    }

    #[test]
    fn inspect_refuses_truncated_and_foreign_files() {
        let mut out = Vec::new();
        convert_ct2_to_ggml(&tiny_ct2(None), TINY_VOCAB, Matrices::F16, &mut out).unwrap();
        for cut in [3, 40, 1000, out.len() - 1] {
            let err = inspect_ggml(Cursor::new(&out[..cut])).unwrap_err().to_string();
            assert!(err.contains("truncated"), "cut {cut}: {err}");
        }
        let err =
            inspect_ggml(Cursor::new(b"\x7fELF0000000000000000000000000000000000000000000000000000000")).unwrap_err();
        assert!(err.to_string().contains("not a ggml file"), "{err}");
    }
}
