//! Frames of the supervisor socket. See docs/PROTOCOLS.md for their meaning and examples.

use serde::{Deserialize, Serialize};

use crate::session::{Card, EndReason, Entry, Partial, SessionId};

/// A supervisor command, with the optional `ref` its reply echoes.
#[derive(Debug, Deserialize)]
pub struct SupervisorFrame {
    #[serde(rename = "ref", default)]
    pub reference: Option<serde_json::Value>,
    #[serde(flatten)]
    pub action: Action,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    Watch { session_id: SessionId },
    Unwatch { session_id: SessionId },
    TakeOver { session_id: SessionId, agent_name: String },
    Send { session_id: SessionId, text: String },
    Leave { session_id: SessionId },
    Transfer { session_id: SessionId, to_agent: Option<String>, to_group: Option<String> },
}

impl Action {
    pub fn session_id(&self) -> SessionId {
        match self {
            Action::Watch { session_id }
            | Action::Unwatch { session_id }
            | Action::TakeOver { session_id, .. }
            | Action::Send { session_id, .. }
            | Action::Leave { session_id }
            | Action::Transfer { session_id, .. } => *session_id,
        }
    }
}

// Frames are built, serialized and dropped at once; their size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Out<'a> {
    Snapshot {
        cards: Vec<Card>,
    },
    Card {
        card: Card,
    },
    Ended {
        session_id: SessionId,
        reason: EndReason,
    },
    History {
        session_id: SessionId,
        messages: &'a [Entry],
    },
    Message {
        session_id: SessionId,
        #[serde(flatten)]
        entry: &'a Entry,
    },
    /// A watched call's utterance so far.
    Partial {
        session_id: SessionId,
        #[serde(flatten)]
        partial: &'a Partial,
    },
    /// An alert raised (or acknowledged) in the supervisor's tenant.
    Alert {
        alert: &'a crate::store::AlertRecord,
    },
    Ok {
        #[serde(rename = "ref")]
        reference: &'a Option<serde_json::Value>,
    },
    Error {
        #[serde(rename = "ref")]
        reference: &'a Option<serde_json::Value>,
        code: &'a str,
        message: String,
    },
}
