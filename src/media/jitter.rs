//! A jitter buffer for one RTP stream, as a pure core: packets and time go in, slots come out.
//!
//! The network reorders, duplicates, delays and drops packets; the decoder wants one slot per
//! sequence number, in order, with the gaps marked so it can conceal them. The buffer keeps
//! packets ordered by (extended) sequence number and releases them in that order. A packet
//! waits at most `target_delay` after its arrival: once the packet that arrived longest ago
//! has waited that long, every slot up to it is released, and a sequence number still missing
//! by then becomes a [`Slot::Lost`]. Waiting by arrival rather than by an RTP-timestamp
//! schedule makes the buffer indifferent to clock drift, silence suppression and timestamp
//! jumps; this stage only orders audio for recognition, it does not play it to a speaker,
//! and stream time comes from the RTP timestamps downstream.
//!
//! Bounded: at most `max_packets` are held; beyond that the oldest slots are released early.
//! A packet from another SSRC, or one whose sequence number jumps by more than
//! `max_dropout` forward or `max_misorder` backward, is held on probation; a second packet
//! in sequence after it confirms a new source (RFC 3550 appendix A.1) and the buffer re-syncs.
//!
//! Driven like the other cores: [`JitterBuffer::push`] on arrival, [`JitterBuffer::poll`]
//! until it returns `None`, and a timer at [`JitterBuffer::poll_timeout`].

use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JitterConfig {
    /// The RTP clock rate of the stream (8000 for G.711, 48000 for Opus).
    pub clock_rate: u32,
    /// How long a packet waits for the ones before it.
    pub target_delay: Duration,
    /// The most packets held at once.
    pub max_packets: usize,
    /// A forward sequence jump larger than this is a new source, not a loss (RFC 3550: 3000).
    pub max_dropout: u16,
    /// A backward sequence jump larger than this is a new source, not a late packet (RFC 3550: 100).
    pub max_misorder: u16,
    /// RFC 4733 events share the sequence numbers but their timestamps stand still, so they
    /// are ordered like audio but kept out of the jitter estimate and the frame-size guess.
    pub event_payload_type: Option<u8>,
}

impl JitterConfig {
    pub fn new(clock_rate: u32) -> JitterConfig {
        JitterConfig {
            clock_rate,
            target_delay: Duration::from_millis(60),
            max_packets: 64,
            max_dropout: 3000,
            max_misorder: 100,
            event_payload_type: None,
        }
    }
}

/// What the buffer needs of one RTP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JitterPacket {
    pub ssrc: u32,
    pub sequence: u16,
    pub timestamp: u32,
    pub payload_type: u8,
    pub marker: bool,
    pub payload: Vec<u8>,
}

/// One step of playout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    Packet {
        packet: JitterPacket,
        arrival: Instant,
    },
    /// `packets` consecutive sequence numbers from `sequence` never came in time. `timestamp`
    /// and `samples` (RTP clock units) are the buffer's best estimate of the audio they held.
    Lost {
        sequence: u16,
        packets: u16,
        timestamp: u32,
        samples: u32,
    },
}

/// Counters for the call card and the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct JitterStats {
    /// Every packet pushed, including duplicates and late ones.
    pub received: u64,
    pub duplicates: u64,
    /// Sequence numbers released as lost.
    pub lost: u64,
    /// Packets that arrived after their slot was released as lost; dropped.
    pub late: u64,
    /// New sources (SSRC change or sequence restart) followed.
    pub resyncs: u64,
    /// Slots released before their time because the buffer was full.
    pub forced: u64,
    /// Packets dropped otherwise: an unconfirmed probation packet, or output nobody polled.
    pub discarded: u64,
    /// RFC 3550 interarrival jitter, in milliseconds.
    pub jitter_ms: f64,
}

#[derive(Debug, Clone)]
struct Held {
    packet: JitterPacket,
    arrival: Instant,
}

/// The source currently followed and the highest sequence number seen from it.
#[derive(Debug, Clone, Copy)]
struct Epoch {
    ssrc: u32,
    highest_ext: i64,
    highest_seq: u16,
}

/// The next slot to release, once anything has been released.
#[derive(Debug, Clone, Copy)]
struct Next {
    ext: i64,
    timestamp: u32,
}

#[derive(Debug, Clone)]
pub struct JitterBuffer {
    config: JitterConfig,
    epoch: Option<Epoch>,
    buffer: BTreeMap<i64, Held>,
    next: Option<Next>,
    /// Bit `i` is set when sequence `next - 1 - i` was played (tells duplicates from late ones).
    played: u128,
    /// Samples per packet, learned from consecutive audio packets.
    frame_samples: u32,
    last_audio: Option<(i64, u32)>,
    probation: Option<Held>,
    ready: VecDeque<Slot>,
    last_now: Option<Instant>,
    /// Previous (arrival, RTP timestamp) for the jitter estimate, and the estimate in clock units.
    last_transit: Option<(Instant, u32)>,
    jitter: f64,
    stats: JitterStats,
}

impl JitterBuffer {
    pub fn new(config: JitterConfig) -> JitterBuffer {
        let config =
            JitterConfig { clock_rate: config.clock_rate.max(1), max_packets: config.max_packets.max(1), ..config };
        JitterBuffer {
            frame_samples: config.clock_rate / 50,
            config,
            epoch: None,
            buffer: BTreeMap::new(),
            next: None,
            played: 0,
            last_audio: None,
            probation: None,
            ready: VecDeque::new(),
            last_now: None,
            last_transit: None,
            jitter: 0.0,
            stats: JitterStats::default(),
        }
    }

    pub fn config(&self) -> &JitterConfig {
        &self.config
    }

    /// A renegotiation changed the telephone-event payload type.
    pub fn set_event_payload_type(&mut self, payload_type: Option<u8>) {
        self.config.event_payload_type = payload_type;
    }

    /// Takes one arriving packet.
    pub fn push(&mut self, packet: JitterPacket, now: Instant) {
        self.note(now);
        self.stats.received += 1;
        let epoch = *self.epoch.get_or_insert(Epoch {
            ssrc: packet.ssrc,
            highest_ext: i64::from(packet.sequence),
            highest_seq: packet.sequence,
        });
        let delta = i64::from(packet.sequence.wrapping_sub(epoch.highest_seq) as i16);
        let fits = epoch.ssrc == packet.ssrc
            && delta <= i64::from(self.config.max_dropout)
            && delta >= -i64::from(self.config.max_misorder);
        if fits {
            self.accept(packet, now);
        } else {
            self.on_probation(Held { packet, arrival: now });
        }
        // The bound: release the oldest slots early rather than hold more.
        while self.buffer.len() > self.config.max_packets {
            if let Some(slot) = self.release_one() {
                self.stats.forced += 1;
                self.queue(slot);
            }
        }
    }

    /// The next slot whose time has come, if any. Call until it returns `None`.
    pub fn poll(&mut self, now: Instant) -> Option<Slot> {
        self.note(now);
        if let Some(slot) = self.ready.pop_front() {
            return Some(slot);
        }
        let oldest = self.buffer.values().map(|h| h.arrival).min()?;
        if now >= oldest + self.config.target_delay {
            self.release_one()
        } else {
            None
        }
    }

    /// When [`JitterBuffer::poll`] will next have something; `None` while the buffer is empty.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.ready.is_empty() {
            return self.last_now;
        }
        self.buffer.values().map(|h| h.arrival).min().map(|oldest| oldest + self.config.target_delay)
    }

    /// Releases everything held, regardless of time (end of stream). Poll to collect it.
    pub fn flush(&mut self) {
        while let Some(slot) = self.release_one() {
            self.queue(slot);
        }
    }

    /// Packets held, waiting for their turn.
    pub fn len(&self) -> usize {
        self.buffer.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buffer.is_empty() && self.ready.is_empty()
    }

    pub fn stats(&self) -> JitterStats {
        JitterStats { jitter_ms: self.jitter * 1000.0 / f64::from(self.config.clock_rate), ..self.stats }
    }

    fn note(&mut self, now: Instant) {
        self.last_now = Some(self.last_now.map_or(now, |t| t.max(now)));
    }

    fn queue(&mut self, slot: Slot) {
        // Only grows when nobody polls; keep it bounded anyway.
        if self.ready.len() >= 4 * self.config.max_packets + 8 {
            if let Some(Slot::Packet { .. }) = self.ready.pop_front() {
                self.stats.discarded += 1;
            }
        }
        self.ready.push_back(slot);
    }

    fn is_event(&self, packet: &JitterPacket) -> bool {
        self.config.event_payload_type == Some(packet.payload_type)
    }

    /// A packet of the current source, within the sequence window.
    fn accept(&mut self, packet: JitterPacket, now: Instant) {
        let Some(epoch) = self.epoch.as_mut() else { return };
        let delta = i64::from(packet.sequence.wrapping_sub(epoch.highest_seq) as i16);
        let ext = epoch.highest_ext + delta;
        if delta > 0 {
            epoch.highest_ext = ext;
            epoch.highest_seq = packet.sequence;
        }
        if !self.is_event(&packet) {
            self.update_jitter(&packet, now);
        }
        if let Some(next) = self.next {
            if ext < next.ext {
                let back = next.ext - ext - 1;
                let was_played = back < 128 && (self.played >> back) & 1 == 1;
                if was_played {
                    self.stats.duplicates += 1;
                } else {
                    self.stats.late += 1;
                }
                return;
            }
        }
        if self.buffer.contains_key(&ext) {
            self.stats.duplicates += 1;
            return;
        }
        self.buffer.insert(ext, Held { packet, arrival: now });
    }

    /// RFC 3550 §6.4.1: J += (|D| - J) / 16, D being the change in transit time.
    fn update_jitter(&mut self, packet: &JitterPacket, now: Instant) {
        if let Some((arrival, timestamp)) = self.last_transit {
            let arrived = signed_secs(now, arrival) * f64::from(self.config.clock_rate);
            let sent = f64::from(packet.timestamp.wrapping_sub(timestamp) as i32);
            let d = (arrived - sent).abs();
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.last_transit = Some((now, packet.timestamp));
    }

    fn on_probation(&mut self, held: Held) {
        if let Some(first) = self.probation.take() {
            let confirms =
                first.packet.ssrc == held.packet.ssrc && first.packet.sequence.wrapping_add(1) == held.packet.sequence;
            if confirms {
                self.resync(first, held);
                return;
            }
            self.stats.discarded += 1;
        }
        self.probation = Some(held);
    }

    /// A new source: release what the old one left, then start over from `first`.
    fn resync(&mut self, first: Held, second: Held) {
        self.flush();
        self.stats.resyncs += 1;
        self.epoch = Some(Epoch {
            ssrc: first.packet.ssrc,
            highest_ext: i64::from(first.packet.sequence),
            highest_seq: first.packet.sequence,
        });
        self.next = None;
        self.played = 0;
        self.last_audio = None;
        self.last_transit = None;
        self.accept(first.packet, first.arrival);
        self.accept(second.packet, second.arrival);
    }

    /// Releases the next slot in sequence: the lowest packet held, or the gap before it.
    fn release_one(&mut self) -> Option<Slot> {
        let (&ext, head) = self.buffer.first_key_value()?;
        if let Some(next) = self.next {
            if ext > next.ext {
                let missing = ext - next.ext;
                let frame = i64::from(self.frame_samples);
                let span = i64::from(head.packet.timestamp.wrapping_sub(next.timestamp) as i32);
                let longest = missing * i64::from(self.config.clock_rate) * 120 / 1000;
                let samples = if span > 0 && span <= longest { span } else { missing * frame };
                let slot = Slot::Lost {
                    sequence: next.ext as u16,
                    packets: missing.min(i64::from(u16::MAX)) as u16,
                    timestamp: next.timestamp,
                    samples: samples.clamp(0, i64::from(u32::MAX)) as u32,
                };
                self.stats.lost += missing as u64;
                self.played = self.played.checked_shl(missing.min(128) as u32).unwrap_or(0);
                self.next = Some(Next { ext, timestamp: next.timestamp.wrapping_add(samples as u32) });
                return Some(slot);
            }
        }
        let held = self.buffer.remove(&ext)?;
        let timestamp = held.packet.timestamp;
        let mut next_ts = self.next.map_or(timestamp, |n| n.timestamp);
        if !self.is_event(&held.packet) {
            if let Some((prev_ext, prev_ts)) = self.last_audio {
                let step = timestamp.wrapping_sub(prev_ts) as i32;
                if ext == prev_ext + 1 && step > 0 && i64::from(step) <= i64::from(self.config.clock_rate) * 120 / 1000
                {
                    self.frame_samples = step as u32;
                }
            }
            self.last_audio = Some((ext, timestamp));
            next_ts = timestamp.wrapping_add(self.frame_samples);
        }
        self.next = Some(Next { ext: ext + 1, timestamp: next_ts });
        self.played = (self.played << 1) | 1;
        Some(Slot::Packet { packet: held.packet, arrival: held.arrival })
    }
}

/// `a - b` in seconds, negative when `a` is earlier.
fn signed_secs(a: Instant, b: Instant) -> f64 {
    match a.checked_duration_since(b) {
        Some(d) => d.as_secs_f64(),
        None => -b.duration_since(a).as_secs_f64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn packet(ssrc: u32, sequence: u16, timestamp: u32) -> JitterPacket {
        JitterPacket { ssrc, sequence, timestamp, payload_type: 0, marker: false, payload: vec![sequence as u8; 4] }
    }

    /// A tiny deterministic generator (SplitMix64), so a seed names one network weather.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn chance(&mut self, percent: u64) -> bool {
            self.next() % 100 < percent
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Runs the buffer as a real event loop would: arrivals in time order, polling whenever
    /// the buffer's timer says so. Returns every slot with the time it was released.
    fn run(jb: &mut JitterBuffer, t0: Instant, mut arrivals: Vec<(Duration, JitterPacket)>) -> Vec<(Instant, Slot)> {
        arrivals.sort_by_key(|(at, _)| *at);
        let mut out = Vec::new();
        let mut arrivals = arrivals.into_iter().peekable();
        loop {
            let next_arrival = arrivals.peek().map(|(at, _)| t0 + *at);
            let now = match (next_arrival, jb.poll_timeout()) {
                (Some(a), Some(p)) => a.min(p),
                (Some(a), None) => a,
                (None, Some(p)) => p,
                (None, None) => break,
            };
            while arrivals.peek().is_some_and(|(at, _)| t0 + *at == now) {
                let (_, p) = arrivals.next().unwrap();
                jb.push(p, now);
                assert!(jb.len() <= jb.config().max_packets);
            }
            while let Some(slot) = jb.poll(now) {
                out.push((now, slot));
            }
        }
        out
    }

    #[test]
    fn lossy_reordering_network_yields_every_slot_once_in_order() {
        for seed in 1..=20u64 {
            let mut rng = Rng(seed);
            let t0 = Instant::now();
            let start: u16 = 65_000; // crosses the wrap at 65535
            let n = 3_000u32;
            let mut arrivals = Vec::new();
            let mut first_arrival: HashMap<u16, Duration> = HashMap::new();
            for i in 0..n {
                let seq = start.wrapping_add(i as u16);
                let sent = ms(20 * u64::from(i));
                if rng.chance(5) {
                    continue; // lost in the network
                }
                let copies = if rng.chance(3) { 2 } else { 1 };
                for _ in 0..copies {
                    let delay = if rng.chance(2) { ms(150 + rng.below(200)) } else { ms(rng.below(50)) };
                    let at = sent + delay;
                    arrivals.push((at, packet(7, seq, 1_000 + 160 * i)));
                    let e = first_arrival.entry(seq).or_insert(at);
                    *e = (*e).min(at);
                }
            }
            let received = arrivals.len() as u64;
            let mut jb = JitterBuffer::new(JitterConfig::new(8_000));
            let out = run(&mut jb, t0, arrivals.clone());

            // Every sequence number exactly once, in order, packets or lost runs.
            let mut expect = start;
            let mut lost_at: HashMap<u16, Instant> = HashMap::new();
            let mut played = Vec::new();
            for (at, slot) in &out {
                match slot {
                    Slot::Packet { packet, arrival } => {
                        assert_eq!(packet.sequence, expect, "seed {seed}");
                        assert_eq!(packet.timestamp, 1_000 + 160 * u32::from(expect.wrapping_sub(start)));
                        // Nobody waits longer than the target delay.
                        assert!(*at <= *arrival + ms(60), "seed {seed}: held too long");
                        played.push(expect);
                        expect = expect.wrapping_add(1);
                    }
                    Slot::Lost { sequence, packets, timestamp, samples } => {
                        assert_eq!(*sequence, expect, "seed {seed}");
                        assert_eq!(*timestamp, 1_000 + 160 * u32::from(expect.wrapping_sub(start)));
                        assert_eq!(*samples, 160 * u32::from(*packets));
                        for k in 0..*packets {
                            lost_at.insert(expect.wrapping_add(k), *at);
                        }
                        expect = expect.wrapping_add(*packets);
                    }
                }
            }
            // Up to the last packet that came; a loss at the very end has nothing after it to tell.
            let last_sent = arrivals.iter().map(|(_, p)| u32::from(p.sequence.wrapping_sub(start))).max().unwrap();
            assert_eq!(u32::from(expect.wrapping_sub(start)), last_sent + 1, "seed {seed}");
            // A slot is lost only if its packet had not arrived when the slot was released.
            for (seq, at) in &lost_at {
                if let Some(first) = first_arrival.get(seq) {
                    assert!(t0 + *first > *at, "seed {seed}: {seq} was there but declared lost");
                }
            }
            // The counters match what the network did.
            let arrivals_of = |seq: u16| arrivals.iter().filter(|(_, p)| p.sequence == seq).count() as u64;
            let late: u64 = lost_at.keys().map(|&s| arrivals_of(s)).sum();
            let duplicates: u64 = played.iter().map(|&s| arrivals_of(s) - 1).sum();
            let stats = jb.stats();
            assert_eq!(stats.received, received);
            assert_eq!(stats.lost, lost_at.len() as u64);
            assert_eq!(stats.late, late, "seed {seed}");
            assert_eq!(stats.duplicates, duplicates, "seed {seed}");
            assert!(stats.late > 0 && stats.duplicates > 0 && stats.lost > 0, "seed {seed}: {stats:?}");
            assert_eq!(stats.resyncs, 0);
        }
    }

    #[test]
    fn sequence_and_timestamp_wrap_around() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::new(8_000));
        let seqs: Vec<u16> = (0..12u16).map(|i| 65_530u16.wrapping_add(i)).collect();
        // 65535 and 0 swap places on the way.
        let order = [0, 1, 2, 3, 4, 6, 5, 7, 8, 9, 10, 11];
        let arrivals = order
            .iter()
            .enumerate()
            .map(|(k, &i)| (ms(20 * k as u64), packet(1, seqs[i], (u32::MAX - 500).wrapping_add(160 * i as u32))))
            .collect();
        let out = run(&mut jb, t0, arrivals);
        let got: Vec<u16> = out
            .iter()
            .map(|(_, s)| match s {
                Slot::Packet { packet, .. } => packet.sequence,
                Slot::Lost { .. } => panic!("nothing was lost"),
            })
            .collect();
        assert_eq!(got, seqs);
        assert_eq!(jb.stats().lost, 0);
    }

    #[test]
    fn memory_is_bounded_when_the_head_never_comes() {
        let t0 = Instant::now();
        let mut config = JitterConfig::new(8_000);
        config.max_packets = 10;
        let mut jb = JitterBuffer::new(config);
        // Packet 0 never arrives; 1..=500 arrive at once and nobody polls.
        for seq in 1..=500u16 {
            jb.push(packet(1, seq, 160 * u32::from(seq)), t0);
            assert!(jb.len() <= 10);
        }
        assert!(jb.ready.len() <= 48);
        assert!(jb.stats().forced >= 490);
        // Polled at the same instant, the rest only leaves when its time comes.
        let mut jb = JitterBuffer::new(JitterConfig { max_packets: 10, ..JitterConfig::new(8_000) });
        let mut seen = Vec::new();
        for seq in 1..=50u16 {
            jb.push(packet(1, seq, 160 * u32::from(seq)), t0);
            while let Some(Slot::Packet { packet, .. }) = jb.poll(t0) {
                seen.push(packet.sequence);
            }
        }
        assert_eq!(seen, (1..=40).collect::<Vec<_>>(), "the oldest are played early, in order");
        assert_eq!(jb.len(), 10);
        assert_eq!(jb.poll_timeout(), Some(t0 + ms(60)));
        assert!(jb.poll(t0 + ms(59)).is_none());
        assert!(jb.poll(t0 + ms(60)).is_some());
    }

    #[test]
    fn ssrc_change_and_sequence_restart_resync() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::new(8_000));
        let mut arrivals = Vec::new();
        for i in 0..10u16 {
            arrivals.push((ms(20 * u64::from(i)), packet(1, 100 + i, 160 * u32::from(i))));
        }
        // A new source with unrelated numbers, then a stray from the old one, then a
        // restart of the sequence numbers of the new one.
        for i in 0..10u16 {
            arrivals.push((ms(200 + 20 * u64::from(i)), packet(2, 40_000 + i, 9_999_999 + 160 * u32::from(i))));
        }
        arrivals.push((ms(410), packet(1, 110, 1600)));
        for i in 0..5u16 {
            arrivals.push((ms(500 + 20 * u64::from(i)), packet(2, 7 + i, 5 + 160 * u32::from(i))));
        }
        let out = run(&mut jb, t0, arrivals);
        let got: Vec<(u32, u16)> = out
            .iter()
            .filter_map(|(_, s)| match s {
                Slot::Packet { packet, .. } => Some((packet.ssrc, packet.sequence)),
                Slot::Lost { .. } => None,
            })
            .collect();
        let mut expect: Vec<(u32, u16)> = (0..10).map(|i| (1, 100 + i)).collect();
        expect.extend((0..10).map(|i| (2, 40_000 + i)));
        expect.extend((0..5).map(|i| (2, 7 + i)));
        assert_eq!(got, expect);
        let stats = jb.stats();
        assert_eq!(stats.resyncs, 2);
        assert_eq!(stats.discarded, 1, "the lone stray");
        assert_eq!(stats.lost, 0);
    }

    #[test]
    fn interarrival_jitter_follows_rfc_3550() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::new(8_000));
        for i in 0..400u32 {
            jb.push(packet(1, i as u16, 160 * i), t0 + ms(20 * u64::from(i)));
        }
        assert!(jb.stats().jitter_ms.abs() < 1e-6, "steady arrivals have no jitter");
        let mut jb = JitterBuffer::new(JitterConfig::new(8_000));
        for i in 0..400u32 {
            let wobble = if i % 2 == 0 { 0 } else { 10 };
            jb.push(packet(1, i as u16, 160 * i), t0 + ms(20 * u64::from(i) + wobble));
        }
        let j = jb.stats().jitter_ms;
        assert!((j - 10.0).abs() < 0.1, "alternating 10 ms delay: |D| = 10 ms, got {j}");
        let json = serde_json::to_value(jb.stats()).unwrap();
        assert_eq!(json["received"], 400);
    }

    #[test]
    fn flush_releases_everything_in_order() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::new(8_000));
        for seq in [3u16, 1, 2, 5] {
            jb.push(packet(1, seq, 160 * u32::from(seq)), t0);
        }
        assert!(jb.poll(t0).is_none());
        jb.flush();
        let got: Vec<Slot> = std::iter::from_fn(|| jb.poll(t0)).collect();
        assert_eq!(got.len(), 5);
        assert!(matches!(got[3], Slot::Lost { sequence: 4, packets: 1, timestamp: 640, samples: 160 }));
        assert!(jb.is_empty() && jb.poll_timeout().is_none());
    }

    proptest! {
        #[test]
        fn arbitrary_arrivals_keep_the_invariants(
            steps in proptest::collection::vec((0u16..40, 0u64..100, any::<bool>(), 0u32..3), 1..300),
            max_packets in 1usize..20,
        ) {
            let t0 = Instant::now();
            let mut jb = JitterBuffer::new(JitterConfig { max_packets, ..JitterConfig::new(8_000) });
            let mut now = t0;
            let mut last: Option<u16> = None;
            let mut released_packets = 0u64;
            let mut breaks = 0u64;
            for (offset, advance, twice, ssrc) in steps {
                now += ms(advance);
                let seq = 65_520u16.wrapping_add(offset.wrapping_mul(3));
                for _ in 0..=u8::from(twice) {
                    jb.push(packet(ssrc, seq, u32::from(seq) * 160), now);
                    prop_assert!(jb.len() <= max_packets);
                }
                {
                    while let Some(slot) = jb.poll(now) {
                        let (first, count) = match &slot {
                            Slot::Packet { packet, .. } => { released_packets += 1; (packet.sequence, 1) }
                            Slot::Lost { sequence, packets, .. } => (*sequence, *packets),
                        };
                        prop_assert!(count >= 1);
                        // Slots follow each other without gap or overlap, except where the
                        // buffer followed a new source.
                        if let Some(prev) = last {
                            if first != prev.wrapping_add(1) {
                                breaks += 1;
                            }
                        }
                        last = Some(first.wrapping_add(count - 1));
                    }
                }
            }
            let s = jb.stats();
            prop_assert!(breaks <= s.resyncs);
            let held = (jb.len() + usize::from(jb.probation.is_some())) as u64;
            let queued = jb.ready.iter().filter(|s| matches!(s, Slot::Packet { .. })).count() as u64;
            prop_assert_eq!(s.received, released_packets + queued + held + s.duplicates + s.late + s.discarded);
        }
    }
}
