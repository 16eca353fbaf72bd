//! The owner task of one session: the only code that touches its [`SessionCore`]. Sockets send
//! it [`Command`]s; it feeds the core, then fans the core's outputs out — to the session's event
//! stream (visitor socket, watchers), the tenant feed (cards), the bot and the store. Entries
//! are committed to the store before anyone sees them.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{broadcast, mpsc, oneshot};

use crate::chat::bot::{Bot, BotMessage, BotRequest, UNAVAILABLE};
use crate::clock::Clock;
use crate::store::{SessionRecord, Write, Writer};

use super::core::{Input, Output, Refusal, Reply, SessionAction, SessionCore, Timing};
use super::registry::{Live, Registry};
use super::{Author, Card, EndReason, Entry, Holder, Partial, SessionId};
use crate::privacy::Redactor;
use crate::rules::stage::Rules;
use crate::rules::{self, EventKind, SessionFacts};

/// An event on a session's own stream.
#[derive(Debug, Clone)]
pub enum Event {
    /// A new log entry, with the instant it was appended (for fan-out latency).
    Entry(Arc<Entry>, Instant),
    Holder(Holder),
    /// A call's utterance so far (watchers only; never stored).
    Partial(Arc<Partial>),
    Ended(EndReason),
}

pub type ReplyTx = oneshot::Sender<Result<Reply, Refusal>>;

pub enum Command {
    /// Boxed: inputs carry strings, and every idle session's command queue holds a block of
    /// 32 slots sized to the largest command.
    Input(Box<Input>, Option<ReplyTx>),
    /// A visitor socket attaches; an older one is kicked.
    Attach { reply: oneshot::Sender<Attached> },
    /// The visitor socket `conn` is gone.
    Detach { conn: u64 },
    /// Entries after `after` plus the live stream from there, with no gap between them.
    Subscribe { after: u64, reply: oneshot::Sender<Subscription> },
    /// The session as it stands: card, whole log and holds.
    Record { reply: oneshot::Sender<SessionRecord> },
}

impl Command {
    pub fn input(input: Input, reply: Option<ReplyTx>) -> Command {
        Command::Input(Box::new(input), reply)
    }
}

pub struct Subscription {
    pub missed: Vec<Entry>,
    pub events: broadcast::Receiver<Event>,
    pub holder: Holder,
    pub last_seq: u64,
}

pub struct Attached {
    pub conn: u64,
    /// Fires when a newer connection replaces this one.
    pub kicked: oneshot::Receiver<()>,
}

/// Capacity of a session's command queue; senders wait when it is full.
const COMMANDS: usize = 64;
/// Capacity of a session's event stream; a subscriber further behind re-subscribes.
const EVENTS: usize = 16;

/// What every session's owner task shares.
#[derive(Clone)]
pub struct Context {
    pub registry: Arc<Registry>,
    pub writer: Writer,
    pub clock: Clock,
    /// Timing of chats (calls bring their own).
    pub timing: Timing,
    /// The rules stage, told every event of every session.
    pub rules: Rules,
    /// Masks personal data in every text before the session keeps it.
    pub redactor: Arc<Redactor>,
    /// Places a session on the agent who takes it over or is assigned it.
    pub directory: crate::org::Directory,
    /// Analyses and hands on every session once it has ended.
    pub finalizer: crate::finalize::Finalizer,
}

/// Starts the owner task of a new session with `card` and its `timing`; returns its resume
/// token and handle.
pub async fn start(ctx: &Context, card: Card, bot: Arc<Bot>, timing: Timing) -> (String, Live) {
    let now = ctx.clock.now();
    let core = SessionCore::new(card, timing, now);
    let resume_token = format!("r_{}", hex::encode(rand::random::<[u8; 24]>()));
    let (commands, rx) = mpsc::channel(COMMANDS);
    let live = Live { commands: commands.clone(), card: Arc::new(core.card().clone()) };
    ctx.writer.send(Write::Started(core.card().clone())).await;
    ctx.rules.send(rule_event(core.card(), EventKind::SessionCreated(facts(core.card())))).await;
    ctx.registry.insert(live.clone(), resume_token.clone());
    let actor = Actor {
        id: core.card().session_id,
        core,
        events: broadcast::channel(EVENTS).0,
        commands,
        rx,
        bot,
        ctx: ctx.clone(),
        resume_token: resume_token.clone(),
        visitor: None,
        next_conn: 0,
        automating: false,
    };
    ctx.registry.tasks.spawn(actor.run());
    (resume_token, live)
}

struct Actor {
    id: SessionId,
    core: SessionCore,
    events: broadcast::Sender<Event>,
    /// Our own queue, for bot answers that arrive later.
    commands: mpsc::Sender<Command>,
    rx: mpsc::Receiver<Command>,
    bot: Arc<Bot>,
    ctx: Context,
    resume_token: String,
    visitor: Option<(u64, oneshot::Sender<()>)>,
    next_conn: u64,
    /// The input being dispatched came from the rules stage: its effects are not reported
    /// back to it as events (the engine counted them already).
    automating: bool,
}

impl Actor {
    async fn run(mut self) {
        loop {
            let deadline = self.core.poll_timeout().map(tokio::time::Instant::from_std);
            let mut answer = None;
            tokio::select! {
                command = self.rx.recv() => match command {
                    Some(command) => answer = self.on_command(command),
                    None => self.on_input(Input::Shutdown),
                },
                _ = sleep_until(deadline) => self.core.handle_timeout(self.ctx.clock.now()),
            }
            self.dispatch().await;
            // Answer only after the fan-out, so whoever gets the answer finds its effects
            // already on the event stream.
            if let Some((reply, result)) = answer {
                let _ = reply.send(result);
            }
            if self.core.is_ended() {
                break;
            }
        }
    }

    /// Places a session nobody placed yet on the agent `id_or_name` names, if the directory
    /// knows them: the first agent who takes a session over (or is assigned it) keeps it.
    fn place_on(&mut self, id_or_name: &str) {
        let card = self.core.card();
        if card.placement.agent_id.is_some() {
            return;
        }
        if let Some(placement) = self.ctx.directory.by_agent(&card.tenant, id_or_name) {
            self.on_input(Input::Place(placement));
        }
    }

    /// Feeds the core an input whose result nobody waits for.
    fn on_input(&mut self, input: Input) {
        let _ = self.core.handle(input, self.ctx.clock.now());
    }

    /// Handles a command; returns the answer to send once its outputs are dispatched.
    fn on_command(&mut self, command: Command) -> Option<(ReplyTx, Result<Reply, Refusal>)> {
        match command {
            Command::Input(mut input, reply) => {
                self.automating = matches!(*input, Input::Automation(_));
                redact(&self.ctx.redactor, &mut input);
                let assigned = match &*input {
                    Input::Automation(SessionAction::AssignAgent(agent)) => Some(agent.clone()),
                    _ => None,
                };
                let result = self.core.handle(*input, self.ctx.clock.now());
                if let Some(agent) = assigned {
                    self.place_on(&agent);
                }
                return reply.map(|reply| (reply, result));
            }
            Command::Attach { reply } => {
                self.next_conn += 1;
                let (kick, kicked) = oneshot::channel();
                if let Some((_, old)) = self.visitor.replace((self.next_conn, kick)) {
                    let _ = old.send(());
                }
                let _ = reply.send(Attached { conn: self.next_conn, kicked });
                self.on_input(Input::VisitorOnline(true));
            }
            Command::Detach { conn } => {
                if self.visitor.as_ref().is_some_and(|(c, _)| *c == conn) {
                    self.visitor = None;
                    self.on_input(Input::VisitorOnline(false));
                }
            }
            Command::Subscribe { after, reply } => {
                let _ = reply.send(Subscription {
                    missed: self.core.entries_after(after).to_vec(),
                    events: self.events.subscribe(),
                    holder: self.core.card().holder.clone(),
                    last_seq: self.core.last_seq(),
                });
            }
            Command::Record { reply } => {
                let _ = reply.send(SessionRecord {
                    card: self.core.card().at(self.ctx.clock.now().wall),
                    messages: self.core.entries_after(0).to_vec(),
                    holds: self.core.holds().to_vec(),
                    call: None,
                    notes: Vec::new(),
                    analysis: None,
                    analysis_skipped: None,
                });
            }
        }
        None
    }

    /// Fans out everything the core produced: persist first, then publish, so nothing a
    /// visitor or supervisor has seen (an ack included) can be lost by a crash.
    async fn dispatch(&mut self) {
        let mut publish = Vec::new();
        let mut rule_events = Vec::new();
        let mut card_changed = false;
        let mut ended = None;
        while let Some(output) = self.core.poll_output() {
            match output {
                Output::Appended(entry) => {
                    let channel = self.core.card().channel.as_str();
                    metrics::counter!(crate::metrics::MESSAGES, "channel" => channel, "role" => entry.author.role())
                        .increment(1);
                    self.ctx.writer.send(Write::Entry(self.id, entry.clone())).await;
                    rule_events.extend(entry_event(&entry));
                    if let (Some(_), Author::Customer, Some(value)) =
                        (&entry.speech, &entry.author, self.core.card().sentiment)
                    {
                        // The card's live sentiment (a moving average over the customer's lines).
                        rule_events.push(EventKind::ScoreUpdated { score: rules::CUSTOMER_SENTIMENT.into(), value });
                    }
                    publish.push(Event::Entry(Arc::new(entry), Instant::now()));
                }
                Output::HolderChanged(holder) => {
                    match &holder {
                        Holder::Agent { name } => {
                            self.place_on(name);
                            rule_events.push(EventKind::TakeOver { agent: name.clone() })
                        }
                        Holder::Bot => rule_events.push(EventKind::Leave),
                        Holder::Waiting { .. } => {}
                    }
                    publish.push(Event::Holder(holder));
                }
                Output::Partial(partial) => publish.push(Event::Partial(Arc::from(partial))),
                Output::AskBot { seq, text } => self.ask_bot(seq, text),
                Output::CardChanged => card_changed = true,
                Output::Hold(on) => rule_events.push(if on { EventKind::HoldStarted } else { EventKind::HoldEnded }),
                Output::Placed(placement) => self.ctx.writer.send(Write::Placement(self.id, placement)).await,
                Output::Ended(reason) => {
                    let card = self.core.card().clone();
                    self.ctx.writer.send(Write::Ended(card, self.core.holds().to_vec())).await;
                    ended = Some(reason);
                }
            }
        }
        if ended.is_some() || publish.iter().any(|e| matches!(e, Event::Entry(..))) {
            self.ctx.writer.flush().await;
        }
        for event in publish {
            let _ = self.events.send(event);
        }
        if ended.is_some() {
            rule_events.push(EventKind::SessionEnded);
        }
        if !std::mem::take(&mut self.automating) {
            for kind in rule_events {
                self.ctx.rules.send(rule_event(self.core.card(), kind)).await;
            }
        }
        if let Some(reason) = ended {
            let card = self.core.card();
            metrics::counter!(crate::metrics::SESSIONS_ENDED, "channel" => card.channel.as_str(), "reason" => reason.as_str())
                .increment(1);
            self.ctx.registry.remove(card, &self.resume_token, reason);
            let _ = self.events.send(Event::Ended(reason));
            self.ctx.finalizer.ended(self.id);
        } else if card_changed {
            self.ctx.registry.update_card(self.core.card().clone());
        }
    }

    fn ask_bot(&mut self, seq: u64, text: String) {
        match &*self.bot {
            Bot::Faq(faq) => {
                let reply = faq.answer(&text).to_string();
                metrics::counter!(crate::metrics::BOT_REPLIES, "bot" => "faq", "outcome" => "ok").increment(1);
                self.on_input(Input::BotReply { text: reply });
            }
            Bot::Http(_) => {
                let bot = self.bot.clone();
                let commands = self.commands.clone();
                let (id, site) = (self.id, self.core.card().site.clone());
                tokio::spawn(async move {
                    let Bot::Http(http) = &*bot else { return };
                    let request = BotRequest { session_id: id, site: &site, message: BotMessage { seq, text: &text } };
                    let (reply, outcome) = match http.ask(&request).await {
                        Ok(reply) => (reply, "ok"),
                        Err(error) => {
                            tracing::warn!(session = %id, %error, "HTTP bot failed");
                            (Some(UNAVAILABLE.to_string()), "error")
                        }
                    };
                    metrics::counter!(crate::metrics::BOT_REPLIES, "bot" => "http", "outcome" => outcome).increment(1);
                    if let Some(text) = reply {
                        let _ = commands.send(Command::input(Input::BotReply { text }, None)).await;
                    }
                });
            }
            Bot::None => {}
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The rules stage's view of a session's event.
fn rule_event(card: &Card, kind: EventKind) -> rules::Event {
    rules::Event { session: card.session_id, tenant: card.tenant.clone(), kind }
}

/// What rules may test about a new session.
fn facts(card: &Card) -> SessionFacts {
    SessionFacts { country: card.country.clone(), inbox: Some(card.site.clone()), ..SessionFacts::new(card.channel) }
}

/// A log entry as rules see it: a chat message or a call's utterance. System notices are not
/// messages.
fn entry_event(entry: &Entry) -> Option<EventKind> {
    match &entry.speech {
        Some(speech) => Some(EventKind::Utterance {
            speaker: entry.author.clone(),
            text: entry.text.clone(),
            emotion: speech.emotion.clone(),
            sentiment: speech.sentiment,
            start_ms: speech.start_ms,
            end_ms: speech.end_ms,
        }),
        None if entry.author == Author::System => None,
        None => Some(EventKind::Message { author: entry.author.clone(), text: entry.text.clone() }),
    }
}

/// Masks personal data in the text an input brings (a message, a transcript line and its
/// words, a partial), so neither the log, the store, watchers, rules nor the bot see it.
fn redact(redactor: &Redactor, input: &mut Input) {
    match input {
        Input::VisitorMessage { text, .. }
        | Input::BotReply { text }
        | Input::AgentSend { text, .. }
        | Input::Automation(SessionAction::SendMessage(text)) => *text = redactor.redact(text),
        Input::Speech { text, speech, .. } => {
            *text = redactor.redact_words(text, speech.words.iter_mut().map(|w| &mut w.text));
        }
        Input::Partial(partial) => partial.text = redactor.redact(&partial.text),
        _ => {}
    }
}
