//! Silero VAD and the utterance segmenter (see mod.rs).
