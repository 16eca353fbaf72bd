//! Post-call analysis: what a finished conversation is worth to a manager the day after.
//! Pure: a finished conversation (its log with the transcript lines) and the tenant's analysis
//! settings in; scores 1–10 with explanations, checklist results with their evidence, tags,
//! category and outcome out. The finalize stage runs it once per finished session and stores
//! the result with the session.

use serde::{Deserialize, Serialize};

use crate::session::{Channel, Entry};

/// A finished conversation as the analysis sees it.
pub struct Conversation<'a> {
    pub channel: Channel,
    pub started_at: time::OffsetDateTime,
    pub ended_at: time::OffsetDateTime,
    /// The session's log, oldest first: chat messages, or a call's transcript lines
    /// (`Entry::speech` set, `Author::Customer` / `Author::Agent`).
    pub entries: &'a [Entry],
}

/// The result of analysing one finished conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Analysis {
    pub scores: Vec<Score>,
    pub checklist: Vec<ChecklistResult>,
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

/// One score, 1 (worst) … 10 (best), with why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Score {
    /// Stable key, e.g. `customer_sentiment`, `talk_ratio`, `silence`, `response_speed`.
    pub label: String,
    pub score: u8,
    /// One sentence a manager can read, naming the measured figures.
    pub explanation: String,
}

/// One checklist item for this conversation: done or not, and the line that did it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChecklistResult {
    pub id: String,
    pub label: String,
    pub done: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
}

/// The log entry that satisfied a checklist item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Evidence {
    /// The entry's `seq` in the session log.
    pub seq: u64,
    /// `customer`, `agent` or `bot`.
    pub speaker: String,
    /// Milliseconds from the start of the conversation.
    pub start_ms: u64,
    pub text: String,
}
