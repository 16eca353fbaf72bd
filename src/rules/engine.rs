//! The rules engine: one pure state machine for all live sessions. Events go in with their
//! time, alerts, SLA changes and actions come out through [`RulesEngine::poll_output`], and the
//! one moment the shell has to wake it is [`RulesEngine::poll_timeout`]: the earliest deadline
//! of any session, kept in one ordered set of `(moment, session, timer)`.

use std::collections::{BTreeSet, HashMap, VecDeque};

use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::compile::{compile, Compiled, Policy, Step};
use super::config::{AlertCondition, Condition, FieldError, Party, RulesConfig, ScoreOp, SlaStatus, Trigger};
use super::event::{
    same, Action, Alert, AlertKind, Event, EventKind, Output, RuleAction, RuleRef, SessionFacts, SlaCard, SlaChange,
    CUSTOMER_SENTIMENT,
};
use super::sla::{Change, Sla, Summary};
use crate::session::{Author, Channel};

/// How many automations one external event may set off in a row: an event caused by this many
/// automations (each acting on the event the one before it caused) triggers no more.
pub const MAX_CAUSE_DEPTH: usize = 8;

pub struct RulesEngine {
    config: RulesConfig,
    rules: Compiled,
    /// Boxed, so the map's spare capacity costs a pointer per slot, not a session.
    sessions: HashMap<Uuid, Box<Session>>,
    /// Every pending deadline; a session's own state says which of its timers are where, so a
    /// cancelled deadline is removed by its exact key.
    timers: BTreeSet<(OffsetDateTime, Uuid, Timer)>,
    outputs: VecDeque<Output>,
}

/// The deadlines a session can have, at most one of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Response,
    Resolution,
    Silence,
    Hold,
}

const TIMERS: [Timer; 4] = [Timer::Response, Timer::Resolution, Timer::Silence, Timer::Hold];

/// What the engine keeps per live session: its facts and the little each rule kind needs.
struct Session {
    tenant: String,
    facts: SessionFacts,
    started: OffsetDateTime,
    /// The customer's latest sentiment.
    sentiment: Option<f32>,
    /// Alert rules (indices) in an episode that has fired: phrase rules for the rest of the
    /// session, score rules while their condition holds.
    latched: Vec<u32>,
    /// The running emotion of the customer and of the agent.
    streaks: [Streak; 2],
    /// Since when nobody spoke (a live call not on hold).
    silence: Option<Watch>,
    /// Since when the call is on hold.
    hold: Option<Watch>,
    sla: Sla,
    ended: bool,
}

#[derive(Debug, Default)]
struct Streak {
    emotion: String,
    count: u32,
}

/// A stretch of time that alert thresholds are measured against.
#[derive(Debug, Clone, Copy)]
struct Watch {
    since: OffsetDateTime,
    /// How much of the stretch has been checked: thresholds up to here have fired.
    done: Duration,
}

impl Watch {
    fn new(since: OffsetDateTime) -> Watch {
        Watch { since, done: Duration::ZERO }
    }

    /// When the next threshold of `thresholds` (shortest first) is reached.
    fn next_at(&self, thresholds: &[(Duration, usize)]) -> Option<OffsetDateTime> {
        let next = thresholds.partition_point(|&(t, _)| t <= self.done);
        thresholds.get(next).map(|&(t, _)| self.since + t)
    }

    /// The rules whose thresholds were reached by `now` and not before.
    fn reached<'t>(&mut self, thresholds: &'t [(Duration, usize)], now: OffsetDateTime) -> &'t [(Duration, usize)] {
        let elapsed = now - self.since;
        let from = thresholds.partition_point(|&(t, _)| t <= self.done);
        let to = thresholds.partition_point(|&(t, _)| t <= elapsed);
        self.done = self.done.max(elapsed);
        &thresholds[from..to.max(from)]
    }
}

impl Session {
    fn new(tenant: String, channel: Channel, now: OffsetDateTime) -> Session {
        Session {
            tenant,
            facts: SessionFacts::new(channel),
            started: now,
            sentiment: None,
            latched: Vec::new(),
            streaks: Default::default(),
            silence: None,
            hold: None,
            sla: Sla::default(),
            ended: false,
        }
    }

    fn timer_at(&self, rules: &Compiled, timer: Timer) -> Option<OffsetDateTime> {
        match timer {
            Timer::Response => self.sla.response.and_then(|c| c.next_at()),
            Timer::Resolution => self.sla.resolution.and_then(|c| c.next_at()),
            Timer::Silence => self.silence.and_then(|w| w.next_at(&rules.silences)),
            Timer::Hold => self.hold.and_then(|w| w.next_at(&rules.holds)),
        }
    }

    fn timers(&self, rules: &Compiled) -> [Option<OffsetDateTime>; 4] {
        TIMERS.map(|timer| self.timer_at(rules, timer))
    }
}

impl RulesEngine {
    pub fn new(config: RulesConfig) -> Result<RulesEngine, Vec<FieldError>> {
        let rules = compile(&config)?;
        Ok(RulesEngine { config, rules, sessions: HashMap::new(), timers: BTreeSet::new(), outputs: VecDeque::new() })
    }

    /// The configuration in force.
    pub fn config(&self) -> &RulesConfig {
        &self.config
    }

    /// Replaces the configuration if it is valid; sessions keep their state. Latched alert
    /// rules, SLA policies and watches are matched to the new rules by id; running SLA clocks
    /// keep their start and are timed by the policy's new thresholds (cancelled if it lost the
    /// metric or went away).
    pub fn replace_config(&mut self, now: OffsetDateTime, config: RulesConfig) -> Result<(), Vec<FieldError>> {
        let rules = compile(&config)?;
        self.handle_timeout(now);
        self.config = config;
        let old = std::mem::replace(&mut self.rules, rules);
        let alert_map: Vec<_> = old.alerts.iter().map(|a| self.rules.alert_ids.get(&a.rule.id).copied()).collect();
        let policy_map: Vec<_> = old.policies.iter().map(|p| self.rules.policy_ids.get(&p.rule.id).copied()).collect();
        for (&id, session) in &mut self.sessions {
            let before = session.timers(&old);
            session.latched.retain_mut(|rule| match alert_map[*rule as usize] {
                Some(new) => {
                    *rule = new as u32;
                    true
                }
                None => false,
            });
            if let Some(policy) = session.sla.policy {
                let mut ctx = Ctx { rules: &self.rules, id, s: &mut *session, now, out: &mut self.outputs };
                ctx.set_policy(policy_map[policy], Some(&old.policies[policy].rule));
            }
            sync(&mut self.timers, id, before, session.timers(&self.rules));
        }
        Ok(())
    }

    /// Handles `event` at `now`, after any deadline due by then (a reply at the very moment of
    /// a deadline comes too late).
    pub fn handle(&mut self, now: OffsetDateTime, event: Event) {
        self.handle_timeout(now);
        let Event { session: id, tenant, kind } = event;
        match &kind {
            EventKind::Message { author: Author::System, .. } => return,
            EventKind::SessionCreated(facts) => {
                if self.sessions.contains_key(&id) {
                    return;
                }
                self.sessions.insert(id, Box::new(Session::new(tenant, facts.channel, now)));
            }
            _ => {}
        }
        self.with_session(id, now, |ctx| ctx.process(kind));
    }

    /// Fires every deadline due at `now`, each at its own moment.
    pub fn handle_timeout(&mut self, now: OffsetDateTime) {
        while let Some(&(at, id, timer)) = self.timers.first() {
            if at > now {
                break;
            }
            // Taken out first: the session's state moves the timer on (or drops it).
            self.timers.pop_first();
            self.with_session(id, at, |ctx| ctx.timeout(timer));
        }
    }

    /// The earliest pending deadline of all sessions: call [`RulesEngine::handle_timeout`] then.
    pub fn poll_timeout(&self) -> Option<OffsetDateTime> {
        self.timers.first().map(|&(at, ..)| at)
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// How many live sessions the engine follows.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Runs `f` on session `id` at `now`, then brings the session's timers up to date (and
    /// forgets the session if it ended).
    fn with_session(&mut self, id: Uuid, now: OffsetDateTime, f: impl FnOnce(&mut Ctx)) {
        let Some(session) = self.sessions.get_mut(&id) else { return };
        let before = session.timers(&self.rules);
        f(&mut Ctx { rules: &self.rules, id, s: &mut *session, now, out: &mut self.outputs });
        sync(&mut self.timers, id, before, session.timers(&self.rules));
        if session.ended {
            self.sessions.remove(&id);
        }
    }
}

/// Moves session `id`'s timers from `before` to `after` in the ordered set.
fn sync(
    timers: &mut BTreeSet<(OffsetDateTime, Uuid, Timer)>,
    id: Uuid,
    before: [Option<OffsetDateTime>; 4],
    after: [Option<OffsetDateTime>; 4],
) {
    for ((timer, before), after) in TIMERS.into_iter().zip(before).zip(after) {
        if before != after {
            if let Some(at) = before {
                timers.remove(&(at, id, timer));
            }
            if let Some(at) = after {
                timers.insert((at, id, timer));
            }
        }
    }
}

/// One session at one moment, with the rules and the output queue.
struct Ctx<'a> {
    rules: &'a Compiled,
    id: Uuid,
    s: &'a mut Session,
    now: OffsetDateTime,
    out: &'a mut VecDeque<Output>,
}

/// The side of the conversation `author` is on; `None` for system notices.
fn party(author: &Author) -> Option<Party> {
    match author {
        Author::Visitor | Author::Customer => Some(Party::Customer),
        Author::Agent { .. } => Some(Party::Agent),
        Author::Bot => Some(Party::Bot),
        Author::System => None,
    }
}

/// Who said what in `kind`, for a message or an utterance.
fn said(kind: &EventKind) -> Option<(Party, &str)> {
    match kind {
        EventKind::Message { author, text } | EventKind::Utterance { speaker: author, text, .. } => {
            Some((party(author)?, text))
        }
        _ => None,
    }
}

impl Ctx<'_> {
    /// An event and the events its automations cause, breadth first. Each caused event carries
    /// the chain of automations that led to it; an automation never runs on an event in whose
    /// chain it is, and chains stop at [`MAX_CAUSE_DEPTH`].
    fn process(&mut self, kind: EventKind) {
        let mut queue = VecDeque::from([(kind, Vec::new())]);
        while let Some((kind, cause)) = queue.pop_front() {
            let trigger = kind.trigger();
            let said = said(&kind).map(|(party, text)| (party, text.to_lowercase()));
            self.observe(kind, said.as_ref().map(|(_, lowered)| lowered.as_str()));
            if cause.len() < MAX_CAUSE_DEPTH {
                let said = said.as_ref().map(|(party, lowered)| (*party, lowered.as_str()));
                self.automate(trigger, said, &cause, &mut queue);
            }
        }
    }

    /// Updates the session's state with `kind` and fires the alert rules it meets. `lowered`
    /// is the event's text in lower case.
    fn observe(&mut self, kind: EventKind, lowered: Option<&str>) {
        let now = self.now;
        match kind {
            EventKind::SessionCreated(facts) => {
                let channel = facts.channel;
                self.s.facts = facts;
                if channel == Channel::Voice {
                    self.s.silence = Some(Watch::new(now));
                }
                let default = self.rules.default_policy[(channel == Channel::Voice) as usize];
                if default.is_some() {
                    self.set_policy(default, None);
                }
            }
            EventKind::SessionUpdated(facts) => self.s.facts = facts,
            EventKind::SessionEnded => {
                self.s.ended = true;
                self.s.silence = None;
                self.s.hold = None;
                self.sla(|sla, _, changes| sla.resolve(changes));
            }
            EventKind::Message { author, text } => {
                let Some(party) = party(&author) else { return };
                self.spoke(party, &text, lowered.unwrap_or_default());
                let started = self.s.started;
                self.sla(|sla, policy, changes| match party {
                    Party::Customer => sla.customer_message(policy, started, now),
                    _ => sla.reply(party == Party::Bot, policy, changes),
                });
            }
            EventKind::Utterance { speaker, text, emotion, sentiment, .. } => {
                let Some(party) = party(&speaker) else { return };
                self.spoke(party, &text, lowered.unwrap_or_default());
                if party == Party::Customer && sentiment.is_some() {
                    self.s.sentiment = sentiment;
                }
                self.emotion(party, emotion.as_deref(), &text);
            }
            EventKind::ScoreUpdated { score, value } => {
                if score == CUSTOMER_SENTIMENT {
                    self.s.sentiment = Some(value);
                }
                self.score(&score, value);
            }
            EventKind::TakeOver { agent } => self.s.facts.agent = Some(agent),
            EventKind::Leave => self.s.facts.agent = None,
            EventKind::TagAdded(tag) => {
                if !self.s.facts.has_tag(&tag) {
                    self.s.facts.tags.push(tag);
                }
            }
            EventKind::TagRemoved(tag) => self.s.facts.tags.retain(|t| !same(t, &tag)),
            EventKind::HoldStarted => {
                self.s.silence = None;
                self.s.hold.get_or_insert(Watch::new(now));
            }
            EventKind::HoldEnded => {
                self.s.hold = None;
                if self.s.facts.channel == Channel::Voice {
                    self.s.silence = Some(Watch::new(now));
                }
            }
        }
    }

    /// A deadline of this session is due (`self.now` is its moment).
    fn timeout(&mut self, timer: Timer) {
        let rules = self.rules;
        let (watch, thresholds, kind, what) = match timer {
            Timer::Response | Timer::Resolution => {
                return self.sla(|sla, _, changes| sla.timeout(timer == Timer::Response, changes));
            }
            Timer::Silence => (&mut self.s.silence, &rules.silences, AlertKind::Silence, "nobody spoke"),
            Timer::Hold => (&mut self.s.hold, &rules.holds, AlertKind::Hold, "on hold"),
        };
        let Some(watch) = watch else { return };
        for &(threshold, rule) in watch.reached(thresholds, self.now) {
            self.alert(rule, kind, format!("{what} for {} s", threshold.whole_seconds()), None);
        }
    }

    /// `party` said `text`: silence ends, phrase rules look at it.
    fn spoke(&mut self, party: Party, text: &str, lowered: &str) {
        if let Some(silence) = &mut self.s.silence {
            *silence = Watch::new(self.now);
        }
        let rules = self.rules;
        for (rule, phrase) in rules.phrases.find(lowered) {
            let AlertCondition::Phrase { speaker, channel, .. } = rules.alerts[rule].condition else { continue };
            if speaker.covers(party) && channel.is_none_or(|c| c == self.s.facts.channel) && self.latch(rule) {
                let message = format!("{} said \"{phrase}\"", party.as_str());
                self.alert(rule, AlertKind::Phrase, message, Some(text.to_string()));
            }
        }
    }

    fn emotion(&mut self, party: Party, emotion: Option<&str>, text: &str) {
        let streak = match party {
            Party::Customer => &mut self.s.streaks[0],
            Party::Agent => &mut self.s.streaks[1],
            _ => return,
        };
        match emotion {
            Some(emotion) if streak.count > 0 && same(&streak.emotion, emotion) => streak.count += 1,
            Some(emotion) => *streak = Streak { emotion: emotion.to_lowercase(), count: 1 },
            None => streak.count = 0,
        }
        let count = streak.count;
        let rules = self.rules;
        for &rule in &rules.emotions {
            let AlertCondition::Emotion { emotion: wanted, consecutive, speaker } = &rules.alerts[rule].condition
            else {
                continue;
            };
            // Equal, not at least: once per streak.
            if *speaker == party && *consecutive == count && emotion.is_some_and(|e| same(wanted, e)) {
                let message = format!("{} {wanted} for {count} utterances in a row", party.as_str());
                self.alert(rule, AlertKind::Emotion, message, Some(text.to_string()));
            }
        }
    }

    fn score(&mut self, score: &str, value: f32) {
        let rules = self.rules;
        for &(rule, op, threshold) in rules.scores.get(score).into_iter().flatten() {
            let (holds, relation) = match op {
                ScoreOp::LessThan => (value < threshold, "below"),
                ScoreOp::GreaterThan => (value > threshold, "above"),
                ScoreOp::Off => continue,
            };
            if !holds {
                self.s.latched.retain(|&r| r as usize != rule);
            } else if self.latch(rule) {
                let message = format!("{score} is {value}, {relation} {threshold}");
                self.alert(rule, AlertKind::Score, message, None);
            }
        }
    }

    /// Marks alert rule `rule` as fired for this episode; false if it already was.
    fn latch(&mut self, rule: usize) -> bool {
        let rule = rule as u32;
        let new = !self.s.latched.contains(&rule);
        if new {
            self.s.latched.push(rule);
        }
        new
    }

    fn alert(&mut self, rule: usize, kind: AlertKind, message: String, evidence: Option<String>) {
        let entry = &self.rules.alerts[rule];
        let alert = Alert {
            session: self.id,
            tenant: self.s.tenant.clone(),
            rule: entry.rule.clone(),
            kind,
            severity: entry.severity,
            message,
            evidence,
            at: self.now,
        };
        let webhook = entry
            .webhook
            .as_ref()
            .map(|url| Action::Webhook { url: url.clone(), payload: serde_json::to_value(&alert).unwrap_or_default() });
        self.out.push_back(Output::Alert(alert));
        if let Some(action) = webhook {
            self.emit(&entry.rule, action);
        }
    }

    fn emit(&mut self, rule: &RuleRef, action: Action) {
        let (session, tenant, rule) = (self.id, self.s.tenant.clone(), rule.clone());
        self.out.push_back(Output::Action(RuleAction { session, tenant, rule, action }));
    }

    /// Applies policy `policy` (or none) to the session; `previous` names the policy whose
    /// clocks may be cancelled, when it is not in the current rules.
    fn set_policy(&mut self, policy: Option<usize>, previous: Option<&RuleRef>) {
        let rules = self.rules;
        let before = self.s.sla.summary();
        let previous = previous.or_else(|| self.s.sla.policy.map(|p| &rules.policies[p].rule));
        let mut changes = Vec::new();
        self.s.sla.set_policy(policy.map(|p| (p, &rules.policies[p])), self.s.started, &mut changes);
        if let Some(reported) = previous.or_else(|| policy.map(|p| &rules.policies[p].rule)) {
            self.report(reported, before, changes);
        }
    }

    /// Runs `f` on the session's SLA with its policy, then reports what changed.
    fn sla(&mut self, f: impl FnOnce(&mut Sla, Option<&Policy>, &mut Vec<Change>)) {
        let rules = self.rules;
        let policy = self.s.sla.policy.map(|p| &rules.policies[p]);
        let before = self.s.sla.summary();
        let mut changes = Vec::new();
        f(&mut self.s.sla, policy, &mut changes);
        if let Some(policy) = policy {
            self.report(&policy.rule, before, changes);
        }
    }

    /// Emits `changes` of `policy`'s clocks (and the SLA alerts they meet), and the card's SLA
    /// if it differs from `before`.
    fn report(&mut self, policy: &RuleRef, before: Summary, changes: Vec<Change>) {
        let rules = self.rules;
        for change in changes {
            self.out.push_back(Output::SlaChanged(SlaChange {
                session: self.id,
                tenant: self.s.tenant.clone(),
                policy: policy.clone(),
                metric: change.metric,
                status: change.status,
                deadline: change.deadline,
                at: self.now,
            }));
            for &rule in &rules.sla_alerts {
                let AlertCondition::Sla { policy: only, metric, status } = &rules.alerts[rule].condition else {
                    continue;
                };
                let applies = only.as_ref().is_none_or(|id| *id == policy.id)
                    && metric.is_none_or(|m| m == change.metric)
                    && *status == change.status;
                if applies {
                    let verb = if change.status == SlaStatus::Warning { "nearly breached" } else { "breached" };
                    let message = format!("{} SLA of {} {verb}", change.metric.as_str(), policy.name);
                    self.alert(rule, AlertKind::Sla, message, None);
                }
            }
        }
        let after = self.s.sla.summary();
        if let (true, (Some(p), state, next)) = (after != before, after) {
            self.out.push_back(Output::SlaState(SlaCard {
                session: self.id,
                tenant: self.s.tenant.clone(),
                policy: rules.policies[p].rule.clone(),
                state,
                next: next.map(|(metric, _)| metric),
                deadline: next.map(|(_, at)| at),
            }));
        }
    }

    /// Runs the automations of `trigger` in order on an event caused by the automations in
    /// `cause`; the events their actions cause are queued.
    fn automate(
        &mut self,
        trigger: Trigger,
        said: Option<(Party, &str)>,
        cause: &[usize],
        queue: &mut VecDeque<(EventKind, Vec<usize>)>,
    ) {
        let rules = self.rules;
        for &a in &rules.by_trigger[trigger as usize] {
            let automation = &rules.automations[a];
            if cause.contains(&a) || !automation.conditions.as_ref().is_none_or(|c| self.holds(c, said)) {
                continue;
            }
            let chain: Vec<usize> = cause.iter().copied().chain([a]).collect();
            for step in &automation.steps {
                let action = match step {
                    Step::Do(action) => action.clone(),
                    Step::Send(template) => Action::SendMessage { text: template.render(self.id, &self.s.facts) },
                    Step::Webhook(url) => {
                        Action::Webhook { url: url.clone(), payload: self.payload(&automation.rule, trigger) }
                    }
                };
                self.emit(&automation.rule, action.clone());
                if let Some(caused) = self.apply(action) {
                    queue.push_back((caused, chain.clone()));
                }
            }
        }
    }

    /// What an automation's webhook posts: the rule, the session, its facts and the event.
    fn payload(&self, rule: &RuleRef, trigger: Trigger) -> serde_json::Value {
        serde_json::json!({
            "rule": rule,
            "session": self.id,
            "tenant": self.s.tenant,
            "event": trigger.as_str(),
            "facts": self.s.facts,
            "at": self.now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        })
    }

    /// Applies an action to the engine's view of the session; returns the event it causes.
    fn apply(&mut self, action: Action) -> Option<EventKind> {
        let facts = &mut self.s.facts;
        let updated = |facts: &SessionFacts| EventKind::SessionUpdated(facts.clone());
        match action {
            Action::AssignAgent { agent } => replace(&mut facts.agent, Some(agent)).then(|| updated(facts)),
            Action::AssignTeam { team } => replace(&mut facts.team, Some(team)).then(|| updated(facts)),
            Action::SetPriority { priority } => replace(&mut facts.priority, Some(priority)).then(|| updated(facts)),
            Action::AddTag { tag } if !facts.has_tag(&tag) => {
                facts.tags.push(tag.clone());
                Some(EventKind::TagAdded(tag))
            }
            Action::RemoveTag { tag } if facts.has_tag(&tag) => {
                facts.tags.retain(|t| !same(t, &tag));
                Some(EventKind::TagRemoved(tag))
            }
            Action::SendMessage { text } => Some(EventKind::Message { author: Author::Bot, text }),
            Action::ApplySlaPolicy { policy } => {
                let policy = self.rules.policy_ids.get(&policy).copied();
                if policy != self.s.sla.policy {
                    self.set_policy(policy, None);
                }
                None
            }
            Action::Resolve => {
                self.sla(|sla, _, changes| sla.resolve(changes));
                None
            }
            Action::AddTag { .. } | Action::RemoveTag { .. } | Action::MuteBot | Action::Webhook { .. } => None,
        }
    }

    /// Whether condition `c` holds for the session and the event (who said what, lower-cased).
    fn holds(&self, c: &Condition, said: Option<(Party, &str)>) -> bool {
        let facts = &self.s.facts;
        let is = |value: &Option<String>, want: &str| value.as_deref().is_some_and(|v| same(v, want));
        match c {
            Condition::All(list) => list.iter().all(|c| self.holds(c, said)),
            Condition::Any(list) => list.iter().any(|c| self.holds(c, said)),
            Condition::Not(c) => !self.holds(c, said),
            Condition::Channel(channel) => facts.channel == *channel,
            Condition::Country(country) => is(&facts.country, country),
            Condition::TextContains(needle) => said.is_some_and(|(_, text)| text.contains(needle.as_str())),
            Condition::Author(who) => said.is_some_and(|(party, _)| who.covers(party)),
            Condition::Tag(tag) => facts.has_tag(tag),
            Condition::Priority(priority) => facts.priority == Some(*priority),
            Condition::Agent(agent) => is(&facts.agent, agent),
            Condition::Team(team) => is(&facts.team, team),
            Condition::Inbox(inbox) => is(&facts.inbox, inbox),
            Condition::SentimentBelow(value) => self.s.sentiment.is_some_and(|s| s < *value),
            Condition::SentimentAbove(value) => self.s.sentiment.is_some_and(|s| s > *value),
            Condition::Attribute { name, equals } => facts.attributes.get(name).is_some_and(|v| same(v, equals)),
        }
    }
}

/// Sets `slot` to `value`; whether that changed it.
fn replace<T: PartialEq>(slot: &mut T, value: T) -> bool {
    let changed = *slot != value;
    *slot = value;
    changed
}
