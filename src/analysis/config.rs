//! The analysis settings as people write them: `config/analysis.toml` embedded as the default,
//! JSON per tenant through REST. Plain serde types with `deny_unknown_fields`, so a misspelt key
//! is an error rather than a setting that silently does nothing; [`AnalysisConfig::validate`]
//! then checks the values. Both kinds of error name the field (`checklist[2].within.to_secs`).

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::rules::{FieldError, Party};
use crate::session::EndReason;

/// Everything one tenant's post-call analysis is configured with.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalysisConfig {
    /// A shorter conversation (seconds from start to end) is not analysed; 0 analyses all.
    #[serde(default)]
    pub min_duration_secs: u32,
    #[serde(default)]
    pub scorers: Scorers,
    /// Things that should happen in every conversation, each found by its phrases.
    #[serde(default)]
    pub checklist: Vec<ChecklistItem>,
    /// Every tag whose rule matches is given.
    #[serde(default)]
    pub tags: Vec<TagRule>,
    /// In order; the first rule that matches names the category.
    #[serde(default)]
    pub category: Vec<CategoryRule>,
    /// In order; the first rule that matches names the outcome.
    #[serde(default)]
    pub outcome: Vec<OutcomeRule>,
}

/// The scorers; each can be switched off.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Scorers {
    #[serde(default)]
    pub customer_sentiment: SentimentScorer,
    #[serde(default)]
    pub talk_ratio: TalkRatioScorer,
    #[serde(default)]
    pub silence: SilenceScorer,
    #[serde(default)]
    pub over_talk: OverTalkScorer,
    #[serde(default)]
    pub response_speed: ResponseSpeedScorer,
}

/// The customer's sentiment: its average over the conversation, moved by how it changed from
/// the first third of their lines to the last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SentimentScorer {
    pub enabled: bool,
    /// An average at or below this (−1 … 1) scores 1.
    pub worst_level: f64,
    /// An average at or above this scores 10.
    pub best_level: f64,
    /// Points added per 1.0 of change from the first third to the last (taken off when it fell).
    pub trend_points: f64,
}

impl Default for SentimentScorer {
    fn default() -> Self {
        SentimentScorer { enabled: true, worst_level: -0.5, best_level: 0.5, trend_points: 5.0 }
    }
}

/// Calls: the agent's share of the time anyone speaks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TalkRatioScorer {
    pub enabled: bool,
    /// Shares from `best_from_pct` to `best_to_pct` score 10 …
    pub best_from_pct: f64,
    pub best_to_pct: f64,
    /// … and at or below `worst_below_pct`, or at or above `worst_above_pct`, 1.
    pub worst_below_pct: f64,
    pub worst_above_pct: f64,
}

impl Default for TalkRatioScorer {
    fn default() -> Self {
        TalkRatioScorer {
            enabled: true,
            best_from_pct: 40.0,
            best_to_pct: 60.0,
            worst_below_pct: 10.0,
            worst_above_pct: 90.0,
        }
    }
}

/// Calls: dead air, as a share of the call and as its longest stretch; the worse decides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SilenceScorer {
    pub enabled: bool,
    pub best_share_pct: f64,
    pub worst_share_pct: f64,
    pub best_gap_secs: f64,
    pub worst_gap_secs: f64,
}

impl Default for SilenceScorer {
    fn default() -> Self {
        SilenceScorer {
            enabled: true,
            best_share_pct: 10.0,
            worst_share_pct: 40.0,
            best_gap_secs: 5.0,
            worst_gap_secs: 30.0,
        }
    }
}

/// Calls: the time both speak at once, as a share of the call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OverTalkScorer {
    pub enabled: bool,
    pub best_pct: f64,
    pub worst_pct: f64,
}

impl Default for OverTalkScorer {
    fn default() -> Self {
        OverTalkScorer { enabled: true, best_pct: 2.0, worst_pct: 10.0 }
    }
}

/// How long the customer waits for an answer, on average: in chats from their (first
/// unanswered) message to the next agent or bot message, on calls from the end of their speech
/// to the agent's next start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ResponseSpeedScorer {
    pub enabled: bool,
    pub chat_best_secs: f64,
    pub chat_worst_secs: f64,
    pub call_best_secs: f64,
    pub call_worst_secs: f64,
}

impl Default for ResponseSpeedScorer {
    fn default() -> Self {
        ResponseSpeedScorer {
            enabled: true,
            chat_best_secs: 30.0,
            chat_worst_secs: 300.0,
            call_best_secs: 1.0,
            call_worst_secs: 5.0,
        }
    }
}

/// One checklist item: done when `speaker` says one of `phrases` inside the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChecklistItem {
    /// Stable identifier (results and outcome rules name it); unique.
    pub id: String,
    pub label: String,
    #[serde(default)]
    pub speaker: Party,
    pub phrases: Vec<String>,
    /// The whole conversation when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<Window>,
}

/// A stretch of the conversation: `from_secs` … `to_secs` after the start, or the last
/// `last_secs` before the end. A line counts when any part of it lies inside.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Window {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_secs: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_secs: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_secs: Option<f64>,
}

/// Gives `tag` when `speaker` says one of `phrases`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagRule {
    pub tag: String,
    #[serde(default)]
    pub speaker: Party,
    pub phrases: Vec<String>,
}

/// Names the conversation's category when `speaker` says one of `phrases`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryRule {
    pub category: String,
    #[serde(default)]
    pub speaker: Party,
    pub phrases: Vec<String>,
}

/// Names the conversation's outcome when every condition given holds; a rule without any
/// condition always matches (a fallback, so it must come last).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutcomeRule {
    pub outcome: String,
    /// `speaker` said one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phrases: Vec<String>,
    #[serde(default)]
    pub speaker: Party,
    /// The conversation ended for one of these reasons.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub end_reason: Vec<EndReason>,
    /// These checklist items (ids) are done.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checklist_done: Vec<String>,
    /// The customer's sentiment over the last third of their lines averaged at least this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_sentiment_min: Option<f64>,
}

impl OutcomeRule {
    fn has_condition(&self) -> bool {
        !self.phrases.is_empty()
            || !self.end_reason.is_empty()
            || !self.checklist_done.is_empty()
            || self.customer_sentiment_min.is_some()
    }
}

impl AnalysisConfig {
    /// Parses and validates TOML; an error names the field (`checklist[2].phrases`) and, for a
    /// syntax error, the line.
    pub fn from_toml(text: &str) -> Result<AnalysisConfig, Vec<FieldError>> {
        let config: AnalysisConfig = FieldError::from_toml(text).map_err(|e| vec![e])?;
        config.validate().map(|()| config)
    }

    /// Parses and validates JSON (the REST body); an error names the field.
    pub fn from_json(text: &str) -> Result<AnalysisConfig, Vec<FieldError>> {
        let config: AnalysisConfig = FieldError::from_json(text).map_err(|e| vec![e])?;
        config.validate().map(|()| config)
    }

    /// Every value that makes no sense, each naming its field.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        self.scorers.check(&mut errors);
        let mut ids = HashSet::new();
        for (i, item) in self.checklist.iter().enumerate() {
            let at = format!("checklist[{i}]");
            named(&mut errors, &format!("{at}.id"), &item.id);
            if !item.id.trim().is_empty() && !ids.insert(item.id.as_str()) {
                errors.push(FieldError::new(format!("{at}.id"), format!("{:?} is used by an earlier item", item.id)));
            }
            named(&mut errors, &format!("{at}.label"), &item.label);
            phrases(&mut errors, &at, &item.phrases, true);
            if let Some(window) = &item.within {
                window.check(&mut errors, &format!("{at}.within"));
            }
        }
        for (i, rule) in self.tags.iter().enumerate() {
            named(&mut errors, &format!("tags[{i}].tag"), &rule.tag);
            phrases(&mut errors, &format!("tags[{i}]"), &rule.phrases, true);
        }
        for (i, rule) in self.category.iter().enumerate() {
            named(&mut errors, &format!("category[{i}].category"), &rule.category);
            phrases(&mut errors, &format!("category[{i}]"), &rule.phrases, true);
        }
        for (i, rule) in self.outcome.iter().enumerate() {
            let at = format!("outcome[{i}]");
            named(&mut errors, &format!("{at}.outcome"), &rule.outcome);
            phrases(&mut errors, &at, &rule.phrases, false);
            for (j, id) in rule.checklist_done.iter().enumerate() {
                if !ids.contains(id.as_str()) {
                    errors.push(FieldError::new(
                        format!("{at}.checklist_done[{j}]"),
                        format!("no checklist item {id:?}"),
                    ));
                }
            }
            if let Some(min) = rule.customer_sentiment_min {
                within(&mut errors, &format!("{at}.customer_sentiment_min"), min, -1.0, 1.0);
            }
            if !rule.has_condition() && i + 1 < self.outcome.len() {
                errors.push(FieldError::new(at, "has no condition, so the rules after it would never match"));
            }
        }
        if let Err(message) = super::classify::Compiled::new(self) {
            errors.push(FieldError::new("", message));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

impl Scorers {
    fn check(&self, errors: &mut Vec<FieldError>) {
        let s = &self.customer_sentiment;
        let at = "scorers.customer_sentiment";
        within(errors, &format!("{at}.worst_level"), s.worst_level, -1.0, 1.0);
        within(errors, &format!("{at}.best_level"), s.best_level, -1.0, 1.0);
        below(errors, at, ("worst_level", s.worst_level), ("best_level", s.best_level));
        within(errors, &format!("{at}.trend_points"), s.trend_points, 0.0, 20.0);

        let t = &self.talk_ratio;
        let at = "scorers.talk_ratio";
        for (name, value) in [
            ("worst_below_pct", t.worst_below_pct),
            ("best_from_pct", t.best_from_pct),
            ("best_to_pct", t.best_to_pct),
            ("worst_above_pct", t.worst_above_pct),
        ] {
            within(errors, &format!("{at}.{name}"), value, 0.0, 100.0);
        }
        below(errors, at, ("worst_below_pct", t.worst_below_pct), ("best_from_pct", t.best_from_pct));
        if t.best_to_pct < t.best_from_pct {
            errors.push(FieldError::new(
                format!("{at}.best_to_pct"),
                format!("must not be below best_from_pct ({})", t.best_from_pct),
            ));
        }
        below(errors, at, ("best_to_pct", t.best_to_pct), ("worst_above_pct", t.worst_above_pct));

        let s = &self.silence;
        let at = "scorers.silence";
        falloff(errors, at, ("best_share_pct", s.best_share_pct), ("worst_share_pct", s.worst_share_pct), 100.0);
        falloff(errors, at, ("best_gap_secs", s.best_gap_secs), ("worst_gap_secs", s.worst_gap_secs), f64::MAX);

        let o = &self.over_talk;
        falloff(errors, "scorers.over_talk", ("best_pct", o.best_pct), ("worst_pct", o.worst_pct), 100.0);

        let r = &self.response_speed;
        let at = "scorers.response_speed";
        falloff(errors, at, ("chat_best_secs", r.chat_best_secs), ("chat_worst_secs", r.chat_worst_secs), f64::MAX);
        falloff(errors, at, ("call_best_secs", r.call_best_secs), ("call_worst_secs", r.call_worst_secs), f64::MAX);
    }
}

impl Window {
    fn check(&self, errors: &mut Vec<FieldError>, at: &str) {
        for (name, value) in [("from_secs", self.from_secs), ("to_secs", self.to_secs), ("last_secs", self.last_secs)] {
            if let Some(value) = value {
                within(errors, &format!("{at}.{name}"), value, 0.0, f64::MAX);
            }
        }
        match (self.from_secs, self.to_secs, self.last_secs) {
            (None, None, Some(0.0)) => {
                errors.push(FieldError::new(format!("{at}.last_secs"), "must be more than 0"));
            }
            (None, None, Some(_)) => {}
            (_, _, Some(_)) => errors.push(FieldError::new(
                format!("{at}.last_secs"),
                "counts from the end, so it cannot be combined with from_secs or to_secs",
            )),
            (from, Some(to), None) if to <= from.unwrap_or(0.0) => errors.push(FieldError::new(
                format!("{at}.to_secs"),
                format!("must be greater than from_secs ({})", from.unwrap_or(0.0)),
            )),
            (_, Some(_), None) => {}
            (_, None, None) => errors.push(FieldError::new(format!("{at}.to_secs"), "missing (or give last_secs)")),
        }
    }

    /// The window in milliseconds from the start of a conversation lasting `duration_ms`.
    pub(super) fn span_ms(&self, duration_ms: u64) -> (u64, u64) {
        let ms = |secs: f64| (secs * 1000.0).round() as u64;
        match self.last_secs {
            Some(last) => (duration_ms.saturating_sub(ms(last)), duration_ms),
            None => (self.from_secs.map_or(0, ms), self.to_secs.map_or(u64::MAX, ms)),
        }
    }
}

/// Parses a JSON body; an error names the field it is about.
fn named(errors: &mut Vec<FieldError>, at: &str, value: &str) {
    if value.trim().is_empty() {
        errors.push(FieldError::new(at, "must not be empty"));
    }
}

/// Each phrase must have a word left once punctuation is ignored; `required`: at least one.
fn phrases(errors: &mut Vec<FieldError>, at: &str, list: &[String], required: bool) {
    if required && list.is_empty() {
        errors.push(FieldError::new(format!("{at}.phrases"), "needs at least one phrase"));
    }
    for (i, phrase) in list.iter().enumerate() {
        if super::phrase::normalize(phrase).trim().is_empty() {
            errors.push(FieldError::new(format!("{at}.phrases[{i}]"), format!("{phrase:?} has no words")));
        }
    }
}

fn within(errors: &mut Vec<FieldError>, at: &str, value: f64, min: f64, max: f64) {
    if !(value.is_finite() && (min..=max).contains(&value)) {
        let range = if max == f64::MAX { format!("at least {min}") } else { format!("from {min} to {max}") };
        errors.push(FieldError::new(at, format!("{value} is not {range}")));
    }
}

/// `low` must be below `high` (a band of zero width would make the score jump).
fn below(errors: &mut Vec<FieldError>, at: &str, low: (&str, f64), high: (&str, f64)) {
    if low.1 >= high.1 {
        errors.push(FieldError::new(format!("{at}.{}", low.0), format!("must be below {} ({})", high.0, high.1)));
    }
}

/// A lower-is-better band: both in `0 ..= max`, best below worst.
fn falloff(errors: &mut Vec<FieldError>, at: &str, best: (&str, f64), worst: (&str, f64), max: f64) {
    within(errors, &format!("{at}.{}", best.0), best.1, 0.0, max);
    within(errors, &format!("{at}.{}", worst.0), worst.1, 0.0, max);
    below(errors, at, best, worst);
}
