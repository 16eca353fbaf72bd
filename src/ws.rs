//! WebSocket plumbing shared by the widget and supervisor sockets: the close codes, closing
//! with a reason (counted in metrics), frame size checks and JSON frames in and out.

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use serde::{de::DeserializeOwned, Serialize};

use crate::metrics::{SOCKETS, SOCKET_CLOSES};

pub const NORMAL: u16 = 1000;
pub const GOING_AWAY: u16 = 1001;
pub const UNSUPPORTED_DATA: u16 = 1003;
pub const TOO_BIG: u16 = 1009;
pub const BAD_MESSAGE: u16 = 4400;
pub const UNAUTHORIZED: u16 = 4401;
pub const UNKNOWN_SESSION: u16 = 4404;
pub const TIMEOUT: u16 = 4408;
pub const REPLACED: u16 = 4409;
pub const RATE_LIMITED: u16 = 4429;

/// Why hark closes a socket: a close code and a human-readable reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    pub code: u16,
    pub reason: String,
}

impl Close {
    pub fn new(code: u16, reason: impl Into<String>) -> Close {
        Close { code, reason: reason.into() }
    }
}

/// Largest frame tungstenite reads in whole. Frames over a socket's own limit but under this
/// are read, refused with 1009 and a reason, and the connection closes cleanly; beyond it
/// tungstenite refuses them mid-read. Memory for it is only taken while such a frame arrives.
pub const READ_CEILING: usize = 1 << 20;

/// How long a closing socket waits for the peer's close reply, discarding what it still sends.
const CLOSE_LINGER: std::time::Duration = std::time::Duration::from_secs(2);

/// Sends the close frame and counts it, then completes the closing handshake so that frames
/// the peer sent meanwhile are read rather than reset. Reasons are cut to the 123 bytes a
/// close frame holds.
pub async fn close(ws: &mut WebSocket, socket: &'static str, close: Close) {
    metrics::counter!(SOCKET_CLOSES, "socket" => socket, "code" => close.code.to_string()).increment(1);
    let mut reason = close.reason;
    if reason.len() > 123 {
        let mut cut = 123;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
    }
    let frame = CloseFrame { code: close.code, reason: reason.into() };
    if ws.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_LINGER, async {
        while let Some(Ok(message)) = ws.recv().await {
            if let Message::Close(_) = message {
                break;
            }
        }
    })
    .await;
}

/// The close for a read error: 1009 for a frame tungstenite refused as far over its limit
/// (before we see it), None when the connection just broke.
pub fn read_error(error: &axum::Error, max_bytes: usize) -> Option<Close> {
    let text = error.to_string();
    (text.contains("too long") || text.contains("too big") || text.contains("Space limit"))
        .then(|| Close::new(TOO_BIG, format!("frame exceeds {max_bytes} bytes")))
}

/// What a received frame means to a JSON socket.
pub enum Incoming<T> {
    Frame(T),
    /// Pings, pongs: nothing to do.
    Nothing,
    /// The peer closed or the connection broke.
    Gone,
}

/// Checks and parses one received frame.
pub fn parse<T: DeserializeOwned>(
    received: Option<Result<Message, axum::Error>>,
    max_bytes: usize,
) -> Result<Incoming<T>, Close> {
    let message = match received {
        None | Some(Ok(Message::Close(_))) => return Ok(Incoming::Gone),
        Some(Err(error)) => return read_error(&error, max_bytes).map_or(Ok(Incoming::Gone), Err),
        Some(Ok(message)) => message,
    };
    match message {
        Message::Text(text) => {
            if text.len() > max_bytes {
                return Err(Close::new(TOO_BIG, format!("frame exceeds {max_bytes} bytes")));
            }
            serde_json::from_str(text.as_str())
                .map(Incoming::Frame)
                .map_err(|e| Close::new(BAD_MESSAGE, format!("malformed JSON: {e}")))
        }
        Message::Binary(_) => Err(Close::new(UNSUPPORTED_DATA, "binary frames are not accepted")),
        _ => Ok(Incoming::Nothing),
    }
}

/// Sends one JSON frame.
pub async fn send<T: Serialize>(ws: &mut WebSocket, frame: &T) -> Result<(), axum::Error> {
    let text = serde_json::to_string(frame).expect("frames serialize");
    ws.send(Message::Text(text.into())).await
}

/// Counts an open socket in the connections gauge while it lives.
pub struct OpenSocket(&'static str);

impl OpenSocket {
    pub fn new(socket: &'static str) -> OpenSocket {
        metrics::gauge!(SOCKETS, "socket" => socket).increment(1.0);
        OpenSocket(socket)
    }
}

impl Drop for OpenSocket {
    fn drop(&mut self) {
        metrics::gauge!(SOCKETS, "socket" => self.0).decrement(1.0);
    }
}
