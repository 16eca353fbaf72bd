//! `hark-speech-loadtest`: live transcription under load, as a supervisor sees it.
//!
//! Why it exists: the speech stage's promise is that a supervisor watching a call reads each
//! line soon after the speaker stopped, on many calls at once. That is a claim about a running
//! server (VAD, the shared Whisper pool, the session log, the supervisor socket) paced by real
//! time, which no unit test or criterion bench can check. This tool drives a running
//! `hark serve` over its real sockets (`/v1/stream/twilio`, `/v1/supervise`, see
//! docs/PROTOCOLS.md) and prints the figures docs/PERFORMANCE.md ("Speech") reports.
//!
//! One run:
//!
//! 1. a supervisor socket connects (bearer token) and, as each call's card appears, `watch`es it
//!    and asks `GET /v1/sessions/{id}` which of our calls it is (`call.external_id`);
//! 2. `--calls` Twilio Media Streams connections open, `--stagger` seconds apart (default: the
//!    fixture's length / calls, so the calls' turns are spread evenly), each streaming the
//!    two-party call fixture (`audio/call/caller.ulaw` as the `inbound` track, `agent.ulaw` as
//!    `outbound`), looped with continuing timestamps for `--secs` seconds, in real time: chunk
//!    k (stream time 20k..20k+20 ms) of both tracks is sent at the absolute deadline
//!    `t0 + 20(k+1)` ms, when its last sample has been spoken, so pacing does not drift; the
//!    token travels as the `access_token` custom parameter, as Twilio's would;
//! 3. each call then sends `stop`; the run waits up to `--drain` seconds for every call to end.
//!
//! Measured per final (a `message` frame with `speech`): **latency** = arrival − (the call's
//! `t0` + `speech.end_ms`), i.e. from the moment the end of the line's audio was spoken to the
//! supervisor reading it. `end_ms` is where the VAD put the end (the last speech chunk plus the
//! 100 ms post-roll), so the latency includes the rest of the 450 ms hang-over by design; the
//! latency from the fixture's own end of each turn (`turns.tsv`) is reported beside it. Finals
//! of speech cut by the hang-up (flushed by `stop`) are counted apart. Per partial: its **age**
//! = arrival − (t0 + `end_ms`). "Full load" figures count only lines whose end was spoken while
//! every call was streaming. Also: the server's CPU (`--server-pid`) and the whole machine's,
//! the generator's pacing lag, and from `/metrics` the frames and partials the server dropped,
//! Whisper's decode times and the depth of its queue (sampled every 500 ms).
//!
//! ```text
//! hark-speech-loadtest --url ws://127.0.0.1:18092 --token loadtok --server-pid $PID \
//!     --calls 16 --secs 60 --json run16.json
//! ```
//!
//! `loadtest/speech.sh` runs it against a fresh release server for N = 1, 4, 8, … calls.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use base64::Engine;
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

#[path = "common.rs"]
mod common;
use common::{cpu_secs, micros_u32, Percentiles, Shown};

/// 20 ms of 8 kHz µ-law: one Twilio media chunk.
const CHUNK: usize = 160;
const CHUNK_MS: u64 = 20;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "hark-speech-loadtest",
    version,
    about = "Live transcription under load: N two-party calls as Twilio Media Streams in real time, \
             end of speech → final latency at a watching supervisor"
)]
struct Args {
    /// Base URL of the hark server (URL/v1/stream/twilio, URL/v1/supervise; http for /metrics).
    #[arg(long, default_value = "ws://127.0.0.1:8080")]
    url: String,
    /// Bearer token of the supervisor, also the calls' `access_token` custom parameter.
    #[arg(long, env = "HARK_ADMIN_TOKEN", hide_env_values = true)]
    token: String,
    /// Concurrent calls.
    #[arg(long, default_value_t = 1)]
    calls: usize,
    /// Seconds of audio each call streams (the fixture looped, timestamps continuing).
    #[arg(long, default_value_t = 60.0)]
    secs: f64,
    /// Seconds between call starts (default: the fixture's length / calls).
    #[arg(long)]
    stagger: Option<f64>,
    /// Longest wait after a call's stop for its end (the server ends a call once its last
    /// finals are delivered, so under overload this waits for Whisper's backlog).
    #[arg(long, default_value_t = 90.0)]
    drain: f64,
    /// The VAD hang-over of the server (speech.vad.hangover_ms): a line ending closer than this
    /// to the hang-up is flushed by the stop, not ended by silence.
    #[arg(long, default_value_t = 450)]
    hangover_ms: u64,
    /// The latency target the verdict line checks the full-load p95 against, in seconds.
    #[arg(long, default_value_t = 1.5)]
    target_p95: f64,
    /// PID of the hark server, to read its CPU time from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// The shared fixtures (audio/call/…).
    #[arg(long, env = "HARK_FIXTURES")]
    fixtures: Option<PathBuf>,
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

// ---------------------------------------------------------------------------------------------
// The fixture.

/// The two-party call: base64 payloads of every 20 ms chunk of both tracks, and its turns.
struct Fixture {
    caller: Vec<String>,
    agent: Vec<String>,
    /// (role as hark names it, end in ms) of each turn, in order.
    turns: Vec<(&'static str, u64)>,
}

impl Fixture {
    fn load(dir: &Path) -> anyhow::Result<Fixture> {
        let read = |name: &str| {
            let path = dir.join("audio/call").join(name);
            std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
        };
        let (caller, agent) = (read("caller.ulaw")?, read("agent.ulaw")?);
        if caller.len() != agent.len() || caller.is_empty() {
            bail!("caller.ulaw and agent.ulaw differ in length");
        }
        let b64 = |bytes: &[u8]| -> Vec<String> {
            bytes.chunks(CHUNK).map(|c| base64::engine::general_purpose::STANDARD.encode(c)).collect()
        };
        let turns_text = String::from_utf8(read("turns.tsv")?)?;
        let mut turns = Vec::new();
        for line in turns_text.lines().skip(1).filter(|l| !l.starts_with("total")) {
            let cols: Vec<&str> = line.split('\t').collect();
            let role = if cols.first() == Some(&"caller") { "customer" } else { "agent" };
            let end: f64 = cols.get(2).context("turns.tsv: end_s")?.parse()?;
            turns.push((role, (end * 1000.0).round() as u64));
        }
        Ok(Fixture { caller: b64(&caller), agent: b64(&agent), turns })
    }

    fn chunks(&self) -> usize {
        self.caller.len()
    }

    fn loop_ms(&self) -> u64 {
        self.chunks() as u64 * CHUNK_MS
    }

    /// The fixture's own end of the `role` turn nearest to stream time `end_ms`, looped.
    fn true_end(&self, role: &str, end_ms: u64) -> Option<u64> {
        let period = self.loop_ms();
        let k = end_ms / period;
        (k.saturating_sub(1)..=k + 1)
            .flat_map(|k| self.turns.iter().filter(|(r, _)| *r == role).map(move |(_, e)| k * period + e))
            .min_by_key(|&e| e.abs_diff(end_ms))
    }

    /// Turn ends that a call streaming `streamed_ms` ends by silence (not at the hang-up).
    fn expected_finals(&self, streamed_ms: u64, hangover_ms: u64) -> usize {
        let period = self.loop_ms();
        (0..=streamed_ms / period)
            .flat_map(|k| self.turns.iter().map(move |(_, e)| k * period + e))
            .filter(|&e| e + hangover_ms <= streamed_ms)
            .count()
    }
}

// ---------------------------------------------------------------------------------------------
// Shared state.

/// One call's clock, in µs since the generator's origin (0: not yet).
#[derive(Default)]
struct CallClock {
    /// Stream time 0 on the wall clock.
    t0: AtomicU64,
    /// When its `stop` was sent.
    stopped: AtomicU64,
}

struct Shared {
    origin: Instant,
    cancel: CancellationToken,
    run_id: String,
    clocks: Vec<CallClock>,
    /// Session id → our call's index, from GET /v1/sessions/{id}.
    sessions: Mutex<HashMap<String, usize>>,
}

impl Shared {
    fn micros(&self) -> u64 {
        self.origin.elapsed().as_micros().max(1) as u64
    }

    fn call_sid(&self, index: usize) -> String {
        format!("LOAD{}-{index}", self.run_id)
    }

    fn call_index(&self, sid: &str) -> Option<usize> {
        sid.strip_prefix(&format!("LOAD{}-", self.run_id))?.parse().ok().filter(|&i| i < self.clocks.len())
    }
}

// ---------------------------------------------------------------------------------------------
// One call: a Twilio Media Streams connection in real time.

#[derive(Default)]
struct CallStats {
    opened: bool,
    /// Chunks (of both tracks) sent.
    chunks: u64,
    /// µs each chunk pair went out after its deadline.
    lag: Vec<u32>,
    ended: Option<String>,
}

async fn call(
    index: usize,
    start_at: Instant,
    args: Arc<Args>,
    fixture: Arc<Fixture>,
    shared: Arc<Shared>,
) -> CallStats {
    let mut stats = CallStats::default();
    tokio::time::sleep_until(start_at.into()).await;
    let url = format!("{}/v1/stream/twilio", args.url.trim_end_matches('/'));
    let ws = match common::connect(&url, None).await {
        Ok(ws) => ws,
        Err(e) => {
            stats.ended = Some(e);
            return stats;
        }
    };
    let (mut sink, mut stream) = ws.split();
    // The server sends nothing but its close; read it (and answer pings) on the side.
    let reader = tokio::spawn(async move { common::until_ended(&mut stream).await });
    let sid = shared.call_sid(index);
    let stream_sid = format!("MZ{index}");
    let start = json!({
        "event": "start", "sequenceNumber": "1", "streamSid": stream_sid,
        "start": {"accountSid": "ACload", "streamSid": stream_sid, "callSid": sid,
                  "tracks": ["inbound", "outbound"],
                  "customParameters": {"from": "+15550100", "to": "+15550199", "access_token": args.token},
                  "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}
    });
    let connected = json!({"event": "connected", "protocol": "Call", "version": "1.0.0"});
    for frame in [connected, start] {
        if let Err(e) = sink.send(Message::text(frame.to_string())).await {
            stats.ended = Some(format!("send start: {e}"));
            return stats;
        }
    }
    stats.opened = true;
    let t0 = Instant::now();
    shared.clocks[index].t0.store(t0.duration_since(shared.origin).as_micros().max(1) as u64, Ordering::Relaxed);
    let total = (args.secs * 1000.0 / CHUNK_MS as f64).round() as u64;
    let n = fixture.chunks() as u64;
    stats.lag.reserve(total as usize);
    let media = |k: u64, track: &str, payload: &str, seq: u64| {
        format!(
            r#"{{"event":"media","sequenceNumber":"{seq}","streamSid":"{stream_sid}","media":{{"track":"{track}","chunk":"{}","timestamp":"{}","payload":"{payload}"}}}}"#,
            k + 1,
            k * CHUNK_MS
        )
    };
    for k in 0..total {
        let deadline = t0 + Duration::from_millis((k + 1) * CHUNK_MS);
        tokio::select! {
            biased;
            _ = shared.cancel.cancelled() => break,
            _ = tokio::time::sleep_until(deadline.into()) => {}
        }
        stats.lag.push(micros_u32(Instant::now().saturating_duration_since(deadline).as_micros() as u64));
        let i = (k % n) as usize;
        let inbound = media(k, "inbound", &fixture.caller[i], 2 * k + 2);
        let outbound = media(k, "outbound", &fixture.agent[i], 2 * k + 3);
        let sent = async {
            sink.feed(Message::text(inbound)).await?;
            sink.send(Message::text(outbound)).await
        };
        if let Err(e) = sent.await {
            stats.ended = Some(format!("send media: {e}"));
            break;
        }
        stats.chunks += 1;
    }
    shared.clocks[index].stopped.store(shared.micros(), Ordering::Relaxed);
    if stats.ended.is_none() {
        let stop = json!({"event": "stop", "sequenceNumber": (2 * total + 2).to_string(), "streamSid": stream_sid,
                          "stop": {"accountSid": "ACload", "callSid": sid}});
        let _ = sink.send(Message::text(stop.to_string())).await;
        match tokio::time::timeout(Duration::from_secs_f64(args.drain), reader).await {
            Ok(Ok(reason)) => stats.ended = Some(reason),
            Ok(Err(_)) => stats.ended = Some("reader failed".into()),
            Err(_) => stats.ended = Some("no close after stop".into()),
        }
    }
    let _ = sink.close().await;
    stats
}

// ---------------------------------------------------------------------------------------------
// The supervisor.

#[derive(Deserialize)]
struct Frame {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    card: Option<Card>,
    #[serde(default)]
    speech: Option<SpeechFrame>,
    /// `partial` frames: the speaker and the end of the audio it covers.
    #[serde(default)]
    speaker: Option<String>,
    #[serde(default)]
    end_ms: Option<u64>,
    #[serde(default)]
    messages: Option<Vec<HistoryEntry>>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
struct Card {
    session_id: String,
    channel: String,
    state: String,
}

#[derive(Deserialize)]
struct SpeechFrame {
    speaker: String,
    end_ms: u64,
}

#[derive(Deserialize)]
struct HistoryEntry {
    #[serde(default)]
    speech: Option<serde::de::IgnoredAny>,
}

struct Final {
    session: String,
    arrived: u64,
    speaker: String,
    end_ms: u64,
}

struct PartialSeen {
    session: String,
    arrived: u64,
    end_ms: u64,
}

#[derive(Default)]
struct SupervisorStats {
    finals: Vec<Final>,
    partials: Vec<PartialSeen>,
    /// Finals already in the history when `watch` answered (missed live).
    finals_in_history: u64,
    watched: usize,
    ended: HashSet<String>,
    resyncs: u64,
    errors: Vec<String>,
    closed: Option<String>,
}

/// Watches every voice call as its card appears until `shared.cancel`; `calls_ended` counts
/// the ends of watched calls.
async fn supervisor(
    args: Arc<Args>,
    shared: Arc<Shared>,
    ready: tokio::sync::oneshot::Sender<Result<(), String>>,
    calls_ended: Arc<AtomicU64>,
) -> SupervisorStats {
    let mut stats = SupervisorStats::default();
    let ws = match common::connect_supervisor(&args.url, &args.token).await {
        Ok(ws) => ws,
        Err(e) => {
            let _ = ready.send(Err(e));
            return stats;
        }
    };
    let (mut sink, mut stream) = ws.split();
    let http = reqwest::Client::new();
    let base = http_base(&args.url);
    let mut ready = Some(ready);
    let mut snapshots = 0u64;
    let mut seen = HashSet::new();
    loop {
        let text = match common::next_text_or_cancelled(&shared.cancel, &mut stream).await {
            None => break,
            Some(Ok(text)) => text,
            Some(Err(reason)) => {
                stats.closed = Some(reason);
                break;
            }
        };
        let arrived = shared.micros();
        let frame: Frame = match serde_json::from_str(text.as_str()) {
            Ok(frame) => frame,
            Err(e) => {
                stats.errors.push(format!("bad frame: {e}"));
                continue;
            }
        };
        match frame.kind.as_str() {
            "snapshot" => {
                snapshots += 1;
                if snapshots == 1 {
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(Ok(()));
                    }
                } else {
                    stats.resyncs += 1;
                }
            }
            "card" => {
                let Some(card) = frame.card else { continue };
                if card.channel != "voice" || card.state != "live" || !seen.insert(card.session_id.clone()) {
                    continue;
                }
                let watch = json!({"type": "watch", "session_id": card.session_id, "ref": card.session_id});
                if sink.send(Message::text(watch.to_string())).await.is_err() {
                    stats.closed = Some("send watch failed".into());
                    break;
                }
                stats.watched += 1;
                // Which of our calls it is, on the side.
                let (http, url, token, shared) = (
                    http.clone(),
                    format!("{base}/v1/sessions/{}", card.session_id),
                    args.token.clone(),
                    shared.clone(),
                );
                let session = card.session_id;
                tokio::spawn(async move {
                    for _ in 0..20 {
                        let record = async {
                            let r = http.get(&url).bearer_auth(&token).send().await.ok()?;
                            r.json::<serde_json::Value>().await.ok()
                        };
                        if let Some(record) = record.await {
                            if let Some(index) =
                                record["call"]["external_id"].as_str().and_then(|s| shared.call_index(s))
                            {
                                shared.sessions.lock().unwrap().insert(session, index);
                                return;
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                });
            }
            "message" => {
                let (Some(session), Some(speech)) = (frame.session_id, frame.speech) else { continue };
                stats.finals.push(Final { session, arrived, speaker: speech.speaker, end_ms: speech.end_ms });
            }
            "partial" => {
                let (Some(session), Some(end_ms)) = (frame.session_id, frame.end_ms) else { continue };
                let _ = frame.speaker;
                stats.partials.push(PartialSeen { session, arrived, end_ms });
            }
            "history" => {
                stats.finals_in_history +=
                    frame.messages.map_or(0, |m| m.iter().filter(|e| e.speech.is_some()).count() as u64);
            }
            "ended" => {
                if let Some(session) = frame.session_id {
                    if seen.contains(&session) && stats.ended.insert(session) {
                        calls_ended.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            "error" => stats.errors.push(format!("{:?}: {:?}", frame.code, frame.message)),
            _ => {}
        }
    }
    if let Some(ready) = ready {
        let _ = ready.send(Err(stats.closed.clone().unwrap_or_else(|| "stopped before the snapshot".into())));
    }
    let _ = sink.close().await;
    stats
}

fn http_base(url: &str) -> String {
    let url = url.trim_end_matches('/');
    if let Some(rest) = url.strip_prefix("wss://") {
        format!("https://{rest}")
    } else if let Some(rest) = url.strip_prefix("ws://") {
        format!("http://{rest}")
    } else {
        url.to_string()
    }
}

// ---------------------------------------------------------------------------------------------
// The server, from /proc and /metrics.

/// Busy CPU seconds of the whole machine (all cores together) from /proc/stat.
fn machine_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<f64> = line.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal
    let busy = v.first()? + v.get(1)? + v.get(2)? + v.get(5)? + v.get(6)? + v.get(7)?;
    Some(busy / 100.0)
}

/// The numeric value of each `/metrics` line, by its name with labels.
async fn metrics(http: &reqwest::Client, base: &str) -> HashMap<String, f64> {
    let Ok(response) = http.get(format!("{base}/metrics")).send().await else { return HashMap::new() };
    let Ok(text) = response.text().await else { return HashMap::new() };
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// CPU seconds used so far: the server, this process, the whole machine (busy, all cores).
struct CpuMark {
    server: Option<f64>,
    generator: Option<f64>,
    machine: Option<f64>,
    at: Instant,
}

/// CPU used between two marks, as a share of one core (1.0 = one core busy).
struct CpuShare {
    server: Option<f64>,
    generator: Option<f64>,
    machine: Option<f64>,
    secs: f64,
}

impl CpuMark {
    fn now(server_pid: Option<u32>) -> CpuMark {
        CpuMark {
            server: server_pid.and_then(|p| cpu_secs(&p.to_string())),
            generator: cpu_secs("self"),
            machine: machine_secs(),
            at: Instant::now(),
        }
    }

    fn share(&self, later: &CpuMark) -> CpuShare {
        let secs = later.at.duration_since(self.at).as_secs_f64().max(1e-9);
        let per = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| (b - a) / secs);
        CpuShare {
            server: per(self.server, later.server),
            generator: per(self.generator, later.generator),
            machine: per(self.machine, later.machine),
            secs,
        }
    }
}

fn metric(m: &HashMap<String, f64>, name: &str) -> f64 {
    m.get(name).copied().unwrap_or(0.0)
}

// ---------------------------------------------------------------------------------------------
// Figures.

/// Percentiles of µs samples (negative ones allowed) as this report shows them: p50, p95 and max
/// to the ms (speech latencies are hundreds of ms), only the count in the JSON of no samples.
fn percentiles<T: Copy + Ord + Into<i64>>(micros: Vec<T>) -> Percentiles {
    Percentiles::of(micros, Shown { percents: &[50, 95], decimals: 0, bare_when_empty: true })
}

async fn run(args: Args) -> anyhow::Result<()> {
    if args.calls == 0 || args.secs <= 0.0 {
        bail!("--calls and --secs must be > 0");
    }
    let fixtures =
        args.fixtures.clone().unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures"));
    let fixture = Arc::new(Fixture::load(&fixtures)?);
    let loop_s = fixture.loop_ms() as f64 / 1000.0;
    let stagger = args.stagger.unwrap_or(loop_s / args.calls as f64);
    let args = Arc::new(args);
    let shared = Arc::new(Shared {
        origin: Instant::now(),
        cancel: CancellationToken::new(),
        run_id: format!(
            "{:x}",
            std::process::id() as u64 * 1_000_003
                + u64::from(
                    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos())
                )
        ),
        clocks: (0..args.calls).map(|_| CallClock::default()).collect(),
        sessions: Mutex::new(HashMap::new()),
    });
    let http = reqwest::Client::new();
    let base = http_base(&args.url);
    eprintln!(
        "hark-speech-loadtest: {} calls × {} s of the two-party call ({loop_s:.2} s, looped), {stagger:.2} s apart, to {}",
        args.calls, args.secs, args.url
    );

    // The supervisor first, so that no call's card is missed.
    let calls_ended = Arc::new(AtomicU64::new(0));
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let sup = tokio::spawn(supervisor(args.clone(), shared.clone(), ready_tx, calls_ended.clone()));
    match ready_rx.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => bail!("supervisor socket: {e}"),
        Err(_) => bail!("supervisor socket: stopped"),
    }
    let metrics_before = metrics(&http, &base).await;
    let metrics_before_at = Instant::now();
    if metrics_before.is_empty() {
        eprintln!("warning: no /metrics at {base}: the server's drop counters will read 0");
    }

    // The metrics sampler: the Whisper queue's depth every 500 ms.
    let queue_samples = Arc::new(Mutex::new(Vec::<f64>::new()));
    let sampler = {
        let (http, base, samples, cancel) = (http.clone(), base.clone(), queue_samples.clone(), shared.cancel.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tick.tick() => {}
                }
                let m = metrics(&http, &base).await;
                if let Some(q) = m.get("hark_asr_queue") {
                    samples.lock().unwrap().push(*q);
                }
            }
        })
    };

    // The calls.
    let cpu_start = CpuMark::now(args.server_pid);
    let first = Instant::now() + Duration::from_millis(200);
    let mut calls = JoinSet::new();
    for i in 0..args.calls {
        let at = first + Duration::from_secs_f64(stagger * i as f64);
        let (args, fixture, shared) = (args.clone(), fixture.clone(), shared.clone());
        calls.spawn(async move { (i, call(i, at, args, fixture, shared).await) });
    }
    // CPU over the full-load window: from the last call's start to the first call's stop.
    let full_from = first + Duration::from_secs_f64(stagger * (args.calls - 1) as f64);
    let full_to = first + Duration::from_secs_f64(args.secs);
    let mut window_cpu = None;
    if full_to > full_from + Duration::from_secs(2) {
        tokio::time::sleep_until((full_from + Duration::from_millis(500)).into()).await;
        let a = CpuMark::now(args.server_pid);
        eprintln!("  all {} calls streaming", args.calls);
        tokio::time::sleep_until(full_to.into()).await;
        let b = CpuMark::now(args.server_pid);
        window_cpu = Some((a, b));
    }
    let mut call_stats: Vec<CallStats> = (0..args.calls).map(|_| CallStats::default()).collect();
    while let Some(result) = calls.join_next().await {
        if let Ok((i, stats)) = result {
            call_stats[i] = stats;
        }
    }
    let cpu_end = CpuMark::now(args.server_pid);
    // Every call ended (its close came after the stop flushed its finals): give the ended
    // frames a moment to reach the supervisor.
    let opened = call_stats.iter().filter(|c| c.opened).count() as u64;
    let until = Instant::now() + Duration::from_secs_f64(args.drain);
    while calls_ended.load(Ordering::Relaxed) < opened && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let metrics_after = metrics(&http, &base).await;
    let metrics_secs = metrics_before_at.elapsed().as_secs_f64();
    shared.cancel.cancel();
    let _ = sampler.await;
    let sup = sup.await.context("the supervisor task")?;

    // Figures.
    let sessions = shared.sessions.lock().unwrap().clone();
    let clock =
        |i: usize| (shared.clocks[i].t0.load(Ordering::Relaxed), shared.clocks[i].stopped.load(Ordering::Relaxed));
    let streamed_ms = (args.secs * 1000.0 / CHUNK_MS as f64).round() as u64 * CHUNK_MS;
    let full_from_us = full_from.duration_since(shared.origin).as_micros() as u64;
    let full_to_us = full_to.duration_since(shared.origin).as_micros() as u64;
    let (mut latency, mut latency_full, mut latency_true, mut latency_true_full, mut vad_offset) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut flushed, mut unmapped) = (0u64, 0u64);
    let mut finals_per_call = vec![0usize; args.calls];
    // Every final: [call, end_ms, spoken at (s since the first call's start), latency (ms), flushed at hang-up].
    let mut timeline = Vec::with_capacity(sup.finals.len());
    let first_us = first.duration_since(shared.origin).as_micros() as i64;
    for f in &sup.finals {
        let Some(&i) = sessions.get(&f.session) else {
            unmapped += 1;
            continue;
        };
        let (t0, _) = clock(i);
        let spoken = t0 + f.end_ms * 1000;
        let us = f.arrived as i64 - spoken as i64;
        let at_hangup = f.end_ms + args.hangover_ms > streamed_ms;
        timeline.push(json!([i, f.end_ms, ((spoken as i64 - first_us) / 1000) as f64 / 1000.0, us / 1000, at_hangup]));
        if at_hangup {
            flushed += 1;
            continue;
        }
        finals_per_call[i] += 1;
        let full = spoken >= full_from_us && spoken <= full_to_us;
        latency.push(us);
        if full {
            latency_full.push(us);
        }
        if let Some(end) = fixture.true_end(&f.speaker, f.end_ms) {
            let t = f.arrived as i64 - (t0 + end * 1000) as i64;
            latency_true.push(t);
            if full {
                latency_true_full.push(t);
            }
            vad_offset.push((f.end_ms as i64 - end as i64) * 1000);
        }
    }
    let (mut partial_age, mut partial_age_full) = (Vec::new(), Vec::new());
    for p in &sup.partials {
        let Some(&i) = sessions.get(&p.session) else { continue };
        let (t0, _) = clock(i);
        let spoken = t0 + p.end_ms * 1000;
        let us = p.arrived as i64 - spoken as i64;
        partial_age.push(us);
        if spoken >= full_from_us && spoken <= full_to_us {
            partial_age_full.push(us);
        }
    }
    let expected_per_call = fixture.expected_finals(streamed_ms, args.hangover_ms);
    let opened_calls = call_stats.iter().filter(|c| c.opened).count();
    let expected = expected_per_call * opened_calls;
    let got: usize = finals_per_call.iter().sum();
    let lag = percentiles(call_stats.iter().flat_map(|c| c.lag.iter().copied()).collect());
    let mut ended_reasons = BTreeMap::<String, usize>::new();
    for c in &call_stats {
        *ended_reasons.entry(c.ended.clone().unwrap_or_else(|| "-".into())).or_default() += 1;
    }
    let lat = percentiles(latency);
    let lat_full = percentiles(latency_full);
    let lat_true = percentiles(latency_true);
    let lat_true_full = percentiles(latency_true_full);
    let vad = percentiles(vad_offset);
    let age = percentiles(partial_age);
    let age_full = percentiles(partial_age_full);
    let delta = |name: &str| metric(&metrics_after, name) - metric(&metrics_before, name);
    let frames_dropped = delta("hark_speech_frames_dropped_total");
    let partials_dropped = delta("hark_asr_partials_dropped_total");
    let decode = |kind: &str| {
        let (sum, count) = (
            delta(&format!("hark_asr_decode_seconds_sum{{kind=\"{kind}\"}}")),
            delta(&format!("hark_asr_decode_seconds_count{{kind=\"{kind}\"}}")),
        );
        (count, if count > 0.0 { sum / count } else { 0.0 }, sum)
    };
    let (final_decodes, final_decode_mean, final_decode_sum) = decode("final");
    let (partial_decodes, partial_decode_mean, partial_decode_sum) = decode("partial");
    let queue = queue_samples.lock().unwrap().clone();
    let queue_max = queue.iter().copied().fold(0.0, f64::max);
    let queue_mean = if queue.is_empty() { 0.0 } else { queue.iter().sum::<f64>() / queue.len() as f64 };
    let whole = cpu_start.share(&cpu_end);
    let window = window_cpu.as_ref().map(|(a, b)| a.share(b));
    // Workers busy: decode time over the time between the two /metrics reads (drain included).
    let asr_busy = (final_decode_sum + partial_decode_sum) / metrics_secs;
    let pct = |x: Option<f64>| x.map_or("-".into(), |v| format!("{:.0}%", v * 100.0));

    println!();
    println!("== hark-speech-loadtest summary ==");
    println!(
        "calls             {opened_calls}/{} opened, {} s each ({:.1} loops of the {loop_s:.2} s fixture), {stagger:.2} s apart; watched {}, mapped {}",
        args.calls,
        args.secs,
        args.secs / loop_s,
        sup.watched,
        sessions.len()
    );
    for (reason, n) in &ended_reasons {
        println!("  calls ended: {n} × {reason}");
    }
    println!(
        "finals            {got} of {expected} turns ended by silence ({expected_per_call} per call; missing ones were still queued when the wait ended); {flushed} flushed at hang-up, {unmapped} of unknown calls, {} already in history",
        sup.finals_in_history
    );
    println!("end_ms → final    {}", lat.line());
    println!("  at full load    {}", lat_full.line());
    println!("turn end → final  {} (the fixture's own end of speech)", lat_true.line());
    println!("  at full load    {}", lat_true_full.line());
    println!("VAD end − turn end {} (end_ms is the last speech chunk + 100 ms post-roll)", vad.line());
    println!("partials          {} received; age {}", sup.partials.len(), age.line());
    println!("  at full load    age {}", age_full.line());
    println!(
        "server drops      hark_speech_frames_dropped_total +{frames_dropped}, hark_asr_partials_dropped_total +{partials_dropped}"
    );
    println!(
        "whisper           {final_decodes} final decodes (mean {:.0} ms), {partial_decodes} partial decodes (mean {:.0} ms); \
         workers busy {:.2} (sum of decode time / wall); queue depth mean {queue_mean:.1}, max {queue_max}",
        final_decode_mean * 1000.0,
        partial_decode_mean * 1000.0,
        asr_busy
    );
    println!("pacing lag        {}", lag.line());
    println!(
        "CPU (whole run)   server {}, generator {}, whole machine {} of {} cores ({:.0} s)",
        pct(whole.server),
        pct(whole.generator),
        pct(whole.machine),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        whole.secs
    );
    if let Some(w) = &window {
        println!(
            "CPU (full load)   server {}, generator {}, whole machine {} ({:.0} s)",
            pct(w.server),
            pct(w.generator),
            pct(w.machine),
            w.secs
        );
    }
    for e in sup.errors.iter().take(5) {
        println!("  supervisor error: {e}");
    }
    if let Some(c) = &sup.closed {
        println!("  supervisor socket ended: {c}");
    }
    if sup.resyncs > 0 {
        println!("  supervisor resync snapshots: {}", sup.resyncs);
    }
    let verdict_p95 = if lat_full.count > 0 { lat_full.p95 } else { lat.p95 };
    let ok = lat.count > 0 && verdict_p95 <= args.target_p95 * 1000.0 && got >= expected && frames_dropped == 0.0;
    println!(
        "verdict           p95 {:.0} ms {} {:.0} ms, {got}/{expected} finals, {frames_dropped} frames dropped: {}",
        verdict_p95,
        if verdict_p95 <= args.target_p95 * 1000.0 { "≤" } else { ">" },
        args.target_p95 * 1000.0,
        if ok { "MET" } else { "MISSED" }
    );

    if let Some(path) = &args.json {
        let cpu =
            |c: &CpuShare| json!({"server": c.server, "generator": c.generator, "machine": c.machine, "secs": c.secs});
        let report = json!({
            "args": {"url": args.url, "calls": args.calls, "secs": args.secs, "stagger_s": stagger,
                     "hangover_ms": args.hangover_ms, "target_p95_s": args.target_p95},
            "calls": {"opened": opened_calls, "watched": sup.watched, "mapped": sessions.len(), "ended": ended_reasons},
            "finals": {"received": got, "expected": expected, "expected_per_call": expected_per_call,
                       "flushed_at_hangup": flushed, "unmapped": unmapped, "in_history": sup.finals_in_history,
                       "per_call": finals_per_call},
            "latency": lat.json(), "latency_full_load": lat_full.json(),
            "full_load_window_s": [full_from.duration_since(first).as_secs_f64(), full_to.duration_since(first).as_secs_f64()],
            "finals_timeline": timeline,
            "latency_from_turn_end": lat_true.json(), "latency_from_turn_end_full_load": lat_true_full.json(),
            "vad_end_minus_turn_end": vad.json(),
            "partials": {"received": sup.partials.len(), "age": age.json(), "age_full_load": age_full.json()},
            "server_drops": {"speech_frames": frames_dropped, "asr_partials": partials_dropped},
            "whisper": {"final_decodes": final_decodes, "final_decode_mean_s": final_decode_mean,
                        "partial_decodes": partial_decodes, "partial_decode_mean_s": partial_decode_mean,
                        "workers_busy": asr_busy, "queue_mean": queue_mean, "queue_max": queue_max},
            "pacing_lag": lag.json(),
            "cpu": {"whole_run": cpu(&whole), "full_load": window.as_ref().map(cpu)},
            "supervisor": {"resyncs": sup.resyncs, "errors": sup.errors, "closed": sup.closed},
            "met": ok,
        });
        common::write_json(path, &report)?;
    }
    Ok(())
}
