//! Voice activity detection: which stretches of one speaker's 16 kHz audio are speech, cut
//! into utterances for Whisper.
//!
//! Whisper transcribes whole utterances well and silence badly (it invents words), so the
//! speech stage starts here. The work is split so that each part can be tested and sized on
//! its own:
//!
//! - [`segmenter`]: the pure core. Per-chunk speech probabilities in, [`VadEvent`]s out
//!   (speech started, utterance ended with its audio). No clock, no IO, no model: tests
//!   drive it with synthetic probabilities and exact sample times.
//! - [`stream`]: one speaker's [`VadStream`]: cuts timestamped frames of any size into the
//!   512-sample chunks Silero takes (filling short gaps with silence, skipping overlaps), and
//!   holds the model's small recurrent state and the segmenter. Still no model: pure data.
//! - [`silero`]: the [`SileroModel`] runner: one ONNX Runtime session per worker thread
//!   that runs the chunks of many streams in one batched call.
//!
//! Times are stream times in 16 kHz samples: sample `n` of a call's speaker lies `n / 16`
//! ms after the call's start ([`ms_to_samples`] converts an `AudioFrame`'s `start_ms`).

pub mod segmenter;
pub mod silero;
pub mod stream;

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub use segmenter::{Ongoing, Segmenter, Utterance, VadEvent};
pub use silero::{Frame, SileroModel, ORT_LIBRARY_FILE, SILERO_MODEL_FILE};
pub use stream::{Sample, VadStream};

/// Samples per millisecond at the speech stage's rate (16 kHz).
pub const SAMPLES_PER_MS: u64 = crate::media::SAMPLE_RATE as u64 / 1000;

/// Stream time in samples of a time in milliseconds (`AudioFrame::start_ms`).
pub const fn ms_to_samples(ms: u64) -> u64 {
    ms * SAMPLES_PER_MS
}

/// Milliseconds (rounded down) of a stream time in samples.
pub const fn samples_to_ms(samples: u64) -> u64 {
    samples / SAMPLES_PER_MS
}

/// How speech is told from silence and cut into utterances. Every field has a default, so a
/// config file names only what it changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VadSettings {
    /// Speech probability (Silero, 0..1) at or above which silence turns into speech.
    pub threshold: f32,
    /// Probability below which speech turns back into silence; lower than `threshold`
    /// (hysteresis), so that soft syllables inside a word do not break it.
    pub release_threshold: f32,
    /// Speech shorter than this (from its start to its last speech chunk) is a blip (a click,
    /// a cough, a breath) and is dropped; `SpeechStart` comes once speech has lasted this long.
    pub min_speech_ms: u64,
    /// Non-speech that ends an utterance: pauses shorter than this stay inside it.
    pub hangover_ms: u64,
    /// Audio from before the detected start that an utterance includes, so that a soft
    /// first consonant reaches Whisper.
    pub pre_roll_ms: u64,
    /// Audio after the last speech chunk that an utterance includes (at most `hangover_ms`),
    /// so that a word's soft ending (a final "s" or "f") reaches Whisper.
    pub post_roll_ms: u64,
    /// The longest utterance (pre-roll included). Longer speech is split at its quietest
    /// point (the lowest speech probability) within the last `split_search_ms`, not
    /// mid-word. At most 30 s, one Whisper window.
    pub max_utterance_ms: u64,
    /// How far back from the maximum length the split point is searched.
    pub split_search_ms: u64,
}

impl Default for VadSettings {
    fn default() -> Self {
        VadSettings {
            threshold: 0.5,
            release_threshold: 0.35,
            min_speech_ms: 250,
            // 300 ms cost 1.5 points of word error rate on the fixture calls (config/default.toml).
            hangover_ms: 450,
            pre_roll_ms: 200,
            post_roll_ms: 100,
            max_utterance_ms: 15_000,
            split_search_ms: 3_000,
        }
    }
}

/// Upper bounds that keep per-stream memory small whatever the config says.
const MAX_PRE_ROLL_MS: u64 = 2_000;
const MAX_UTTERANCE_MS: u64 = 30_000;

impl VadSettings {
    /// Checks that the settings make sense together (see each field).
    pub fn validate(&self) -> Result<(), VadError> {
        let bad = |why: String| Err(VadError::Settings(why));
        if !(self.threshold > 0.0 && self.threshold <= 1.0) {
            return bad(format!("threshold {} is not in (0, 1]", self.threshold));
        }
        if !(self.release_threshold >= 0.0 && self.release_threshold <= self.threshold) {
            return bad(format!(
                "release_threshold {} is not in [0, threshold {}]",
                self.release_threshold, self.threshold
            ));
        }
        if self.hangover_ms == 0 {
            return bad("hangover_ms must be above 0".into());
        }
        if self.pre_roll_ms > MAX_PRE_ROLL_MS {
            return bad(format!("pre_roll_ms {} is above {MAX_PRE_ROLL_MS}", self.pre_roll_ms));
        }
        if self.post_roll_ms > self.hangover_ms {
            return bad(format!("post_roll_ms {} is above hangover_ms {}", self.post_roll_ms, self.hangover_ms));
        }
        if self.max_utterance_ms > MAX_UTTERANCE_MS {
            return bad(format!(
                "max_utterance_ms {} is above {MAX_UTTERANCE_MS} (one Whisper window)",
                self.max_utterance_ms
            ));
        }
        if self.split_search_ms == 0 || self.split_search_ms * 2 > self.max_utterance_ms {
            return bad(format!(
                "split_search_ms {} must be above 0 and at most half of max_utterance_ms {}",
                self.split_search_ms, self.max_utterance_ms
            ));
        }
        let least = self.pre_roll_ms + self.min_speech_ms + self.hangover_ms;
        if self.max_utterance_ms < least {
            return bad(format!(
                "max_utterance_ms {} is below pre_roll_ms + min_speech_ms + hangover_ms ({least})",
                self.max_utterance_ms
            ));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VadError {
    #[error("invalid VAD settings: {0}")]
    Settings(String),
    #[error("{what} not found at {}: fetch the model files with `hark models fetch`", path.display())]
    MissingFile { what: &'static str, path: PathBuf },
    #[error("cannot load the ONNX Runtime library {}: {source}", path.display())]
    Runtime { path: PathBuf, source: ort::LoadDynamicError },
    #[error("{} is not a Silero VAD v5/v6 model: {reason}", path.display())]
    Model { path: PathBuf, reason: String },
    #[error("Silero model output: {0}")]
    Output(String),
    #[error("ONNX Runtime: {0}")]
    Ort(#[from] ort::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_a_partial_config_keeps_the_rest() {
        VadSettings::default().validate().unwrap();
        let s: VadSettings = toml::from_str("threshold = 0.6\nhangover_ms = 500").unwrap();
        assert_eq!(s.threshold, 0.6);
        assert_eq!(s.hangover_ms, 500);
        assert_eq!(s.pre_roll_ms, VadSettings::default().pre_roll_ms);
        assert!(toml::from_str::<VadSettings>("treshold = 0.6").is_err(), "unknown fields are refused");
    }

    #[test]
    fn inconsistent_settings_are_refused() {
        let d = VadSettings::default();
        for bad in [
            VadSettings { threshold: 0.0, ..d.clone() },
            VadSettings { threshold: f32::NAN, ..d.clone() },
            VadSettings { release_threshold: 0.6, ..d.clone() },
            VadSettings { hangover_ms: 0, ..d.clone() },
            VadSettings { pre_roll_ms: 5_000, ..d.clone() },
            VadSettings { post_roll_ms: d.hangover_ms + 1, ..d.clone() },
            VadSettings { max_utterance_ms: 60_000, ..d.clone() },
            VadSettings { split_search_ms: 8_000, ..d.clone() },
            VadSettings { max_utterance_ms: 700, split_search_ms: 100, ..d.clone() },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
