//! Asterisk AudioSocket (`AudioSocket(uuid,host:port)` in the dialplan, or the `AudioSocket/`
//! channel): a raw TCP stream of frames, each a 1-byte kind, a 2-byte big-endian payload
//! length and the payload. The first frame is the call's id (`0x01`, a 16-byte UUID); then
//! `0x10` carries audio, 8 kHz signed 16-bit little-endian mono (slin) of the one party
//! AudioSocket forks, our customer; `0x03` a DTMF digit; `0x00` the hang-up; `0xff` an error
//! (code `0x01`: the call hung up). TCP has no close reason: on bad input hark just closes.
//!
//! [`Frame::decode`] and [`AudioSocket`] are the pure core; [`start`] is the listener (the
//! `[audiosocket]` settings; an empty `addr` turns it off). Calls go through the same
//! [`Streams`] registry as the WebSocket protocols, so a connection that drops without a
//! hang-up is parked and a new connection with the same UUID within the grace continues it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

use crate::ingest::call::{Party, Role};
use crate::ingest::stream::{Event, StreamStart, Streams, L16};
use crate::metrics::{STREAM_BYTES, STREAM_ERRORS, STREAM_FRAMES};
use crate::server::App;

const SOURCE: &str = "audiosocket";
pub const KIND_HANGUP: u8 = 0x00;
pub const KIND_UUID: u8 = 0x01;
pub const KIND_DTMF: u8 = 0x03;
pub const KIND_AUDIO: u8 = 0x10;
pub const KIND_ERROR: u8 = 0xff;
/// The rate of AudioSocket's slin audio.
const RATE: u32 = 8_000;
/// Error code of an `0xff` frame that means the call hung up.
const ERROR_HANGUP: u8 = 0x01;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AudioSocketError {
    #[error("unknown frame kind {0:#04x}")]
    UnknownKind(u8),
    #[error("UUID frame of {0} bytes, expected 16")]
    BadUuid(usize),
    #[error("expected the UUID frame first")]
    NoUuid,
    #[error("a second UUID frame")]
    SecondUuid,
    #[error("Asterisk reported error {0:#04x}")]
    Remote(u8),
}

/// One frame, borrowed from its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    Hangup,
    Uuid(uuid::Uuid),
    Dtmf(u8),
    Audio(&'a [u8]),
    Error(Option<u8>),
}

/// The kind and payload length of a frame header.
pub fn header(bytes: [u8; 3]) -> (u8, usize) {
    (bytes[0], usize::from(u16::from_be_bytes([bytes[1], bytes[2]])))
}

impl<'a> Frame<'a> {
    pub fn decode(kind: u8, payload: &'a [u8]) -> Result<Frame<'a>, AudioSocketError> {
        Ok(match kind {
            KIND_HANGUP => Frame::Hangup,
            KIND_UUID => {
                let bytes: [u8; 16] = payload.try_into().map_err(|_| AudioSocketError::BadUuid(payload.len()))?;
                Frame::Uuid(uuid::Uuid::from_bytes(bytes))
            }
            KIND_DTMF => Frame::Dtmf(payload.first().copied().unwrap_or(b'?')),
            KIND_AUDIO => Frame::Audio(payload),
            KIND_ERROR => Frame::Error(payload.first().copied()),
            other => return Err(AudioSocketError::UnknownKind(other)),
        })
    }

    /// The frame as bytes on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let (kind, payload): (u8, Vec<u8>) = match self {
            Frame::Hangup => (KIND_HANGUP, Vec::new()),
            Frame::Uuid(id) => (KIND_UUID, id.as_bytes().to_vec()),
            Frame::Dtmf(d) => (KIND_DTMF, vec![*d]),
            Frame::Audio(a) => (KIND_AUDIO, a.to_vec()),
            Frame::Error(code) => (KIND_ERROR, code.iter().copied().collect()),
        };
        let mut bytes = vec![kind];
        bytes.extend_from_slice(&(payload.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
        bytes.extend_from_slice(&payload);
        bytes
    }
}

/// The pure core of one connection: frames in, stream events out.
#[derive(Debug, Default)]
pub struct AudioSocket {
    pcm: Option<L16>,
}

impl AudioSocket {
    pub fn new() -> AudioSocket {
        AudioSocket::default()
    }

    pub fn handle(&mut self, frame: Frame<'_>, out: &mut Vec<Event>) -> Result<(), AudioSocketError> {
        match (frame, self.pcm.as_mut()) {
            (Frame::Uuid(id), None) => {
                self.pcm = Some(L16::new(vec![Role::Customer]));
                out.push(Event::Start(Box::new(StreamStart {
                    call_id: id.hyphenated().to_string(),
                    from: Party::default(),
                    to: Party::default(),
                    trunk: None,
                    codec: format!("L16/{RATE}"),
                    sample_rate: RATE,
                    speakers: vec![Role::Customer],
                    token: None,
                })));
            }
            (Frame::Uuid(_), Some(_)) => return Err(AudioSocketError::SecondUuid),
            (Frame::Hangup | Frame::Error(Some(ERROR_HANGUP)), _) => out.push(Event::Stop),
            (Frame::Error(code), _) => return Err(AudioSocketError::Remote(code.unwrap_or(0))),
            (_, None) => return Err(AudioSocketError::NoUuid),
            (Frame::Audio(data), Some(pcm)) => pcm.push(data, out),
            (Frame::Dtmf(digit), Some(_)) => out.push(Event::Dtmf { role: Role::Customer, digit: char::from(digit) }),
        }
        Ok(())
    }
}

/// Binds `[audiosocket] addr` (unless empty) and serves connections until shutdown.
pub async fn start(app: Arc<App>) -> Result<(), crate::server::StartError> {
    let addr = app.config.audiosocket.addr.trim();
    if addr.is_empty() {
        return Ok(());
    }
    let bind = |source| crate::server::StartError::AudioSocket { addr: addr.to_string(), source };
    let listener = TcpListener::bind(addr).await.map_err(bind)?;
    tracing::info!(addr = %listener.local_addr().map_err(bind)?, "AudioSocket is listening");
    tokio::spawn(serve(app, listener));
    Ok(())
}

async fn serve(app: Arc<App>, listener: TcpListener) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = app.shutdown.cancelled() => return,
        };
        match accepted {
            Ok((tcp, peer)) if app.config.audiosocket.allow.iter().any(|net| net.contains(&peer.ip())) => {
                let _ = tcp.set_nodelay(true);
                tokio::spawn(connection(app.clone(), tcp, peer));
            }
            Ok((_, peer)) => {
                metrics::counter!(STREAM_ERRORS, "protocol" => SOURCE).increment(1);
                tracing::warn!(%peer, "AudioSocket connection from outside [audiosocket] allow refused");
            }
            Err(error) => {
                tracing::warn!(%error, "AudioSocket accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Why a connection ended.
enum End {
    /// Hang-up frame: the call is over.
    Stop,
    /// EOF, a broken connection, a timeout or bad input: the call waits for a reconnect.
    Lost,
    Shutdown,
}

/// Reads one frame into `payload`; None at EOF or on a read error.
async fn read_frame(tcp: &mut TcpStream, payload: &mut Vec<u8>) -> Option<u8> {
    let mut head = [0u8; 3];
    tcp.read_exact(&mut head).await.ok()?;
    let (kind, len) = header(head);
    payload.resize(len, 0);
    tcp.read_exact(payload).await.ok()?;
    metrics::counter!(STREAM_FRAMES, "protocol" => SOURCE).increment(1);
    metrics::counter!(STREAM_BYTES, "protocol" => SOURCE).increment(3 + len as u64);
    Some(kind)
}

async fn connection(app: Arc<App>, mut tcp: TcpStream, peer: SocketAddr) {
    let _call = app.calls.token();
    let config = &app.config.streams;
    let mut core = AudioSocket::new();
    let mut payload = Vec::new();
    let mut events = Vec::new();
    let mut attached = None;
    let end = loop {
        let limit =
            Duration::from_secs(if attached.is_some() { config.media_timeout_secs } else { config.start_timeout_secs });
        let kind = tokio::select! {
            read = tokio::time::timeout(limit, read_frame(&mut tcp, &mut payload)) => read,
            _ = app.shutdown.cancelled() => break End::Shutdown,
        };
        let Ok(Some(kind)) = kind else { break End::Lost };
        if let Err(error) = Frame::decode(kind, &payload).and_then(|frame| core.handle(frame, &mut events)) {
            metrics::counter!(STREAM_ERRORS, "protocol" => SOURCE).increment(1);
            tracing::warn!(%peer, %error, "AudioSocket connection closed");
            break End::Lost;
        }
        let mut stop = false;
        for event in events.drain(..) {
            match (event, attached.as_mut()) {
                (Event::Start(start), None) => {
                    match app.streams.attach(&app, SOURCE, &start, &peer.ip().to_string()).await {
                        Ok(a) => attached = Some(a),
                        Err(close) => {
                            tracing::warn!(%peer, reason = %close.reason, "AudioSocket call refused");
                            return;
                        }
                    }
                }
                (Event::Stop, _) => stop = true,
                (event, Some(a)) => a.call.handle(event).await,
                (_, None) => {}
            }
        }
        if stop {
            break End::Stop;
        }
    };
    if let Some(attached) = attached {
        let cause = match end {
            End::Stop => Some(crate::ingest::stream::STOPPED),
            End::Lost => None,
            End::Shutdown => Some(crate::ingest::stream::INTERRUPTED),
        };
        Streams::detach(&app, attached, cause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(core: &mut AudioSocket, bytes: &[u8]) -> Result<Vec<Event>, AudioSocketError> {
        let (kind, len) = header([bytes[0], bytes[1], bytes[2]]);
        assert_eq!(len, bytes.len() - 3);
        let mut out = Vec::new();
        core.handle(Frame::decode(kind, &bytes[3..])?, &mut out)?;
        Ok(out)
    }

    #[test]
    fn uuid_audio_hangup() {
        let id = uuid::Uuid::parse_str("a1b2c3d4-0000-4000-8000-000000000001").unwrap();
        let mut core = AudioSocket::new();
        let audio: Vec<u8> = [100i16, -100, 7].iter().flat_map(|s| s.to_le_bytes()).collect();
        assert_eq!(run(&mut core, &Frame::Audio(&audio).encode()), Err(AudioSocketError::NoUuid));
        let out = run(&mut core, &Frame::Uuid(id).encode()).unwrap();
        let Event::Start(start) = &out[0] else { panic!("start") };
        assert_eq!(start.call_id, "a1b2c3d4-0000-4000-8000-000000000001");
        assert_eq!((start.sample_rate, start.speakers.as_slice()), (8_000, &[Role::Customer][..]));
        assert_eq!(
            run(&mut core, &Frame::Audio(&audio).encode()).unwrap(),
            vec![Event::Audio { role: Role::Customer, at: 0, samples: vec![100, -100, 7] }]
        );
        let out = run(&mut core, &Frame::Audio(&audio).encode()).unwrap();
        assert_eq!(out, vec![Event::Audio { role: Role::Customer, at: 3, samples: vec![100, -100, 7] }]);
        assert_eq!(
            run(&mut core, &Frame::Dtmf(b'#').encode()).unwrap(),
            vec![Event::Dtmf { role: Role::Customer, digit: '#' }]
        );
        assert_eq!(run(&mut core, &Frame::Uuid(id).encode()), Err(AudioSocketError::SecondUuid));
        assert_eq!(run(&mut core, &Frame::Hangup.encode()).unwrap(), vec![Event::Stop]);
        assert_eq!(run(&mut core, &Frame::Error(Some(1)).encode()).unwrap(), vec![Event::Stop]);
        assert_eq!(run(&mut core, &Frame::Error(Some(3)).encode()), Err(AudioSocketError::Remote(3)));
    }

    #[test]
    fn malformed_frames_are_errors() {
        assert_eq!(Frame::decode(0x01, &[1, 2, 3]), Err(AudioSocketError::BadUuid(3)));
        assert_eq!(Frame::decode(0x42, &[]), Err(AudioSocketError::UnknownKind(0x42)));
        assert_eq!(header([0x10, 0x01, 0x40]), (0x10, 320));
        assert_eq!(Frame::decode(0xff, &[]), Ok(Frame::Error(None)));
    }
}
