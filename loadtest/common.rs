//! What the two load generators share: `hark-loadtest` (chat.rs) and `hark-speech-loadtest`
//! (speech.rs).
//!
//! Why it exists: both drive a running `hark serve` over its real sockets and report the same
//! kind of figures, so they need the same pieces: the supervisor socket's connect (bearer token,
//! handshake timeout), reading a socket until it ends and saying why, the process's CPU time from
//! /proc, nearest-rank percentiles, the runtime and the JSON report file. This file holds the one
//! copy of each. It is not a crate of its own: each binary includes it with
//! `#[path = "common.rs"] mod common;`, so each has its own copy of what it uses and neither
//! depends on the other.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use futures_util::{Stream, StreamExt};
use serde_json::json;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long opening one socket may take: from TCP connect to the end of the WebSocket handshake
/// (for a widget socket, to its `welcome`).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs `run` on a multi-thread runtime with `threads` workers (default: one per core).
pub fn block_on(threads: Option<usize>, run: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(threads) = threads {
        builder.worker_threads(threads);
    }
    builder.build().context("starting the runtime")?.block_on(run)
}

// ---------------------------------------------------------------------------------------------
// Sockets.

/// Opens the WebSocket at `url` (with `Authorization: Bearer {bearer}` if given) within
/// [`HANDSHAKE_TIMEOUT`]; the error is the reason as the reports print it.
pub async fn connect(url: &str, bearer: Option<&str>) -> Result<Ws, String> {
    let opened = async {
        let mut request = url.into_client_request().map_err(|e| format!("request: {e}"))?;
        if let Some(token) = bearer {
            let value =
                format!("Bearer {token}").parse().map_err(|_| "token is not a valid header value".to_string())?;
            request.headers_mut().insert("authorization", value);
        }
        let config = WebSocketConfig::default().write_buffer_size(0);
        let (ws, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        Ok(ws)
    };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, opened).await {
        Ok(opened) => opened,
        Err(_) => Err("connect timeout".into()),
    }
}

/// Opens a supervisor socket: `{base_url}/v1/supervise` with the admin bearer `token`.
pub async fn connect_supervisor(base_url: &str, token: &str) -> Result<Ws, String> {
    connect(&format!("{}/v1/supervise", base_url.trim_end_matches('/')), Some(token)).await
}

/// The next text frame of a socket (other frames are skipped), or why the socket ended:
/// "connection closed", "error: …" or "close CODE REASON". Cancel-safe.
pub async fn next_text<S>(stream: &mut S) -> Result<Utf8Bytes, String>
where
    S: Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match stream.next().await {
            None => return Err("connection closed".into()),
            Some(Err(e)) => return Err(format!("error: {e}")),
            Some(Ok(Message::Close(frame))) => return Err(close_text(frame)),
            Some(Ok(Message::Text(text))) => return Ok(text),
            Some(Ok(_)) => {}
        }
    }
}

/// [`next_text`], unless `cancel` fires first: then `None`.
pub async fn next_text_or_cancelled<S>(cancel: &CancellationToken, stream: &mut S) -> Option<Result<Utf8Bytes, String>>
where
    S: Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    tokio::select! {
        biased;
        _ = cancel.cancelled() => None,
        text = next_text(stream) => Some(text),
    }
}

/// Reads a socket (and so answers its pings) until it ends; returns why, as [`next_text`] says it.
pub async fn until_ended<S>(stream: &mut S) -> String
where
    S: Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        if let Err(reason) = next_text(stream).await {
            return reason;
        }
    }
}

/// A close frame as the reports print it: "close CODE REASON".
pub fn close_text(frame: Option<CloseFrame>) -> String {
    match frame {
        Some(f) => format!("close {} {}", u16::from(f.code), f.reason.as_str()),
        None => "close (no code)".into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Processes, read from /proc.

/// User + system CPU seconds of a process ("self" or a PID; clock ticks at the usual 100 Hz).
pub fn cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the ")" that ends the command name: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

// ---------------------------------------------------------------------------------------------
// Figures.

/// µs, saturated at `u32::MAX` (a little over an hour): samples are stored as u32.
pub fn micros_u32(us: u64) -> u32 {
    us.min(u32::MAX as u64) as u32
}

/// How a report shows percentiles: which ones, to how many decimals of a millisecond.
#[derive(Debug, Clone, Copy)]
pub struct Shown {
    /// The percentiles named before the max, in order: any of 50, 90, 95 and 99.
    pub percents: &'static [u8],
    /// Decimals of the milliseconds in [`Percentiles::line`].
    pub decimals: usize,
    /// The JSON of no samples is `{"samples": 0}` alone (otherwise every figure, as 0).
    pub bare_when_empty: bool,
}

/// Nearest-rank percentiles, in milliseconds, of samples in µs.
#[derive(Debug, Clone, Copy)]
pub struct Percentiles {
    pub count: usize,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    shown: Shown,
}

impl Percentiles {
    /// The percentiles of `micros` (negative samples allowed), to be shown as `shown` says.
    pub fn of<T: Copy + Ord + Into<i64>>(mut micros: Vec<T>, shown: Shown) -> Percentiles {
        micros.sort_unstable();
        let rank = |q: f64| match micros.len() {
            0 => 0.0,
            n => micros[((q * n as f64).ceil() as usize).clamp(1, n) - 1].into() as f64 / 1000.0,
        };
        Percentiles {
            count: micros.len(),
            p50: rank(0.50),
            p90: rank(0.90),
            p95: rank(0.95),
            p99: rank(0.99),
            max: rank(1.0),
            shown,
        }
    }

    fn at(&self, percent: u8) -> f64 {
        match percent {
            50 => self.p50,
            90 => self.p90,
            95 => self.p95,
            99 => self.p99,
            _ => unreachable!("no p{percent} is kept"),
        }
    }

    /// "p50 1.23 ms  p90 …  max … ms  (N samples)", or "no samples".
    pub fn line(&self) -> String {
        if self.count == 0 {
            return "no samples".into();
        }
        let decimals = self.shown.decimals;
        let mut line = String::new();
        for &p in self.shown.percents {
            line += &format!("p{p} {:.decimals$} ms  ", self.at(p));
        }
        line + &format!("max {:.decimals$} ms  ({} samples)", self.max, self.count)
    }

    /// `{"samples": N, "p50_ms": …, …, "max_ms": …}`.
    pub fn json(&self) -> serde_json::Value {
        if self.count == 0 && self.shown.bare_when_empty {
            return json!({"samples": 0});
        }
        let mut report = serde_json::Map::new();
        report.insert("samples".into(), json!(self.count));
        for &p in self.shown.percents {
            report.insert(format!("p{p}_ms"), json!(self.at(p)));
        }
        report.insert("max_ms".into(), json!(self.max));
        report.into()
    }
}

/// Writes the JSON report to `path` ("-": standard output).
pub fn write_json(path: &Path, report: &serde_json::Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(report)?;
    if path.as_os_str() == "-" {
        println!("{text}");
    } else {
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
