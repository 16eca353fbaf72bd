//! The pure core of one chat session: its numbered log, idempotent visitor messages, who holds
//! it (bot, agent, waiting queue) and its deadlines (idle end, supervisor release). No IO and no
//! clock: inputs carry the time, outputs are drained with [`SessionCore::poll_output`], and the
//! next deadline is [`SessionCore::poll_timeout`]. The actor in [`super::actor`] drives it.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::clock::Now;

use super::card::preview;
use super::{Author, Card, Channel, EndReason, Entry, Hold, Holder, Notice, Partial, Speech, StreamCard};

/// Weight of the newest customer utterance in the card's live sentiment (an exponential
/// moving average, so one remark moves it but does not set it).
const SENTIMENT_WEIGHT: f32 = 0.4;

/// Timing settings of a session.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// No new entry and no visitor connect for this long ends the session.
    pub idle_timeout: Duration,
    /// A holding supervisor who disconnects keeps the session this long.
    pub release_grace: Duration,
}

/// Identifies the supervisor (its token) behind a command, so only the holder can act as holder.
pub type SupervisorId = String;

#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    VisitorMessage {
        client_id: String,
        text: String,
    },
    /// The bot's answer; dropped if a human took the session meanwhile.
    BotReply {
        text: String,
    },
    TakeOver {
        by: SupervisorId,
        agent_name: String,
    },
    AgentSend {
        by: SupervisorId,
        text: String,
    },
    Leave {
        by: SupervisorId,
    },
    Transfer {
        by: SupervisorId,
        to: String,
    },
    SupervisorGone {
        by: SupervisorId,
    },
    VisitorOnline(bool),
    VisitorLeft,
    /// A call's media figures changed.
    Streams(Vec<StreamCard>),
    /// A call ended (either side hung up, or its media stopped).
    Hangup,
    /// A final utterance of a call, said by `author`.
    Speech {
        author: Author,
        text: String,
        speech: Box<Speech>,
    },
    /// The utterance so far (not stored).
    Partial(Box<Partial>),
    /// A key pressed on a call.
    Dtmf {
        speaker: String,
        digit: char,
    },
    /// The call was put on hold (true) or resumed (false).
    Hold(bool),
    /// What the rules stage decided for this session.
    Automation(SessionAction),
    /// The session's agent became known (by extension, take-over or assignment).
    Place(crate::org::Placement),
    Shutdown,
}

/// A change the rules stage makes to a session: an automation's action, or its SLA clock.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionAction {
    AddTag(String),
    RemoveTag(String),
    SetPriority(String),
    AssignAgent(String),
    AssignTeam(String),
    /// A message to the visitor, sent as the bot (whoever holds the chat).
    SendMessage(String),
    MuteBot,
    Resolve,
    Sla(Option<super::SlaClock>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A visitor or agent message stored under `seq`; `duplicate` when the client id was seen.
    Stored {
        seq: u64,
        duplicate: bool,
    },
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("session is held by {by}")]
    Held { by: String },
    #[error("you do not hold this session")]
    NotHolder,
    #[error("session has ended")]
    Ended,
    #[error("a voice session can be watched but not taken over")]
    Voice,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Appended(Entry),
    Partial(Box<Partial>),
    HolderChanged(Holder),
    /// The bot should answer the visitor entry `seq`.
    AskBot {
        seq: u64,
        text: String,
    },
    /// The card changed; read it with [`SessionCore::card`].
    CardChanged,
    /// The call went on hold (true) or came back (false).
    Hold(bool),
    /// The session was placed in the organization (the card changed too).
    Placed(crate::org::Placement),
    Ended(EndReason),
}

pub struct SessionCore {
    card: Card,
    log: Vec<Entry>,
    client_ids: HashMap<String, u64>,
    holder_by: Option<SupervisorId>,
    holds: Vec<Hold>,
    release_at: Option<Instant>,
    idle_at: Instant,
    timing: Timing,
    outputs: VecDeque<Output>,
}

impl SessionCore {
    /// A new session whose card is `card` (holder, counters and state are set here).
    pub fn new(mut card: Card, timing: Timing, now: Now) -> SessionCore {
        card.holder = Holder::Bot;
        card.state = "live".into();
        card.started_at = now.wall;
        SessionCore {
            holds: vec![Hold { holder: Holder::Bot, from: now.wall, until: None }],
            card,
            log: Vec::new(),
            client_ids: HashMap::new(),
            holder_by: None,
            release_at: None,
            idle_at: now.mono + timing.idle_timeout,
            timing,
            outputs: VecDeque::new(),
        }
    }

    pub fn card(&self) -> &Card {
        &self.card
    }

    pub fn holds(&self) -> &[Hold] {
        &self.holds
    }

    pub fn is_ended(&self) -> bool {
        self.card.ended_at.is_some()
    }

    pub fn last_seq(&self) -> u64 {
        self.log.len() as u64
    }

    /// Entries with a sequence number above `seq`, in order.
    pub fn entries_after(&self, seq: u64) -> &[Entry] {
        let from = (seq as usize).min(self.log.len());
        &self.log[from..]
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The next instant at which [`SessionCore::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_ended() {
            return None;
        }
        Some(self.release_at.map_or(self.idle_at, |r| r.min(self.idle_at)))
    }

    pub fn handle_timeout(&mut self, now: Now) {
        if self.is_ended() {
            return;
        }
        if self.release_at.is_some_and(|at| at <= now.mono) {
            self.release(now);
        }
        if self.idle_at <= now.mono {
            self.end(EndReason::Idle, now);
        }
    }

    pub fn handle(&mut self, input: Input, now: Now) -> Result<Reply, Refusal> {
        if self.is_ended() {
            return Err(Refusal::Ended);
        }
        match input {
            Input::VisitorMessage { client_id, text } => {
                if let Some(&seq) = self.client_ids.get(&client_id) {
                    return Ok(Reply::Stored { seq, duplicate: true });
                }
                let seq = self
                    .append(Entry { client_id: Some(client_id.clone()), ..entry(Author::Visitor, text.clone()) }, now);
                self.client_ids.insert(client_id, seq);
                if self.card.holder == Holder::Bot && !self.card.bot_muted {
                    self.outputs.push_back(Output::AskBot { seq, text });
                }
                Ok(Reply::Stored { seq, duplicate: false })
            }
            Input::BotReply { text } => {
                if self.card.holder == Holder::Bot && !self.card.bot_muted {
                    self.append(entry(Author::Bot, text), now);
                }
                Ok(Reply::Done)
            }
            Input::TakeOver { .. } | Input::AgentSend { .. } | Input::Transfer { .. }
                if self.card.channel == Channel::Voice =>
            {
                Err(Refusal::Voice)
            }
            Input::TakeOver { by, agent_name } => self.take_over(by, agent_name, now),
            Input::AgentSend { by, text } => {
                let name = self.held_by(&by)?;
                let seq = self.append(entry(Author::Agent { name }, text), now);
                Ok(Reply::Stored { seq, duplicate: false })
            }
            Input::Leave { by } => {
                self.held_by(&by)?;
                self.release(now);
                Ok(Reply::Done)
            }
            Input::Transfer { by, to } => {
                if matches!(self.card.holder, Holder::Agent { .. }) {
                    self.held_by(&by)?;
                }
                self.release_at = None;
                self.holder_by = None;
                let text = format!("Transferring you to {to}");
                self.append(notice(text, Notice::Transferred { to: to.clone() }), now);
                self.set_holder(Holder::Waiting { queue: to }, now);
                Ok(Reply::Done)
            }
            Input::SupervisorGone { by } => {
                if self.holder_by.as_ref() == Some(&by) {
                    self.release_at = Some(now.mono + self.timing.release_grace);
                }
                Ok(Reply::Done)
            }
            Input::VisitorOnline(online) => {
                if online {
                    self.idle_at = now.mono + self.timing.idle_timeout;
                }
                if self.card.visitor_online != online {
                    self.card.visitor_online = online;
                    self.outputs.push_back(Output::CardChanged);
                }
                Ok(Reply::Done)
            }
            Input::VisitorLeft => {
                self.end(EndReason::VisitorLeft, now);
                Ok(Reply::Done)
            }
            Input::Streams(streams) => {
                self.card.streams = streams;
                self.outputs.push_back(Output::CardChanged);
                Ok(Reply::Done)
            }
            Input::Dtmf { speaker, digit } => {
                let text = format!("{speaker} pressed {digit}");
                self.append(notice(text, Notice::Dtmf { speaker, digit }), now);
                Ok(Reply::Done)
            }
            Input::Speech { author, text, speech } => {
                if let (Author::Customer, Some(sentiment)) = (&author, speech.sentiment) {
                    let before = self.card.sentiment.unwrap_or(sentiment);
                    self.card.sentiment = Some(before + SENTIMENT_WEIGHT * (sentiment - before));
                }
                let seq = self.append(Entry { speech: Some(speech), ..entry(author, text) }, now);
                Ok(Reply::Stored { seq, duplicate: false })
            }
            Input::Partial(partial) => {
                self.outputs.push_back(Output::Partial(partial));
                Ok(Reply::Done)
            }
            Input::Hangup => {
                self.end(EndReason::Hangup, now);
                Ok(Reply::Done)
            }
            Input::Hold(on) => {
                if self.card.on_hold != on {
                    self.card.on_hold = on;
                    self.outputs.push_back(Output::Hold(on));
                    self.outputs.push_back(Output::CardChanged);
                }
                Ok(Reply::Done)
            }
            Input::Automation(action) => {
                self.automate(action, now);
                Ok(Reply::Done)
            }
            Input::Place(placement) => {
                if self.card.placement != placement {
                    self.card.placement = placement.clone();
                    self.outputs.push_back(Output::Placed(placement));
                    self.outputs.push_back(Output::CardChanged);
                }
                Ok(Reply::Done)
            }
            Input::Shutdown => {
                self.end(EndReason::Interrupted, now);
                Ok(Reply::Done)
            }
        }
    }

    fn automate(&mut self, action: SessionAction, now: Now) {
        let card = &mut self.card;
        match action {
            SessionAction::AddTag(tag) if !card.tags.contains(&tag) => card.tags.push(tag),
            SessionAction::RemoveTag(tag) => card.tags.retain(|t| *t != tag),
            SessionAction::SetPriority(priority) => card.priority = Some(priority),
            SessionAction::AssignAgent(agent) => card.assignee = Some(agent),
            SessionAction::AssignTeam(team) => card.team = Some(team),
            SessionAction::MuteBot => card.bot_muted = true,
            SessionAction::Sla(sla) => card.sla = sla,
            SessionAction::SendMessage(text) => {
                self.append(entry(Author::Bot, text), now);
                return;
            }
            SessionAction::Resolve => return self.end(EndReason::Resolved, now),
            SessionAction::AddTag(_) => return,
        }
        self.outputs.push_back(Output::CardChanged);
    }

    fn take_over(&mut self, by: SupervisorId, agent_name: String, now: Now) -> Result<Reply, Refusal> {
        if let Holder::Agent { name } = &self.card.holder {
            if self.holder_by.as_ref() != Some(&by) {
                return Err(Refusal::Held { by: name.clone() });
            }
            // The same supervisor again (e.g. after a reconnect): keep holding.
            self.release_at = None;
            return Ok(Reply::Done);
        }
        self.holder_by = Some(by);
        self.release_at = None;
        let text = format!("Live agent {agent_name} joined the chat");
        let joined = Notice::AgentJoined { agent: agent_name.clone() };
        self.append(notice(text, joined), now);
        self.set_holder(Holder::Agent { name: agent_name }, now);
        Ok(Reply::Done)
    }

    /// The holding agent's name if `by` holds the session.
    fn held_by(&self, by: &SupervisorId) -> Result<String, Refusal> {
        match &self.card.holder {
            Holder::Agent { name } if self.holder_by.as_ref() == Some(by) => Ok(name.clone()),
            _ => Err(Refusal::NotHolder),
        }
    }

    /// The agent leaves (or its grace ran out): the visitor is told, the bot resumes.
    fn release(&mut self, now: Now) {
        self.release_at = None;
        self.holder_by = None;
        if let Holder::Agent { name } = self.card.holder.clone() {
            let text = format!("{name} left the chat");
            self.append(notice(text, Notice::AgentLeft { agent: name }), now);
            self.set_holder(Holder::Bot, now);
        }
    }

    fn set_holder(&mut self, holder: Holder, now: Now) {
        if let Some(open) = self.holds.last_mut() {
            open.until = Some(now.wall);
        }
        self.holds.push(Hold { holder: holder.clone(), from: now.wall, until: None });
        self.card.holder = holder.clone();
        self.outputs.push_back(Output::HolderChanged(holder));
        self.outputs.push_back(Output::CardChanged);
    }

    /// Appends `entry` under the next seq, at `now`.
    fn append(&mut self, mut entry: Entry, now: Now) -> u64 {
        let seq = self.last_seq() + 1;
        entry.seq = seq;
        entry.at = now.wall;
        if entry.author != Author::System {
            self.card.message_count += 1;
            self.card.last_message = Some(preview(&entry.text));
            self.card.last_message_at = Some(now.wall);
        }
        self.log.push(entry.clone());
        self.idle_at = now.mono + self.timing.idle_timeout;
        self.outputs.push_back(Output::Appended(entry));
        self.outputs.push_back(Output::CardChanged);
        seq
    }

    fn end(&mut self, reason: EndReason, now: Now) {
        if let Some(open) = self.holds.last_mut() {
            open.until = Some(now.wall);
        }
        self.card.state = "ended".into();
        self.card.ended_at = Some(now.wall);
        self.card.end_reason = Some(reason);
        self.card.visitor_online = false;
        self.card = self.card.at(now.wall);
        self.release_at = None;
        self.outputs.push_back(Output::Ended(reason));
    }
}

/// A log entry by `author` (seq and time are set by [`SessionCore::append`]).
fn entry(author: Author, text: String) -> Entry {
    Entry { seq: 0, at: time::OffsetDateTime::UNIX_EPOCH, author, text, client_id: None, notice: None, speech: None }
}

/// A system entry announcing `notice`.
fn notice(text: String, notice: Notice) -> Entry {
    Entry { notice: Some(notice), ..entry(Author::System, text) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;

    fn start() -> Now {
        Now { mono: Instant::now(), wall: OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap() }
    }

    fn session(now: Now) -> SessionCore {
        let card = Card::new(uuid::Uuid::nil(), "t", "s", Channel::Chat, now.wall);
        let timing = Timing { idle_timeout: Duration::from_secs(600), release_grace: Duration::from_secs(30) };
        SessionCore::new(card, timing, now)
    }

    fn take_over(core: &mut SessionCore, by: &str, agent: &str, now: Now) -> Result<Reply, Refusal> {
        core.handle(Input::TakeOver { by: by.into(), agent_name: agent.into() }, now)
    }

    fn drain(core: &mut SessionCore) -> Vec<Output> {
        std::iter::from_fn(|| core.poll_output()).collect()
    }

    fn visitor(core: &mut SessionCore, id: &str, text: &str, now: Now) -> Result<Reply, Refusal> {
        core.handle(Input::VisitorMessage { client_id: id.into(), text: text.into() }, now)
    }

    #[test]
    fn visitor_message_is_numbered_once_and_asks_the_bot() {
        let now = start();
        let mut s = session(now);
        assert_eq!(visitor(&mut s, "c1", "hi", now), Ok(Reply::Stored { seq: 1, duplicate: false }));
        assert!(drain(&mut s).contains(&Output::AskBot { seq: 1, text: "hi".into() }));
        assert_eq!(visitor(&mut s, "c1", "hi", now), Ok(Reply::Stored { seq: 1, duplicate: true }));
        assert!(drain(&mut s).is_empty());
        s.handle(Input::BotReply { text: "hello".into() }, now).unwrap();
        assert_eq!(s.last_seq(), 2);
        assert_eq!(s.card().message_count, 2);
        assert_eq!(s.card().last_message.as_deref(), Some("hello"));
        assert_eq!(s.entries_after(1)[0].author, Author::Bot);
    }

    #[test]
    fn take_over_silences_the_bot_until_the_agent_leaves() {
        let now = start();
        let mut s = session(now);
        take_over(&mut s, "tok-a", "Dana", now).unwrap();
        let out = drain(&mut s);
        assert!(out.contains(&Output::HolderChanged(Holder::Agent { name: "Dana".into() })));
        assert_eq!(s.entries_after(0)[0].notice, Some(Notice::AgentJoined { agent: "Dana".into() }));
        visitor(&mut s, "c1", "hi", now).unwrap();
        assert!(!drain(&mut s).iter().any(|o| matches!(o, Output::AskBot { .. })));
        // A slow bot answer arriving during the hold is dropped.
        s.handle(Input::BotReply { text: "late".into() }, now).unwrap();
        assert!(s.entries_after(0).iter().all(|e| e.author != Author::Bot));
        assert_eq!(
            s.handle(Input::AgentSend { by: "tok-a".into(), text: "Dana here".into() }, now),
            Ok(Reply::Stored { seq: 3, duplicate: false })
        );
        s.handle(Input::Leave { by: "tok-a".into() }, now).unwrap();
        assert_eq!(s.card().holder, Holder::Bot);
        visitor(&mut s, "c2", "again", now).unwrap();
        assert!(drain(&mut s).iter().any(|o| matches!(o, Output::AskBot { .. })));
        let holders: Vec<_> = s.holds().iter().map(|h| h.holder.clone()).collect();
        assert_eq!(holders, vec![Holder::Bot, Holder::Agent { name: "Dana".into() }, Holder::Bot]);
    }

    #[test]
    fn automations_tag_mute_message_and_resolve() {
        let now = start();
        let mut s = session(now);
        let act = |s: &mut SessionCore, a: SessionAction| s.handle(Input::Automation(a), now).unwrap();
        act(&mut s, SessionAction::AddTag("vip".into()));
        act(&mut s, SessionAction::AddTag("vip".into()));
        act(&mut s, SessionAction::SetPriority("urgent".into()));
        assert_eq!(s.card().tags, vec!["vip".to_string()], "a tag is kept once");
        assert_eq!(s.card().priority.as_deref(), Some("urgent"));
        assert!(drain(&mut s).contains(&Output::CardChanged));
        act(&mut s, SessionAction::SendMessage("Hi there".into()));
        assert_eq!(s.entries_after(0)[0].author, Author::Bot);
        act(&mut s, SessionAction::MuteBot);
        drain(&mut s);
        visitor(&mut s, "c1", "hi", now).unwrap();
        assert!(!drain(&mut s).iter().any(|o| matches!(o, Output::AskBot { .. })), "a muted bot is not asked");
        act(&mut s, SessionAction::Resolve);
        assert_eq!(s.card().end_reason, Some(EndReason::Resolved));
    }

    #[test]
    fn a_second_supervisor_is_refused_and_cannot_speak() {
        let now = start();
        let mut s = session(now);
        take_over(&mut s, "a", "Dana", now).unwrap();
        assert_eq!(take_over(&mut s, "b", "Eve", now), Err(Refusal::Held { by: "Dana".into() }));
        assert_eq!(s.handle(Input::AgentSend { by: "b".into(), text: "x".into() }, now), Err(Refusal::NotHolder));
        assert_eq!(s.handle(Input::Leave { by: "b".into() }, now), Err(Refusal::NotHolder));
        assert_eq!(take_over(&mut s, "a", "Dana", now), Ok(Reply::Done));
    }

    #[test]
    fn a_gone_supervisor_is_released_exactly_at_the_grace_deadline() {
        let now = start();
        let mut s = session(now);
        take_over(&mut s, "a", "Dana", now).unwrap();
        s.handle(Input::SupervisorGone { by: "a".into() }, now).unwrap();
        assert_eq!(s.poll_timeout(), Some(now.mono + Duration::from_secs(30)));
        s.handle_timeout(now.plus(Duration::from_secs(29)));
        assert!(matches!(s.card().holder, Holder::Agent { .. }));
        s.handle_timeout(now.plus(Duration::from_secs(30)));
        assert_eq!(s.card().holder, Holder::Bot);
        assert_eq!(s.entries_after(0).last().unwrap().notice, Some(Notice::AgentLeft { agent: "Dana".into() }));
    }

    #[test]
    fn retaking_within_the_grace_keeps_the_hold() {
        let now = start();
        let mut s = session(now);
        take_over(&mut s, "a", "Dana", now).unwrap();
        s.handle(Input::SupervisorGone { by: "a".into() }, now).unwrap();
        let later = now.plus(Duration::from_secs(10));
        take_over(&mut s, "a", "Dana", later).unwrap();
        s.handle_timeout(now.plus(Duration::from_secs(31)));
        assert_eq!(s.card().holder, Holder::Agent { name: "Dana".into() });
    }

    #[test]
    fn transfer_waits_in_a_queue_with_the_bot_silent() {
        let now = start();
        let mut s = session(now);
        take_over(&mut s, "a", "Dana", now).unwrap();
        assert_eq!(s.handle(Input::Transfer { by: "b".into(), to: "billing".into() }, now), Err(Refusal::NotHolder));
        s.handle(Input::Transfer { by: "a".into(), to: "billing".into() }, now).unwrap();
        assert_eq!(s.card().holder, Holder::Waiting { queue: "billing".into() });
        drain(&mut s);
        visitor(&mut s, "c1", "hello?", now).unwrap();
        assert!(!drain(&mut s).iter().any(|o| matches!(o, Output::AskBot { .. })));
        take_over(&mut s, "b", "Eve", now).unwrap();
        assert_eq!(s.card().holder, Holder::Agent { name: "Eve".into() });
    }

    #[test]
    fn idle_sessions_end_at_the_deadline_and_activity_pushes_it() {
        let now = start();
        let mut s = session(now);
        let t1 = now.plus(Duration::from_secs(300));
        visitor(&mut s, "c1", "hi", t1).unwrap();
        s.handle_timeout(now.plus(Duration::from_secs(600)));
        assert!(!s.is_ended());
        assert_eq!(s.poll_timeout(), Some(t1.mono + Duration::from_secs(600)));
        s.handle_timeout(t1.plus(Duration::from_secs(600)));
        assert!(s.is_ended());
        assert_eq!(s.card().end_reason, Some(EndReason::Idle));
        assert_eq!(s.card().duration_secs, 900);
        assert!(drain(&mut s).contains(&Output::Ended(EndReason::Idle)));
        assert_eq!(visitor(&mut s, "c2", "late", t1), Err(Refusal::Ended));
        assert_eq!(s.poll_timeout(), None);
    }
}
