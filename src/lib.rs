//! hark hears every contact-center conversation while it happens.
//!
//! Where a message goes, stage by stage (each module is one folder or file):
//!
//! - [`ingest`]: calls arriving by SIP/RTP and streaming protocols, as voice sessions with
//!   per-speaker 16 kHz audio and recordings.
//! - [`media`]: RTP to 16 kHz audio per speaker: jitter buffer, G.711/Opus decode, resampling.
//! - [`speech`]: VAD, streaming Whisper transcription and emotion per utterance.
//! - [`chat`]: the widget socket `/v1/chat`, the bot that answers while no human holds a chat.
//! - [`session`]: the registry of live sessions, one owner task per session, its pure core,
//!   events and the live card.
//! - [`rules`]: alert rules, SLA clocks and automations, evaluated per event.
//! - [`supervise`]: the supervisor socket `/v1/supervise`: live cards, watch, take over.
//! - [`finalize`]: once per ended session: placement names, analysis, search text, reports,
//!   webhooks — in one transaction, recovered at start if a crash interrupted it.
//! - [`analysis`]: post-call analysis of a finished session: scores, checklist, tags, outcome.
//! - [`webhooks`]: one signed POST per finished call or chat to each of the tenant's endpoints,
//!   from a database outbox, retried for at least a day, with a delivery log.
//! - [`org`]: departments → desks → agents, users' data scopes and feature permissions.
//! - [`store`]: finished and live sessions in SQLite (default) or PostgreSQL.
//! - [`api`]: REST routes, bearer-token auth, health, OpenAPI.
//! - [`metrics`]: Prometheus metric names and the `/metrics` renderer.
//! - [`server`]: wires the stages together, serves HTTP, shuts down gracefully.
//! - [`ws`]: close codes and JSON frames shared by both sockets.
//! - [`privacy`]: PII redaction, applied to every message and transcript line before it is kept.
//! - [`config`], [`clock`], [`error`]: settings, the one clock, problem responses.

pub mod analysis;
pub mod api;
pub mod chat;
pub mod clock;
pub mod config;
pub mod error;
pub mod finalize;
pub mod ingest;
pub mod media;
pub mod metrics;
pub mod org;
pub mod privacy;
pub mod rules;
pub mod server;
pub mod session;
pub mod speech;
pub mod store;
pub mod supervise;
pub mod webhooks;
pub mod ws;
