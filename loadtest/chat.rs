//! `hark-loadtest`: a load generator for hark's chat path.
//!
//! Why it exists: the chat targets — 10,000 idle widget sockets, 2,000 visitor messages/s,
//! widget → supervisor delivery p99 ≤ 5 ms, ≤ 16 KB of server memory per idle session — are
//! claims about a running server under load, which no unit test or criterion bench can check.
//! This tool drives a running `hark serve` over its real sockets (`/v1/chat`, `/v1/supervise`,
//! see docs/PROTOCOLS.md) and prints the figures docs/PERFORMANCE.md reports, together with a
//! low-rate baseline measured in the same run, so every figure comes with its ratio.
//!
//! One run, in order:
//!
//! 1. reads the server's RSS (`--server-pid`) with no sessions of ours;
//! 2. opens `--active` widget sockets (hello → welcome) and `--supervisors` supervisor sockets,
//!    each of which `watch`es every active session;
//! 3. baseline: `--baseline-rate` visitor messages/s for `--baseline-secs`;
//! 4. opens `--idle` widget sockets that say hello and then stay connected, reads the RSS again
//!    after `--settle` seconds: RSS growth / idle sockets = server memory per idle session;
//! 5. main: `--rate` visitor messages/s, paced evenly over the active sockets, for `--warmup`
//!    (not measured) plus `--duration` seconds; then waits up to `--drain` seconds for stragglers
//!    and reads the RSS a last time.
//!
//! Measured per visitor message: the ack latency (visitor sends `message` → visitor receives
//! its `ack`) and the delivery latency (visitor sends `message` → a supervisor receives the
//! matching `message` frame, matched by `session_id` + `client_id`; one sample per supervisor).
//! The send time travels inside the `client_id`, so no shared table is needed; both ends are in
//! this process and read the same monotonic clock. Latencies are measured from the moment the
//! frame is actually handed to the socket; "send lag" reports how far behind its schedule the
//! generator itself fell (a large lag means the generator, not the server, was the limit).
//!
//! The server limits each widget socket to `chat.rate_per_sec` messages/s (default 5, burst 20):
//! keep `--rate / --active` at or under it, or raise HARK_CHAT_RATE_PER_SEC for the run.
//! Example (see docs/PERFORMANCE.md for the full procedure):
//!
//! ```text
//! ulimit -n 20000
//! hark-loadtest --url ws://127.0.0.1:18090 --token loadtok --server-pid $PID \
//!     --idle 10000 --active 500 --rate 2000 --supervisors 2 --duration 60 --json out.json
//! ```

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

#[path = "common.rs"]
mod common;
use common::{close_text, cpu_secs, micros_u32, Percentiles, Shown, Ws, HANDSHAKE_TIMEOUT};

#[derive(Parser, Debug, Clone)]
#[command(
    name = "hark-loadtest",
    version,
    about = "Load generator for hark's widget and supervisor sockets: idle sockets, paced visitor \
             messages, widget → supervisor delivery latency, server memory per idle session"
)]
struct Args {
    /// Base URL of the hark server (the sockets are URL/v1/chat and URL/v1/supervise).
    #[arg(long, default_value = "ws://127.0.0.1:8080")]
    url: String,
    /// Site key the widget sockets say hello with.
    #[arg(long, default_value = "demo")]
    site_key: String,
    /// Bearer token of the supervisor sockets (needed when --supervisors > 0).
    #[arg(long, env = "HARK_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Idle widget sockets: hello, then stay connected without sending.
    #[arg(long, default_value_t = 0)]
    idle: usize,
    /// Widget sockets that send visitor messages.
    #[arg(long, default_value_t = 10)]
    active: usize,
    /// Visitor messages per second in the main phase, in total over the active sockets.
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Supervisor sockets; each watches every active session.
    #[arg(long, default_value_t = 1)]
    supervisors: usize,
    /// Measured seconds of the main phase.
    #[arg(long, default_value_t = 30.0)]
    duration: f64,
    /// Seconds at the main rate before measuring starts (not counted in the latencies).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Visitor messages per second of the baseline phase (0: no baseline).
    #[arg(long, default_value_t = 10.0)]
    baseline_rate: f64,
    /// Seconds of the baseline phase.
    #[arg(long, default_value_t = 20.0)]
    baseline_secs: f64,
    /// PID of the hark server, to read its VmRSS and CPU time from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Handshakes in flight at once while opening sockets.
    #[arg(long, default_value_t = 100)]
    connect_concurrency: usize,
    /// Most new sockets per second while opening them (0: as fast as --connect-concurrency allows).
    #[arg(long, default_value_t = 0.0)]
    connect_rate: f64,
    /// Seconds to wait after the idle sockets are up before reading the RSS.
    #[arg(long, default_value_t = 2.0)]
    settle: f64,
    /// Longest wait after the last message for acks and deliveries still on their way.
    #[arg(long, default_value_t = 5.0)]
    drain: f64,
    /// The server's per-socket message rate limit (chat.rate_per_sec), only to warn when the
    /// pacing would trip it.
    #[arg(long, default_value_t = 5.0)]
    server_rate_limit: f64,
    /// Text of every visitor message (the FAQ bot answers each).
    #[arg(long, default_value = "What are your opening hours?")]
    text: String,
    /// Also write the results as JSON to this file ("-": standard output).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Worker threads of the generator's runtime (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    common::block_on(args.threads, run(args))
}

/// Labels of the phases, carried as the first character of each `client_id`.
const BASELINE: u8 = b'b';
const WARMUP: u8 = b'w';
const MAIN: u8 = b'm';

/// A pacing order for the active sockets: send at `rate` in total from `start` until `end`;
/// messages scheduled before `measure_from` carry `warm_label`, the later ones `label`.
#[derive(Clone, Copy, Debug)]
struct Pace {
    rate: f64,
    start: Instant,
    measure_from: Instant,
    end: Instant,
    warm_label: u8,
    label: u8,
}

/// What every task shares: the clock origin, the stop signal and live counters.
struct Shared {
    origin: Instant,
    cancel: CancellationToken,
    sent: AtomicU64,
    acked: AtomicU64,
    delivered: AtomicU64,
    idle_lost: AtomicU64,
}

impl Shared {
    fn micros(&self) -> u64 {
        self.origin.elapsed().as_micros() as u64
    }
}

fn ws_config() -> WebSocketConfig {
    // Small read buffers: 10,000 sockets of the default 128 KiB would cost the generator
    // memory for nothing. Writes go out at once.
    WebSocketConfig::default().read_buffer_size(8 * 1024).write_buffer_size(0).max_write_buffer_size(1 << 20)
}

// ---------------------------------------------------------------------------------------------
// Frames, parsed only as far as the tool needs them.

#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    session_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    client_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    author: Option<FrameAuthor<'a>>,
    #[serde(default, rename = "ref", borrow)]
    reference: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    code: Option<Cow<'a, str>>,
    #[serde(default)]
    cards: Option<Vec<serde::de::IgnoredAny>>,
}

#[derive(Deserialize)]
struct FrameAuthor<'a> {
    #[serde(borrow)]
    role: Cow<'a, str>,
}

/// `{label}{socket:x}.{n:x}.{sent_us:x}`: the phase, the active socket, its message number and
/// the send time in µs since the generator's clock origin.
fn client_id(label: u8, socket: usize, n: u64, sent_us: u64) -> String {
    format!("{}{socket:x}.{n:x}.{sent_us:x}", label as char)
}

fn parse_client_id(id: &str) -> Option<(u8, usize, u64)> {
    let label = *id.as_bytes().first()?;
    let mut parts = id[1..].split('.');
    let socket = usize::from_str_radix(parts.next()?, 16).ok()?;
    let _n = parts.next()?;
    let sent = u64::from_str_radix(parts.next()?, 16).ok()?;
    Some((label, socket, sent))
}

// ---------------------------------------------------------------------------------------------
// Widget sockets.

/// Connects to /v1/chat, says hello and waits for `welcome`; returns the socket, the session id
/// and the time it took.
async fn open_widget(url: &str, hello: &str) -> Result<(Ws, String, Duration), String> {
    let started = Instant::now();
    let attempt = async {
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(ws_config()), true)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        ws.send(Message::text(hello)).await.map_err(|e| format!("send hello: {e}"))?;
        loop {
            match ws.next().await {
                None => return Err("closed before welcome".to_string()),
                Some(Err(e)) => return Err(format!("before welcome: {e}")),
                Some(Ok(Message::Close(frame))) => return Err(format!("before welcome: {}", close_text(frame))),
                Some(Ok(Message::Text(text))) => {
                    let frame: Frame = serde_json::from_str(text.as_str()).map_err(|e| format!("bad frame: {e}"))?;
                    if frame.kind == "welcome" {
                        let id = frame.session_id.ok_or("welcome without session_id")?.into_owned();
                        return Ok((ws, id));
                    }
                }
                Some(Ok(_)) => {}
            }
        }
    };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, attempt).await {
        Ok(Ok((ws, id))) => Ok((ws, id, started.elapsed())),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("handshake timeout".into()),
    }
}

/// An idle visitor: stays connected, reads whatever comes, until the run ends.
async fn idle_socket(mut ws: Ws, shared: Arc<Shared>) -> Option<String> {
    let lost = tokio::select! {
        biased;
        _ = shared.cancel.cancelled() => return None,
        lost = common::until_ended(&mut ws) => lost,
    };
    shared.idle_lost.fetch_add(1, Ordering::Relaxed);
    Some(lost)
}

#[derive(Default)]
struct ActiveStats {
    sent: BTreeMap<u8, u64>,
    /// (label, µs) per ack.
    acks: Vec<(u8, u32)>,
    /// µs the generator sent main-phase messages behind their schedule.
    send_lag: Vec<u32>,
    bot_messages: u64,
    ended: Option<String>,
}

/// An active visitor: sends paced messages when told to, and times its acks.
async fn active_socket(
    index: usize,
    count: usize,
    ws: Ws,
    shared: Arc<Shared>,
    mut pace: watch::Receiver<Option<Pace>>,
    text_json: Arc<str>,
) -> ActiveStats {
    let mut stats = ActiveStats::default();
    let (mut sink, mut stream) = ws.split();
    // (when, period, order)
    let mut next: Option<(Instant, Duration, Pace)> = None;
    let mut n: u64 = 0;
    loop {
        let due = next.map(|(at, ..)| at);
        tokio::select! {
            _ = shared.cancel.cancelled() => break,
            changed = pace.changed() => {
                if changed.is_err() {
                    break;
                }
                next = pace.borrow_and_update().and_then(|p| {
                    let period = Duration::from_secs_f64(count as f64 / p.rate);
                    let first = p.start + period.mul_f64(index as f64 / count as f64);
                    (first < p.end).then_some((first, period, p))
                });
            }
            _ = sleep_until(due) => {
                let (at, period, p) = next.take().expect("a send is due");
                let label = if at < p.measure_from { p.warm_label } else { p.label };
                let now = Instant::now();
                if label == MAIN {
                    stats.send_lag.push(now.saturating_duration_since(at).as_micros().min(u32::MAX as u128) as u32);
                }
                let id = client_id(label, index, n, shared.micros());
                let frame = format!(r#"{{"type":"message","client_id":"{id}","text":{text_json}}}"#);
                if let Err(e) = sink.send(Message::text(frame)).await {
                    stats.ended = Some(format!("send: {e}"));
                    break;
                }
                n += 1;
                *stats.sent.entry(label).or_default() += 1;
                shared.sent.fetch_add(1, Ordering::Relaxed);
                let following = at + period;
                if following < p.end {
                    next = Some((following, period, p));
                }
            }
            text = common::next_text(&mut stream) => match text {
                Err(reason) => { stats.ended = Some(reason); break }
                Ok(text) => {
                    let received = shared.micros();
                    let Ok(frame) = serde_json::from_str::<Frame>(text.as_str()) else { continue };
                    match &*frame.kind {
                        "ack" => {
                            if let Some((label, _, sent)) = frame.client_id.as_deref().and_then(parse_client_id) {
                                stats.acks.push((label, micros_u32(received.saturating_sub(sent))));
                                shared.acked.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        "message" if frame.author.as_ref().is_some_and(|a| a.role == "bot") => {
                            stats.bot_messages += 1;
                        }
                        _ => {}
                    }
                }
            },
        }
    }
    stats
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

// ---------------------------------------------------------------------------------------------
// Supervisor sockets.

#[derive(Default)]
struct SupervisorStats {
    /// (label, µs) per delivered visitor message.
    deliveries: Vec<(u8, u32)>,
    /// Visitor messages whose session_id did not belong to the client_id's socket.
    mismatched: u64,
    bot_messages: u64,
    cards: u64,
    /// Snapshots after the first: the server re-sends one when the socket fell behind its feed.
    resyncs: u64,
    errors: u64,
    snapshot_cards: usize,
    ended: Option<String>,
}

/// Connects to /v1/supervise and watches every session in `sessions` (the session of each
/// active socket, by index); then reports ready and times every visitor message it is sent.
async fn supervisor(
    base_url: String,
    token: String,
    sessions: Arc<Vec<Option<String>>>,
    shared: Arc<Shared>,
    ready: mpsc::Sender<Result<usize, String>>,
) -> SupervisorStats {
    let mut stats = SupervisorStats::default();
    let ws = match common::connect_supervisor(&base_url, &token).await {
        Ok(ws) => ws,
        Err(e) => {
            let _ = ready.send(Err(e)).await;
            return stats;
        }
    };
    // Watch every active session, pipelined from a task of its own (so that neither side
    // waits on the other's full buffers); ready once every ref is answered.
    let (mut sink, mut stream) = ws.split();
    let index: HashMap<String, usize> =
        sessions.iter().enumerate().filter_map(|(i, s)| s.clone().map(|s| (s, i))).collect();
    let mut unanswered = index.len();
    let watches: Vec<String> =
        index.iter().map(|(id, i)| format!(r#"{{"type":"watch","session_id":"{id}","ref":"{i}"}}"#)).collect();
    let cancel = shared.cancel.clone();
    let _sender = tokio::spawn(async move {
        for watch in watches {
            if sink.send(Message::text(watch)).await.is_err() {
                return;
            }
        }
        // Keep the socket open until the run ends.
        cancel.cancelled().await;
        let _ = sink.close().await;
    });
    let mut snapshots = 0u64;
    let mut ready = Some(ready);
    if unanswered == 0 {
        let _ = ready.take().expect("once").send(Ok(0)).await;
    }
    loop {
        let text = match common::next_text_or_cancelled(&shared.cancel, &mut stream).await {
            None => break,
            Some(Ok(text)) => text,
            Some(Err(reason)) => {
                stats.ended = Some(reason);
                break;
            }
        };
        let received = shared.micros();
        let Ok(frame) = serde_json::from_str::<Frame>(text.as_str()) else {
            stats.errors += 1;
            continue;
        };
        match &*frame.kind {
            "message" => match frame.author.as_ref().map(|a| &*a.role) {
                Some("visitor") => {
                    let Some((label, socket, sent)) = frame.client_id.as_deref().and_then(parse_client_id) else {
                        continue;
                    };
                    let session = frame.session_id.as_deref().unwrap_or("");
                    if index.get(session) != Some(&socket) {
                        stats.mismatched += 1;
                        continue;
                    }
                    stats.deliveries.push((label, micros_u32(received.saturating_sub(sent))));
                    shared.delivered.fetch_add(1, Ordering::Relaxed);
                }
                Some("bot") => stats.bot_messages += 1,
                _ => {}
            },
            "card" => stats.cards += 1,
            "snapshot" => {
                snapshots += 1;
                if snapshots == 1 {
                    stats.snapshot_cards = frame.cards.map_or(0, |c| c.len());
                } else {
                    stats.resyncs += 1;
                }
            }
            "ok" | "error" => {
                if frame.kind == "error" {
                    stats.errors += 1;
                    eprintln!("supervisor: error {:?} for ref {:?}", frame.code, frame.reference);
                }
                if frame.reference.is_some() && unanswered > 0 {
                    unanswered -= 1;
                    if unanswered == 0 {
                        let _ = ready.take().expect("once").send(Ok(stats.snapshot_cards)).await;
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(ready) = ready {
        let _ = ready.send(Err(stats.ended.clone().unwrap_or_else(|| "stopped before ready".into()))).await;
    }
    stats
}

// ---------------------------------------------------------------------------------------------
// The server process, read from /proc.

fn rss_bytes(pid: Option<u32>) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

// ---------------------------------------------------------------------------------------------
// Figures.

/// Percentiles of µs samples as this report shows them: p50, p90, p99 and max to 0.01 ms
/// (chat latencies are a few ms), every figure in the JSON even with no samples.
fn percentiles(micros: Vec<u32>) -> Percentiles {
    Percentiles::of(micros, Shown { percents: &[50, 90, 99], decimals: 2, bare_when_empty: false })
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

/// Opens `count` widget sockets, `concurrency` handshakes at a time and at most `rate` per
/// second; each opened socket is handed to `serve`, which runs it as a task in `tasks`.
/// Returns the handshake times, the session ids (None where it failed) and the failures.
async fn open_widgets<T: Send + 'static, F, Fut>(
    args: &Args,
    label: &str,
    count: usize,
    tasks: &mut JoinSet<Option<T>>,
    serve: F,
) -> (Vec<u32>, Vec<Option<String>>, BTreeMap<String, usize>, Duration)
where
    F: Fn(usize, Ws) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let url = format!("{}/v1/chat", args.url.trim_end_matches('/'));
    let hello: Arc<str> = json!({"type": "hello", "site_key": args.site_key}).to_string().into();
    let permits = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let (results, mut opened) = mpsc::channel::<(usize, Result<(String, Duration), String>)>(1024);
    let started = Instant::now();
    for i in 0..count {
        let (url, hello, permits, results, serve) =
            (url.clone(), hello.clone(), permits.clone(), results.clone(), serve.clone());
        let not_before =
            (args.connect_rate > 0.0).then(|| started + Duration::from_secs_f64(i as f64 / args.connect_rate));
        tasks.spawn(async move {
            if let Some(at) = not_before {
                tokio::time::sleep_until(at.into()).await;
            }
            let permit = permits.acquire_owned().await.expect("semaphore is never closed");
            let opened = open_widget(&url, &hello).await;
            drop(permit);
            match opened {
                Ok((ws, id, took)) => {
                    let _ = results.send((i, Ok((id, took)))).await;
                    Some(serve(i, ws).await)
                }
                Err(e) => {
                    let _ = results.send((i, Err(e))).await;
                    None
                }
            }
        });
    }
    drop(results);
    let mut times = Vec::with_capacity(count);
    let mut ids = vec![None; count];
    let mut failures = BTreeMap::new();
    let mut done = 0usize;
    let step = (count / 10).max(1000);
    while done < count {
        let Some((i, result)) = opened.recv().await else {
            break;
        };
        done += 1;
        match result {
            Ok((id, took)) => {
                times.push(micros_u32(took.as_micros() as u64));
                ids[i] = Some(id);
            }
            Err(e) => *failures.entry(e).or_default() += 1,
        }
        if done % step == 0 && done < count {
            eprintln!("  {label}: {done}/{count} handshakes done ({:.1} s)", started.elapsed().as_secs_f64());
        }
    }
    (times, ids, failures, started.elapsed())
}

async fn run(args: Args) -> anyhow::Result<()> {
    if args.active > 0 && (args.rate.is_nan() || args.rate <= 0.0) {
        bail!("--rate must be > 0");
    }
    if args.supervisors > 0 && args.token.is_none() {
        bail!("--supervisors needs --token (or HARK_ADMIN_TOKEN)");
    }
    if args.active > 0 {
        let per_socket = args.rate / args.active as f64;
        if per_socket > args.server_rate_limit {
            eprintln!(
                "warning: {per_socket:.2} messages/s per active socket is over the server's limit of {} \
                 (chat.rate_per_sec): use more --active sockets or raise HARK_CHAT_RATE_PER_SEC",
                args.server_rate_limit
            );
        }
    }
    let shared = Arc::new(Shared {
        origin: Instant::now(),
        cancel: CancellationToken::new(),
        sent: AtomicU64::new(0),
        acked: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        idle_lost: AtomicU64::new(0),
    });
    let pid = args.server_pid;
    let pid_text = pid.map(|p| p.to_string());
    let server_cpu = || pid_text.as_deref().and_then(cpu_secs);
    let own_cpu = || cpu_secs("self");

    let rss_before = rss_bytes(pid);
    if pid.is_some() && rss_before.is_none() {
        bail!("cannot read /proc/{}/status", pid.unwrap_or_default());
    }
    eprintln!(
        "hark-loadtest: {} site {:?}; server RSS before: {}",
        args.url,
        args.site_key,
        rss_before.map_or("-".into(), mib)
    );

    // Active widget sockets.
    let (pace_tx, pace_rx) = watch::channel::<Option<Pace>>(None);
    let text_json: Arc<str> = serde_json::to_string(&args.text)?.into();
    let mut actives = JoinSet::new();
    let serve_active = {
        let (shared, text_json, count) = (shared.clone(), text_json.clone(), args.active);
        move |i: usize, ws: Ws| active_socket(i, count, ws, shared.clone(), pace_rx.clone(), text_json.clone())
    };
    let (active_times, active_ids, active_failures, active_took) =
        open_widgets(&args, "active", args.active, &mut actives, serve_active).await;
    let active_opened = active_times.len();
    eprintln!(
        "active sockets: {active_opened} opened, {} failed in {:.1} s",
        args.active - active_opened,
        active_took.as_secs_f64()
    );
    if active_opened < args.active {
        eprintln!("  failures: {active_failures:?}");
    }
    // Session id by active socket index; None where the socket failed to open.
    let sessions: Arc<Vec<Option<String>>> = Arc::new(active_ids);
    let watched = sessions.iter().flatten().count();

    // Supervisor sockets.
    let mut supervisors = JoinSet::new();
    let (ready_tx, mut ready_rx) = mpsc::channel(args.supervisors.max(1));
    for _ in 0..args.supervisors {
        let token = args.token.clone().unwrap_or_default();
        let (url, shared, ready) = (args.url.clone(), shared.clone(), ready_tx.clone());
        supervisors.spawn(supervisor(url, token, sessions.clone(), shared, ready));
    }
    drop(ready_tx);
    let mut supervisors_ready = 0;
    let mut supervisor_failures = BTreeMap::<String, usize>::new();
    for _ in 0..args.supervisors {
        match ready_rx.recv().await {
            Some(Ok(_)) => supervisors_ready += 1,
            Some(Err(e)) => *supervisor_failures.entry(e).or_default() += 1,
            None => break,
        }
    }
    eprintln!(
        "supervisors: {supervisors_ready} watching {} sessions each, {} failed",
        watched,
        args.supervisors - supervisors_ready
    );
    if !supervisor_failures.is_empty() {
        eprintln!("  failures: {supervisor_failures:?}");
    }

    // Baseline phase: a low rate, no idle sockets.
    let sup = supervisors_ready as u64;
    // Waits until every message sent so far is acked and delivered, or `limit` passed.
    let drain = |limit: Duration| {
        let shared = shared.clone();
        async move {
            let until = Instant::now() + limit;
            while Instant::now() < until {
                let sent = shared.sent.load(Ordering::Relaxed);
                if shared.delivered.load(Ordering::Relaxed) >= sent * sup
                    && shared.acked.load(Ordering::Relaxed) >= sent
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let baseline = args.baseline_rate > 0.0 && args.baseline_secs > 0.0 && active_opened > 0;
    if baseline {
        let start = Instant::now() + Duration::from_millis(200);
        let end = start + Duration::from_secs_f64(args.baseline_secs);
        pace_tx.send_replace(Some(Pace {
            rate: args.baseline_rate,
            start,
            measure_from: start,
            end,
            warm_label: BASELINE,
            label: BASELINE,
        }));
        eprintln!("baseline: {} msg/s for {} s", args.baseline_rate, args.baseline_secs);
        tokio::time::sleep_until(end.into()).await;
        drain(Duration::from_secs_f64(args.drain)).await;
        pace_tx.send_replace(None);
    }

    // Idle widget sockets.
    let rss_before_idle = rss_bytes(pid);
    let mut idles = JoinSet::new();
    let serve_idle = {
        let shared = shared.clone();
        move |_: usize, ws: Ws| idle_socket(ws, shared.clone())
    };
    let (idle_times, _, idle_failures, idle_took) =
        open_widgets(&args, "idle", args.idle, &mut idles, serve_idle).await;
    let idle_opened = idle_times.len();
    eprintln!(
        "idle sockets: {idle_opened} opened, {} failed in {:.1} s",
        args.idle - idle_opened,
        idle_took.as_secs_f64()
    );
    if !idle_failures.is_empty() {
        eprintln!("  failures: {idle_failures:?}");
    }
    if args.idle > 0 {
        tokio::time::sleep(Duration::from_secs_f64(args.settle)).await;
    }
    let rss_idle = rss_bytes(pid);

    // Main phase.
    let start = Instant::now() + Duration::from_millis(200);
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let end = measure_from + Duration::from_secs_f64(args.duration);
    let mut main_cpu = (server_cpu(), own_cpu(), Instant::now());
    if active_opened > 0 {
        pace_tx.send_replace(Some(Pace { rate: args.rate, start, measure_from, end, warm_label: WARMUP, label: MAIN }));
        eprintln!("main: {} msg/s for {} s warm-up + {} s", args.rate, args.warmup, args.duration);
        tokio::time::sleep_until(measure_from.into()).await;
        main_cpu = (server_cpu(), own_cpu(), Instant::now());
        let mut last = (shared.sent.load(Ordering::Relaxed), shared.delivered.load(Ordering::Relaxed));
        while Instant::now() + Duration::from_secs(5) < end {
            tokio::time::sleep(Duration::from_secs(5)).await;
            let now = (shared.sent.load(Ordering::Relaxed), shared.delivered.load(Ordering::Relaxed));
            eprintln!(
                "  sent {:.0}/s, delivered {:.0}/s, server RSS {}",
                (now.0 - last.0) as f64 / 5.0,
                (now.1 - last.1) as f64 / 5.0,
                rss_bytes(pid).map_or("-".into(), mib)
            );
            last = now;
        }
        tokio::time::sleep_until(end.into()).await;
    }
    let main_secs = main_cpu.2.elapsed().as_secs_f64();
    let server_cpu_share = match (main_cpu.0, server_cpu()) {
        (Some(a), Some(b)) => Some((b - a) / main_secs),
        _ => None,
    };
    let own_cpu_share = match (main_cpu.1, own_cpu()) {
        (Some(a), Some(b)) => Some((b - a) / main_secs),
        _ => None,
    };
    drain(Duration::from_secs_f64(args.drain)).await;
    let rss_end = rss_bytes(pid);
    let idle_still_open = idle_opened as u64 - shared.idle_lost.load(Ordering::Relaxed);

    // Stop and collect.
    shared.cancel.cancel();
    let mut active_stats = Vec::new();
    while let Some(result) = actives.join_next().await {
        if let Ok(Some(stats)) = result {
            active_stats.push(stats);
        }
    }
    let mut idle_lost = BTreeMap::<String, usize>::new();
    idles.abort_all();
    while let Some(result) = idles.join_next().await {
        if let Ok(Some(Some(reason))) = result {
            *idle_lost.entry(reason).or_default() += 1;
        }
    }
    let mut supervisor_stats = Vec::new();
    while let Some(result) = supervisors.join_next().await {
        if let Ok(stats) = result {
            supervisor_stats.push(stats);
        }
    }

    // Figures.
    let sent = |label: u8| active_stats.iter().map(|s| s.sent.get(&label).copied().unwrap_or(0)).sum::<u64>();
    let of = |samples: &mut dyn Iterator<Item = &(u8, u32)>, label: u8| {
        samples.filter(|(l, _)| *l == label).map(|(_, us)| *us).collect::<Vec<_>>()
    };
    let acks = |label: u8| of(&mut active_stats.iter().flat_map(|s| s.acks.iter()), label);
    let deliveries = |label: u8| of(&mut supervisor_stats.iter().flat_map(|s| s.deliveries.iter()), label);
    let (main_sent, base_sent, warm_sent) = (sent(MAIN), sent(BASELINE), sent(WARMUP));
    let (main_acks, base_acks) = (acks(MAIN), acks(BASELINE));
    let (main_deliveries, base_deliveries) = (deliveries(MAIN), deliveries(BASELINE));
    let (main_acked, base_acked) = (main_acks.len() as u64, base_acks.len() as u64);
    let (main_delivered, base_delivered) = (main_deliveries.len() as u64, base_deliveries.len() as u64);
    let main_ack = percentiles(main_acks);
    let base_ack = percentiles(base_acks);
    let main_delivery = percentiles(main_deliveries);
    let base_delivery = percentiles(base_deliveries);
    let send_lag = percentiles(active_stats.iter().flat_map(|s| s.send_lag.iter().copied()).collect());
    let handshake = percentiles(active_times.iter().chain(idle_times.iter()).copied().collect());
    let achieved = main_sent as f64 / args.duration;
    let mut active_ended = BTreeMap::<String, usize>::new();
    for s in &active_stats {
        if let Some(e) = &s.ended {
            *active_ended.entry(e.clone()).or_default() += 1;
        }
    }
    let visitor_bot = active_stats.iter().map(|s| s.bot_messages).sum::<u64>();
    let mismatched = supervisor_stats.iter().map(|s| s.mismatched).sum::<u64>();
    let resyncs = supervisor_stats.iter().map(|s| s.resyncs).sum::<u64>();
    let cards = supervisor_stats.iter().map(|s| s.cards).sum::<u64>();
    let sup_errors = supervisor_stats.iter().map(|s| s.errors).sum::<u64>();
    let sup_ended: Vec<String> = supervisor_stats.iter().filter_map(|s| s.ended.clone()).collect();
    let per_idle = match (rss_before_idle, rss_idle) {
        (Some(a), Some(b)) if idle_opened > 0 => Some((b as f64 - a as f64) / idle_opened as f64),
        _ => None,
    };
    let sessions_now = active_opened + idle_opened;

    // Report.
    println!();
    println!("== hark-loadtest summary ==");
    println!("server            {} (site {:?})", args.url, args.site_key);
    println!(
        "sockets           idle {idle_opened}/{} opened ({} still open at the end), active {active_opened}/{}, supervisors {supervisors_ready}/{}",
        args.idle, idle_still_open, args.active, args.supervisors
    );
    for (what, failures) in [
        ("idle failures", &idle_failures),
        ("active failures", &active_failures),
        ("supervisor failures", &supervisor_failures),
        ("idle sockets lost", &idle_lost),
        ("active sockets ended", &active_ended),
    ] {
        for (reason, n) in failures.iter() {
            println!("  {what}: {n} × {reason}");
        }
    }
    if args.idle > 0 {
        println!(
            "idle ramp         {:.1} s ({:.0} sockets/s)",
            idle_took.as_secs_f64(),
            idle_opened as f64 / idle_took.as_secs_f64().max(1e-9)
        );
    }
    println!("handshake         {}", handshake.line());
    if baseline {
        println!(
            "baseline          {} msg/s × {} s, no idle sockets: sent {base_sent}, acked {base_acked}, delivered {base_delivered}/{}",
            args.baseline_rate,
            args.baseline_secs,
            base_sent * sup
        );
        println!("  delivery        {}", base_delivery.line());
        println!("  ack             {}", base_ack.line());
    }
    if active_opened > 0 {
        println!(
            "main              target {} msg/s × {} s (+{} s warm-up, {warm_sent} msgs) with {idle_opened} idle sockets",
            args.rate, args.duration, args.warmup
        );
        println!(
            "  messages        sent {main_sent} ({achieved:.0}/s), acked {main_acked}, delivered {main_delivered}/{} ({} missing)",
            main_sent * sup,
            (main_sent * sup).saturating_sub(main_delivered)
        );
        println!("  delivery        {}", main_delivery.line());
        println!("  ack             {}", main_ack.line());
        println!("  send lag        {}", send_lag.line());
        if baseline {
            if let Some(r) = ratio(main_delivery.p99, base_delivery.p99) {
                println!(
                    "  vs baseline     delivery p99 ×{r:.2}, p50 ×{:.2}",
                    ratio(main_delivery.p50, base_delivery.p50).unwrap_or(0.0)
                );
            }
        }
    }
    println!("visitors got     {visitor_bot} bot replies (all phases)");
    println!("supervisor feed   {cards} card frames, {resyncs} resync snapshots, {mismatched} mismatched, {sup_errors} errors");
    for e in &sup_ended {
        println!("  supervisor ended: {e}");
    }
    if pid.is_some() {
        let show = |v: Option<u64>| v.map_or("-".into(), mib);
        println!(
            "server RSS        before {} | before idle {} | after idle {} | end {}",
            show(rss_before),
            show(rss_before_idle),
            show(rss_idle),
            show(rss_end)
        );
        if let Some(per) = per_idle {
            println!(
                "  per idle session {:.0} bytes ({:.2} KiB) = (after idle − before idle) / {idle_opened}",
                per,
                per / 1024.0
            );
        }
        if let (Some(a), Some(b)) = (rss_before, rss_idle) {
            println!("  vs zero sessions RSS ×{:.2} with {sessions_now} sessions", b as f64 / a as f64);
        }
    }
    if let Some(c) = server_cpu_share {
        println!(
            "CPU (main phase)  server {:.0}% of one core, hark-loadtest {:.0}%",
            c * 100.0,
            own_cpu_share.unwrap_or(0.0) * 100.0
        );
    }

    if let Some(path) = &args.json {
        let report = json!({
            "args": {
                "url": args.url, "site_key": args.site_key, "idle": args.idle, "active": args.active,
                "rate": args.rate, "supervisors": args.supervisors, "duration_s": args.duration,
                "warmup_s": args.warmup, "baseline_rate": args.baseline_rate, "baseline_s": args.baseline_secs,
            },
            "sockets": {
                "idle_opened": idle_opened, "idle_failed": args.idle - idle_opened, "idle_open_at_end": idle_still_open,
                "active_opened": active_opened, "active_failed": args.active - active_opened,
                "supervisors_ready": supervisors_ready, "idle_ramp_s": idle_took.as_secs_f64(),
                "failures": {"idle": idle_failures, "active": active_failures, "supervisor": supervisor_failures,
                             "idle_lost": idle_lost, "active_ended": active_ended},
                "handshake": handshake.json(),
            },
            "baseline": baseline.then(|| json!({
                "sent": base_sent, "acked": base_acked, "delivered": base_delivered, "expected_deliveries": base_sent * sup,
                "delivery": base_delivery.json(), "ack": base_ack.json(),
            })),
            "main": {
                "sent": main_sent, "warmup_sent": warm_sent, "achieved_rate": achieved, "acked": main_acked,
                "delivered": main_delivered, "expected_deliveries": main_sent * sup,
                "delivery": main_delivery.json(), "ack": main_ack.json(), "send_lag": send_lag.json(),
                "delivery_p99_vs_baseline": ratio(main_delivery.p99, base_delivery.p99),
            },
            "bot_replies_all_phases": visitor_bot,
            "supervisor_feed": {"cards": cards, "resync_snapshots": resyncs, "mismatched": mismatched, "errors": sup_errors},
            "server": {
                "rss_before": rss_before, "rss_before_idle": rss_before_idle, "rss_after_idle": rss_idle, "rss_end": rss_end,
                "rss_per_idle_session_bytes": per_idle,
                "cpu_share_main": server_cpu_share, "loadtest_cpu_share_main": own_cpu_share,
            },
        });
        common::write_json(path, &report)?;
    }
    Ok(())
}
