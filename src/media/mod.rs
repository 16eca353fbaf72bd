//! The media stage: RTP from a phone call in, 16 kHz mono audio for speech recognition out.
//!
//! Every part is a pure core (no sockets, no clock): [`rtp`] reads packets, [`jitter`]
//! orders them and marks losses, [`codec`] decodes G.711 and Opus, [`resample`] converts
//! to [`SAMPLE_RATE`], and [`pipeline`] ties them together as one [`pipeline::MediaStream`]
//! per speaker, driven with explicit time like the rest of hark.

pub mod codec;
pub mod jitter;
pub mod pipeline;
pub mod resample;
pub mod rtp;

/// The rate of every sample that leaves this stage: what the VAD and Whisper take.
pub const SAMPLE_RATE: u32 = 16_000;
