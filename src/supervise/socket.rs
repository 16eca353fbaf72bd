//! One supervisor connection: the tenant's card feed, watched sessions' logs, and commands that
//! go to the session's owner task. Sessions it holds are released after a grace period when
//! the connection goes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{WebSocket, WebSocketUpgrade};

use crate::error::Problem;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use crate::api::auth::{self, Principal};
use crate::chat::socket::ask;
use crate::server::App;
use crate::session::actor::{Command, Event};
use crate::session::core::{Input, Refusal, Reply};
use crate::session::registry::{FeedEvent, Live};
use crate::session::{Entry, SessionId};
use crate::ws::{self, Close, Incoming};

use super::protocol::{Action, Out, SupervisorFrame};

const SOCKET: &str = "supervise";
/// Largest supervisor frame.
const MAX_FRAME_BYTES: usize = 16 * 1024;
/// Longest agent display name.
const MAX_NAME_CHARS: usize = 64;
/// Frames from watched sessions waiting for this socket.
const OUTBOX: usize = 256;

#[derive(Deserialize)]
pub struct TokenQuery {
    access_token: Option<String>,
}

/// `GET /v1/supervise`: checks the bearer token, then upgrades.
pub async fn upgrade(
    State(app): State<Arc<App>>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return Problem::from(rejection).into_response(),
    };
    let principal = match auth::authenticate(&app, &headers, query.access_token.as_deref()).await {
        Ok(principal) => principal,
        Err(problem) => return problem.into_response(),
    };
    upgrade
        .max_message_size(ws::READ_CEILING)
        .max_frame_size(ws::READ_CEILING)
        .read_buffer_size(MAX_FRAME_BYTES)
        .write_buffer_size(0)
        .on_upgrade(move |mut socket| async move {
            let _open = ws::OpenSocket::new(SOCKET);
            let mut conn = Connection::new(&app, principal);
            let close = conn.serve(&mut socket).await;
            conn.release_all().await;
            if let Some(close) = close {
                ws::close(&mut socket, SOCKET, close).await;
            }
        })
}

struct Connection<'a> {
    app: &'a App,
    principal: Principal,
    /// Forwarding tasks of watched sessions.
    watches: HashMap<SessionId, JoinHandle<()>>,
    held: HashSet<SessionId>,
    /// Live sessions this supervisor was shown (within their data scope): only their ends and
    /// alerts reach them.
    shown: HashSet<SessionId>,
    outbox: mpsc::Sender<String>,
    inbox: mpsc::Receiver<String>,
}

impl<'a> Connection<'a> {
    fn new(app: &'a App, principal: Principal) -> Connection<'a> {
        let (outbox, inbox) = mpsc::channel(OUTBOX);
        Connection {
            app,
            principal,
            watches: HashMap::new(),
            held: HashSet::new(),
            shown: HashSet::new(),
            outbox,
            inbox,
        }
    }

    async fn serve(&mut self, socket: &mut WebSocket) -> Option<Close> {
        let mut feed = self.app.registry.subscribe(&self.principal.tenant);
        self.snapshot(socket).await.ok()?;
        loop {
            tokio::select! {
                biased;
                _ = self.app.shutdown.cancelled() => return Some(Close::new(ws::GOING_AWAY, "server shutting down")),
                event = feed.recv() => {
                    let now = self.app.clock.now().wall;
                    let sent = match event {
                        Ok(FeedEvent::Card(card)) if self.principal.scope.allows(&card.placement) => {
                            self.shown.insert(card.session_id);
                            ws::send(socket, &Out::Card { card: card.at(now) }).await
                        }
                        Ok(FeedEvent::Ended { session_id, reason }) if self.shown.remove(&session_id) => {
                            ws::send(socket, &Out::Ended { session_id, reason }).await
                        }
                        Ok(FeedEvent::Alert(alert)) if self.may_see_alert(&alert).await => {
                            ws::send(socket, &Out::Alert { alert: &alert }).await
                        }
                        Ok(_) => Ok(()),
                        Err(broadcast::error::RecvError::Lagged(_)) => self.snapshot(socket).await,
                        Err(broadcast::error::RecvError::Closed) => return Some(Close::new(ws::GOING_AWAY, "server shutting down")),
                    };
                    sent.ok()?;
                }
                Some(frame) = self.inbox.recv() => {
                    socket.send(axum::extract::ws::Message::Text(frame.into())).await.ok()?;
                }
                received = socket.recv() => match ws::parse::<SupervisorFrame>(received, MAX_FRAME_BYTES) {
                    Err(close) => return Some(close),
                    Ok(Incoming::Gone) => return None,
                    Ok(Incoming::Nothing) => {}
                    Ok(Incoming::Frame(frame)) => {
                        let reply = self.on_action(socket, frame.action).await;
                        let sent = match reply {
                            Ok(()) => ws::send(socket, &Out::Ok { reference: &frame.reference }).await,
                            Err((code, message)) => ws::send(socket, &Out::Error { reference: &frame.reference, code, message }).await,
                        };
                        sent.ok()?;
                    }
                },
            }
        }
    }

    async fn snapshot(&mut self, socket: &mut WebSocket) -> Result<(), axum::Error> {
        let now = self.app.clock.now().wall;
        let cards: Vec<_> = self
            .app
            .registry
            .cards(Some(&self.principal.tenant), None)
            .iter()
            .filter(|c| self.principal.scope.allows(&c.placement))
            .map(|c| c.at(now))
            .collect();
        self.shown = cards.iter().map(|c| c.session_id).collect();
        ws::send(socket, &Out::Snapshot { cards }).await
    }

    /// Whether an alert's session is one this supervisor may see (live: shown to them; ended:
    /// stored within their scope).
    async fn may_see_alert(&self, alert: &crate::store::AlertRecord) -> bool {
        self.principal.scope == crate::org::Scope::All
            || self.shown.contains(&alert.session_id)
            || crate::api::visible_session(self.app, &self.principal, &alert.session_id.to_string()).await.is_ok()
    }

    /// The session, if it is live, in this supervisor's tenant and within their data scope.
    fn session(&self, id: SessionId) -> Result<Live, (&'static str, String)> {
        self.app
            .registry
            .get(&id)
            .filter(|live| live.card.tenant == self.principal.tenant)
            .filter(|live| self.principal.scope.allows(&live.card.placement))
            .ok_or(("unknown_session", format!("no live session {id}")))
    }

    async fn on_action(&mut self, socket: &mut WebSocket, action: Action) -> Result<(), (&'static str, String)> {
        let id = action.session_id();
        if let Action::Unwatch { .. } = action {
            if let Some(task) = self.watches.remove(&id) {
                task.abort();
            }
            return Ok(());
        }
        let live = self.session(id)?;
        let by = self.principal.id.clone();
        let input = match action {
            Action::Watch { .. } => return self.watch(socket, id, live).await,
            Action::Unwatch { .. } => unreachable!("handled above"),
            Action::TakeOver { agent_name, .. } => {
                let name = agent_name.trim();
                if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
                    return Err(("bad_request", format!("agent_name must be 1 to {MAX_NAME_CHARS} characters")));
                }
                Input::TakeOver { by, agent_name: name.to_string() }
            }
            Action::Send { text, .. } => {
                let max = self.app.config.chat.max_text_chars;
                if text.trim().is_empty() || text.chars().count() > max {
                    return Err(("bad_request", format!("text must be 1 to {max} characters")));
                }
                Input::AgentSend { by, text }
            }
            Action::Leave { .. } => Input::Leave { by },
            Action::Transfer { to_agent, to_group, .. } => match to_agent.or(to_group) {
                Some(to) if !to.trim().is_empty() => Input::Transfer { by, to: to.trim().to_string() },
                _ => return Err(("bad_request", "transfer needs to_agent or to_group".into())),
            },
        };
        let taking = matches!(input, Input::TakeOver { .. });
        let releasing = matches!(input, Input::Leave { .. } | Input::Transfer { .. });
        let result = ask(&live, |reply| Command::input(input, Some(reply)))
            .await
            .ok_or(("unknown_session", format!("session {id} has ended")))?;
        if taking {
            let outcome = if result.is_ok() { "taken" } else { "refused" };
            metrics::counter!(crate::metrics::TAKEOVERS, "outcome" => outcome).increment(1);
        }
        match result {
            Ok(Reply::Done | Reply::Stored { .. }) => {
                if taking {
                    self.held.insert(id);
                } else if releasing {
                    self.held.remove(&id);
                }
                Ok(())
            }
            Err(Refusal::Held { by }) => Err(("held", format!("session is held by {by}"))),
            Err(Refusal::NotHolder) => Err(("not_holder", Refusal::NotHolder.to_string())),
            Err(Refusal::Ended) => Err(("unknown_session", format!("session {id} has ended"))),
            Err(Refusal::Voice) => Err(("bad_request", Refusal::Voice.to_string())),
        }
    }

    /// Sends the log so far, then forwards new entries from a task of its own.
    async fn watch(&mut self, socket: &mut WebSocket, id: SessionId, live: Live) -> Result<(), (&'static str, String)> {
        let sub = ask(&live, |reply| Command::Subscribe { after: 0, reply })
            .await
            .ok_or(("unknown_session", format!("session {id} has ended")))?;
        let _ = ws::send(socket, &Out::History { session_id: id, messages: &sub.missed }).await;
        let task = tokio::spawn(forward(id, live, sub.events, sub.last_seq, self.outbox.clone()));
        if let Some(old) = self.watches.insert(id, task) {
            old.abort();
        }
        Ok(())
    }

    /// The connection is gone: stop forwarding, and start the release grace of held sessions.
    async fn release_all(&mut self) {
        for (_, task) in self.watches.drain() {
            task.abort();
        }
        for id in self.held.drain() {
            if let Some(live) = self.app.registry.get(&id) {
                let by = self.principal.id.clone();
                let _ = live.commands.send(Command::input(Input::SupervisorGone { by }, None)).await;
            }
        }
    }
}

/// Forwards a watched session's new entries to the supervisor's outbox, in order, once each.
async fn forward(
    id: SessionId,
    live: Live,
    mut events: broadcast::Receiver<Event>,
    mut streamed: u64,
    outbox: mpsc::Sender<String>,
) {
    let frame =
        |entry: &Entry| serde_json::to_string(&Out::Message { session_id: id, entry }).expect("frames serialize");
    loop {
        match events.recv().await {
            Ok(Event::Entry(entry, appended)) if entry.seq > streamed => {
                streamed = entry.seq;
                metrics::histogram!(crate::metrics::FANOUT_SECONDS, "socket" => SOCKET)
                    .record(appended.elapsed().as_secs_f64());
                if outbox.send(frame(&entry)).await.is_err() {
                    return;
                }
            }
            Ok(Event::Partial(partial)) => {
                let frame = serde_json::to_string(&Out::Partial { session_id: id, partial: &partial });
                if outbox.send(frame.expect("frames serialize")).await.is_err() {
                    return;
                }
            }
            Ok(Event::Entry(..) | Event::Holder(_)) => {}
            Ok(Event::Ended(_)) | Err(broadcast::error::RecvError::Closed) => return,
            Err(broadcast::error::RecvError::Lagged(_)) => {
                let Some(sub) = ask(&live, |reply| Command::Subscribe { after: streamed, reply }).await else {
                    return;
                };
                for entry in &sub.missed {
                    if outbox.send(frame(entry)).await.is_err() {
                        return;
                    }
                }
                streamed = sub.last_seq;
                events = sub.events;
            }
        }
    }
}
