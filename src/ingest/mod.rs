//! Telephony ingest: the ways calls reach hark, all ending in [`call::LiveCall`], which turns
//! them into voice sessions with per-speaker 16 kHz audio.
//!
//! - [`call`]: the voice session of a call, its record, recordings and speech hand-off.
//! - [`recording`]: a speaker's recording on disk.

pub mod call;
pub mod recording;
