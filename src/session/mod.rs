//! Live sessions: one call or one chat each, the unit everything hangs on.
//!
//! - [`core`]: the pure state of one session (log, holder, deadlines) — no IO, time as input.
//! - [`actor`]: the owner task that drives a core and fans its outputs out.
//! - [`registry`]: every live session by id and resume token, and the per-tenant card feed.
//! - [`card`]: the live card supervisors see; [`origin`]: visitor country and device class.

pub mod actor;
pub mod card;
pub mod core;
pub mod origin;
pub mod registry;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use card::{Card, SlaClock, SlaDue, StreamCard};
pub use registry::Registry;

/// Sessions are named by UUIDs, rendered in their hyphenated text form.
pub type SessionId = uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Chat,
    Voice,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Chat => "chat",
            Channel::Voice => "voice",
        }
    }
}

/// Who wrote a log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum Author {
    Visitor,
    Bot,
    Agent {
        name: String,
    },
    System,
    /// The customer on a call (the agent on a call is `Agent`).
    Customer,
}

impl Author {
    pub fn role(&self) -> &'static str {
        match self {
            Author::Visitor => "visitor",
            Author::Bot => "bot",
            Author::Agent { .. } => "agent",
            Author::System => "system",
            Author::Customer => "customer",
        }
    }
}

/// Who answers the visitor right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Holder {
    Bot,
    Agent { name: String },
    Waiting { queue: String },
}

/// What a system entry announces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Notice {
    AgentJoined {
        agent: String,
    },
    AgentLeft {
        agent: String,
    },
    Transferred {
        to: String,
    },
    /// A caller pressed a key (DTMF).
    Dtmf {
        speaker: String,
        digit: char,
    },
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    VisitorLeft,
    Idle,
    Interrupted,
    /// A call's party hung up, or hark did (media timeout); the call record has the cause.
    Hangup,
    /// An automation resolved it.
    Resolved,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::VisitorLeft => "visitor_left",
            EndReason::Idle => "idle",
            EndReason::Interrupted => "interrupted",
            EndReason::Hangup => "hangup",
            EndReason::Resolved => "resolved",
        }
    }
}

/// What a call's final utterance adds to its log entry (the entry's text is what was said).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Speech {
    /// `customer` or `agent`.
    pub speaker: String,
    /// Milliseconds from the start of the call.
    pub start_ms: u64,
    pub end_ms: u64,
    #[serde(default)]
    pub words: Vec<crate::speech::asr::Word>,
    /// neutral, happy, angry, sad, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emotion: Option<String>,
    /// −1 (negative) … 1 (positive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentiment: Option<f32>,
}

/// The utterance so far, while someone speaks: later revisions and the final replace it. Sent
/// to watchers, never stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Partial {
    /// Numbers the utterances of one speaker; its final entry carries the same `start_ms`.
    pub utterance: u64,
    pub revision: u32,
    pub speaker: String,
    pub start_ms: u64,
    pub end_ms: u64,
    pub text: String,
}

/// One message of a session's log, numbered by the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Entry {
    pub seq: u64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    pub author: Author,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<Notice>,
    /// Set on a call's transcript lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speech: Option<Box<Speech>>,
}

/// A period during which one holder had the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Hold {
    pub holder: Holder,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub until: Option<OffsetDateTime>,
}
