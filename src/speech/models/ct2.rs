//! Reader of CTranslate2 `model.bin` files (binary version 6), as a pure function over bytes.
//!
//! Layout, all little-endian: `u32` version, the spec name (`u16` length that counts the
//! trailing NUL, then the bytes), `u32` spec revision, `u32` variable count; per variable its
//! name (same string form), `u8` rank, `rank` × `u32` dimensions, `u8` dtype, `u32` byte count
//! and the data; then a `u32` alias count and (alias, target) name pairs. Nothing follows.

use std::collections::BTreeMap;

use super::ModelError;

/// The only binary version hark reads.
pub const CT2_BINARY_VERSION: u32 = 6;

/// Element types of CTranslate2 variables, by their code in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    I8,
    I16,
    I32,
    F16,
    BF16,
}

impl DType {
    /// The type for a dtype code, `None` for codes CTranslate2 does not define.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::F32,
            1 => Self::I8,
            2 => Self::I16,
            3 => Self::I32,
            4 => Self::F16,
            5 => Self::BF16,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::I8 => 1,
            Self::I16 | Self::F16 | Self::BF16 => 2,
            Self::F32 | Self::I32 => 4,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "float32",
            Self::I8 => "int8",
            Self::I16 => "int16",
            Self::I32 => "int32",
            Self::F16 => "float16",
            Self::BF16 => "bfloat16",
        }
    }
}

/// One variable: its shape (row-major, outermost first), element type and raw bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Variable<'a> {
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub data: &'a [u8],
}

impl Variable<'_> {
    pub fn elements(&self) -> usize {
        self.shape.iter().product()
    }

    /// The value of a one-element integer variable (CTranslate2 stores settings such as
    /// `num_heads` this way).
    pub fn as_int(&self) -> Option<i64> {
        if self.elements() != 1 {
            return None;
        }
        let d = self.data;
        Some(match self.dtype {
            DType::I8 => i64::from(d[0] as i8),
            DType::I16 => i64::from(i16::from_le_bytes([d[0], d[1]])),
            DType::I32 => i64::from(i32::from_le_bytes([d[0], d[1], d[2], d[3]])),
            _ => return None,
        })
    }
}

/// A parsed model: the variables borrow from the file's bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Ct2Model<'a> {
    pub spec: String,
    pub revision: u32,
    pub variables: BTreeMap<String, Variable<'a>>,
    /// Alias name → the variable it stands for.
    pub aliases: BTreeMap<String, String>,
}

/// Parses a whole `model.bin`. Every length is checked against what is left, so a truncated
/// or foreign file is an error that says where it went wrong, never a panic.
pub fn parse(bytes: &[u8]) -> Result<Ct2Model<'_>, ModelError> {
    let mut r = Reader { buf: bytes, pos: 0 };
    let version = r.u32(|| "the binary version".into())?;
    if version != CT2_BINARY_VERSION {
        return Err(ModelError::Ct2Version(version));
    }
    let spec = r.string(|| "the spec name".into())?;
    let revision = r.u32(|| "the spec revision".into())?;
    let count = r.u32(|| "the variable count".into())?;
    let mut variables = BTreeMap::new();
    for index in 0..count {
        let name = r.string(|| format!("the name of variable {index}"))?;
        let rank = r.u8(|| format!("the rank of `{name}`"))?;
        let mut shape = Vec::with_capacity(usize::from(rank));
        for _ in 0..rank {
            shape.push(r.u32(|| format!("the dimensions of `{name}`"))? as usize);
        }
        let code = r.u8(|| format!("the dtype of `{name}`"))?;
        let dtype = DType::from_code(code).ok_or_else(|| ModelError::Ct2Dtype { name: name.clone(), code })?;
        let size = r.u32(|| format!("the byte count of `{name}`"))? as usize;
        let expected = shape.iter().try_fold(dtype.size(), |acc, &d| acc.checked_mul(d));
        if expected != Some(size) {
            return Err(ModelError::Ct2Malformed {
                context: format!("variable `{name}`"),
                reason: format!("{size} bytes of data, but shape {shape:?} of {} needs {expected:?}", dtype.name()),
            });
        }
        let data = r.take(size, || format!("the data of `{name}` ({size} bytes)"))?;
        if variables.insert(name.clone(), Variable { shape, dtype, data }).is_some() {
            return Err(ModelError::Ct2Malformed {
                context: format!("variable `{name}`"),
                reason: "appears twice".into(),
            });
        }
    }
    let alias_count = r.u32(|| "the alias count".into())?;
    let mut aliases = BTreeMap::new();
    for index in 0..alias_count {
        let alias = r.string(|| format!("the name of alias {index}"))?;
        let target = r.string(|| format!("the target of alias `{alias}`"))?;
        aliases.insert(alias, target);
    }
    let left = bytes.len() - r.pos;
    if left != 0 {
        return Err(ModelError::Ct2Malformed {
            context: "the end of the file".into(),
            reason: format!("{left} unexpected bytes after the aliases"),
        });
    }
    Ok(Ct2Model { spec, revision, variables, aliases })
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: impl FnOnce() -> String) -> Result<&'a [u8], ModelError> {
        let available = self.buf.len() - self.pos;
        if n > available {
            return Err(ModelError::Ct2Truncated { what: what(), offset: self.pos, needed: n, available });
        }
        let bytes = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn u8(&mut self, what: impl FnOnce() -> String) -> Result<u8, ModelError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: impl FnOnce() -> String) -> Result<u16, ModelError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: impl FnOnce() -> String) -> Result<u32, ModelError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A `u16`-length string whose length counts a trailing NUL.
    fn string(&mut self, what: impl Fn() -> String) -> Result<String, ModelError> {
        let len = self.u16(&what)?;
        let start = self.pos;
        let bytes = self.take(usize::from(len), &what)?;
        let malformed = |reason: &str| ModelError::Ct2Malformed {
            context: format!("{} at offset {start}", what()),
            reason: reason.into(),
        };
        let Some((0, text)) = bytes.split_last() else {
            return Err(malformed("the string does not end with a NUL byte"));
        };
        if text.contains(&0) {
            return Err(malformed("the string contains a NUL byte"));
        }
        String::from_utf8(text.to_vec()).map_err(|_| malformed("the string is not UTF-8"))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds CTranslate2 files by hand, one field at a time.
    #[derive(Default)]
    pub(crate) struct Ct2Builder {
        pub bytes: Vec<u8>,
    }

    impl Ct2Builder {
        pub fn u8(mut self, v: u8) -> Self {
            self.bytes.push(v);
            self
        }
        pub fn u16(mut self, v: u16) -> Self {
            self.bytes.extend_from_slice(&v.to_le_bytes());
            self
        }
        pub fn u32(mut self, v: u32) -> Self {
            self.bytes.extend_from_slice(&v.to_le_bytes());
            self
        }
        pub fn raw(mut self, v: &[u8]) -> Self {
            self.bytes.extend_from_slice(v);
            self
        }
        pub fn string(self, s: &str) -> Self {
            self.u16(s.len() as u16 + 1).raw(s.as_bytes()).u8(0)
        }
        pub fn header(self, spec: &str, revision: u32, count: u32) -> Self {
            self.u32(6).string(spec).u32(revision).u32(count)
        }
        pub fn variable(self, name: &str, shape: &[u32], dtype: u8, data: &[u8]) -> Self {
            let mut b = self.string(name).u8(shape.len() as u8);
            for &d in shape {
                b = b.u32(d);
            }
            b.u8(dtype).u32(data.len() as u32).raw(data)
        }
    }

    fn small() -> Vec<u8> {
        Ct2Builder::default()
            .header("WhisperSpec", 3, 2)
            .variable("encoder/num_heads", &[], 2, &6i16.to_le_bytes())
            .variable("decoder/embeddings/weight", &[2, 3], 4, &[0u8; 12])
            .u32(1)
            .string("decoder/projection/weight")
            .string("decoder/embeddings/weight")
            .bytes
    }

    #[test]
    fn parses_a_small_file() {
        let bytes = small();
        let model = parse(&bytes).unwrap();
        assert_eq!(model.spec, "WhisperSpec");
        assert_eq!(model.revision, 3);
        assert_eq!(model.variables.len(), 2);
        assert_eq!(model.variables["encoder/num_heads"].as_int(), Some(6));
        let emb = &model.variables["decoder/embeddings/weight"];
        assert_eq!((emb.shape.as_slice(), emb.dtype, emb.data.len()), (&[2, 3][..], DType::F16, 12));
        assert_eq!(model.aliases["decoder/projection/weight"], "decoder/embeddings/weight");
    }

    #[test]
    fn every_truncation_is_an_error_naming_what_was_cut() {
        let bytes = small();
        for len in 0..bytes.len() {
            match parse(&bytes[..len]) {
                Err(ModelError::Ct2Truncated { what, offset, needed, available }) => {
                    assert!(!what.is_empty());
                    assert!(needed > available, "cut at {len}: {what} {offset} {needed} {available}");
                }
                other => panic!("cut at {len}: expected a truncation error, got {other:?}"),
            }
        }
        let err = parse(&bytes[..50]).unwrap_err().to_string();
        assert!(err.contains("truncated") && err.contains("encoder/num_heads"), "{err}");
    }

    #[test]
    fn wrong_version_is_refused() {
        let mut bytes = small();
        bytes[0] = 5;
        assert!(matches!(parse(&bytes), Err(ModelError::Ct2Version(5))));
        let err = parse(b"PK\x03\x04 not a model").unwrap_err().to_string();
        assert!(err.contains("binary version"), "{err}");
    }

    #[test]
    fn bad_dtype_is_refused_with_the_variable_name() {
        let bytes =
            Ct2Builder::default().header("WhisperSpec", 3, 1).variable("x/weight", &[2], 9, &[0; 2]).u32(0).bytes;
        match parse(&bytes) {
            Err(ModelError::Ct2Dtype { name, code: 9 }) => assert_eq!(name, "x/weight"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn data_size_must_match_the_shape() {
        let bytes =
            Ct2Builder::default().header("WhisperSpec", 3, 1).variable("x/weight", &[2, 2], 0, &[0; 12]).u32(0).bytes;
        let err = parse(&bytes).unwrap_err().to_string();
        assert!(err.contains("x/weight") && err.contains("12 bytes"), "{err}");
        // Dimensions whose product overflows are a mismatch, not a panic.
        let bytes = Ct2Builder::default()
            .header("WhisperSpec", 3, 1)
            .variable("x", &[u32::MAX, u32::MAX, u32::MAX], 0, &[])
            .u32(0)
            .bytes;
        assert!(matches!(parse(&bytes), Err(ModelError::Ct2Malformed { .. })));
    }

    #[test]
    fn strings_need_their_nul_and_utf8() {
        let no_nul = Ct2Builder::default().u32(6).u16(3).raw(b"abc").bytes;
        assert!(parse(&no_nul).unwrap_err().to_string().contains("NUL"));
        let empty = Ct2Builder::default().u32(6).u16(0).bytes;
        assert!(matches!(parse(&empty), Err(ModelError::Ct2Malformed { .. })));
        let latin1 = Ct2Builder::default().u32(6).u16(3).raw(&[0xe9, b'x', 0]).bytes;
        assert!(parse(&latin1).unwrap_err().to_string().contains("UTF-8"));
    }

    #[test]
    fn duplicates_and_trailing_bytes_are_refused() {
        let dup = Ct2Builder::default()
            .header("WhisperSpec", 3, 2)
            .variable("a", &[1], 0, &[0; 4])
            .variable("a", &[1], 0, &[0; 4])
            .u32(0)
            .bytes;
        assert!(parse(&dup).unwrap_err().to_string().contains("twice"));
        let mut trailing = small();
        trailing.push(0);
        assert!(parse(&trailing).unwrap_err().to_string().contains("1 unexpected bytes"));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap fuzz: every prefix and single-byte corruption of a valid file.
        let bytes = small();
        for i in 0..bytes.len() {
            for v in [0u8, 1, 0x7f, 0xff] {
                let mut b = bytes.clone();
                b[i] = v;
                let _ = parse(&b);
            }
        }
    }
}
