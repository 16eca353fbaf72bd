//! Rules: alert rules, SLA clocks and automations, evaluated the moment each event arrives.
//!
//! [`RulesEngine`] is a pure core (no IO, no tasks, no clock): the shell feeds it session
//! [`Event`]s with their time through [`RulesEngine::handle`], drains [`Output`]s (alerts, SLA
//! changes, the SLA card, actions) with [`RulesEngine::poll_output`], and sleeps until
//! [`RulesEngine::poll_timeout`], the earliest deadline of all sessions, to call
//! [`RulesEngine::handle_timeout`]. Deadlines fire at their exact moment: at the deadline, not a
//! nanosecond before; an event at or after a deadline is handled after it.
//!
//! - [`config`]: the rule set as written (TOML file, REST JSON); `compile` checks it into the
//!   engine's indexed form, naming each bad field in a [`FieldError`].
//! - [`event`]: what goes in and what comes out.
//! - `engine`: the per-session state and the evaluation; `sla`: the SLA clocks of a session;
//!   `calendar`: business hours; `phrase`: one automaton for all phrases; `template`: messages.
//! - [`stage`]: the async shell: one task that owns the engine, fed by the session owners, that
//!   stores and pushes alerts, puts the SLA clock on cards and hands actions to sessions.
//!
//! # One alert per episode
//!
//! Rules do not storm: each alert rule fires at most once per episode of its condition in a
//! session.
//!
//! | kind | episode |
//! |---|---|
//! | score | the score meets the condition; it re-arms once an update no longer does |
//! | phrase | the session: a rule fires at its first match only |
//! | emotion | a streak: it fires when the streak reaches exactly N, again only after the emotion changed (or an utterance had none) |
//! | silence | a stretch without utterances or messages on a live call off hold; each threshold once per stretch |
//! | hold | one hold; each threshold once per hold |
//! | sla | one clock: a warning and a breach at most once per wait (each first or next response) and once for resolution |
//!
//! # SLA clocks
//!
//! A policy comes from `default_sla` when a session is created, or from an automation's
//! `apply_sla_policy` (which replaces the one before; running clocks keep their start). First
//! response runs from the customer's first chat message until the first reply, next response
//! from the first customer message after a reply until the next reply, resolution from the
//! session's start until it is resolved or ends. Replies are a human agent's chat messages, and
//! the bot's when the policy's `bot_replies_count` says so; utterances of calls start no
//! response clock. Thresholds count business time when the policy has business hours. The
//! session's state is active, hit, missed or active with misses (see [`SlaState`]).
//!
//! # Automations and their own events
//!
//! Automations run in configuration order on the event they are for; their actions apply at
//! once to the engine's view of the session, so a later automation sees an earlier one's tag.
//! An action that changes the session (a tag added or removed, the agent, team or priority set,
//! a message sent as the bot) causes an event of its own, which runs through alert rules, SLA
//! clocks and automations like any other, after the event that caused it. Such an event carries
//! its cause chain, the automations that led to it: an automation never runs on an event whose
//! chain holds it, and an event whose chain is [`MAX_CAUSE_DEPTH`] long triggers no automation.
//! So an automation that adds a tag on `tag_added` runs once, and two that answer each other stop
//! after each ran once. The shell carries actions out but must not feed their effects back in as
//! events.
//!
//! # Message templates
//!
//! `send_message` takes text with `{{variable}}` holes, each optionally with a fallback used
//! when the variable is unset or empty: `Hi {{contact.name || 'there'}}`. The variables are
//! `contact.name`, `contact.email`, `contact.country`, `agent.name`, `team.name`, `inbox.name`,
//! `session.id`, `session.channel`, `session.priority` and `attributes.NAME` (a custom
//! attribute); any other is a configuration error.

mod calendar;
mod compile;
pub mod config;
mod engine;
pub mod event;
mod phrase;
mod sla;
pub mod stage;
mod template;
#[cfg(test)]
mod tests;

pub use config::{
    ActionConfig, AlertCondition, AlertRule, Automation, BusinessHours, Condition, DefaultSla, FieldError, Party,
    Priority, RulesConfig, ScoreOp, Severity, SlaMetric, SlaPolicy, SlaStatus, Trigger, WeeklyHours,
};
pub use engine::{RulesEngine, MAX_CAUSE_DEPTH};
pub use event::{
    Action, Alert, AlertKind, Event, EventKind, Output, RuleAction, RuleRef, SessionFacts, SlaCard, SlaChange,
    SlaState, CUSTOMER_SENTIMENT,
};
