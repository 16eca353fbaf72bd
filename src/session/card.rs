//! The live card: what a supervisor sees of one session at a glance.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Channel, EndReason, Holder, SessionId};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Card {
    #[schema(value_type = String)]
    pub session_id: SessionId,
    pub tenant: String,
    pub site: String,
    pub channel: Channel,
    /// `live` or `ended`.
    pub state: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub started_at: OffsetDateTime,
    /// Seconds from start to now (live) or to the end (ended).
    pub duration_secs: i64,
    pub message_count: u64,
    /// The latest message, shortened to a preview.
    pub last_message: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_message_at: Option<OffsetDateTime>,
    /// ISO 3166 alpha-2 code, or null when unknown.
    pub country: Option<String>,
    /// mobile, tablet, desktop or unknown.
    pub device: String,
    pub holder: Holder,
    pub visitor_online: bool,
    /// Live sentiment, filled by the speech and analysis stages.
    pub sentiment: Option<f32>,
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ended_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<EndReason>,
    /// A call's media streams, one per speaker (empty for chats).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub streams: Vec<StreamCard>,
    /// Labels set by automations (and, later, by agents).
    #[serde(default)]
    pub tags: Vec<String>,
    /// `low`, `medium`, `high` or `urgent`, once set.
    #[serde(default)]
    pub priority: Option<String>,
    /// The agent and team the session is assigned to (not necessarily who holds it now).
    #[serde(default)]
    pub assignee: Option<String>,
    #[serde(default)]
    pub team: Option<String>,
    /// An automation muted the bot: visitor messages wait for a human.
    #[serde(default)]
    pub bot_muted: bool,
    /// A call put on hold (by a SIP re-INVITE).
    #[serde(default)]
    pub on_hold: bool,
    /// The SLA clock, once a policy applies.
    #[serde(default)]
    pub sla: Option<SlaClock>,
    /// The agent, desk and department the session belongs to, once known (a call by the
    /// agent's extension, a chat by the agent who takes it over); data scopes filter by it.
    #[serde(default)]
    pub placement: crate::org::Placement,
}

/// Where a session stands against its SLA policy, for the card's live clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SlaClock {
    pub policy: String,
    /// `active`, `hit`, `missed` or `active_with_misses`.
    pub state: String,
    /// The next deadline that runs, if any.
    pub due: Option<SlaDue>,
}

/// One running SLA deadline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SlaDue {
    /// `first_response`, `next_response` or `resolution`.
    pub metric: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
}

/// Live media figures of one speaker's stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StreamCard {
    /// `customer` or `agent`.
    pub speaker: String,
    pub codec: String,
    pub packets: u64,
    pub lost: u64,
    pub late: u64,
    pub duplicates: u64,
    /// Packets from a source other than the latched one, dropped.
    pub foreign: u64,
    /// RFC 3550 interarrival jitter.
    pub jitter_ms: f64,
}

/// Longest last-message preview on a card, in characters.
pub const PREVIEW_CHARS: usize = 80;

/// `text` cut to [`PREVIEW_CHARS`] characters, with an ellipsis when cut.
pub fn preview(text: &str) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(PREVIEW_CHARS).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

impl Card {
    /// The card of a session starting at `started_at`: live, held by the bot, nothing said yet,
    /// origin unknown.
    pub fn new(session_id: SessionId, tenant: &str, site: &str, channel: Channel, started_at: OffsetDateTime) -> Card {
        Card {
            session_id,
            tenant: tenant.to_string(),
            site: site.to_string(),
            channel,
            state: "live".into(),
            started_at,
            duration_secs: 0,
            message_count: 0,
            last_message: None,
            last_message_at: None,
            country: None,
            device: "unknown".into(),
            holder: Holder::Bot,
            visitor_online: false,
            sentiment: None,
            ended_at: None,
            end_reason: None,
            streams: Vec::new(),
            tags: Vec::new(),
            priority: None,
            assignee: None,
            team: None,
            bot_muted: false,
            on_hold: false,
            sla: None,
            placement: Default::default(),
        }
    }

    /// The card with its duration computed at `now` (live) or at its end.
    pub fn at(&self, now: OffsetDateTime) -> Card {
        let until = self.ended_at.unwrap_or(now);
        Card { duration_secs: (until - self.started_at).whole_seconds().max(0), ..self.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preview_cuts_on_characters_not_bytes() {
        assert_eq!(preview("short"), "short");
        let hebrew = "ש".repeat(100);
        let p = preview(&hebrew);
        assert_eq!(p.chars().count(), PREVIEW_CHARS + 1);
        assert!(p.ends_with('…'));
    }
}
