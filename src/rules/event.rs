//! What goes into the rules engine (session events, as the session stage knows them) and what
//! comes out (alerts, SLA changes and actions). Kept apart from the engine so the shell, storage
//! and REST can name these types without the engine's internals.

use std::collections::BTreeMap;

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use super::config::{Priority, Severity, SlaMetric, SlaStatus, Trigger};
use crate::session::{Author, Channel};

/// Something that happened in a live session.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub session: Uuid,
    pub tenant: String,
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// The first event of a session; events of a session the engine does not know are ignored.
    SessionCreated(SessionFacts),
    /// The session's facts changed (all of them, as they are now).
    SessionUpdated(SessionFacts),
    /// The last event of a session: its clocks stop and its state is dropped.
    SessionEnded,
    /// A chat message. `Author::System` notices are ignored.
    Message {
        author: Author,
        text: String,
    },
    /// A final utterance of a call, said by `Author::Customer` or `Author::Agent`.
    Utterance {
        speaker: Author,
        text: String,
        /// `neutral`, `happy`, `angry`, `sad`, … as the emotion model names it.
        emotion: Option<String>,
        /// −1 (negative) to 1 (positive).
        sentiment: Option<f32>,
        start_ms: u64,
        end_ms: u64,
    },
    /// A live score changed. [`CUSTOMER_SENTIMENT`] is also the session's sentiment.
    ScoreUpdated {
        score: String,
        value: f32,
    },
    /// A human agent took the session over.
    TakeOver {
        agent: String,
    },
    /// The holding agent left.
    Leave,
    TagAdded(String),
    TagRemoved(String),
    /// The call was put on hold.
    HoldStarted,
    HoldEnded,
}

/// The score whose value is the customer's live sentiment (−1 to 1), as utterances carry it.
pub const CUSTOMER_SENTIMENT: &str = "customer_sentiment";

impl EventKind {
    /// The automation trigger this event is.
    pub fn trigger(&self) -> Trigger {
        match self {
            EventKind::SessionCreated(_) => Trigger::SessionCreated,
            EventKind::SessionUpdated(_) => Trigger::SessionUpdated,
            EventKind::SessionEnded => Trigger::SessionEnded,
            EventKind::Message { .. } => Trigger::MessageCreated,
            EventKind::Utterance { .. } => Trigger::Utterance,
            EventKind::ScoreUpdated { .. } => Trigger::ScoreUpdated,
            EventKind::TakeOver { .. } => Trigger::TakeOver,
            EventKind::Leave => Trigger::Leave,
            EventKind::TagAdded(_) => Trigger::TagAdded,
            EventKind::TagRemoved(_) => Trigger::TagRemoved,
            EventKind::HoldStarted => Trigger::HoldStarted,
            EventKind::HoldEnded => Trigger::HoldEnded,
        }
    }
}

/// What rules may test about a session (and messages may name).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SessionFacts {
    pub channel: Channel,
    /// ISO 3166 code.
    pub country: Option<String>,
    pub contact_name: Option<String>,
    pub contact_email: Option<String>,
    /// The agent handling the session: set by a take-over, cleared when the agent leaves.
    pub agent: Option<String>,
    pub team: Option<String>,
    pub priority: Option<Priority>,
    pub tags: Vec<String>,
    pub attributes: BTreeMap<String, String>,
    /// The inbox (chat) or queue (call) the session came in through.
    pub inbox: Option<String>,
}

impl SessionFacts {
    /// Facts of a session of `channel` that nothing else is known about yet.
    pub fn new(channel: Channel) -> SessionFacts {
        SessionFacts {
            channel,
            country: None,
            contact_name: None,
            contact_email: None,
            agent: None,
            team: None,
            priority: None,
            tags: Vec::new(),
            attributes: BTreeMap::new(),
            inbox: None,
        }
    }

    /// Whether the session carries `tag` (ignoring case).
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| same(t, tag))
    }
}

/// Whether two names are the same ignoring case (Unicode lower case, without allocating).
pub(super) fn same(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    a.chars().flat_map(char::to_lowercase).eq(b.chars().flat_map(char::to_lowercase))
}

/// What the engine asks of the world. Drained with [`super::RulesEngine::poll_output`].
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Output {
    /// Tell the supervisors in scope, keep it, maybe send it on (a webhook action follows).
    Alert(Alert),
    SlaChanged(SlaChange),
    /// The session's SLA summary for its live card changed.
    SlaState(SlaCard),
    /// Do this to the session (the engine already counted its effects on the facts).
    Action(RuleAction),
}

/// Which rule or policy, by id and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RuleRef {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Alert {
    #[schema(value_type = String)]
    pub session: Uuid,
    pub tenant: String,
    pub rule: RuleRef,
    pub kind: AlertKind,
    pub severity: Severity,
    /// For people: `customer said "cancel my contract"`.
    pub message: String,
    /// The text that made it fire (the message or utterance), when there is one.
    pub evidence: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    Score,
    Phrase,
    Emotion,
    Silence,
    Hold,
    Sla,
}

/// An SLA clock of a session changed status.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SlaChange {
    #[schema(value_type = String)]
    pub session: Uuid,
    pub tenant: String,
    pub policy: RuleRef,
    pub metric: SlaMetric,
    pub status: SlaStatus,
    /// When the clock breaches (or breached).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub deadline: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
}

/// A session's SLA at a glance, for its live card.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SlaCard {
    #[schema(value_type = String)]
    pub session: Uuid,
    pub tenant: String,
    pub policy: RuleRef,
    pub state: SlaState,
    /// The live clock that breaches first, and when.
    pub next: Option<SlaMetric>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub deadline: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SlaState {
    /// Clocks running, none missed.
    Active,
    /// No clock running, none missed.
    Hit,
    /// No clock running, at least one missed.
    Missed,
    /// Clocks running, at least one missed.
    ActiveWithMisses,
}

/// An automation's action on a session.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RuleAction {
    #[schema(value_type = String)]
    pub session: Uuid,
    pub tenant: String,
    pub rule: RuleRef,
    pub action: Action,
}

/// What to do. The engine has already applied it to its own view of the session (tags,
/// priority, agent, team, SLA policy; a sent message counts as the bot's); the shell carries it
/// out and must not report its effects back as events, or rules would see them twice.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    AssignAgent {
        agent: String,
    },
    AssignTeam {
        team: String,
    },
    AddTag {
        tag: String,
    },
    RemoveTag {
        tag: String,
    },
    SetPriority {
        priority: Priority,
    },
    ApplySlaPolicy {
        policy: String,
    },
    /// Post this text into the session as the bot (already rendered).
    SendMessage {
        text: String,
    },
    /// Keep the bot from answering in this session.
    MuteBot,
    /// Mark the session resolved (its resolution clock has stopped).
    Resolve,
    /// POST `payload` as JSON to `url`.
    Webhook {
        url: String,
        #[schema(value_type = Object)]
        payload: serde_json::Value,
    },
}
