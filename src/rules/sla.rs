//! The SLA clocks of one session. A session has at most two running: a response clock (first
//! response until the first reply, next response for each later unanswered stretch) and a
//! resolution clock (from the start until resolved or ended). Each clock knows its warning and
//! breach moments, worked out once in business time when it starts, so the engine only has to
//! wait for them: no clock ticks, nothing is polled.
//!
//! Who is waiting for an answer is tracked whether a policy applies or not, and for both
//! readings of `bot_replies_count`, so a policy applied mid-session starts from the right
//! moment.

use time::OffsetDateTime;

use super::compile::Policy;
use super::config::{SlaMetric, SlaStatus};
use super::event::SlaState;

#[derive(Debug, Default)]
pub(super) struct Sla {
    /// The applied policy (an index into the compiled policies).
    pub policy: Option<usize>,
    pub response: Option<Clock>,
    pub resolution: Option<Clock>,
    /// Clocks that breached so far.
    misses: u16,
    resolved: bool,
    /// Indexed by whether bot replies count.
    waiting: [Waiting; 2],
}

#[derive(Debug, Default, Clone, Copy)]
struct Waiting {
    /// The first customer message no one has answered yet.
    since: Option<OffsetDateTime>,
    /// Whether anyone answered before (the next wait is a next response).
    answered: bool,
}

/// What a session's SLA card shows: the policy, the state and the live clock that breaches
/// first.
pub(super) type Summary = (Option<usize>, SlaState, Option<(SlaMetric, OffsetDateTime)>);

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Clock {
    pub metric: SlaMetric,
    start: OffsetDateTime,
    warn_at: OffsetDateTime,
    pub due_at: OffsetDateTime,
    phase: Phase,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    Warned,
    /// Missed; kept until the wait ends so the same wait does not start a clock again.
    Breached,
}

/// A clock changed status.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Change {
    pub metric: SlaMetric,
    pub status: SlaStatus,
    pub deadline: OffsetDateTime,
}

impl Clock {
    fn start(policy: &Policy, metric: SlaMetric, start: OffsetDateTime) -> Option<Clock> {
        let (warn_at, due_at) = policy.deadlines(metric, start)?;
        Some(Clock { metric, start, warn_at, due_at, phase: Phase::Running })
    }

    /// When this clock next has something to say.
    pub fn next_at(&self) -> Option<OffsetDateTime> {
        match self.phase {
            Phase::Running => Some(self.warn_at),
            Phase::Warned => Some(self.due_at),
            Phase::Breached => None,
        }
    }

    fn live(&self) -> bool {
        self.phase != Phase::Breached
    }
}

impl Sla {
    pub fn summary(&self) -> Summary {
        let next = self.clocks().filter(|c| c.live()).map(|c| (c.metric, c.due_at)).min_by_key(|&(_, at)| at);
        let state = match (next.is_some(), self.misses > 0) {
            (true, false) => SlaState::Active,
            (true, true) => SlaState::ActiveWithMisses,
            (false, false) => SlaState::Hit,
            (false, true) => SlaState::Missed,
        };
        (self.policy, state, next)
    }

    fn clocks(&self) -> impl Iterator<Item = &Clock> {
        self.response.iter().chain(&self.resolution)
    }

    /// Applies `policy` (index `index`), or none: running clocks keep their start and are timed
    /// anew (a clock the new policy has no threshold for is cancelled); missing ones start.
    pub fn set_policy(&mut self, policy: Option<(usize, &Policy)>, started: OffsetDateTime, changes: &mut Vec<Change>) {
        self.policy = policy.map(|(index, _)| index);
        for slot in [&mut self.response, &mut self.resolution] {
            let Some(clock) = *slot else { continue };
            if !clock.live() {
                continue;
            }
            *slot = policy.and_then(|(_, p)| Clock::start(p, clock.metric, clock.start));
            match slot {
                Some(new) => new.phase = clock.phase,
                None => {
                    changes.push(Change { metric: clock.metric, status: SlaStatus::Cancelled, deadline: clock.due_at })
                }
            }
        }
        if let Some((_, policy)) = policy {
            self.start_missing(policy, started);
        }
    }

    /// The customer wrote at `now`.
    pub fn customer_message(&mut self, policy: Option<&Policy>, started: OffsetDateTime, now: OffsetDateTime) {
        for waiting in &mut self.waiting {
            waiting.since.get_or_insert(now);
        }
        if let Some(policy) = policy {
            self.start_missing(policy, started);
        }
    }

    /// An agent (or, with `bot`, the bot) answered: the response clock stops if it counts.
    pub fn reply(&mut self, bot: bool, policy: Option<&Policy>, changes: &mut Vec<Change>) {
        let answered = if bot { &mut self.waiting[1..] } else { &mut self.waiting[..] };
        for waiting in answered {
            *waiting = Waiting { since: None, answered: true };
        }
        let counts = policy.is_some_and(|p| !bot || p.bot_replies_count);
        if counts {
            stop(&mut self.response, SlaStatus::Hit, changes);
        }
    }

    /// The session was resolved or ended: the resolution clock is hit (and never starts again),
    /// an open wait is dropped and its response clock cancelled.
    pub fn resolve(&mut self, changes: &mut Vec<Change>) {
        self.resolved = true;
        for waiting in &mut self.waiting {
            waiting.since = None;
        }
        stop(&mut self.response, SlaStatus::Cancelled, changes);
        stop(&mut self.resolution, SlaStatus::Hit, changes);
    }

    /// The clock in `slot` (response when `response`) reached its next moment.
    pub fn timeout(&mut self, response: bool, changes: &mut Vec<Change>) {
        let slot = if response { &mut self.response } else { &mut self.resolution };
        let Some(clock) = slot else { return };
        let status = match clock.phase {
            Phase::Running => {
                clock.phase = Phase::Warned;
                SlaStatus::Warning
            }
            Phase::Warned => {
                clock.phase = Phase::Breached;
                self.misses = self.misses.saturating_add(1);
                SlaStatus::Breached
            }
            Phase::Breached => return,
        };
        changes.push(Change { metric: clock.metric, status, deadline: clock.due_at });
    }

    fn start_missing(&mut self, policy: &Policy, started: OffsetDateTime) {
        let waiting = self.waiting[policy.bot_replies_count as usize];
        if let (None, Some(since)) = (self.response, waiting.since) {
            let metric = if waiting.answered { SlaMetric::NextResponse } else { SlaMetric::FirstResponse };
            self.response = Clock::start(policy, metric, since);
        }
        if self.resolution.is_none() && !self.resolved {
            self.resolution = Clock::start(policy, SlaMetric::Resolution, started);
        }
    }
}

/// Stops the clock in `slot`, reporting `status` unless it had already breached.
fn stop(slot: &mut Option<Clock>, status: SlaStatus, changes: &mut Vec<Change>) {
    if let Some(clock) = slot.take().filter(Clock::live) {
        changes.push(Change { metric: clock.metric, status, deadline: clock.due_at });
    }
}
