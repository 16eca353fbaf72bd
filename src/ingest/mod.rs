//! Telephony ingest: the ways calls reach hark, all ending in [`call::LiveCall`], which turns
//! them into voice sessions with per-speaker 16 kHz audio.
//!
//! - [`call`]: the voice session of a call, its record, recordings and speech hand-off.
//! - [`recording`]: a speaker's recording on disk.
//! - [`stream`]: Twilio Media Streams, jambonz and audio_fork WebSockets; the shared stream cores.
//! - [`audiosocket`]: Asterisk AudioSocket over TCP.
//! - [`sip`]: the SIP user agent server (plain calls and SIPREC) and its RTP media.

pub mod audiosocket;
pub mod call;
pub mod recording;
pub mod sip;
pub mod stream;
