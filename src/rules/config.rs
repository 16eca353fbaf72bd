//! The rule set as people write it: `config/rules.toml` at start, JSON through REST. These are
//! plain serde types with `deny_unknown_fields`, so a misspelt key is an error and not a rule
//! that silently never fires. Checking the values (and compiling them for the engine) is the
//! private `compile` module's job; parse errors and value errors both come back as
//! [`FieldError`]s naming the field.

use serde::{Deserialize, Serialize};

use crate::session::Channel;

/// Everything the rules engine is configured with.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    #[serde(default)]
    pub alerts: Vec<AlertRule>,
    #[serde(default)]
    pub sla_policies: Vec<SlaPolicy>,
    /// The policy a new session gets, per channel, before any automation applies one.
    #[serde(default)]
    pub default_sla: DefaultSla,
    /// Run in this order for each event.
    #[serde(default)]
    pub automations: Vec<Automation>,
}

impl RulesConfig {
    /// Parses TOML; an error names the field it is about (`alerts[2].condition`) and its line.
    pub fn from_toml(text: &str) -> Result<RulesConfig, FieldError> {
        FieldError::from_toml(text)
    }

    /// Every problem of this configuration, as [`super::RulesEngine::new`] would refuse it.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        super::compile::compile(self).map(drop)
    }

    /// Parses JSON (the REST body); an error names the field it is about.
    pub fn from_json(text: &str) -> Result<RulesConfig, FieldError> {
        FieldError::from_json(text)
    }
}

/// What is wrong with one field of a [`RulesConfig`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema, thiserror::Error)]
#[error("{path}: {message}")]
pub struct FieldError {
    /// The field, as `sla_policies[0].business_hours.weekly.mon[1]`; empty for the whole text.
    pub path: String,
    pub message: String,
}

impl FieldError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError { path: path.into(), message: message.into() }
    }

    fn at_path(path: &serde_path_to_error::Path, message: &str) -> FieldError {
        // serde_path_to_error writes the root as ".".
        let path = path.to_string();
        FieldError::new(if path == "." { String::new() } else { path }, message)
    }

    /// Deserializes settings from TOML; an error names the field and the line.
    pub fn from_toml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, FieldError> {
        let located = |e: &toml::de::Error| match e.span() {
            Some(span) => format!("{} (line {})", e.message(), text[..span.start].matches('\n').count() + 1),
            None => e.message().to_string(),
        };
        let de = toml::Deserializer::parse(text).map_err(|e| FieldError::new("", located(&e)))?;
        serde_path_to_error::deserialize(de).map_err(|e| FieldError::at_path(e.path(), &located(e.inner())))
    }

    /// Deserializes settings from JSON (a REST body); an error names the field.
    pub fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, FieldError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| FieldError::at_path(e.path(), &e.inner().to_string()))
    }
}

impl From<FieldError> for crate::error::InvalidParam {
    fn from(error: FieldError) -> Self {
        crate::error::InvalidParam { name: error.path, reason: error.message }
    }
}

/// An alert rule: when its condition holds, supervisors get an alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    /// Stable identifier (REST addresses the rule by it; alerts name it).
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub severity: Severity,
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// Each alert of this rule is also POSTed here (an [`super::Action::Webhook`] output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    pub condition: AlertCondition,
}

fn enabled() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    #[default]
    Warning,
    Critical,
}

/// When an alert rule fires. Each kind fires once per episode (see the module documentation of
/// [`super`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AlertCondition {
    /// A score (`customer_sentiment`, `customer_satisfaction`, `action_required`,
    /// `agent_rating`, or any other name a scorer reports) crosses `value`.
    Score {
        score: String,
        op: ScoreOp,
        /// Required unless `op` is `off`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<f32>,
    },
    /// One of `phrases` appears in a chat message or a final utterance, as whole words and
    /// ignoring case.
    Phrase {
        phrases: Vec<String>,
        #[serde(default)]
        speaker: Party,
        /// Only on this channel; both when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<Channel>,
    },
    /// `speaker` shows `emotion` in `consecutive` final utterances in a row.
    Emotion {
        emotion: String,
        consecutive: u32,
        #[serde(default = "customer")]
        speaker: Party,
    },
    /// Nobody spoke on a live call (not on hold) for `seconds`.
    Silence { seconds: u32 },
    /// A call has been on hold for `seconds`.
    Hold { seconds: u32 },
    /// An SLA clock reached `status` (`warning` or `breached`), of `policy` and `metric` when
    /// given, of any otherwise.
    Sla {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        policy: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metric: Option<SlaMetric>,
        #[serde(default = "breached")]
        status: SlaStatus,
    },
}

fn customer() -> Party {
    Party::Customer
}

fn breached() -> SlaStatus {
    SlaStatus::Breached
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScoreOp {
    LessThan,
    GreaterThan,
    /// The rule is kept but never fires.
    Off,
}

/// A side of the conversation: the customer (the chat visitor or the caller), the human agent,
/// or the bot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Party {
    Customer,
    Agent,
    Bot,
    #[default]
    Any,
}

impl Party {
    /// Whether a rule for `self` covers text said by `who`.
    pub fn covers(self, who: Party) -> bool {
        self == Party::Any || self == who
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Party::Customer => "customer",
            Party::Agent => "agent",
            Party::Bot => "bot",
            Party::Any => "anyone",
        }
    }
}

/// Which SLA clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SlaMetric {
    /// From the customer's first message until the first reply.
    FirstResponse,
    /// From a customer message that follows a reply until the next reply.
    NextResponse,
    /// From the start of the session until it is resolved or ends.
    Resolution,
}

impl SlaMetric {
    pub fn as_str(self) -> &'static str {
        match self {
            SlaMetric::FirstResponse => "first response",
            SlaMetric::NextResponse => "next response",
            SlaMetric::Resolution => "resolution",
        }
    }
}

/// What happened to an SLA clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SlaStatus {
    /// The clock passed the policy's warning fraction of its threshold.
    Warning,
    /// The clock reached its threshold: the metric is missed.
    Breached,
    /// Answered (or resolved) before the threshold.
    Hit,
    /// Stopped without a verdict: the session ended unanswered, or the policy went away.
    Cancelled,
}

/// An SLA policy: thresholds in seconds of business time (wall time without a calendar).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlaPolicy {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_response_secs: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_response_secs: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution_secs: Option<u32>,
    /// A warning when this fraction of a threshold has passed, in (0, 1).
    #[serde(default = "warning_fraction")]
    pub warning_fraction: f64,
    /// Whether a bot's message answers the customer (otherwise only a human agent's does).
    #[serde(default)]
    pub bot_replies_count: bool,
    /// Clocks run only inside these hours; always when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_hours: Option<BusinessHours>,
}

fn warning_fraction() -> f64 {
    0.8
}

/// Opening hours in a time zone, with closed days.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BusinessHours {
    /// An IANA time zone name, as `Europe/Berlin`.
    pub time_zone: String,
    pub weekly: WeeklyHours,
    /// Closed all day, as `2026-12-25` (in the calendar's time zone).
    #[serde(default)]
    pub holidays: Vec<String>,
}

/// Opening hours per weekday as `HH:MM-HH:MM` ranges (`24:00` ends at midnight), in order and
/// not overlapping; a day without ranges is closed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WeeklyHours {
    #[serde(default)]
    pub mon: Vec<String>,
    #[serde(default)]
    pub tue: Vec<String>,
    #[serde(default)]
    pub wed: Vec<String>,
    #[serde(default)]
    pub thu: Vec<String>,
    #[serde(default)]
    pub fri: Vec<String>,
    #[serde(default)]
    pub sat: Vec<String>,
    #[serde(default)]
    pub sun: Vec<String>,
}

impl WeeklyHours {
    /// The days from Monday, with their field names.
    pub fn days(&self) -> [(&'static str, &[String]); 7] {
        [
            ("mon", &self.mon),
            ("tue", &self.tue),
            ("wed", &self.wed),
            ("thu", &self.thu),
            ("fri", &self.fri),
            ("sat", &self.sat),
            ("sun", &self.sun),
        ]
    }
}

/// The SLA policy id a new session of each channel gets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DefaultSla {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<String>,
}

/// When `event` happens and `conditions` hold, do `actions` in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Automation {
    pub id: String,
    pub name: String,
    #[serde(default = "enabled")]
    pub enabled: bool,
    pub event: Trigger,
    /// Always true when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Condition>,
    pub actions: Vec<ActionConfig>,
}

/// The event an automation runs on, one per [`super::EventKind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    SessionCreated,
    SessionUpdated,
    SessionEnded,
    MessageCreated,
    Utterance,
    ScoreUpdated,
    TakeOver,
    Leave,
    TagAdded,
    TagRemoved,
    HoldStarted,
    HoldEnded,
}

impl Trigger {
    /// How many triggers there are (the last one's index plus one).
    pub const COUNT: usize = Trigger::HoldEnded as usize + 1;

    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::SessionCreated => "session_created",
            Trigger::SessionUpdated => "session_updated",
            Trigger::SessionEnded => "session_ended",
            Trigger::MessageCreated => "message_created",
            Trigger::Utterance => "utterance",
            Trigger::ScoreUpdated => "score_updated",
            Trigger::TakeOver => "take_over",
            Trigger::Leave => "leave",
            Trigger::TagAdded => "tag_added",
            Trigger::TagRemoved => "tag_removed",
            Trigger::HoldStarted => "hold_started",
            Trigger::HoldEnded => "hold_ended",
        }
    }
}

/// A tree of tests on the session and the event. Text and names compare ignoring case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
// The tree refers to itself: the OpenAPI schema names it instead of inlining it forever.
#[schema(no_recursion)]
pub enum Condition {
    /// Every one holds.
    All(Vec<Condition>),
    /// At least one holds.
    Any(Vec<Condition>),
    Not(Box<Condition>),
    Channel(Channel),
    /// The contact's country, as an ISO 3166 code.
    Country(String),
    /// The event's text (a message or an utterance) contains this.
    TextContains(String),
    /// Who wrote or said the event's text.
    Author(Party),
    /// The session carries this tag.
    Tag(String),
    Priority(Priority),
    Agent(String),
    Team(String),
    Inbox(String),
    /// The customer's latest sentiment (−1 to 1) is below this.
    SentimentBelow(f32),
    /// The customer's latest sentiment (−1 to 1) is above this.
    SentimentAbove(f32),
    /// A custom attribute of the session equals `equals`.
    Attribute {
        name: String,
        equals: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low,
    Medium,
    High,
    Urgent,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }
}

/// An action as configured; the engine emits it as an [`super::Action`], with the message
/// rendered and the webhook's payload built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ActionConfig {
    AssignAgent(String),
    AssignTeam(String),
    AddTag(String),
    RemoveTag(String),
    SetPriority(Priority),
    /// The id of an SLA policy.
    ApplySlaPolicy(String),
    /// A message template such as `Hi {{contact.name || 'there'}}`; the variables are listed in
    /// the module documentation of [`super`].
    SendMessage(String),
    MuteBot,
    Resolve,
    /// An `http://` or `https://` URL.
    Webhook(String),
}
