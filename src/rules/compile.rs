//! From a [`RulesConfig`] to the engine's working form, checking every value on the way. All
//! problems are collected (not just the first), each as a [`FieldError`] naming its field, so
//! REST can answer one 400 with all of them. The working form indexes rules by what triggers
//! them (score name, phrase automaton, event kind), so an event only looks at the rules that
//! can fire on it.

use std::collections::HashMap;

use time::{Duration, OffsetDateTime};

use super::calendar::Calendar;
use super::config::{
    ActionConfig, AlertCondition, AlertRule, Automation, Condition, FieldError, Party, RulesConfig, ScoreOp, Severity,
    SlaMetric, SlaPolicy, SlaStatus, Trigger,
};
use super::event::{Action, RuleRef};
use super::phrase::PhraseIndex;
use super::template::Template;

/// The longest SLA threshold: 30 days of business time (it also bounds the calendar walk).
pub(super) const MAX_THRESHOLD_SECS: u32 = 30 * 24 * 3600;

pub(super) struct Compiled {
    /// Every alert rule, in configuration order (disabled ones are in no index below).
    pub alerts: Vec<AlertEntry>,
    pub alert_ids: HashMap<String, usize>,
    /// Score rules by score name: (rule, op, value); rules with `op = "off"` are left out.
    pub scores: HashMap<String, Vec<(usize, ScoreOp, f32)>>,
    pub phrases: PhraseIndex,
    pub emotions: Vec<usize>,
    /// Silence and hold rules as (threshold, rule), shortest first.
    pub silences: Vec<(Duration, usize)>,
    pub holds: Vec<(Duration, usize)>,
    pub sla_alerts: Vec<usize>,
    pub policies: Vec<Policy>,
    pub policy_ids: HashMap<String, usize>,
    /// The default policy for chat and for voice.
    pub default_policy: [Option<usize>; 2],
    pub automations: Vec<AutomationEntry>,
    /// Enabled automations per [`Trigger`], in configuration order.
    pub by_trigger: [Vec<usize>; Trigger::COUNT],
}

pub(super) struct AlertEntry {
    pub rule: RuleRef,
    pub severity: Severity,
    pub webhook: Option<String>,
    pub condition: AlertCondition,
}

pub(super) struct Policy {
    pub rule: RuleRef,
    /// Per [`SlaMetric`], in declaration order.
    thresholds: [Option<Duration>; 3],
    warning_fraction: f64,
    pub bot_replies_count: bool,
    calendar: Option<Calendar>,
}

impl Policy {
    /// When a `metric` clock started at `start` warns and breaches; `None` if the policy has no
    /// such threshold.
    pub fn deadlines(&self, metric: SlaMetric, start: OffsetDateTime) -> Option<(OffsetDateTime, OffsetDateTime)> {
        let threshold = self.thresholds[metric as usize]?;
        let after = |open: Duration| match &self.calendar {
            Some(calendar) => calendar.add(start, open),
            None => start + open,
        };
        Some((after(threshold * self.warning_fraction), after(threshold)))
    }
}

pub(super) struct AutomationEntry {
    pub rule: RuleRef,
    /// The configured tree with `text_contains` lower-cased.
    pub conditions: Option<Condition>,
    pub steps: Vec<Step>,
}

/// An action, ready to emit.
pub(super) enum Step {
    Do(Action),
    Send(Template),
    Webhook(String),
}

pub(super) fn compile(config: &RulesConfig) -> Result<Compiled, Vec<FieldError>> {
    let mut errors = Vec::new();
    let alert_ids = ids(config.alerts.iter().map(|a| &a.id), "alerts", &mut errors);
    let policy_ids = ids(config.sla_policies.iter().map(|p| &p.id), "sla_policies", &mut errors);
    ids(config.automations.iter().map(|a| &a.id), "automations", &mut errors);
    let known_policy = |id: &str, path: String, errors: &mut Vec<FieldError>| {
        if !policy_ids.contains_key(id) {
            errors.push(FieldError::new(path, format!("no SLA policy has the id {id:?}")));
        }
    };

    let policies: Vec<Policy> = (config.sla_policies.iter().enumerate())
        .filter_map(|(i, p)| policy(p, &format!("sla_policies[{i}]"), &mut errors))
        .collect();
    let defaults = [("chat", &config.default_sla.chat), ("voice", &config.default_sla.voice)];
    for (channel, id) in defaults {
        if let Some(id) = id {
            known_policy(id, format!("default_sla.{channel}"), &mut errors);
        }
    }
    let default_policy = defaults.map(|(_, id)| id.as_ref().and_then(|id| policy_ids.get(id).copied()));

    let mut alerts = Vec::new();
    let mut scores: HashMap<String, Vec<(usize, ScoreOp, f32)>> = HashMap::new();
    let (mut phrases, mut emotions, mut silences, mut holds, mut sla_alerts) = (vec![], vec![], vec![], vec![], vec![]);
    for (i, rule) in config.alerts.iter().enumerate() {
        check_alert(rule, &format!("alerts[{i}]"), &mut errors, &known_policy);
        if rule.enabled {
            match &rule.condition {
                AlertCondition::Score { op: ScoreOp::Off, .. } => {}
                AlertCondition::Score { score, op, value } => {
                    scores.entry(score.clone()).or_default().push((i, *op, value.unwrap_or(0.0)));
                }
                AlertCondition::Phrase { phrases: list, .. } => phrases.extend(list.iter().map(|p| (i, p.as_str()))),
                AlertCondition::Emotion { .. } => emotions.push(i),
                AlertCondition::Silence { seconds } => silences.push((Duration::seconds((*seconds).into()), i)),
                AlertCondition::Hold { seconds } => holds.push((Duration::seconds((*seconds).into()), i)),
                AlertCondition::Sla { .. } => sla_alerts.push(i),
            }
        }
        alerts.push(AlertEntry {
            rule: RuleRef { id: rule.id.clone(), name: rule.name.clone() },
            severity: rule.severity,
            webhook: rule.webhook.clone(),
            condition: rule.condition.clone(),
        });
    }
    silences.sort_by_key(|&(threshold, _)| threshold);
    holds.sort_by_key(|&(threshold, _)| threshold);

    let mut automations = Vec::new();
    let mut by_trigger: [Vec<usize>; Trigger::COUNT] = Default::default();
    for (i, automation) in config.automations.iter().enumerate() {
        automations.push(check_automation(automation, &format!("automations[{i}]"), &mut errors, &known_policy));
        if automation.enabled {
            by_trigger[automation.event as usize].push(i);
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let phrases = PhraseIndex::new(phrases).map_err(|e| vec![FieldError::new("alerts", e)])?;
    Ok(Compiled {
        alerts,
        alert_ids,
        scores,
        phrases,
        emotions,
        silences,
        holds,
        sla_alerts,
        policies,
        policy_ids,
        default_policy,
        automations,
        by_trigger,
    })
}

/// Each id must be non-empty, URL-safe and unique in its list; returns id → index.
fn ids<'a>(ids: impl Iterator<Item = &'a String>, list: &str, errors: &mut Vec<FieldError>) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for (i, id) in ids.enumerate() {
        let path = format!("{list}[{i}].id");
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            errors.push(FieldError::new(path, "an id is letters, digits, '-', '_' or '.'"));
        } else if let Some(first) = seen.insert(id.clone(), i) {
            seen.insert(id.clone(), first);
            errors.push(FieldError::new(path, format!("duplicate id {id:?} (also {list}[{first}])")));
        }
    }
    seen
}

type PolicyCheck<'a> = &'a dyn Fn(&str, String, &mut Vec<FieldError>);

fn named(name: &str, path: &str, errors: &mut Vec<FieldError>) {
    if name.trim().is_empty() {
        errors.push(FieldError::new(format!("{path}.name"), "must not be empty"));
    }
}

fn non_empty(text: &str, path: String, errors: &mut Vec<FieldError>) {
    if text.trim().is_empty() {
        errors.push(FieldError::new(path, "must not be empty"));
    }
}

fn url(text: &str, path: String, errors: &mut Vec<FieldError>) {
    let rest = text.strip_prefix("https://").or_else(|| text.strip_prefix("http://"));
    if rest.is_none_or(|rest| rest.is_empty() || rest.contains(char::is_whitespace)) {
        errors.push(FieldError::new(path, "expected an http:// or https:// URL"));
    }
}

fn check_alert(rule: &AlertRule, path: &str, errors: &mut Vec<FieldError>, known_policy: PolicyCheck) {
    named(&rule.name, path, errors);
    if let Some(webhook) = &rule.webhook {
        url(webhook, format!("{path}.webhook"), errors);
    }
    let path = format!("{path}.condition");
    match &rule.condition {
        AlertCondition::Score { score, op, value } => {
            non_empty(score, format!("{path}.score"), errors);
            match value {
                None if *op != ScoreOp::Off => {
                    errors.push(FieldError::new(format!("{path}.value"), "required unless op is \"off\""));
                }
                Some(value) if !value.is_finite() => {
                    errors.push(FieldError::new(format!("{path}.value"), "must be a number"));
                }
                _ => {}
            }
        }
        AlertCondition::Phrase { phrases, .. } => {
            if phrases.is_empty() {
                errors.push(FieldError::new(format!("{path}.phrases"), "list at least one phrase"));
            }
            for (i, phrase) in phrases.iter().enumerate() {
                non_empty(phrase, format!("{path}.phrases[{i}]"), errors);
            }
        }
        AlertCondition::Emotion { emotion, consecutive, speaker } => {
            non_empty(emotion, format!("{path}.emotion"), errors);
            if *consecutive == 0 {
                errors.push(FieldError::new(format!("{path}.consecutive"), "must be at least 1"));
            }
            if !matches!(speaker, Party::Customer | Party::Agent) {
                errors.push(FieldError::new(format!("{path}.speaker"), "must be customer or agent"));
            }
        }
        AlertCondition::Silence { seconds } | AlertCondition::Hold { seconds } => {
            if *seconds == 0 {
                errors.push(FieldError::new(format!("{path}.seconds"), "must be greater than 0"));
            }
        }
        AlertCondition::Sla { policy, status, .. } => {
            if let Some(policy) = policy {
                known_policy(policy, format!("{path}.policy"), errors);
            }
            if !matches!(status, SlaStatus::Warning | SlaStatus::Breached) {
                errors.push(FieldError::new(format!("{path}.status"), "must be warning or breached"));
            }
        }
    }
}

fn policy(policy: &SlaPolicy, path: &str, errors: &mut Vec<FieldError>) -> Option<Policy> {
    let before = errors.len();
    named(&policy.name, path, errors);
    let thresholds = [
        ("first_response_secs", policy.first_response_secs),
        ("next_response_secs", policy.next_response_secs),
        ("resolution_secs", policy.resolution_secs),
    ];
    for (field, secs) in thresholds {
        if secs.is_some_and(|secs| secs == 0 || secs > MAX_THRESHOLD_SECS) {
            let message = format!("must be from 1 to {MAX_THRESHOLD_SECS} seconds");
            errors.push(FieldError::new(format!("{path}.{field}"), message));
        }
    }
    if thresholds.iter().all(|(_, secs)| secs.is_none()) {
        errors.push(FieldError::new(
            path,
            "set at least one of first_response_secs, next_response_secs, resolution_secs",
        ));
    }
    if !(policy.warning_fraction > 0.0 && policy.warning_fraction < 1.0) {
        errors.push(FieldError::new(format!("{path}.warning_fraction"), "must be between 0 and 1 (exclusive)"));
    }
    let calendar = policy.business_hours.as_ref().map(|h| Calendar::new(h, &format!("{path}.business_hours"), errors));
    if errors.len() > before {
        return None;
    }
    Some(Policy {
        rule: RuleRef { id: policy.id.clone(), name: policy.name.clone() },
        thresholds: thresholds.map(|(_, secs)| secs.map(|secs| Duration::seconds(secs.into()))),
        warning_fraction: policy.warning_fraction,
        bot_replies_count: policy.bot_replies_count,
        calendar: calendar.flatten(),
    })
}

fn check_automation(
    automation: &Automation,
    path: &str,
    errors: &mut Vec<FieldError>,
    known_policy: PolicyCheck,
) -> AutomationEntry {
    named(&automation.name, path, errors);
    let conditions = automation.conditions.as_ref().map(|c| condition(c, format!("{path}.conditions"), errors));
    if automation.actions.is_empty() {
        errors.push(FieldError::new(format!("{path}.actions"), "list at least one action"));
    }
    let mut steps = Vec::new();
    for (i, action) in automation.actions.iter().enumerate() {
        let at = |field: &str| format!("{path}.actions[{i}].{field}");
        let step = match action {
            ActionConfig::AssignAgent(agent) => {
                non_empty(agent, at("assign_agent"), errors);
                Step::Do(Action::AssignAgent { agent: agent.clone() })
            }
            ActionConfig::AssignTeam(team) => {
                non_empty(team, at("assign_team"), errors);
                Step::Do(Action::AssignTeam { team: team.clone() })
            }
            ActionConfig::AddTag(tag) => {
                non_empty(tag, at("add_tag"), errors);
                Step::Do(Action::AddTag { tag: tag.clone() })
            }
            ActionConfig::RemoveTag(tag) => {
                non_empty(tag, at("remove_tag"), errors);
                Step::Do(Action::RemoveTag { tag: tag.clone() })
            }
            ActionConfig::SetPriority(priority) => Step::Do(Action::SetPriority { priority: *priority }),
            ActionConfig::ApplySlaPolicy(policy) => {
                known_policy(policy, at("apply_sla_policy"), errors);
                Step::Do(Action::ApplySlaPolicy { policy: policy.clone() })
            }
            ActionConfig::SendMessage(text) => {
                non_empty(text, at("send_message"), errors);
                match Template::parse(text) {
                    Ok(template) => Step::Send(template),
                    Err(message) => {
                        errors.push(FieldError::new(at("send_message"), message));
                        continue;
                    }
                }
            }
            ActionConfig::MuteBot => Step::Do(Action::MuteBot),
            ActionConfig::Resolve => Step::Do(Action::Resolve),
            ActionConfig::Webhook(target) => {
                url(target, at("webhook"), errors);
                Step::Webhook(target.clone())
            }
        };
        steps.push(step);
    }
    AutomationEntry { rule: RuleRef { id: automation.id.clone(), name: automation.name.clone() }, conditions, steps }
}

/// Checks a condition tree and returns it with `text_contains` lower-cased.
fn condition(c: &Condition, path: String, errors: &mut Vec<FieldError>) -> Condition {
    let field = format!("{path}.{}", key(c));
    let mut text = |text: &str| {
        if text.trim().is_empty() {
            errors.push(FieldError::new(field.clone(), "must not be empty"));
        }
    };
    match c {
        Condition::All(list) | Condition::Any(list) => {
            if list.is_empty() {
                errors.push(FieldError::new(field.clone(), "list at least one condition"));
            }
            let list = list.iter().enumerate().map(|(i, c)| condition(c, format!("{field}[{i}]"), errors)).collect();
            if matches!(c, Condition::All(_)) {
                Condition::All(list)
            } else {
                Condition::Any(list)
            }
        }
        Condition::Not(inner) => Condition::Not(Box::new(condition(inner, field, errors))),
        Condition::TextContains(needle) => {
            text(needle);
            Condition::TextContains(needle.to_lowercase())
        }
        Condition::Country(name)
        | Condition::Tag(name)
        | Condition::Agent(name)
        | Condition::Team(name)
        | Condition::Inbox(name)
        | Condition::Attribute { name, .. } => {
            text(name);
            c.clone()
        }
        Condition::SentimentBelow(value) | Condition::SentimentAbove(value) => {
            if !(-1.0..=1.0).contains(value) {
                errors.push(FieldError::new(field, "must be from -1 to 1"));
            }
            c.clone()
        }
        Condition::Channel(_) | Condition::Author(_) | Condition::Priority(_) => c.clone(),
    }
}

/// The field name a condition has in the configuration (the attribute's is its `name`).
fn key(c: &Condition) -> &'static str {
    match c {
        Condition::All(_) => "all",
        Condition::Any(_) => "any",
        Condition::Not(_) => "not",
        Condition::Channel(_) => "channel",
        Condition::Country(_) => "country",
        Condition::TextContains(_) => "text_contains",
        Condition::Author(_) => "author",
        Condition::Tag(_) => "tag",
        Condition::Priority(_) => "priority",
        Condition::Agent(_) => "agent",
        Condition::Team(_) => "team",
        Condition::Inbox(_) => "inbox",
        Condition::SentimentBelow(_) => "sentiment_below",
        Condition::SentimentAbove(_) => "sentiment_above",
        Condition::Attribute { .. } => "attribute.name",
    }
}
