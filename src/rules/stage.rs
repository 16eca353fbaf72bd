//! The rules stage: the async shell around the pure [`RulesEngine`]. One task owns the engine;
//! session owner tasks send it their events, it evaluates each at once, sleeps until the
//! engine's next deadline (no polling loop), and carries out what the engine decided:
//!
//! - an **alert** is stored (through the store's writer, committed before anyone sees it) and
//!   pushed to the tenant's supervisors (a rule with a `webhook` also POSTs it, as an action);
//! - an **SLA** summary becomes the session card's clock;
//! - an automation's **action** goes to the session's owner task as an input (tags, priority,
//!   assignment, a message sent as the bot, a muted bot, resolve), or becomes a webhook POST.
//!
//! Configuration changes (REST) reach the engine through the same task, so evaluation never
//! sees half a rule set.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::clock::Clock;
use crate::session::actor::Command;
use crate::session::core::{Input, SessionAction};
use crate::session::registry::{FeedEvent, Registry};
use crate::session::{SlaClock, SlaDue};
use crate::store::{AlertRecord, Write, Writer};

use super::{Action, Alert, Event, FieldError, Output, RuleAction, RulesConfig, RulesEngine, SlaCard};

/// The rule set used when `rules.file` is empty and none was saved through REST.
pub const DEFAULT_RULES: &str = include_str!("../../config/rules.toml");

/// Events waiting for the stage; session tasks wait when it is full (nothing is dropped).
const EVENTS: usize = 8192;

/// What the stage needs of the rest of the server.
pub struct StageContext {
    pub registry: Arc<Registry>,
    pub writer: Writer,
    pub clock: Clock,
    pub http: reqwest::Client,
}

enum Control {
    Config(oneshot::Sender<RulesConfig>),
    Replace(RulesConfig, oneshot::Sender<Result<(), Vec<FieldError>>>),
}

/// Handle to the rules stage; cheap to clone.
#[derive(Clone)]
pub struct Rules {
    events: mpsc::Sender<Event>,
    control: mpsc::Sender<Control>,
}

impl Rules {
    /// Starts the stage with `engine`; it runs until every handle is dropped.
    pub fn start(engine: RulesEngine, ctx: StageContext) -> Rules {
        let (events, event_rx) = mpsc::channel(EVENTS);
        let (control, control_rx) = mpsc::channel(16);
        tokio::spawn(run(engine, ctx, event_rx, control_rx));
        Rules { events, control }
    }

    /// Hands the stage an event of a live session.
    pub async fn send(&self, event: Event) {
        if self.events.send(event).await.is_err() {
            tracing::warn!("the rules stage has stopped; an event was not evaluated");
        }
    }

    /// The rule set in force.
    pub async fn config(&self) -> Option<RulesConfig> {
        let (reply, answer) = oneshot::channel();
        self.control.send(Control::Config(reply)).await.ok()?;
        answer.await.ok()
    }

    /// Replaces the rule set if it is valid; live sessions keep their state.
    pub async fn replace(&self, config: RulesConfig) -> Result<(), Vec<FieldError>> {
        let (reply, answer) = oneshot::channel();
        let stopped = || vec![FieldError::new("", "the rules stage has stopped")];
        self.control.send(Control::Replace(config, reply)).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn run(
    mut engine: RulesEngine,
    ctx: StageContext,
    mut events: mpsc::Receiver<Event>,
    mut control: mpsc::Receiver<Control>,
) {
    loop {
        let now = ctx.clock.now();
        let sleep = engine.poll_timeout().map(|deadline| {
            let wait = (deadline - now.wall).try_into().unwrap_or(Duration::ZERO);
            tokio::time::Instant::from_std(now.mono + wait)
        });
        tokio::select! {
            event = events.recv() => match event {
                Some(event) => engine.handle(ctx.clock.now().wall, event),
                None => return,
            },
            Some(command) = control.recv() => match command {
                Control::Config(reply) => {
                    let _ = reply.send(engine.config().clone());
                }
                Control::Replace(config, reply) => {
                    let _ = reply.send(engine.replace_config(ctx.clock.now().wall, config));
                }
            },
            _ = sleep_until(sleep) => engine.handle_timeout(ctx.clock.now().wall),
        }
        while let Some(output) = engine.poll_output() {
            carry_out(&ctx, output).await;
        }
    }
}

/// A unit enum's name as it is serialized (`active_with_misses`).
fn snake(value: impl serde::Serialize) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn carry_out(ctx: &StageContext, output: Output) {
    match output {
        Output::Alert(alert) => raise(ctx, alert).await,
        Output::SlaChanged(change) => {
            let status = snake(change.status);
            metrics::counter!(crate::metrics::SLA_CHANGES, "metric" => change.metric.as_str(), "status" => status)
                .increment(1);
        }
        Output::SlaState(card) => {
            let session = card.session;
            act(ctx, session, SessionAction::Sla(Some(sla_clock(card))));
        }
        Output::Action(action) => perform(ctx, action),
    }
}

/// Stores the alert, then tells the tenant's supervisors.
async fn raise(ctx: &StageContext, alert: Alert) {
    let (kind, severity) = (snake(alert.kind), snake(alert.severity));
    metrics::counter!(crate::metrics::ALERTS, "kind" => kind.clone(), "severity" => severity.clone()).increment(1);
    let record = AlertRecord {
        id: uuid::Uuid::new_v4(),
        tenant: alert.tenant,
        session_id: alert.session,
        rule_id: alert.rule.id,
        rule_name: alert.rule.name,
        kind,
        severity,
        message: alert.message,
        evidence: alert.evidence,
        raised_at: alert.at,
        acknowledged_at: None,
        acknowledged_by: None,
    };
    ctx.writer.send(Write::Alert(record.clone())).await;
    ctx.writer.flush().await;
    let record = Arc::new(record);
    ctx.registry.publish(&record.tenant, FeedEvent::Alert(record.clone()));
}

fn sla_clock(card: SlaCard) -> SlaClock {
    SlaClock {
        policy: card.policy.id,
        state: snake(card.state),
        due: card.next.zip(card.deadline).map(|(metric, at)| SlaDue { metric: snake(metric), at }),
    }
}

fn perform(ctx: &StageContext, action: RuleAction) {
    let session = action.session;
    let change = match action.action {
        Action::AssignAgent { agent } => SessionAction::AssignAgent(agent),
        Action::AssignTeam { team } => SessionAction::AssignTeam(team),
        Action::AddTag { tag } => SessionAction::AddTag(tag),
        Action::RemoveTag { tag } => SessionAction::RemoveTag(tag),
        Action::SetPriority { priority } => SessionAction::SetPriority(priority.as_str().to_string()),
        Action::SendMessage { text } => SessionAction::SendMessage(text),
        Action::MuteBot => SessionAction::MuteBot,
        Action::Resolve => SessionAction::Resolve,
        // The engine applied the policy itself; the card's clock follows as an SlaState.
        Action::ApplySlaPolicy { .. } => return,
        Action::Webhook { url, payload } => return post(ctx, url, payload),
    };
    act(ctx, session, change);
}

/// Gives a session's owner task an automation input, in order when its queue has room (the
/// stage never waits on a session that may itself wait on the stage).
fn act(ctx: &StageContext, session: uuid::Uuid, change: SessionAction) {
    let Some(live) = ctx.registry.get(&session) else { return };
    let command = Command::input(Input::Automation(change), None);
    if let Err(mpsc::error::TrySendError::Full(command)) = live.commands.try_send(command) {
        tokio::spawn(async move {
            let _ = live.commands.send(command).await;
        });
    }
}

/// Attempts of a webhook POST (an automation's or an alert rule's), and the first wait between them (doubling).
const WEBHOOK_ATTEMPTS: u32 = 5;
const WEBHOOK_BACKOFF: Duration = Duration::from_millis(500);

/// POSTs `payload` to `url` on the side, retrying a failure a few times.
fn post(ctx: &StageContext, url: String, payload: serde_json::Value) {
    let http = ctx.http.clone();
    tokio::spawn(async move {
        let mut wait = WEBHOOK_BACKOFF;
        for attempt in 1..=WEBHOOK_ATTEMPTS {
            let sent = http.post(&url).timeout(Duration::from_secs(10)).json(&payload).send().await;
            let outcome = match sent {
                Ok(response) if response.status().is_success() => return,
                Ok(response) => format!("HTTP {}", response.status()),
                Err(error) => error.to_string(),
            };
            tracing::warn!(%url, attempt, %outcome, "rules webhook failed");
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
        metrics::counter!(crate::metrics::RULES_WEBHOOK_FAILURES).increment(1);
    });
}
