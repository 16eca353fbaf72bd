//! One visitor's widget connection: hello (new chat or resume), then visitor messages in and
//! log entries out. Acks travel in sequence order with the log, so a visitor that reconnects
//! with the highest `seq` it saw gets every later entry exactly once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{WebSocket, WebSocketUpgrade};

use crate::error::Problem;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use tokio::sync::{broadcast, oneshot};

use crate::server::App;
use crate::session::actor::{self, Command, Event, Subscription};
use crate::session::core::{Input, Refusal, Reply};
use crate::session::registry::Live;
use crate::session::{origin, Author, Card, Channel, EndReason, Entry};
use crate::ws::{self, Close, Incoming};

use super::limit::TokenBucket;
use super::protocol::{ServerFrame, VisitorFrame, MAX_CLIENT_ID};

const SOCKET: &str = "chat";
/// Read buffer per widget socket; idle visitors are most sockets, so it stays small.
const READ_BUFFER: usize = 1024;

/// Where the visitor connects from, read off the upgrade request.
struct Visitor {
    country: Option<String>,
    device: &'static str,
}

/// `GET /v1/chat`: upgrades to the widget socket.
pub async fn upgrade(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return Problem::from(rejection).into_response(),
    };
    let user_agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let visitor =
        Visitor { country: app.origin.country(peer.ip(), &headers), device: origin::device_class(user_agent) };
    let ceiling = ws::READ_CEILING.max(app.config.chat.max_frame_bytes);
    upgrade
        .max_message_size(ceiling)
        .max_frame_size(ceiling)
        // tungstenite preallocates 128 KiB per socket by default; chat frames are small.
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .on_upgrade(move |mut socket| async move {
            let _open = ws::OpenSocket::new(SOCKET);
            if let Some(close) = run(&app, &mut socket, visitor).await {
                ws::close(&mut socket, SOCKET, close).await;
            }
        })
}

/// Serves the connection; returns the close to send, or None when the visitor went away.
async fn run(app: &App, socket: &mut WebSocket, visitor: Visitor) -> Option<Close> {
    let max_bytes = app.config.chat.max_frame_bytes;
    let hello_timeout = Duration::from_secs(app.config.chat.hello_timeout_secs);
    let first = tokio::select! {
        first = tokio::time::timeout(hello_timeout, next_frame(socket, max_bytes)) => first,
        _ = app.shutdown.cancelled() => return Some(Close::new(ws::GOING_AWAY, "server shutting down")),
    };
    let hello = match first {
        Err(_) => return Some(Close::new(ws::TIMEOUT, format!("no hello within {} s", hello_timeout.as_secs()))),
        Ok(Err(close)) => return Some(close),
        Ok(Ok(None)) => return None,
        Ok(Ok(Some(frame))) => frame,
    };
    let VisitorFrame::Hello { site_key, resume_token, last_seq } = hello else {
        return Some(Close::new(ws::BAD_MESSAGE, "expected hello"));
    };
    let Some(site) = app.sites.get(&site_key) else {
        return Some(Close::new(ws::UNAUTHORIZED, "unknown site key"));
    };
    let (live, resume_token, resumed) = match resume_token {
        Some(token) => match app.registry.by_resume_token(&token) {
            Some((_, live)) if live.card.site == site_key => (live, token, true),
            _ => return Some(Close::new(ws::UNKNOWN_SESSION, "unknown session")),
        },
        None => {
            let card = new_card(app, &site_key, &site.tenant, visitor);
            let (token, live) = actor::start(&app.sessions, card, site.bot.clone(), app.sessions.timing).await;
            (live, token, false)
        }
    };
    let ended = || Some(Close::new(ws::NORMAL, "session ended"));
    let Some(attached) = ask(&live, |reply| Command::Attach { reply }).await else {
        return Some(Close::new(ws::UNKNOWN_SESSION, "unknown session"));
    };
    let Some(sub) = ask(&live, |reply| Command::Subscribe { after: last_seq, reply }).await else {
        return ended();
    };
    let close = if last_seq > sub.last_seq {
        Some(Close::new(ws::BAD_MESSAGE, format!("last_seq {last_seq} is beyond the session's {}", sub.last_seq)))
    } else {
        let welcome = ServerFrame::Welcome {
            session_id: live.card.session_id,
            resume_token: &resume_token,
            last_seq: sub.last_seq,
            holder: &sub.holder,
            resumed,
            bot_name: &app.config.chat.bot_name,
        };
        match ws::send(socket, &welcome).await {
            Ok(()) => Connection { app, live: &live, socket, bucket: None }.serve(sub, attached.kicked).await,
            Err(_) => None,
        }
    };
    let _ = live.commands.send(Command::Detach { conn: attached.conn }).await;
    close
}

fn new_card(app: &App, site: &str, tenant: &str, visitor: Visitor) -> Card {
    let started_at = app.clock.now().wall;
    Card {
        country: visitor.country,
        device: visitor.device.to_string(),
        ..Card::new(uuid::Uuid::new_v4(), tenant, site, Channel::Chat, started_at)
    }
}

/// Sends a command that carries a reply channel and waits for the answer; None if the session
/// has ended. A command that slips into the queue just as the owner task ends is never dropped
/// while someone (this caller included) still holds a sender, so the wait also ends when the
/// owner's receiver is gone.
pub async fn ask<T>(live: &Live, command: impl FnOnce(oneshot::Sender<T>) -> Command) -> Option<T> {
    let (reply, answer) = oneshot::channel();
    live.commands.send(command(reply)).await.ok()?;
    tokio::select! {
        biased;
        answer = answer => answer.ok(),
        () = live.commands.closed() => None,
    }
}

/// The next JSON frame, skipping pings; Ok(None) when the peer is gone.
async fn next_frame(socket: &mut WebSocket, max_bytes: usize) -> Result<Option<VisitorFrame>, Close> {
    loop {
        match ws::parse(socket.recv().await, max_bytes)? {
            Incoming::Frame(frame) => return Ok(Some(frame)),
            Incoming::Nothing => continue,
            Incoming::Gone => return Ok(None),
        }
    }
}

struct Connection<'a> {
    app: &'a App,
    live: &'a Live,
    socket: &'a mut WebSocket,
    bucket: Option<TokenBucket>,
}

impl Connection<'_> {
    async fn serve(&mut self, sub: Subscription, mut kicked: oneshot::Receiver<()>) -> Option<Close> {
        let max_bytes = self.app.config.chat.max_frame_bytes;
        // Highest seq taken from the log stream: replays and live events never repeat it.
        let mut streamed = sub.last_seq;
        let mut events = sub.events;
        if !self.replay(&sub.missed).await {
            return None;
        }
        loop {
            tokio::select! {
                // Shutdown first, then the session's own events (its end carries the reason)
                // ahead of the kick channel, which also fires when the session's task is gone.
                biased;
                _ = self.app.shutdown.cancelled() => return Some(Close::new(ws::GOING_AWAY, "server shutting down")),
                event = events.recv() => match event {
                    Ok(Event::Entry(entry, appended)) if entry.seq > streamed => {
                        streamed = entry.seq;
                        metrics::histogram!(crate::metrics::FANOUT_SECONDS, "socket" => SOCKET).record(appended.elapsed().as_secs_f64());
                        self.send_entry(&entry).await.ok()?;
                    }
                    Ok(Event::Entry(..) | Event::Partial(_)) => {}
                    Ok(Event::Holder(holder)) => ws::send(self.socket, &ServerFrame::Holder { holder: &holder }).await.ok()?,
                    Ok(Event::Ended(EndReason::Interrupted)) => return Some(Close::new(ws::GOING_AWAY, "server shutting down")),
                    Ok(Event::Ended(_)) | Err(broadcast::error::RecvError::Closed) => return Some(Close::new(ws::NORMAL, "session ended")),
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let sub = ask(self.live, |reply| Command::Subscribe { after: streamed, reply }).await;
                        let Some(sub) = sub else { return Some(Close::new(ws::NORMAL, "session ended")) };
                        if !self.replay(&sub.missed).await {
                            return None;
                        }
                        streamed = sub.last_seq;
                        events = sub.events;
                    }
                },
                kick = &mut kicked => return Some(match kick {
                    Ok(()) => Close::new(ws::REPLACED, "replaced by a newer connection"),
                    Err(_) => Close::new(ws::NORMAL, "session ended"),
                }),
                received = self.socket.recv() => match ws::parse::<VisitorFrame>(received, max_bytes) {
                    Err(close) => return Some(close),
                    Ok(Incoming::Gone) => return None,
                    Ok(Incoming::Nothing) => {}
                    Ok(Incoming::Frame(frame)) => {
                        if let Some(close) = self.on_frame(frame).await {
                            // Acks of messages accepted before the close still go out.
                            while let Ok(Event::Entry(entry, _)) = events.try_recv() {
                                if entry.seq > streamed && self.send_entry(&entry).await.is_err() {
                                    break;
                                }
                            }
                            return close;
                        }
                    }
                },
            }
        }
    }

    /// Sends a live entry: the visitor's own as its ack, any other as a message.
    async fn send_entry(&mut self, entry: &Entry) -> Result<(), axum::Error> {
        match (&entry.author, &entry.client_id) {
            (Author::Visitor, Some(client_id)) => {
                ws::send(self.socket, &ServerFrame::Ack { client_id, seq: entry.seq }).await
            }
            _ => ws::send(self.socket, &ServerFrame::Message(entry)).await,
        }
    }

    /// Sends entries the visitor missed, its own included; false if the socket broke.
    async fn replay(&mut self, missed: &[Entry]) -> bool {
        for entry in missed {
            if ws::send(self.socket, &ServerFrame::Message(entry)).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Handles a visitor frame; Some(result) ends the connection with it.
    async fn on_frame(&mut self, frame: VisitorFrame) -> Option<Option<Close>> {
        let chat = &self.app.config.chat;
        match frame {
            VisitorFrame::Hello { .. } => Some(Some(Close::new(ws::BAD_MESSAGE, "unexpected hello"))),
            VisitorFrame::Leave => {
                // The session's Ended event closes the socket.
                let _ = self.live.commands.send(Command::input(Input::VisitorLeft, None)).await;
                None
            }
            VisitorFrame::Message { client_id, text } => {
                let bucket = self
                    .bucket
                    .get_or_insert_with(|| TokenBucket::new(chat.rate_per_sec, chat.rate_burst, Instant::now()));
                if !bucket.try_take(Instant::now()) {
                    return Some(Some(Close::new(ws::RATE_LIMITED, "rate limit exceeded")));
                }
                if client_id.is_empty() || client_id.len() > MAX_CLIENT_ID {
                    return Some(Some(Close::new(
                        ws::BAD_MESSAGE,
                        format!("client_id must be 1 to {MAX_CLIENT_ID} bytes"),
                    )));
                }
                if text.trim().is_empty() {
                    return Some(Some(Close::new(ws::BAD_MESSAGE, "empty text")));
                }
                if text.chars().count() > chat.max_text_chars {
                    return Some(Some(Close::new(
                        ws::BAD_MESSAGE,
                        format!("text too long (over {} characters)", chat.max_text_chars),
                    )));
                }
                let input = Input::VisitorMessage { client_id: client_id.clone(), text };
                match ask(self.live, |reply| Command::input(input, Some(reply))).await {
                    // A resent message: acknowledge it again; a new one is acked from the stream.
                    Some(Ok(Reply::Stored { seq, duplicate: true })) => {
                        let ack = ServerFrame::Ack { client_id: &client_id, seq };
                        ws::send(self.socket, &ack).await.err().map(|_| None)
                    }
                    Some(Ok(_)) => None,
                    Some(Err(Refusal::Ended)) | None => Some(Some(Close::new(ws::NORMAL, "session ended"))),
                    Some(Err(refusal)) => Some(Some(Close::new(ws::BAD_MESSAGE, refusal.to_string()))),
                }
            }
        }
    }
}
