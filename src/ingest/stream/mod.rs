//! Calls whose audio arrives over a streaming protocol rather than RTP: Twilio Media Streams,
//! jambonz `listen`, FreeSWITCH `mod_audio_fork` (WebSockets, [`socket`]) and Asterisk
//! AudioSocket (raw TCP, [`crate::ingest::audiosocket`]).
//!
//! Each protocol is a pure core that turns frames into [`Event`]s: the call's metadata
//! ([`StreamStart`]), audio of a speaker at the stream's own sample clock, DTMF, and an explicit
//! stop. Everything after that is shared:
//!
//! - [`StreamStart::spec`] makes the [`CallSpec`] of every protocol;
//! - [`L16`] reads interleaved little-endian PCM (jambonz, audio_fork, AudioSocket);
//! - [`Clocks`] resamples each speaker to 16 kHz (with [`crate::media::resample`]) and places
//!   the audio on the call's time line from the stream's timestamps or sample counts, never
//!   from the wall clock;
//! - [`Parking`] keeps a call whose connection dropped without a stop for the reconnect grace,
//!   so that a new connection with the same call id continues the same session.
//!
//! The thin async shells are [`socket`] (WebSockets) and `audiosocket` (TCP); [`Streams`] is the
//! registry they share (the `streams` field of [`App`]).

pub mod audio_fork;
pub mod jambonz;
pub mod socket;
pub mod twilio;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::ingest::call::{CallSpec, LiveCall, Party, Role, SAMPLE_RATE};
use crate::media::resample::Resampler;
use crate::server::App;
use crate::session::StreamCard;
use crate::ws::{self, Close};

pub use socket::router;

/// Longest call id hark accepts (Twilio's callSid is 34 characters, a UUID 36).
pub const MAX_CALL_ID: usize = 128;

/// Samples of 16 kHz audio per millisecond: audio is handed on in whole milliseconds.
const PER_MS: u64 = SAMPLE_RATE as u64 / 1000;

/// Stream time may wander this far (in ms) from the sample count before it counts as a gap
/// or an overlap.
const TOLERANCE_MS: u64 = 10;

/// Sample rates a stream may declare.
const RATES: std::ops::RangeInclusive<u32> = 8_000..=96_000;

/// What a protocol core makes of its input.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The call's metadata; comes first, once.
    Start(Box<StreamStart>),
    /// Audio of `role` at the stream's rate; `at` is the stream time of the first sample, in
    /// samples since the connection's stream began.
    Audio { role: Role, at: u64, samples: Vec<i16> },
    /// A key pressed by `role`.
    Dtmf { role: Role, digit: char },
    /// The sender ended the stream on purpose: the call is over.
    Stop,
}

/// A WebSocket protocol's pure core: frames in, events out, a close (code and reason) for
/// anything it cannot use.
pub trait Protocol: Send + 'static {
    /// `twilio`, `jambonz`, `audio_fork`: the call record's source and the metrics label.
    fn source(&self) -> &'static str;
    fn text(&mut self, text: &str, out: &mut Vec<Event>) -> Result<(), Close>;
    fn binary(&mut self, data: &[u8], out: &mut Vec<Event>) -> Result<(), Close>;
    /// The peer closed the WebSocket with a close frame. For protocols without a stop
    /// message of their own this is the explicit end ([`Event::Stop`]).
    fn closed(&mut self, out: &mut Vec<Event>);
}

/// What a stream's metadata tells of its call.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamStart {
    /// The call's id at the source (callSid, UUID): a reconnect names the same one.
    pub call_id: String,
    pub from: Party,
    pub to: Party,
    /// The account or trunk, when the protocol names one (the shell puts the peer's address
    /// otherwise).
    pub trunk: Option<String>,
    pub codec: String,
    /// Rate of the samples in [`Event::Audio`].
    pub sample_rate: u32,
    /// The speakers this connection carries.
    pub speakers: Vec<Role>,
    /// A bearer token carried in the metadata (Twilio's custom parameter `access_token`).
    pub token: Option<String>,
}

impl StreamStart {
    /// The call of this stream, as every ingest path describes it.
    pub fn spec(&self, source: &'static str, tenant: &str, peer: &str) -> CallSpec {
        CallSpec {
            source,
            external_id: self.call_id.clone(),
            tenant: tenant.to_string(),
            trunk: self.trunk.clone().unwrap_or_else(|| peer.to_string()),
            from: self.from.clone(),
            to: self.to.clone(),
            codec: self.codec.clone(),
            // The caller is the customer, the called party the agent.
            speakers: self
                .speakers
                .iter()
                .map(|&role| (role, if role == Role::Customer { self.from.clone() } else { self.to.clone() }))
                .collect(),
            live: true,
        }
    }
}

/// Checks a call id from the wire.
pub fn call_id(id: &str) -> Result<String, Close> {
    let id = id.trim();
    if id.is_empty() {
        return Err(Close::new(ws::BAD_MESSAGE, "empty call id"));
    }
    if id.len() > MAX_CALL_ID || id.chars().any(char::is_control) {
        return Err(Close::new(ws::BAD_MESSAGE, format!("call id must be at most {MAX_CALL_ID} printable bytes")));
    }
    Ok(id.to_string())
}

/// Checks a declared sample rate.
pub fn sample_rate(rate: u32) -> Result<u32, Close> {
    if RATES.contains(&rate) {
        Ok(rate)
    } else {
        Err(Close::new(ws::BAD_MESSAGE, format!("sample rate {rate} Hz is not between 8000 and 96000")))
    }
}

/// The URL query of a stream connection: the token, and for the L16 protocols the fallbacks
/// for what their metadata may leave out.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct StreamQuery {
    pub access_token: Option<String>,
    pub call_id: Option<String>,
    pub sample_rate: Option<String>,
    pub mix_type: Option<String>,
}

/// How an L16 protocol (jambonz, audio_fork) names things in its metadata frame.
#[derive(Debug)]
pub struct Dialect {
    pub source: &'static str,
    pub subprotocol: &'static str,
    /// Metadata keys that may carry the call id, in order of preference.
    pub call_id_keys: &'static [&'static str],
    /// Keys that may carry the account or trunk.
    pub trunk_keys: &'static [&'static str],
}

fn string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn first(meta: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| meta.get(*k).and_then(string))
}

/// `8000`, `"8000"`, `"8k"`, `"16k"`.
fn parse_rate(text: &str) -> Result<u32, Close> {
    let text = text.trim();
    let rate = match text.strip_suffix(['k', 'K']) {
        Some(khz) => khz.parse::<u32>().ok().and_then(|k| k.checked_mul(1000)),
        None => text.parse().ok(),
    };
    sample_rate(rate.ok_or_else(|| Close::new(ws::BAD_MESSAGE, format!("sample rate {text:?} is not a number")))?)
}

/// The speakers of a mix type: `mono` (the caller), `mixed` (both, in one channel, kept as the
/// customer's stream) or `stereo` (channel 0 the caller, channel 1 the called party).
pub fn mix(mix_type: &str) -> Result<Vec<Role>, Close> {
    match mix_type.trim().to_ascii_lowercase().as_str() {
        "mono" | "mixed" => Ok(vec![Role::Customer]),
        "stereo" => Ok(vec![Role::Customer, Role::Agent]),
        other => Err(Close::new(ws::BAD_MESSAGE, format!("mixType {other:?} is not mono, mixed or stereo"))),
    }
}

/// Reads the first text frame of an L16 protocol: a JSON object of call attributes. The
/// query fills in what the metadata leaves out; without either the rate is 8000 Hz and the
/// mix mono.
pub fn l16_start(dialect: &Dialect, text: &str, query: &StreamQuery) -> Result<StreamStart, Close> {
    let meta: Value =
        serde_json::from_str(text).map_err(|e| Close::new(ws::BAD_MESSAGE, format!("malformed metadata: {e}")))?;
    let Value::Object(meta) = meta else {
        return Err(Close::new(ws::BAD_MESSAGE, "metadata must be a JSON object"));
    };
    let id = first(&meta, dialect.call_id_keys).or_else(|| query.call_id.clone()).ok_or_else(|| {
        Close::new(ws::BAD_MESSAGE, format!("metadata has no call id ({})", dialect.call_id_keys.join(", ")))
    })?;
    let rate = match meta.get("sampleRate").and_then(string).or_else(|| query.sample_rate.clone()) {
        Some(text) => parse_rate(&text)?,
        None => 8_000,
    };
    let mix_type = meta.get("mixType").and_then(string).or_else(|| query.mix_type.clone());
    let speakers = mix(mix_type.as_deref().unwrap_or("mono"))?;
    let party = |number: Option<String>, name: Option<String>| Party { name, number, uri: None };
    Ok(StreamStart {
        call_id: call_id(&id)?,
        from: party(first(&meta, &["from", "caller"]), first(&meta, &["callerName", "caller_name"])),
        to: party(first(&meta, &["to", "callee"]), None),
        trunk: first(&meta, dialect.trunk_keys),
        codec: format!("L16/{rate}"),
        sample_rate: rate,
        speakers,
        token: None,
    })
}

/// Interleaved signed 16-bit little-endian PCM, one channel per speaker, split into each
/// speaker's samples with their stream time (the count of sample frames before them). A
/// sample frame cut between two binary frames is completed by the next.
#[derive(Debug, Clone)]
pub struct L16 {
    roles: Vec<Role>,
    /// Bytes of an incomplete sample frame (fewer than 2 × channels).
    carry: Vec<u8>,
    /// Sample frames read so far.
    frames: u64,
}

impl L16 {
    pub fn new(roles: Vec<Role>) -> L16 {
        L16 { roles, carry: Vec::new(), frames: 0 }
    }

    pub fn push(&mut self, data: &[u8], out: &mut Vec<Event>) {
        let channels = self.roles.len().max(1);
        let width = 2 * channels;
        let mut data = data;
        let mut joined;
        if !self.carry.is_empty() {
            joined = std::mem::take(&mut self.carry);
            joined.extend_from_slice(data);
            data = &joined[..];
        }
        let whole = data.len() / width * width;
        self.carry.extend_from_slice(&data[whole..]);
        let frames = whole / width;
        if frames == 0 {
            return;
        }
        for (channel, &role) in self.roles.iter().enumerate() {
            let samples = data[..whole]
                .chunks_exact(width)
                .map(|frame| i16::from_le_bytes([frame[2 * channel], frame[2 * channel + 1]]))
                .collect();
            out.push(Event::Audio { role, at: self.frames, samples });
        }
        self.frames += frames as u64;
    }
}

/// A jambonz or audio_fork connection: a JSON metadata text frame, then binary L16 frames.
/// Text frames after the metadata are the dialect's own (jambonz's DTMF); others are ignored.
/// The peer's close frame is the explicit end.
pub struct L16Stream {
    dialect: &'static Dialect,
    query: StreamQuery,
    pcm: Option<L16>,
}

impl L16Stream {
    pub fn new(dialect: &'static Dialect, query: StreamQuery) -> L16Stream {
        L16Stream { dialect, query, pcm: None }
    }
}

impl Protocol for L16Stream {
    fn source(&self) -> &'static str {
        self.dialect.source
    }

    fn text(&mut self, text: &str, out: &mut Vec<Event>) -> Result<(), Close> {
        if self.pcm.is_some() {
            // `{"event":"dtmf","dtmf":"5"}` (jambonz passDtmf); anything else is the sender's own.
            if let Ok(Value::Object(frame)) = serde_json::from_str::<Value>(text) {
                let digit = first(&frame, &["dtmf", "digit"]).and_then(|d| d.chars().next());
                if let (Some("dtmf"), Some(digit)) = (frame.get("event").and_then(Value::as_str), digit) {
                    out.push(Event::Dtmf { role: Role::Customer, digit });
                }
            }
            return Ok(());
        }
        let start = l16_start(self.dialect, text, &self.query)?;
        self.pcm = Some(L16::new(start.speakers.clone()));
        out.push(Event::Start(Box::new(start)));
        Ok(())
    }

    fn binary(&mut self, data: &[u8], out: &mut Vec<Event>) -> Result<(), Close> {
        let Some(pcm) = self.pcm.as_mut() else {
            return Err(Close::new(ws::BAD_MESSAGE, "audio before the metadata text frame"));
        };
        pcm.push(data, out);
        Ok(())
    }

    fn closed(&mut self, out: &mut Vec<Event>) {
        out.push(Event::Stop);
    }
}

/// 16 kHz audio placed on the call's time line, ready for [`LiveCall::audio`].
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    pub speaker: usize,
    pub start_ms: u64,
    pub samples: Vec<i16>,
}

/// One speaker's way to 16 kHz: resampling, and the clock that places the output.
struct Track {
    role: Role,
    resampler: Resampler,
    /// Stream time (input samples) at which the next chunk follows on without a gap.
    next_in: Option<u64>,
    /// Call time, in 16 kHz samples, of the first pending sample: always a whole millisecond.
    out_at: u64,
    /// Output waiting to fill a whole millisecond.
    pending: Vec<i16>,
    input: Vec<f32>,
    output: Vec<f32>,
    stats: StreamCard,
}

impl Track {
    fn new(role: Role, rate: u32, codec: &str) -> Result<Track, Close> {
        let resampler = Resampler::new(rate)
            .map_err(|e| Close::new(ws::BAD_MESSAGE, format!("cannot take {rate} Hz audio: {e}")))?;
        Ok(Track {
            role,
            resampler,
            next_in: None,
            out_at: 0,
            pending: Vec::new(),
            input: Vec::new(),
            output: Vec::new(),
            stats: StreamCard { speaker: role.as_str().into(), codec: codec.into(), ..StreamCard::default() },
        })
    }

    fn rate(&self) -> u64 {
        u64::from(self.resampler.input_rate())
    }

    /// Call time (16 kHz samples) of stream time `at` on a connection whose stream time 0 lies
    /// at `base_ms`, cut to a whole millisecond.
    fn place(&self, base_ms: u64, at: u64) -> u64 {
        let ms = (u128::from(at) * 1000 / u128::from(self.rate())).min(u128::from(u32::MAX)) as u64;
        base_ms.saturating_add(ms).saturating_mul(PER_MS)
    }

    fn push(&mut self, speaker: usize, base_ms: u64, at: u64, samples: &[i16], out: &mut Vec<Placed>) {
        self.stats.packets += 1;
        let tolerance = self.rate() * TOLERANCE_MS / 1000;
        let len = samples.len() as u64;
        match self.next_in {
            Some(next) if at.saturating_add(tolerance) < next => {
                // Audio this track already has (a repeated or late chunk): skipped.
                self.stats.late += 1;
                return;
            }
            Some(next) if at > next.saturating_add(tolerance) => {
                // A gap: what came so far is finished, the new run starts where the stream says.
                self.stats.lost += (at - next).div_ceil(len.max(1));
                self.flush(speaker, out);
                self.out_at = self.place(base_ms, at).max(self.out_at);
                self.next_in = Some(at.saturating_add(len));
            }
            Some(next) => self.next_in = Some(next.saturating_add(len)),
            None => {
                self.out_at = self.place(base_ms, at).max(self.out_at);
                self.next_in = Some(at.saturating_add(len));
            }
        }
        self.input.clear();
        self.input.extend(samples.iter().map(|&s| f32::from(s) / 32_768.0));
        self.output.clear();
        if let Err(error) = self.resampler.process(&self.input, &mut self.output) {
            tracing::warn!(%error, "resampling failed; audio dropped");
            return;
        }
        self.take_output();
        self.emit(speaker, false, out);
    }

    fn take_output(&mut self) {
        self.pending.extend(self.output.iter().map(|&x| (x * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16));
    }

    /// Hands on the pending output in whole milliseconds (all of it when `all`).
    fn emit(&mut self, speaker: usize, all: bool, out: &mut Vec<Placed>) {
        let n = if all { self.pending.len() } else { self.pending.len() / PER_MS as usize * PER_MS as usize };
        if n == 0 {
            return;
        }
        out.push(Placed { speaker, start_ms: self.out_at / PER_MS, samples: self.pending.drain(..n).collect() });
        // The next run starts on a whole millisecond at or after this one's end.
        self.out_at = (self.out_at + n as u64).div_ceil(PER_MS) * PER_MS;
    }

    /// Ends the current run: the resampler's held-back tail and any partial millisecond.
    fn flush(&mut self, speaker: usize, out: &mut Vec<Placed>) {
        self.output.clear();
        if let Err(error) = self.resampler.flush(&mut self.output) {
            tracing::warn!(%error, "resampler flush failed");
        }
        self.take_output();
        self.emit(speaker, true, out);
    }

    /// Call time (ms) just after the last audio handed on.
    fn end_ms(&self) -> u64 {
        self.out_at.div_ceil(PER_MS)
    }
}

/// The time line of a streamed call: one [`Track`] per speaker of the call, and where the
/// current connection's stream time 0 lies on the call's clock. A pure core: stream time in,
/// placed 16 kHz audio out.
pub struct Clocks {
    roles: Vec<Role>,
    tracks: Vec<Track>,
    /// Call time (ms) of the current connection's stream time 0.
    base_ms: u64,
}

impl Clocks {
    /// The clocks of a new call from its first connection's metadata.
    pub fn new(start: &StreamStart) -> Result<Clocks, Close> {
        let tracks = start
            .speakers
            .iter()
            .map(|&role| Track::new(role, start.sample_rate, &start.codec))
            .collect::<Result<_, _>>()?;
        Ok(Clocks { roles: start.speakers.clone(), tracks, base_ms: 0 })
    }

    /// A new connection continues the call after it was parked for `parked_for`: its stream
    /// time 0 lies that long after the last audio of the call. Each track finishes its run
    /// (into `out`) and takes the new connection's rate.
    pub fn resume(&mut self, start: &StreamStart, parked_for: Duration, out: &mut Vec<Placed>) -> Result<(), Close> {
        for (speaker, track) in self.tracks.iter_mut().enumerate() {
            track.flush(speaker, out);
            track.next_in = None;
            if track.rate() != u64::from(start.sample_rate) {
                let stats = track.stats.clone();
                let out_at = track.out_at;
                *track = Track::new(track.role, start.sample_rate, &start.codec)?;
                track.stats = StreamCard { codec: start.codec.clone(), ..stats };
                track.out_at = out_at;
            }
        }
        let end = self.tracks.iter().map(Track::end_ms).max().unwrap_or(self.base_ms);
        self.base_ms = end.saturating_add(parked_for.as_millis().min(u128::from(u32::MAX)) as u64);
        Ok(())
    }

    /// The index of `role` among the call's speakers.
    pub fn speaker(&self, role: Role) -> Option<usize> {
        self.roles.iter().position(|&r| r == role)
    }

    /// Audio of `role` at stream time `at` (samples at the stream's rate).
    pub fn audio(&mut self, role: Role, at: u64, samples: &[i16], out: &mut Vec<Placed>) {
        let Some(speaker) = self.speaker(role) else { return };
        let base_ms = self.base_ms;
        self.tracks[speaker].push(speaker, base_ms, at, samples, out);
    }

    /// Ends every track's run (at the call's end, or before parking).
    pub fn flush(&mut self, out: &mut Vec<Placed>) {
        for (speaker, track) in self.tracks.iter_mut().enumerate() {
            track.flush(speaker, out);
        }
    }

    /// The media figures of each speaker, in speaker order.
    pub fn stats(&self) -> Vec<StreamCard> {
        self.tracks.iter().map(|t| t.stats.clone()).collect()
    }
}

/// Keeps calls whose connection dropped without a stop, for a grace period, by call id. A pure
/// core: time comes in as arguments.
pub struct Parking<T> {
    grace: Duration,
    slots: HashMap<String, Slot<T>>,
    next_conn: u64,
}

enum Slot<T> {
    /// A connection (by its number) holds the call.
    Active(u64),
    /// No connection holds it since `since`.
    Parked { value: T, since: Instant },
}

/// What a new connection finds under its call id.
#[derive(Debug)]
pub enum Claim<T> {
    /// No call: the connection starts one; its number is the first field.
    New(u64),
    /// A parked call, now the connection's.
    Resume { conn: u64, value: T, parked_for: Duration },
    /// Another connection holds the call.
    Busy,
}

impl<T> Parking<T> {
    pub fn new(grace: Duration) -> Parking<T> {
        Parking { grace, slots: HashMap::new(), next_conn: 0 }
    }

    pub fn claim(&mut self, key: &str, now: Instant) -> Claim<T> {
        self.next_conn += 1;
        let conn = self.next_conn;
        match self.slots.remove(key) {
            None => {
                self.slots.insert(key.to_string(), Slot::Active(conn));
                Claim::New(conn)
            }
            Some(Slot::Parked { value, since }) => {
                self.slots.insert(key.to_string(), Slot::Active(conn));
                Claim::Resume { conn, value, parked_for: now.saturating_duration_since(since) }
            }
            Some(active @ Slot::Active(_)) => {
                self.slots.insert(key.to_string(), active);
                Claim::Busy
            }
        }
    }

    /// The connection `conn` ends without the call ending: the call waits for a reconnect.
    /// Gives the value back when `conn` does not hold the call.
    pub fn park(&mut self, key: &str, conn: u64, value: T, now: Instant) -> Result<Instant, T> {
        match self.slots.get(key) {
            Some(Slot::Active(holder)) if *holder == conn => {
                self.slots.insert(key.to_string(), Slot::Parked { value, since: now });
                Ok(now + self.grace)
            }
            _ => Err(value),
        }
    }

    /// The connection `conn` ends the call (or never got one going): the id is free again.
    pub fn release(&mut self, key: &str, conn: u64) {
        if matches!(self.slots.get(key), Some(Slot::Active(holder)) if *holder == conn) {
            self.slots.remove(key);
        }
    }

    /// Calls parked for the whole grace by `now`, removed.
    pub fn expire(&mut self, now: Instant) -> Vec<(String, T)> {
        let due: Vec<String> = self
            .slots
            .iter()
            .filter(|(_, slot)| matches!(slot, Slot::Parked { since, .. } if *since + self.grace <= now))
            .map(|(key, _)| key.clone())
            .collect();
        due.into_iter()
            .filter_map(|key| match self.slots.remove(&key) {
                Some(Slot::Parked { value, .. }) => Some((key, value)),
                _ => None,
            })
            .collect()
    }

    /// When the next parked call's grace runs out.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.slots
            .values()
            .filter_map(|slot| match slot {
                Slot::Parked { since, .. } => Some(*since + self.grace),
                Slot::Active(_) => None,
            })
            .min()
    }

    /// Every parked call, removed (shutdown).
    pub fn drain(&mut self) -> Vec<T> {
        let keys: Vec<String> =
            self.slots.iter().filter(|(_, s)| matches!(s, Slot::Parked { .. })).map(|(k, _)| k.clone()).collect();
        keys.into_iter()
            .filter_map(|k| match self.slots.remove(&k) {
                Some(Slot::Parked { value, .. }) => Some(value),
                _ => None,
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

/// A streamed call: the voice session and its time line.
pub struct StreamCall {
    pub call: LiveCall,
    clocks: Clocks,
    placed: Vec<Placed>,
    /// Audio chunks since the card's figures were last updated.
    since_stats: u32,
}

/// Audio chunks between two updates of the card's media figures (about a second of two
/// speakers in 20 ms chunks).
const STATS_EVERY: u32 = 100;

impl StreamCall {
    async fn deliver(&mut self) {
        for placed in self.placed.drain(..) {
            self.call.audio(placed.speaker, placed.start_ms, &placed.samples);
        }
        if self.since_stats >= STATS_EVERY {
            self.since_stats = 0;
            self.call.stats(self.clocks.stats()).await;
        }
    }

    /// Takes one event of the connection (not [`Event::Start`] or [`Event::Stop`], which the
    /// shell handles).
    pub async fn handle(&mut self, event: Event) {
        match event {
            Event::Audio { role, at, samples } => {
                self.clocks.audio(role, at, &samples, &mut self.placed);
                self.since_stats += 1;
                self.deliver().await;
            }
            Event::Dtmf { role, digit } => {
                if let Some(speaker) = self.clocks.speaker(role) {
                    self.call.dtmf(speaker, digit).await;
                }
            }
            Event::Start(_) | Event::Stop => {}
        }
    }

    /// Ends the call: the last audio, the figures, the hang-up cause.
    pub async fn finish(mut self, cause: &str) {
        self.clocks.flush(&mut self.placed);
        self.since_stats = 0;
        self.deliver().await;
        self.call.stats(self.clocks.stats()).await;
        self.call.finish(cause).await;
    }

    /// Before parking: hands on what the tracks hold, so the recording is complete so far.
    async fn pause(&mut self) {
        self.clocks.flush(&mut self.placed);
        self.since_stats = STATS_EVERY;
        self.deliver().await;
    }
}

/// The calls of every streaming connection, by protocol and call id: the registry the WebSocket
/// and AudioSocket shells share (the `streams` field of [`App`]).
pub struct Streams {
    parking: Mutex<Parking<StreamCall>>,
}

/// A connection's hold on its call.
pub struct Attached {
    key: String,
    conn: u64,
    pub call: StreamCall,
    /// Whether a reconnect continued a parked call.
    pub resumed: bool,
}

/// Hang-up causes of streamed calls.
pub const STOPPED: &str = "stream stopped";
pub const LOST: &str = "stream lost";
pub const INTERRUPTED: &str = "interrupted";

impl Streams {
    pub fn new(grace: Duration) -> Streams {
        Streams { parking: Mutex::new(Parking::new(grace)) }
    }

    fn parking(&self) -> std::sync::MutexGuard<'_, Parking<StreamCall>> {
        self.parking.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts the call of `start`, or continues it when it is parked. Refused (4409) while
    /// another connection holds the same call.
    pub async fn attach(
        &self,
        app: &Arc<App>,
        source: &'static str,
        start: &StreamStart,
        peer: &str,
    ) -> Result<Attached, Close> {
        let key = format!("{source}/{}", start.call_id);
        let claim = self.parking().claim(&key, app.clock.now().mono);
        match claim {
            Claim::Busy => {
                Err(Close::new(ws::REPLACED, format!("call {} is streaming on another connection", start.call_id)))
            }
            Claim::Resume { conn, mut value, parked_for } => {
                if let Err(close) = value.clocks.resume(start, parked_for, &mut value.placed) {
                    // The call cannot take this connection's audio: it waits for another.
                    let parked = self.parking().park(&key, conn, value, app.clock.now().mono);
                    if let Ok(deadline) = parked {
                        tokio::spawn(Self::expire_at(app.clone(), deadline));
                    }
                    return Err(close);
                }
                value.deliver().await;
                metrics::counter!(crate::metrics::STREAM_RESUMES, "protocol" => source).increment(1);
                tracing::info!(session = %value.call.id, call_id = %start.call_id, source, ?parked_for, "stream resumed");
                Ok(Attached { key, conn, call: value, resumed: true })
            }
            Claim::New(conn) => {
                let clocks = match Clocks::new(start) {
                    Ok(clocks) => clocks,
                    Err(close) => {
                        self.parking().release(&key, conn);
                        return Err(close);
                    }
                };
                let spec = start.spec(source, &app.config.streams.tenant, peer);
                match LiveCall::start(app, spec).await {
                    Ok(call) => {
                        let call = StreamCall { call, clocks, placed: Vec::new(), since_stats: 0 };
                        Ok(Attached { key, conn, call, resumed: false })
                    }
                    Err(error) => {
                        self.parking().release(&key, conn);
                        tracing::error!(%error, source, "stream call could not start");
                        Err(Close::new(ws::GOING_AWAY, "call could not start"))
                    }
                }
            }
        }
    }

    /// The connection is over. With a cause the call ends; without one it is parked for the
    /// reconnect grace and ends as `stream lost` if no connection continues it.
    pub async fn detach(app: &Arc<App>, attached: Attached, cause: Option<&str>) {
        let Attached { key, conn, mut call, .. } = attached;
        let cause = match cause {
            Some(cause) => cause,
            None if app.shutdown.is_cancelled() => INTERRUPTED,
            None => {
                call.pause().await;
                let parked = app.streams.parking().park(&key, conn, call, app.clock.now().mono);
                match parked {
                    Ok(deadline) => {
                        tracing::info!(call = %key, "stream dropped; call parked for a reconnect");
                        tokio::spawn(Self::expire_at(app.clone(), deadline));
                        return;
                    }
                    Err(back) => {
                        call = back;
                        LOST
                    }
                }
            }
        };
        app.streams.parking().release(&key, conn);
        call.finish(cause).await;
    }

    /// Ends the calls whose grace has run out by `deadline` (all parked calls on shutdown).
    async fn expire_at(app: Arc<App>, deadline: Instant) {
        let shutdown = tokio::select! {
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => false,
            _ = app.shutdown.cancelled() => true,
        };
        if shutdown {
            let parked = app.streams.parking().drain();
            for call in parked {
                call.finish(INTERRUPTED).await;
            }
            return;
        }
        let expired = app.streams.parking().expire(app.clock.now().mono);
        for (key, call) in expired {
            tracing::info!(call = %key, "no reconnect within the grace; call ended");
            call.finish(LOST).await;
        }
    }

    /// Calls held by a connection or parked.
    pub fn len(&self) -> usize {
        self.parking().len()
    }

    pub fn is_empty(&self) -> bool {
        self.parking().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(rate: u32, speakers: Vec<Role>) -> StreamStart {
        StreamStart {
            call_id: "c1".into(),
            from: Party::default(),
            to: Party::default(),
            trunk: None,
            codec: format!("L16/{rate}"),
            sample_rate: rate,
            speakers,
            token: None,
        }
    }

    fn sine(n: usize, rate: u32, offset: usize) -> Vec<i16> {
        (offset..offset + n)
            .map(|i| ((i as f32 * 2.0 * std::f32::consts::PI * 440.0 / rate as f32).sin() * 8000.0) as i16)
            .collect()
    }

    /// Audio as the recorder would lay it out: every placed chunk at its time.
    fn lay_out(placed: &[Placed], speaker: usize) -> Vec<i16> {
        let mut line = Vec::new();
        for p in placed.iter().filter(|p| p.speaker == speaker) {
            let at = (p.start_ms * PER_MS) as usize;
            assert!(at >= line.len(), "chunk at {} ms overlaps what came before ({} samples)", p.start_ms, line.len());
            line.resize(at, 0);
            line.extend_from_slice(&p.samples);
        }
        line
    }

    #[test]
    fn l16_splits_channels_and_completes_cut_frames() {
        let mut l16 = L16::new(vec![Role::Customer, Role::Agent]);
        let mut out = Vec::new();
        // Frames: (1, -1), (2, -2), (3, -3); cut after 5 bytes.
        let bytes: Vec<u8> = [1i16, -1, 2, -2, 3, -3].iter().flat_map(|s| s.to_le_bytes()).collect();
        l16.push(&bytes[..5], &mut out);
        l16.push(&bytes[5..], &mut out);
        assert_eq!(
            out,
            vec![
                Event::Audio { role: Role::Customer, at: 0, samples: vec![1] },
                Event::Audio { role: Role::Agent, at: 0, samples: vec![-1] },
                Event::Audio { role: Role::Customer, at: 1, samples: vec![2, 3] },
                Event::Audio { role: Role::Agent, at: 1, samples: vec![-2, -3] },
            ]
        );
        out.clear();
        l16.push(&[9], &mut out);
        assert!(out.is_empty(), "a lone byte waits for the rest of its frame");
    }

    #[test]
    fn metadata_of_both_dialects() {
        let meta = r#"{"callSid":"abc","from":"+15551230000","to":"+15559870000","sampleRate":16000,
                       "mixType":"stereo","accountSid":"acct","callerName":"Ann"}"#;
        let s = l16_start(&jambonz::DIALECT, meta, &StreamQuery::default()).unwrap();
        assert_eq!(s.call_id, "abc");
        assert_eq!(s.sample_rate, 16_000);
        assert_eq!(s.speakers, vec![Role::Customer, Role::Agent]);
        assert_eq!(s.from.number.as_deref(), Some("+15551230000"));
        assert_eq!(s.from.name.as_deref(), Some("Ann"));
        assert_eq!(s.trunk.as_deref(), Some("acct"));
        // audio_fork metadata is free-form: the query fills the gaps.
        let query = StreamQuery { call_id: Some("q-id".into()), sample_rate: Some("8k".into()), ..Default::default() };
        let s = l16_start(&audio_fork::DIALECT, r#"{"caller":"1000"}"#, &query).unwrap();
        assert_eq!((s.call_id.as_str(), s.sample_rate, s.speakers.len()), ("q-id", 8_000, 1));
        let s = l16_start(&audio_fork::DIALECT, r#"{"uuid":"u-1","sampleRate":"16k"}"#, &query).unwrap();
        assert_eq!((s.call_id.as_str(), s.sample_rate), ("u-1", 16_000));
        for (bad, why) in [
            ("[1,2]", "JSON object"),
            ("{", "malformed"),
            (r#"{"from":"x"}"#, "no call id"),
            (r#"{"callSid":"a","sampleRate":100}"#, "sample rate"),
            (r#"{"callSid":"a","mixType":"quad"}"#, "mixType"),
        ] {
            let close = l16_start(&jambonz::DIALECT, bad, &StreamQuery::default()).unwrap_err();
            assert_eq!(close.code, ws::BAD_MESSAGE);
            assert!(close.reason.contains(why), "{bad}: {}", close.reason);
        }
    }

    #[test]
    fn clocks_place_contiguous_audio_in_whole_milliseconds() {
        let mut clocks = Clocks::new(&start(8_000, vec![Role::Customer])).unwrap();
        let mut out = Vec::new();
        // 1 s in odd 157-sample pieces.
        let audio = sine(8_000, 8_000, 0);
        let mut at = 0;
        for piece in audio.chunks(157) {
            clocks.audio(Role::Customer, at, piece, &mut out);
            at += piece.len() as u64;
        }
        clocks.flush(&mut out);
        assert!(out.iter().all(|p| p.samples.len() % 16 == 0 || p == out.last().unwrap()));
        let line = lay_out(&out, 0);
        assert_eq!(line.len(), 16_000, "exactly twice the input, no gaps, no overlaps");
        // Placed audio is the resampled input: the 440 Hz sine at 16 kHz, in phase.
        let ideal = sine(16_000, 16_000, 0);
        let err: f64 = line[400..15_600].iter().zip(&ideal[400..15_600]).map(|(a, b)| f64::from(a - b).abs()).sum();
        assert!(err / 15_200.0 < 150.0, "mean error {}", err / 15_200.0);
    }

    #[test]
    fn gaps_from_stream_time_become_gaps_on_the_call_and_repeats_are_skipped() {
        let mut clocks = Clocks::new(&start(8_000, vec![Role::Customer, Role::Agent])).unwrap();
        let mut out = Vec::new();
        let chunk = sine(160, 8_000, 0);
        clocks.audio(Role::Agent, 0, &chunk, &mut out); // 0–20 ms
        clocks.audio(Role::Agent, 160, &chunk, &mut out); // 20–40 ms
        clocks.audio(Role::Agent, 160, &chunk, &mut out); // repeated: skipped
        clocks.audio(Role::Agent, 800, &chunk, &mut out); // 100–120 ms, after a gap
        clocks.audio(Role::Customer, 4_000, &chunk, &mut out); // the customer starts at 500 ms
        clocks.flush(&mut out);
        let agent = lay_out(&out, 1);
        assert_eq!(agent.len(), 120 * 16);
        assert!(agent[40 * 16..100 * 16].iter().all(|&s| s == 0), "the gap is silence");
        assert!(agent[101 * 16..119 * 16].iter().any(|&s| s.abs() > 1000), "audio after the gap");
        let customer = lay_out(&out, 0);
        assert_eq!(customer.len(), 520 * 16);
        assert!(customer[..500 * 16].iter().all(|&s| s == 0));
        let stats = clocks.stats();
        assert_eq!((stats[1].packets, stats[1].late, stats[1].lost), (4, 1, 3));
        assert_eq!(stats[0].packets, 1);
    }

    #[test]
    fn a_resumed_connection_continues_after_the_parked_time() {
        let mut clocks = Clocks::new(&start(8_000, vec![Role::Customer])).unwrap();
        let mut out = Vec::new();
        clocks.audio(Role::Customer, 0, &sine(800, 8_000, 0), &mut out); // 0–100 ms
                                                                         // The new connection's stream starts again at 0, at 16 kHz this time.
        clocks.resume(&start(16_000, vec![Role::Customer]), Duration::from_millis(250), &mut out).unwrap();
        clocks.audio(Role::Customer, 0, &sine(1_600, 16_000, 0), &mut out); // 100 ms at 16 kHz
        clocks.flush(&mut out);
        let line = lay_out(&out, 0);
        assert_eq!(line.len(), (100 + 250 + 100) * 16);
        assert!(line[100 * 16..350 * 16].iter().all(|&s| s == 0));
        assert_eq!(&line[350 * 16..], &sine(1_600, 16_000, 0)[..], "16 kHz passes through unchanged");
        assert_eq!(clocks.stats()[0].codec, "L16/16000");
    }

    #[test]
    fn bogus_timestamps_do_not_overflow() {
        let mut clocks = Clocks::new(&start(8_000, vec![Role::Customer])).unwrap();
        let mut out = Vec::new();
        clocks.audio(Role::Customer, u64::MAX - 10, &[1, 2, 3], &mut out);
        clocks.audio(Role::Customer, 0, &[1, 2, 3], &mut out);
        clocks.flush(&mut out);
        assert!(clocks.stats()[0].late <= 1);
    }

    #[test]
    fn parking_holds_a_call_for_the_grace() {
        let t0 = Instant::now();
        let mut p: Parking<&str> = Parking::new(Duration::from_secs(10));
        let Claim::New(first) = p.claim("twilio/CA1", t0) else { panic!("new call") };
        assert!(matches!(p.claim("twilio/CA1", t0), Claim::Busy));
        let deadline = p.park("twilio/CA1", first, "call", t0 + Duration::from_secs(1)).unwrap();
        assert_eq!(deadline, t0 + Duration::from_secs(11));
        assert_eq!(p.poll_timeout(), Some(deadline));
        assert!(p.expire(t0 + Duration::from_secs(5)).is_empty());
        // A reconnect within the grace takes it back, with the time it was parked.
        let Claim::Resume { conn, value, parked_for } = p.claim("twilio/CA1", t0 + Duration::from_secs(4)) else {
            panic!("resume")
        };
        assert_eq!((value, parked_for), ("call", Duration::from_secs(3)));
        assert_eq!(p.poll_timeout(), None);
        // Only the holder parks it; a stale connection gets its value back.
        assert_eq!(p.park("twilio/CA1", first, "stale", t0), Err("stale"));
        p.park("twilio/CA1", conn, "call", t0 + Duration::from_secs(5)).unwrap();
        assert!(p.expire(t0 + Duration::from_secs(14)).is_empty());
        assert_eq!(p.expire(t0 + Duration::from_secs(15)), vec![("twilio/CA1".to_string(), "call")]);
        assert!(p.is_empty());
        // An explicit end frees the id at once.
        let Claim::New(c) = p.claim("x", t0) else { panic!() };
        p.release("x", c);
        assert!(matches!(p.claim("x", t0), Claim::New(_)));
        let Claim::New(c) = p.claim("y", t0) else { panic!() };
        p.park("y", c, "y", t0).unwrap();
        assert_eq!(p.drain(), vec!["y"]);
    }
}
