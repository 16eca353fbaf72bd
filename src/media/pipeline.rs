//! One speaker's media: RTP datagrams in, 16 kHz audio with stream times and DTMF out.
//!
//! A [`MediaStream`] chains the pure cores of this stage: [`rtp::parse`] → [`JitterBuffer`]
//! → [`Decoder`] (or the RFC 4733 reader for telephone events, which never reach the audio
//! decoder) → [`Resampler`]. Like them it is sans-IO: the caller pushes datagrams with their
//! arrival time, polls for [`Output`], and arms a timer at [`MediaStream::poll_timeout`].
//!
//! Stream time comes from the RTP timestamps, not from the wall clock: 0 is the first sample
//! played, and each packet lands where its timestamp says. Lost packets are concealed in
//! place; a timestamp gap up to `max_fill` (silence suppression, DTX, a key press) is filled
//! with silence; a longer one ends the resampler run and the next frame starts later. Only
//! when the timestamps contradict the arrival times by more than a second (a sender that
//! restarted its clock, a new SSRC, a codec change) does the arrival time decide how much
//! time passed.

use super::codec::{Codec, CodecError, Decoder};
use super::jitter::{JitterBuffer, JitterConfig, JitterPacket, JitterStats, Slot};
use super::resample::{ResampleError, Resampler};
use super::rtp::{self, RtpError};
use super::SAMPLE_RATE;
use serde::Serialize;
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use thiserror::Error;

/// What the SDP negotiation decided for this stream, and the buffer settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamConfig {
    /// Payload type → codec. All must share one RTP clock rate (one stream, one clock).
    pub codecs: Vec<(u8, Codec)>,
    /// The `telephone-event` payload type (RFC 4733), often 101.
    pub telephone_event: Option<u8>,
    pub target_delay: Duration,
    pub max_packets: usize,
    /// Timestamp gaps up to this long are filled with silence; longer ones end the run.
    pub max_fill: Duration,
}

impl StreamConfig {
    pub fn new(codecs: &[(u8, Codec)], telephone_event: Option<u8>) -> StreamConfig {
        let jitter = JitterConfig::new(8_000);
        StreamConfig {
            codecs: codecs.to_vec(),
            telephone_event,
            target_delay: jitter.target_delay,
            max_packets: jitter.max_packets,
            max_fill: Duration::from_secs(1),
        }
    }
}

/// What a stream gives out, in stream order.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// 16 kHz mono samples. Frames of one run follow each other exactly; `start_ms` is the
    /// stream time of the first sample (whole milliseconds, rounded down).
    Audio { start_ms: u64, samples: Vec<i16> },
    /// A telephone-event (RFC 4733): once when the key goes down, once when the event ends
    /// (only the end if its start was lost). `digit` is `0`-`9`, `*`, `#` or `A`-`D`.
    Dtmf { digit: char, end: bool, at_ms: u64, duration_ms: u64 },
}

#[derive(Debug, Error)]
pub enum MediaError {
    #[error(transparent)]
    Rtp(#[from] RtpError),
    #[error("payload type {0} was not negotiated for this stream")]
    UnknownPayloadType(u8),
    #[error("payload type {pt} runs at {rate} Hz, the stream at {clock} Hz")]
    ClockMismatch { pt: u8, rate: u32, clock: u32 },
    #[error("no codec negotiated")]
    NoCodec,
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error(transparent)]
    Resample(#[from] ResampleError),
}

/// The stream's counters, for the call card and the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct StreamStats {
    /// Datagrams that were RTP of a negotiated payload type, duplicates and late ones included.
    pub received: u64,
    pub duplicates: u64,
    /// Sequence numbers that never came in time.
    pub lost: u64,
    /// Packets that came after their slot was given up; dropped.
    pub late: u64,
    /// RFC 3550 interarrival jitter, in milliseconds.
    pub jitter_ms: f64,
    /// New sources (SSRC change, sequence restart) followed.
    pub resyncs: u64,
    /// Datagrams refused before the jitter buffer: malformed, RTCP, unknown payload type.
    pub rejected: u64,
    /// Payloads the decoder or the resampler failed on (their time becomes silence).
    pub decode_errors: u64,
    pub dtmf_events: u64,
    /// Stream time given out, and how much of it was concealment or silence fill, in ms.
    pub audio_ms: u64,
    pub concealed_ms: u64,
    pub silence_ms: u64,
}

/// Where the stream stands on its timeline, once the first slot has played.
#[derive(Debug, Clone, Copy)]
struct Timeline {
    /// The RTP timestamp of the next sample expected, and its stream position (clock units).
    expected_ts: u32,
    pos: u64,
    /// Where the current resampler run began (stream position, clock units) and how many
    /// 16 kHz samples it has given.
    run_start: u64,
    run_given: u64,
    last_arrival: Option<Instant>,
    last_samples: u64,
    /// False after a codec change of clock rate: `expected_ts` means nothing until the next
    /// packet anchors it again.
    anchored: bool,
}

#[derive(Debug, Clone, Copy)]
struct DtmfState {
    timestamp: u32,
    ended: bool,
}

#[derive(Debug)]
pub struct MediaStream {
    config: StreamConfig,
    clock: u32,
    decoders: Vec<(u8, Decoder)>,
    last_audio_pt: Option<u8>,
    jitter: JitterBuffer,
    /// Counters of jitter buffers replaced by a codec change of clock rate.
    earlier: JitterStats,
    resampler: Resampler,
    timeline: Option<Timeline>,
    dtmf: Option<DtmfState>,
    out: VecDeque<Output>,
    input: Vec<f32>,
    output: Vec<f32>,
    last_now: Option<Instant>,
    stats: StreamStats,
    /// Stream-clock samples behind `concealed_ms` and `silence_ms`.
    concealed: u64,
    silence: u64,
}

impl MediaStream {
    /// A stream for the negotiated payload types, with default buffer settings.
    pub fn new(codecs: &[(u8, Codec)], telephone_event: Option<u8>) -> Result<MediaStream, MediaError> {
        MediaStream::with_config(StreamConfig::new(codecs, telephone_event))
    }

    pub fn with_config(config: StreamConfig) -> Result<MediaStream, MediaError> {
        let (clock, decoders) = decoders_for(&config.codecs)?;
        Ok(MediaStream {
            jitter: JitterBuffer::new(jitter_config(&config, clock)),
            earlier: JitterStats::default(),
            resampler: Resampler::new(clock)?,
            config,
            clock,
            decoders,
            last_audio_pt: None,
            timeline: None,
            dtmf: None,
            out: VecDeque::new(),
            input: Vec::new(),
            output: Vec::new(),
            last_now: None,
            stats: StreamStats::default(),
            concealed: 0,
            silence: 0,
        })
    }

    /// A new negotiation (re-INVITE) for the same stream. The same payload types change
    /// nothing (hold, resume). Otherwise what is held is played out with the old codecs first,
    /// and the timeline carries on from where it was.
    pub fn set_payload_types(&mut self, codecs: &[(u8, Codec)], telephone_event: Option<u8>) -> Result<(), MediaError> {
        if codecs == self.config.codecs && telephone_event == self.config.telephone_event {
            return Ok(());
        }
        let (clock, decoders) = decoders_for(codecs)?;
        self.flush();
        if clock != self.clock {
            let resampler = Resampler::new(clock)?;
            self.earlier = add(self.earlier, self.jitter.stats());
            self.config.telephone_event = telephone_event;
            self.jitter = JitterBuffer::new(jitter_config(&self.config, clock));
            self.resampler = resampler;
            if let Some(t) = self.timeline.as_mut() {
                let out_end = t.run_start * u64::from(SAMPLE_RATE) / u64::from(self.clock) + t.run_given;
                t.pos = (out_end * u64::from(clock)).div_ceil(u64::from(SAMPLE_RATE));
                t.run_start = t.pos;
                t.run_given = 0;
                t.last_samples = t.last_samples * u64::from(clock) / u64::from(self.clock);
                t.anchored = false;
            }
            self.concealed = self.concealed * u64::from(clock) / u64::from(self.clock);
            self.silence = self.silence * u64::from(clock) / u64::from(self.clock);
            self.clock = clock;
        }
        self.config.codecs = codecs.to_vec();
        self.config.telephone_event = telephone_event;
        self.jitter.set_event_payload_type(telephone_event);
        self.decoders = decoders;
        self.last_audio_pt = None;
        Ok(())
    }

    /// Takes one datagram as it arrived. A refused one is counted and returned as an error;
    /// the stream goes on either way.
    pub fn push_rtp(&mut self, datagram: &[u8], now: Instant) -> Result<(), MediaError> {
        self.note(now);
        let packet = rtp::parse(datagram).inspect_err(|_| self.stats.rejected += 1)?;
        let pt = packet.payload_type;
        let known = self.config.telephone_event == Some(pt) || self.decoders.iter().any(|(p, _)| *p == pt);
        if !known {
            self.stats.rejected += 1;
            return Err(MediaError::UnknownPayloadType(pt));
        }
        let packet = JitterPacket {
            ssrc: packet.ssrc,
            sequence: packet.sequence,
            timestamp: packet.timestamp,
            payload_type: pt,
            marker: packet.marker,
            payload: packet.payload.to_vec(),
        };
        self.jitter.push(packet, now);
        Ok(())
    }

    /// The next output whose time has come. Call until it returns `None`.
    pub fn poll(&mut self, now: Instant) -> Option<Output> {
        self.note(now);
        loop {
            if let Some(output) = self.out.pop_front() {
                return Some(output);
            }
            let slot = self.jitter.poll(now)?;
            self.play(slot);
        }
    }

    /// When [`MediaStream::poll`] will next have something; `None` while nothing is held.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.out.is_empty() {
            self.jitter.poll_timeout()
        } else {
            self.last_now
        }
    }

    /// The stream ended (or pauses): plays out everything held and the resampler's tail.
    /// Poll to collect it. Packets pushed afterwards start a new run.
    pub fn flush(&mut self) {
        self.jitter.flush();
        if let Some(now) = self.last_now {
            while let Some(slot) = self.jitter.poll(now) {
                self.play(slot);
            }
        }
        self.end_run();
    }

    pub fn stats(&self) -> StreamStats {
        let jitter = add(self.earlier, self.jitter.stats());
        let ms = |samples: u64| samples * 1000 / u64::from(self.clock);
        StreamStats {
            received: jitter.received,
            duplicates: jitter.duplicates,
            lost: jitter.lost,
            late: jitter.late,
            jitter_ms: jitter.jitter_ms,
            resyncs: jitter.resyncs,
            concealed_ms: ms(self.concealed),
            silence_ms: ms(self.silence),
            ..self.stats
        }
    }

    fn note(&mut self, now: Instant) {
        self.last_now = Some(self.last_now.map_or(now, |t| t.max(now)));
    }

    fn play(&mut self, slot: Slot) {
        match slot {
            Slot::Packet { packet, .. } if self.config.telephone_event == Some(packet.payload_type) => {
                self.telephone_event(&packet);
            }
            Slot::Packet { packet, arrival } => self.audio(&packet, arrival),
            Slot::Lost { samples, .. } => self.lost(u64::from(samples)),
        }
    }

    fn audio(&mut self, packet: &JitterPacket, arrival: Instant) {
        let Some(decoder) = self.decoders.iter_mut().find(|(pt, _)| *pt == packet.payload_type).map(|(_, d)| d) else {
            return; // a payload type of an earlier negotiation
        };
        let decoded = match decoder.decode(&packet.payload) {
            Ok(samples) => samples,
            Err(_) => {
                self.stats.decode_errors += 1;
                return;
            }
        };
        self.input.clear();
        self.input.extend(decoded.iter().map(|&s| f32::from(s) / 32_768.0));
        self.last_audio_pt = Some(packet.payload_type);
        let n = self.input.len() as u64;
        let trim = self.place(packet.timestamp, Some(arrival));
        self.input.drain(..(trim.min(n) as usize));
        if let Some(t) = self.timeline.as_mut() {
            if n > trim {
                t.expected_ts = packet.timestamp.wrapping_add(n as u32);
            }
            t.last_samples = n;
        }
        self.feed_input();
    }

    fn lost(&mut self, samples: u64) {
        let (Some(_), Some(pt)) = (self.timeline, self.last_audio_pt) else { return };
        if samples > self.max_fill() {
            self.gap(samples);
        } else if let Some((_, decoder)) = self.decoders.iter_mut().find(|(p, _)| *p == pt) {
            match decoder.conceal(samples as usize) {
                Ok(concealed) => {
                    self.input.clear();
                    self.input.extend(concealed.iter().map(|&s| f32::from(s) / 32_768.0));
                    self.concealed += samples;
                    self.feed_input();
                }
                Err(_) => {
                    self.stats.decode_errors += 1;
                    self.gap(samples);
                }
            }
        }
        if let Some(t) = self.timeline.as_mut() {
            t.expected_ts = t.expected_ts.wrapping_add(samples as u32);
        }
    }

    fn max_fill(&self) -> u64 {
        (self.config.max_fill.as_secs_f64() * f64::from(self.clock)) as u64
    }

    /// Puts a slot with RTP timestamp `timestamp` on the timeline: fills or skips the gap
    /// before it, and returns how many of its leading samples were already played (overlap).
    /// Leaves `self.input` as it found it.
    fn place(&mut self, timestamp: u32, arrival: Option<Instant>) -> u64 {
        let clock = u64::from(self.clock);
        let max_fill = self.max_fill();
        let Some(t) = self.timeline else {
            self.timeline = Some(Timeline {
                expected_ts: timestamp,
                pos: 0,
                run_start: 0,
                run_given: 0,
                last_arrival: arrival,
                last_samples: 0,
                anchored: true,
            });
            return 0;
        };
        let d = i64::from(timestamp.wrapping_sub(t.expected_ts) as i32);
        let mut trim = 0;
        let mut skip = 0;
        if t.anchored && d > 0 && d as u64 <= max_fill {
            skip = d as u64;
        } else if t.anchored && d < 0 && d.unsigned_abs() <= max_fill {
            trim = d.unsigned_abs();
        } else if d != 0 || !t.anchored {
            // The timestamps jumped: believe them only if the arrival times agree.
            let wall = match (arrival, t.last_arrival) {
                (Some(a), Some(b)) => (a.saturating_duration_since(b).as_secs_f64() * clock as f64) as u64,
                _ => 0,
            };
            let believed = t.anchored && d > 0 && (d as u64).abs_diff(wall) <= clock;
            skip = if believed { d as u64 } else { wall.saturating_sub(t.last_samples) };
            if let Some(t) = self.timeline.as_mut() {
                t.expected_ts = timestamp;
                t.anchored = true;
            }
        }
        if let (Some(t), Some(a)) = (self.timeline.as_mut(), arrival) {
            t.last_arrival = Some(a);
        }
        if skip > 0 {
            let input = std::mem::take(&mut self.input);
            self.gap(skip);
            self.input = input;
        }
        trim
    }

    /// `samples` of stream time with no audio: silence if short, else a jump to a new run.
    fn gap(&mut self, samples: u64) {
        if samples == 0 {
            return;
        }
        self.silence += samples;
        if samples <= self.max_fill() {
            self.input.clear();
            self.input.resize(samples as usize, 0.0);
            self.feed_input();
        } else {
            self.end_run();
            if let Some(t) = self.timeline.as_mut() {
                t.pos += samples;
                t.run_start = t.pos;
                t.run_given = 0;
            }
        }
    }

    /// Resamples `self.input` (stream clock) and queues the 16 kHz result.
    fn feed_input(&mut self) {
        let Some(t) = self.timeline.as_mut() else { return };
        t.pos += self.input.len() as u64;
        self.output.clear();
        if self.resampler.process(&self.input, &mut self.output).is_err() {
            self.stats.decode_errors += 1;
        }
        self.emit();
    }

    /// Ends the resampler run: its tail goes out and the next run starts fresh.
    fn end_run(&mut self) {
        self.output.clear();
        if self.resampler.flush(&mut self.output).is_err() {
            self.stats.decode_errors += 1;
        }
        self.emit();
    }

    fn emit(&mut self) {
        let Some(t) = self.timeline.as_mut() else { return };
        if self.output.is_empty() {
            return;
        }
        let start = t.run_start * u64::from(SAMPLE_RATE) / u64::from(self.clock) + t.run_given;
        t.run_given += self.output.len() as u64;
        let per_ms = u64::from(SAMPLE_RATE) / 1000;
        self.stats.audio_ms = (start + self.output.len() as u64) / per_ms;
        let samples = self.output.iter().map(|&x| (x * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16).collect();
        self.out.push_back(Output::Audio { start_ms: start / per_ms, samples });
    }

    /// RFC 4733 §2.3: event, E bit, volume, duration. Repeats of an event share its timestamp.
    fn telephone_event(&mut self, packet: &JitterPacket) {
        let [event, flags, d0, d1, ..] = packet.payload[..] else {
            self.stats.decode_errors += 1;
            return;
        };
        let Some(digit) = dtmf_digit(event) else { return };
        let end = flags & 0x80 != 0;
        let is_new = self.dtmf.is_none_or(|s| s.timestamp != packet.timestamp);
        if !is_new && (!end || self.dtmf.is_some_and(|s| s.ended)) {
            return;
        }
        self.dtmf = Some(DtmfState { timestamp: packet.timestamp, ended: end });
        if self.timeline.is_none() {
            self.place(packet.timestamp, None);
        }
        let Some(t) = self.timeline else { return };
        let offset = i64::from(packet.timestamp.wrapping_sub(t.expected_ts) as i32);
        let at = t.pos.saturating_add_signed(offset);
        let clock = u64::from(self.clock);
        self.stats.dtmf_events += 1;
        self.out.push_back(Output::Dtmf {
            digit,
            end,
            at_ms: at * 1000 / clock,
            duration_ms: u64::from(u16::from_be_bytes([d0, d1])) * 1000 / clock,
        });
    }
}

/// The decoders for a negotiation, and its one clock rate.
fn decoders_for(codecs: &[(u8, Codec)]) -> Result<(u32, Vec<(u8, Decoder)>), MediaError> {
    let clock = codecs.first().ok_or(MediaError::NoCodec)?.1.clock_rate();
    let mut decoders = Vec::with_capacity(codecs.len());
    for &(pt, codec) in codecs {
        if codec.clock_rate() != clock {
            return Err(MediaError::ClockMismatch { pt, rate: codec.clock_rate(), clock });
        }
        decoders.push((pt, Decoder::new(codec)?));
    }
    Ok((clock, decoders))
}

fn jitter_config(config: &StreamConfig, clock: u32) -> JitterConfig {
    JitterConfig {
        target_delay: config.target_delay,
        max_packets: config.max_packets,
        event_payload_type: config.telephone_event,
        ..JitterConfig::new(clock)
    }
}

/// Counters of two jitter buffers in a row (the jitter figure is the current one's).
fn add(a: JitterStats, b: JitterStats) -> JitterStats {
    JitterStats {
        received: a.received + b.received,
        duplicates: a.duplicates + b.duplicates,
        lost: a.lost + b.lost,
        late: a.late + b.late,
        resyncs: a.resyncs + b.resyncs,
        forced: a.forced + b.forced,
        discarded: a.discarded + b.discarded,
        jitter_ms: b.jitter_ms,
    }
}

fn dtmf_digit(event: u8) -> Option<char> {
    match event {
        0..=9 => Some(char::from(b'0' + event)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + event - 12)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::codec::tests::linear_to_ulaw;
    use proptest::prelude::*;
    use std::path::PathBuf;

    const SSRC: u32 = 0xCA11_0000;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn pcmu_stream() -> MediaStream {
        MediaStream::new(&[(0, Codec::Pcmu), (8, Codec::Pcma)], Some(101)).unwrap()
    }

    /// A shared fixture, or `None` (and a note) where the checkout has no `../shared`.
    fn fixture(path: &str) -> Option<Vec<u8>> {
        let full = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures").join(path);
        match std::fs::read(&full) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                eprintln!("skipping: fixture {} not readable: {e}", full.display());
                None
            }
        }
    }

    /// The samples of a 16 kHz mono 16-bit PCM WAV file, as f32.
    fn read_wav_16k(bytes: &[u8]) -> Vec<f32> {
        assert!(bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WAVE", "not a WAV file");
        let mut at = 12;
        let mut format_ok = false;
        while at + 8 <= bytes.len() {
            let id = &bytes[at..at + 4];
            let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
            let body = &bytes[at + 8..(at + 8 + len).min(bytes.len())];
            match id {
                b"fmt " => {
                    let word = |i: usize| u16::from_le_bytes([body[i], body[i + 1]]);
                    let rate = u32::from_le_bytes(body[4..8].try_into().unwrap());
                    assert_eq!((word(0), word(2), rate, word(14)), (1, 1, 16_000, 16), "16 kHz mono PCM16");
                    format_ok = true;
                }
                b"data" => {
                    assert!(format_ok, "fmt chunk before data");
                    return body
                        .chunks_exact(2)
                        .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32_768.0)
                        .collect();
                }
                _ => {}
            }
            at += 8 + len + (len & 1);
        }
        panic!("no data chunk");
    }

    /// Normalised cross-correlation of `a` against `b` shifted by each lag in ±`max_lag`;
    /// returns the best (lag, coefficient). A positive lag means `a` is late.
    fn best_ncc(a: &[f32], b: &[f32], max_lag: i64) -> (i64, f64) {
        (-max_lag..=max_lag)
            .map(|lag| {
                let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
                for (i, &y) in b.iter().enumerate() {
                    let j = i as i64 + lag;
                    if j < 0 || j >= a.len() as i64 {
                        continue;
                    }
                    let x = f64::from(a[j as usize]);
                    let y = f64::from(y);
                    ab += x * y;
                    aa += x * x;
                    bb += y * y;
                }
                (lag, ab / (aa * bb).sqrt().max(1e-12))
            })
            .max_by(|x, y| x.1.total_cmp(&y.1))
            .unwrap()
    }

    /// Drives a stream the way the IO shell would and returns everything it gave out.
    fn run(stream: &mut MediaStream, t0: Instant, mut arrivals: Vec<(Duration, Vec<u8>)>) -> Vec<Output> {
        arrivals.sort_by_key(|(at, _)| *at);
        let mut out = Vec::new();
        let mut arrivals = arrivals.into_iter().peekable();
        let mut now = t0;
        loop {
            let next_arrival = arrivals.peek().map(|(at, _)| t0 + *at);
            now = match (next_arrival, stream.poll_timeout()) {
                (Some(a), Some(p)) => a.min(p),
                (Some(a), None) => a,
                (None, Some(p)) => p,
                (None, None) => break,
            };
            while arrivals.peek().is_some_and(|(at, _)| t0 + *at == now) {
                let (_, datagram) = arrivals.next().unwrap();
                stream.push_rtp(&datagram, now).unwrap();
            }
            while let Some(o) = stream.poll(now) {
                out.push(o);
            }
        }
        stream.flush();
        out.extend(std::iter::from_fn(|| stream.poll(now)));
        out
    }

    /// The audio frames: (start in 16 kHz samples, samples).
    fn audio(outputs: &[Output]) -> Vec<(u64, &[i16])> {
        outputs
            .iter()
            .filter_map(|o| {
                if let Output::Audio { start_ms, samples } = o {
                    Some((start_ms * 16, &samples[..]))
                } else {
                    None
                }
            })
            .collect()
    }

    /// Frames follow each other without overlap; returns the joined samples and the gaps
    /// (in 16 kHz samples).
    fn join(frames: &[(u64, &[i16])]) -> (Vec<f32>, Vec<(u64, u64)>) {
        let mut samples = Vec::new();
        let mut gaps = Vec::new();
        let mut end = 0;
        for &(start, frame) in frames {
            assert!(start >= end, "frame at {start} overlaps the previous end {end}");
            if start > end {
                gaps.push((end, start));
            }
            samples.extend(frame.iter().map(|&s| f32::from(s) / 32_768.0));
            end = start + frame.len() as u64;
        }
        (samples, gaps)
    }

    fn jfk_packets(ulaw: &[u8]) -> Vec<(Duration, Vec<u8>)> {
        ulaw.chunks(160)
            .enumerate()
            .map(|(i, chunk)| (ms(20 * i as u64), rtp::write(false, 0, i as u16, 160 * i as u32, SSRC, chunk)))
            .collect()
    }

    #[test]
    fn jfk_over_rtp_matches_the_16k_original() {
        let (Some(ulaw), Some(wav)) = (fixture("sip/jfk_ask_not_8k.ulaw"), fixture("audio/jfk_ask_not.wav")) else {
            return;
        };
        assert_eq!(ulaw.len(), 88_000);
        let original = read_wav_16k(&wav);
        let mut stream = pcmu_stream();
        let outputs = run(&mut stream, Instant::now(), jfk_packets(&ulaw));
        let frames = audio(&outputs);
        assert_eq!(frames[0].0, 0);
        let (samples, gaps) = join(&frames);
        assert!(gaps.is_empty());
        assert_eq!(samples.len(), 176_000, "11 s at 16 kHz");
        let (lag, r) = best_ncc(&samples, &original, 320);
        eprintln!("jfk PCMU 8 kHz -> 16 kHz vs the original: NCC {r:.4} at lag {lag} samples");
        assert!(r > 0.9, "NCC {r}");
        assert!(lag.abs() <= 16, "stream time is aligned with the original (lag {lag})");
        let stats = stream.stats();
        assert_eq!((stats.received, stats.lost, stats.rejected, stats.decode_errors), (550, 0, 0, 0));
        assert_eq!(stats.audio_ms, 11_000);
    }

    #[test]
    fn jfk_over_a_bad_network_keeps_its_length() {
        let (Some(ulaw), Some(wav)) = (fixture("sip/jfk_ask_not_8k.ulaw"), fixture("audio/jfk_ask_not.wav")) else {
            return;
        };
        let original = read_wav_16k(&wav);
        let mut seed = 0x5EED_u64;
        let mut rand = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut arrivals = Vec::new();
        let packets = jfk_packets(&ulaw);
        let last = packets.len() - 1;
        for (i, (sent, datagram)) in packets.into_iter().enumerate() {
            if i != 0 && i != last && rand(100) < 3 {
                continue; // lost
            }
            if rand(100) < 2 {
                arrivals.push((sent + ms(rand(50)), datagram.clone())); // duplicated
            }
            arrivals.push((sent + ms(rand(50)), datagram)); // up to 50 ms of jitter: reordering
        }
        let mut stream = pcmu_stream();
        let outputs = run(&mut stream, Instant::now(), arrivals);
        let (samples, gaps) = join(&audio(&outputs));
        assert!(gaps.is_empty());
        assert_eq!(samples.len(), 176_000, "losses are concealed in place");
        let (lag, r) = best_ncc(&samples, &original, 320);
        let stats = stream.stats();
        eprintln!(
            "jfk with {} lost, {} duplicates, jitter {:.1} ms: NCC {r:.4} at lag {lag}",
            stats.lost, stats.duplicates, stats.jitter_ms
        );
        assert!(stats.lost > 5 && stats.duplicates > 0 && stats.concealed_ms > 100);
        assert!(r > 0.8, "NCC {r}");
    }

    fn tone_packet(seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
        let payload: Vec<u8> = (0..160)
            .map(|i| {
                linear_to_ulaw(
                    (((ts as f32 + i as f32) * 2.0 * std::f32::consts::PI * 500.0 / 8000.0).sin() * 8000.0) as i16,
                )
            })
            .collect();
        rtp::write(false, 0, seq, ts, ssrc, &payload)
    }

    fn dtmf_packet(seq: u16, ts: u32, event: u8, end: bool, duration: u16) -> Vec<u8> {
        let d = duration.to_be_bytes();
        rtp::write(false, 101, seq, ts, SSRC, &[event, if end { 0x8a } else { 0x0a }, d[0], d[1]])
    }

    #[test]
    fn telephone_events_become_dtmf_not_audio() {
        let mut arrivals: Vec<(Duration, Vec<u8>)> =
            (0..20u16).map(|i| (ms(20 * u64::from(i)), tone_packet(i, 160 * u32::from(i), SSRC))).collect();
        // Key 5 pressed at 400 ms for 80 ms; the audio pauses meanwhile; end sent three times.
        for (k, (end, duration)) in
            [(false, 160), (false, 320), (false, 480), (true, 640), (true, 640), (true, 640)].into_iter().enumerate()
        {
            arrivals.push((ms(400 + 20 * k as u64), dtmf_packet(20 + k as u16, 3_200, 5, end, duration)));
        }
        arrivals.push((ms(470), dtmf_packet(23, 3_200, 5, true, 640))); // a network duplicate
        for i in 0..10u16 {
            arrivals.push((ms(520 + 20 * u64::from(i)), tone_packet(26 + i, 3_840 + 160 * u32::from(i), SSRC)));
        }
        let mut stream = pcmu_stream();
        let outputs = run(&mut stream, Instant::now(), arrivals);
        let dtmf: Vec<&Output> = outputs.iter().filter(|o| matches!(o, Output::Dtmf { .. })).collect();
        assert_eq!(
            dtmf,
            vec![
                &Output::Dtmf { digit: '5', end: false, at_ms: 400, duration_ms: 20 },
                &Output::Dtmf { digit: '5', end: true, at_ms: 400, duration_ms: 80 },
            ]
        );
        let (samples, gaps) = join(&audio(&outputs));
        assert!(gaps.is_empty());
        assert_eq!(samples.len(), 2 * (20 * 160 + 640 + 10 * 160), "80 ms of silence stands in for the key press");
        let stats = stream.stats();
        assert_eq!((stats.decode_errors, stats.lost, stats.dtmf_events, stats.silence_ms), (0, 0, 2, 80));
    }

    #[test]
    fn timestamp_gaps_fill_or_jump_and_a_new_ssrc_continues() {
        let mut arrivals = Vec::new();
        let mut seq = 0u16;
        let mut push = |arrivals: &mut Vec<(Duration, Vec<u8>)>, at: u64, ts: u32, ssrc: u32| {
            arrivals.push((ms(at), tone_packet(seq, ts, ssrc)));
            seq = seq.wrapping_add(1);
        };
        for i in 0..50 {
            push(&mut arrivals, 20 * i, 160 * i as u32, SSRC);
        }
        // Silence suppression: 400 ms without packets, the timestamps say so too.
        for i in 50..100 {
            push(&mut arrivals, 400 + 20 * i, 3_200 + 160 * i as u32, SSRC);
        }
        // A hold of 5 s: longer than max_fill, so the run ends and the next frame starts later.
        for i in 100..150 {
            push(&mut arrivals, 5_400 + 20 * i, 43_200 + 160 * i as u32, SSRC);
        }
        // The far end restarts with a new SSRC and an unrelated timestamp, right on time.
        for i in 150..200 {
            push(&mut arrivals, 5_400 + 20 * i, 123_456_789 + 160 * i as u32, 77);
        }
        let mut stream = pcmu_stream();
        let outputs = run(&mut stream, Instant::now(), arrivals);
        let (samples, gaps) = join(&audio(&outputs));
        let first_run = 2 * (100 * 160 + 3_200);
        assert_eq!(gaps, vec![(first_run, first_run + 2 * 40_000)]);
        assert_eq!(samples.len() as u64, first_run + 2 * 100 * 160);
        let stats = stream.stats();
        assert_eq!(stats.resyncs, 1);
        assert_eq!(stats.silence_ms, 400 + 5_000);
        assert_eq!(stats.audio_ms, 2_400 + 5_000 + 1_000 + 1_000);
    }

    #[test]
    fn opus_stream_decodes_to_16k_and_conceals_a_loss() {
        let mut enc = opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip).unwrap();
        let tone: Vec<i16> = (0..48_000)
            .map(|i| ((i as f32 * 2.0 * std::f32::consts::PI * 1000.0 / 48_000.0).sin() * 9_000.0) as i16)
            .collect();
        let arrivals = tone
            .chunks(960)
            .enumerate()
            .filter(|(i, _)| *i != 25)
            .map(|(i, frame)| {
                let packet = enc.encode_vec(frame, 1500).unwrap();
                (ms(20 * i as u64), rtp::write(false, 111, i as u16, 960 * i as u32, 9, &packet))
            })
            .collect();
        let mut stream = MediaStream::new(&[(111, Codec::Opus)], Some(101)).unwrap();
        let outputs = run(&mut stream, Instant::now(), arrivals);
        let (samples, gaps) = join(&audio(&outputs));
        assert!(gaps.is_empty());
        assert_eq!(samples.len(), 16_000);
        let ideal: Vec<f32> =
            (0..16_000).map(|i| (i as f32 * 2.0 * std::f32::consts::PI * 1000.0 / 16_000.0).sin()).collect();
        let (lag, r) = best_ncc(&samples[1_600..14_400], &ideal[1_600..14_400], 8);
        eprintln!("opus 48 kHz -> 16 kHz, one packet lost: NCC {r:.4} at lag {lag}");
        assert!(r > 0.9);
        assert_eq!(stream.stats().lost, 1);
        assert_eq!(stream.stats().concealed_ms, 20);
    }

    #[test]
    fn renegotiation_changes_codec_and_keeps_the_timeline() {
        let t0 = Instant::now();
        let mut stream = pcmu_stream();
        let mut outputs = Vec::new();
        let mut step = |stream: &mut MediaStream, at: u64, datagram: Vec<u8>| {
            let now = t0 + ms(at);
            stream.push_rtp(&datagram, now).unwrap();
            outputs.extend(std::iter::from_fn(|| stream.poll(now)));
        };
        // 1 s of PCMU, then a re-INVITE moves the call to PCMA (same clock): it just goes on.
        for i in 0..50u16 {
            step(&mut stream, 20 * u64::from(i), tone_packet(i, 160 * u32::from(i), SSRC));
        }
        stream.set_payload_types(&[(8, Codec::Pcma)], Some(101)).unwrap();
        for i in 50..100u16 {
            let ulaw = tone_packet(i, 160 * u32::from(i), SSRC);
            let alaw = rtp::write(false, 8, i, 160 * u32::from(i), SSRC, &[0xd5; 160]);
            assert!(ulaw.len() == alaw.len());
            step(&mut stream, 20 * u64::from(i), alaw);
        }
        // Then to Opus at 48 kHz, with a new SSRC and timestamps of its own, right on time.
        stream.set_payload_types(&[(111, Codec::Opus)], Some(101)).unwrap();
        let mut enc = opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip).unwrap();
        for i in 0..50u16 {
            let packet = enc.encode_vec(&[0i16; 960], 1500).unwrap();
            step(
                &mut stream,
                2_000 + 20 * u64::from(i),
                rtp::write(false, 111, 500 + i, 777 + 960 * u32::from(i), 5, &packet),
            );
        }
        stream.flush();
        outputs.extend(std::iter::from_fn(|| stream.poll(t0 + ms(3_000))));
        let (samples, gaps) = join(&audio(&outputs));
        assert!(gaps.is_empty(), "{gaps:?}");
        assert_eq!(samples.len(), 3 * 16_000);
        let stats = stream.stats();
        assert_eq!((stats.received, stats.lost, stats.rejected, stats.decode_errors), (150, 0, 0, 0));
        assert_eq!((stats.audio_ms, stats.silence_ms), (3_000, 0));
        // A payload type of the old negotiation is refused now.
        assert!(matches!(stream.push_rtp(&tone_packet(1, 0, SSRC), t0), Err(MediaError::UnknownPayloadType(0))));
    }

    #[test]
    fn refused_datagrams_are_errors_and_counted() {
        let mut stream = pcmu_stream();
        let now = Instant::now();
        assert!(matches!(stream.push_rtp(&[1, 2, 3], now), Err(MediaError::Rtp(RtpError::TooShort(3)))));
        let rtcp = [0x80, 200, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0];
        assert!(matches!(stream.push_rtp(&rtcp, now), Err(MediaError::Rtp(RtpError::Rtcp(200)))));
        let cn = rtp::write(false, 13, 1, 160, SSRC, &[40]);
        assert!(matches!(stream.push_rtp(&cn, now), Err(MediaError::UnknownPayloadType(13))));
        assert_eq!(stream.stats().rejected, 3);
        assert!(stream.poll(now).is_none() && stream.poll_timeout().is_none());
        assert!(matches!(
            MediaStream::new(&[(0, Codec::Pcmu), (111, Codec::Opus)], None),
            Err(MediaError::ClockMismatch { pt: 111, .. })
        ));
        assert!(matches!(MediaStream::new(&[], None), Err(MediaError::NoCodec)));
    }

    proptest! {
        #[test]
        fn arbitrary_datagrams_never_panic(datagrams in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..50)) {
            let t0 = Instant::now();
            let mut stream = pcmu_stream();
            for (i, d) in datagrams.iter().enumerate() {
                let now = t0 + ms(7 * i as u64);
                let _ = stream.push_rtp(d, now);
                while stream.poll(now).is_some() {}
            }
            stream.flush();
            while stream.poll(t0 + ms(1_000)).is_some() {}
        }

        #[test]
        fn arbitrary_rtp_keeps_frames_in_order(
            packets in proptest::collection::vec(
                (0u16..64, prop_oneof![Just(0u32), 0u32..2_000, any::<u32>()], prop_oneof![Just(0u8), Just(8), Just(101), Just(111)],
                 proptest::collection::vec(any::<u8>(), 0..200), 0u64..100, 0u32..3),
                1..80),
        ) {
            let t0 = Instant::now();
            let mut now = t0;
            let mut stream = pcmu_stream();
            let mut outputs = Vec::new();
            for (seq, ts, pt, payload, advance, ssrc) in packets {
                now += ms(advance);
                let _ = stream.push_rtp(&rtp::write(false, pt, seq, ts, ssrc, &payload), now);
                outputs.extend(std::iter::from_fn(|| stream.poll(now)));
            }
            stream.flush();
            outputs.extend(std::iter::from_fn(|| stream.poll(now)));
            // In order and without overlap, up to the rounding of a run's start to a whole ms.
            let mut end = 0;
            for (start, samples) in audio(&outputs) {
                prop_assert!(start + 15 >= end);
                prop_assert!(!samples.is_empty());
                end = start + samples.len() as u64;
            }
        }
    }
}
