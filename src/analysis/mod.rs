//! Post-call analysis: what a finished conversation is worth to a manager the day after.
//! Pure: a finished conversation (its log with the transcript lines) and the tenant's analysis
//! settings in; scores 1–10 with explanations, checklist results with their evidence, tags,
//! category and outcome out. The finalize stage runs it once per finished session and stores
//! the result with the session.
//!
//! - [`config`]: the settings (`config/analysis.toml`, JSON through REST), checked field by field.
//! - [`analyze`]: the pure analysis — the log's lines (`lines`), the scorers (`scorers`), the
//!   phrase rules (`classify` over one automaton, `phrase`).
//! - [`Settings`]: each tenant's settings in force, over the embedded default.
//!
//! The method of every scorer is in docs/ARCHITECTURE.md, "Post-call analysis".

mod classify;
pub mod config;
mod lines;
mod phrase;
mod scorers;
mod settings;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

use crate::session::{Channel, EndReason, Entry};

pub use config::AnalysisConfig;
pub use settings::{Settings, DEFAULT_ANALYSIS};

/// A finished conversation as the analysis sees it.
pub struct Conversation<'a> {
    pub channel: Channel,
    pub started_at: time::OffsetDateTime,
    pub ended_at: time::OffsetDateTime,
    /// The session's log, oldest first: chat messages, or a call's transcript lines
    /// (`Entry::speech` set, `Author::Customer` / `Author::Agent`).
    pub entries: &'a [Entry],
    /// Why it ended, for outcome rules that ask (`None`: such a rule does not match).
    pub end_reason: Option<EndReason>,
}

/// Why a conversation was not analysed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not analysed: {reason}")]
pub struct Skipped {
    /// For a person: "shorter than the 90 s minimum (42 s)".
    pub reason: String,
}

/// Analyses one finished conversation with a tenant's settings. Deterministic and pure: the
/// same conversation and settings give the same analysis.
pub fn analyze(config: &AnalysisConfig, conversation: &Conversation) -> Result<Analysis, Skipped> {
    let duration_ms = (conversation.ended_at - conversation.started_at).whole_milliseconds().max(0);
    let duration_ms = u64::try_from(duration_ms).unwrap_or(u64::MAX);
    if duration_ms < u64::from(config.min_duration_secs) * 1000 {
        let reason = format!("shorter than the {} s minimum ({} s)", config.min_duration_secs, duration_ms / 1000);
        return Err(Skipped { reason });
    }
    let lines = lines::lines(conversation);
    if lines.is_empty() {
        let what = match conversation.channel {
            Channel::Voice => "the call has no transcript",
            Channel::Chat => "the chat has no messages",
        };
        return Err(Skipped { reason: what.into() });
    }
    let compiled = classify::Compiled::new(config).map_err(|reason| Skipped { reason })?;
    let sentiment = scorers::customer_sentiment(&lines);
    let classifier = classify::Classifier::new(config, &compiled, &lines, duration_ms);
    let checklist = classifier.checklist();
    Ok(Analysis {
        scores: scorers::scores(&config.scorers, conversation.channel, duration_ms, &lines, sentiment.as_ref()),
        tags: classifier.tags(),
        category: classifier.category(),
        outcome: classifier.outcome(&checklist, conversation.end_reason, sentiment.as_ref()),
        checklist,
    })
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
