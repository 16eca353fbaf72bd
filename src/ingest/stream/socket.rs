//! The WebSocket shell of the streaming protocols: `GET /v1/stream/twilio`,
//! `/v1/stream/jambonz` and `/v1/stream/audio_fork`. It authenticates the upgrade, feeds every
//! frame to the protocol's core, starts or resumes the call at the core's start event, hands
//! the audio on, and ends or parks the call when the connection ends. Time limits: the start
//! must come within `start_timeout_secs`, then media at least every `media_timeout_secs`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::{audio_fork, jambonz, twilio, Event, Protocol, StreamQuery, StreamStart, Streams, STOPPED};
use crate::error::{Problem, Query};
use crate::metrics::{STREAM_BYTES, STREAM_ERRORS, STREAM_FRAMES};
use crate::server::App;
use crate::ws::{self, Close};

/// The routes of the three WebSocket protocols (mounted by [`crate::api::router`]).
pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/stream/twilio", get(twilio))
        .route("/v1/stream/jambonz", get(jambonz))
        .route("/v1/stream/audio_fork", get(audio_fork))
}

type Upgrade = Result<WebSocketUpgrade, WebSocketUpgradeRejection>;

async fn twilio(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<StreamQuery>,
    upgrade: Upgrade,
) -> Response {
    // Twilio cannot set headers and drops query strings from `<Stream url>`: its token may
    // come in the start event's custom parameters instead.
    accept(app, peer, headers, query, upgrade, None, true, twilio::Twilio::new()).await
}

async fn jambonz(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<StreamQuery>,
    upgrade: Upgrade,
) -> Response {
    let protocol = jambonz::protocol(query.clone());
    accept(app, peer, headers, query, upgrade, Some(jambonz::DIALECT.subprotocol), false, protocol).await
}

async fn audio_fork(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<StreamQuery>,
    upgrade: Upgrade,
) -> Response {
    let protocol = audio_fork::protocol(query.clone());
    accept(app, peer, headers, query, upgrade, Some(audio_fork::DIALECT.subprotocol), false, protocol).await
}

/// Authenticates and upgrades. Without a token in the header or query, the upgrade is refused
/// (401) unless `token_in_start` lets the start event carry it.
#[allow(clippy::too_many_arguments)]
async fn accept<P: Protocol>(
    app: Arc<App>,
    peer: SocketAddr,
    headers: HeaderMap,
    query: StreamQuery,
    upgrade: Upgrade,
    subprotocol: Option<&'static str>,
    token_in_start: bool,
    protocol: P,
) -> Response {
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return Problem::from(rejection).into_response(),
    };
    let source = protocol.source();
    let has_token = headers.contains_key(axum::http::header::AUTHORIZATION) || query.access_token.is_some();
    let authenticated = if has_token || !token_in_start {
        if let Err(problem) = crate::api::auth::authenticate(&app, &headers, query.access_token.as_deref()).await {
            metrics::counter!(STREAM_ERRORS, "protocol" => source).increment(1);
            return problem.into_response();
        }
        true
    } else {
        false
    };
    let max = app.config.streams.max_frame_bytes;
    let upgrade = match subprotocol {
        Some(name) => upgrade.protocols([name]),
        None => upgrade,
    };
    upgrade.max_message_size(ws::READ_CEILING.max(max)).max_frame_size(ws::READ_CEILING.max(max)).on_upgrade(
        move |mut socket| async move {
            let _open = ws::OpenSocket::new(source);
            let _call = app.calls.token();
            let peer = peer.ip().to_string();
            if let Some(close) = run(&app, &mut socket, protocol, authenticated, &peer).await {
                if close.code != ws::NORMAL && close.code != ws::GOING_AWAY {
                    metrics::counter!(STREAM_ERRORS, "protocol" => source).increment(1);
                }
                ws::close(&mut socket, source, close).await;
            } else {
                // Sends the reply to the peer's close frame, if it sent one.
                let _ = futures_util::SinkExt::close(&mut socket).await;
            }
        },
    )
}

/// What one received frame means.
enum Received {
    Events,
    /// The peer closed with a close frame.
    Closed,
    /// The connection broke.
    Gone,
}

/// Reads one frame into `events`.
async fn receive<P: Protocol>(
    socket: &mut WebSocket,
    protocol: &mut P,
    max_bytes: usize,
    events: &mut Vec<Event>,
) -> Result<Received, Close> {
    let message = match socket.recv().await {
        None => return Ok(Received::Gone),
        Some(Err(error)) => return ws::read_error(&error, max_bytes).map_or(Ok(Received::Gone), Err),
        Some(Ok(message)) => message,
    };
    let source = protocol.source();
    let len = match &message {
        Message::Text(text) => text.len(),
        Message::Binary(data) => data.len(),
        _ => 0,
    };
    if len > max_bytes {
        return Err(Close::new(ws::TOO_BIG, format!("frame exceeds {max_bytes} bytes")));
    }
    match message {
        Message::Text(text) => protocol.text(text.as_str(), events)?,
        Message::Binary(data) => protocol.binary(&data, events)?,
        Message::Close(_) => {
            protocol.closed(events);
            return Ok(Received::Closed);
        }
        Message::Ping(_) | Message::Pong(_) => return Ok(Received::Events),
    }
    metrics::counter!(STREAM_FRAMES, "protocol" => source).increment(1);
    metrics::counter!(STREAM_BYTES, "protocol" => source).increment(len as u64);
    Ok(Received::Events)
}

/// Serves the connection; returns the close to send, or None when the peer closed or vanished.
async fn run<P: Protocol>(
    app: &Arc<App>,
    socket: &mut WebSocket,
    mut protocol: P,
    authenticated: bool,
    peer: &str,
) -> Option<Close> {
    let config = &app.config.streams;
    let source = protocol.source();
    let max_bytes = config.max_frame_bytes;
    let mut events = Vec::new();
    // Until the start event.
    let start_timeout = Duration::from_secs(config.start_timeout_secs);
    let deadline = tokio::time::Instant::now() + start_timeout;
    let start: StreamStart = loop {
        let received = tokio::select! {
            received = receive(socket, &mut protocol, max_bytes, &mut events) => received,
            _ = tokio::time::sleep_until(deadline) =>
                return Some(Close::new(ws::TIMEOUT, format!("no start within {} s", start_timeout.as_secs()))),
            _ = app.shutdown.cancelled() => return Some(Close::new(ws::GOING_AWAY, "server shutting down")),
        };
        match received {
            Err(close) => return Some(close),
            Ok(Received::Gone | Received::Closed) => return None,
            Ok(Received::Events) => {}
        }
        if let Some(i) = events.iter().position(|e| matches!(e, Event::Start(_))) {
            let Event::Start(start) = events.remove(i) else { unreachable!("matched above") };
            events.drain(..i);
            break *start;
        }
        events.clear();
    };
    if !authenticated {
        if let Err(problem) = crate::api::auth::authenticate(app, &HeaderMap::new(), start.token.as_deref()).await {
            return Some(Close::new(ws::UNAUTHORIZED, problem.detail));
        }
    }
    let mut attached = match app.streams.attach(app, source, &start, peer).await {
        Ok(attached) => attached,
        Err(close) => return Some(close),
    };
    tracing::debug!(session = %attached.call.call.id, source, call_id = %start.call_id, resumed = attached.resumed, "stream attached");
    // The media.
    let media_timeout = Duration::from_secs(config.media_timeout_secs);
    let mut peer_closed = false;
    loop {
        for event in events.drain(..) {
            match event {
                Event::Stop => {
                    Streams::detach(app, attached, Some(STOPPED)).await;
                    return (!peer_closed).then(|| Close::new(ws::NORMAL, STOPPED));
                }
                Event::Start(_) => {
                    Streams::detach(app, attached, None).await;
                    return Some(Close::new(ws::BAD_MESSAGE, "a second start"));
                }
                event => attached.call.handle(event).await,
            }
        }
        if peer_closed {
            // A close frame without a stop: the stream is lost, not ended.
            Streams::detach(app, attached, None).await;
            return None;
        }
        let received = tokio::select! {
            received = tokio::time::timeout(media_timeout, receive(socket, &mut protocol, max_bytes, &mut events)) => received,
            _ = app.shutdown.cancelled() => {
                Streams::detach(app, attached, Some(super::INTERRUPTED)).await;
                return Some(Close::new(ws::GOING_AWAY, "server shutting down"));
            }
        };
        let close = match received {
            Ok(Ok(Received::Events)) => continue,
            Ok(Ok(Received::Closed)) => {
                peer_closed = true;
                continue;
            }
            Ok(Ok(Received::Gone)) => None,
            Ok(Err(close)) => Some(close),
            Err(_) => Some(Close::new(ws::TIMEOUT, format!("no media for {} s", media_timeout.as_secs()))),
        };
        Streams::detach(app, attached, None).await;
        return close;
    }
}
