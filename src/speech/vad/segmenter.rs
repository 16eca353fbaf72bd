//! The utterance segmenter: the pure core of the VAD.
//!
//! It exists apart from the model so that every timing rule (hysteresis, minimum speech,
//! hang-over, pre-roll, the maximum length and where to split, the flush at the end) can be
//! tested with synthetic probabilities and exact sample times, without ONNX Runtime, clocks
//! or IO. Input: one chunk at a time, with its speech probability, its samples and its stream
//! time. Output: [`VadEvent`]s, drained with [`Segmenter::poll_event`].
//!
//! Rules, in stream time (16 kHz samples):
//! - Silence turns into speech at the first chunk whose probability reaches `threshold`
//!   (the *speech start*); speech lasts while chunks stay at or above `release_threshold`.
//! - Speech ends once `hangover` of non-speech has followed the last speech chunk (the
//!   *speech end*); the utterance's audio goes on for `post_roll` after it.
//! - Once `post_roll` of non-speech has followed the last speech chunk of an announced
//!   utterance, [`VadEvent::Tentative`] gives the utterance as it will be if the pause lasts the
//!   hang-over: its transcription can start while the hang-over runs out. Speech before then
//!   gives [`VadEvent::Resumed`] (the tentative utterance is void); otherwise the
//!   [`VadEvent::Utterance`] that follows has exactly the tentative's times and samples.
//! - Speech whose span (start to last speech chunk) stays under `min_speech` is dropped.
//!   [`VadEvent::SpeechStart`] is emitted when the span reaches it, so every `SpeechStart`
//!   is followed by exactly one [`VadEvent::Utterance`] (at the latest on [`Segmenter::finish`]).
//! - An utterance starts `pre_roll` before the speech start (less at a run's start, and never
//!   before the previous utterance's end).
//! - Once an utterance spans `max_utterance`, it is split in the middle of the chunk with the
//!   lowest probability (ties: the quieter one, then the later one) within the last
//!   `split_search`; the rest continues as a new utterance, announced by its own `SpeechStart`.
//!
//! Memory: the pre-roll ring while silent; while speaking, the utterance so far (at most
//! `max_utterance` plus one chunk) stored as 16-bit samples, and one small record per chunk.

use std::collections::VecDeque;

use super::{VadError, VadSettings, SAMPLES_PER_MS};

/// What the segmenter tells its caller.
#[derive(Debug, Clone, PartialEq)]
pub enum VadEvent {
    /// Speech started at `at` (the first chunk over the threshold). Emitted once the speech
    /// has lasted `min_speech`, so it arrives that much after `at`.
    SpeechStart { at: u64 },
    /// Speech ended (or was split at the maximum length, or the stream ended).
    Utterance(Utterance),
    /// Speech paused for the post-roll: the utterance it will be if the pause lasts the
    /// hang-over (see the module documentation).
    Tentative(Utterance),
    /// Speech came back after a [`VadEvent::Tentative`], which is void.
    Resumed,
}

/// One utterance's audio and times (stream time in 16 kHz samples).
#[derive(Clone, PartialEq)]
pub struct Utterance {
    /// Time of `samples[0]`: the speech start less the pre-roll.
    pub start: u64,
    /// The detected speech start (the `at` of the `SpeechStart` that announced it).
    pub speech_start: u64,
    /// The detected speech end: the end of the last speech chunk, or the split point.
    pub speech_end: u64,
    /// Time just past the last sample: the speech end plus the post-roll (none at a split).
    pub end: u64,
    /// 16 kHz mono, -1.0..=1.0, `end - start` of them.
    pub samples: Vec<f32>,
}

impl std::fmt::Debug for Utterance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Utterance")
            .field("start", &self.start)
            .field("speech_start", &self.speech_start)
            .field("speech_end", &self.speech_end)
            .field("end", &self.end)
            .field("samples", &self.samples.len())
            .finish()
    }
}

/// The utterance in progress, for a partial transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct Ongoing {
    /// Time of `samples[0]` (as [`Utterance::start`]).
    pub start: u64,
    pub speech_start: u64,
    /// Time just past the last sample taken so far (trailing non-speech included).
    pub end: u64,
    pub samples: Vec<f32>,
}

/// The settings in samples.
#[derive(Debug, Clone, Copy)]
struct Params {
    threshold: f32,
    release: f32,
    min_speech: u64,
    hangover: u64,
    pre_roll: u64,
    post_roll: u64,
    max_len: u64,
    split_search: u64,
}

/// The record of one chunk of the utterance in progress, for the split search.
#[derive(Debug, Clone, Copy)]
struct ChunkRecord {
    at: u64,
    len: u32,
    prob: f32,
}

#[derive(Debug)]
struct Active {
    /// Time of `audio[0]`.
    start: u64,
    speech_start: u64,
    /// End of the last chunk at or above the release threshold.
    last_speech: u64,
    /// `SpeechStart` emitted.
    confirmed: bool,
    /// A `Tentative` was emitted for the pause after `last_speech`.
    tentative: bool,
    audio: Vec<i16>,
    chunks: Vec<ChunkRecord>,
}

/// One speaker's segmenter. See the module documentation for the rules.
#[derive(Debug)]
pub struct Segmenter {
    p: Params,
    /// Time just past the last sample taken; `None` before a run's first chunk.
    now: Option<u64>,
    /// The latest audio while no utterance is in progress (at most the pre-roll), all of it
    /// after the previous utterance's end.
    ring: VecDeque<i16>,
    active: Option<Active>,
    events: VecDeque<VadEvent>,
}

/// Growth step of an utterance's buffer (one second), so that its capacity stays close to
/// its length instead of doubling past the maximum.
const GROW: usize = 16_000;

impl Segmenter {
    pub fn new(settings: &VadSettings) -> Result<Segmenter, VadError> {
        settings.validate()?;
        let ms = |ms: u64| ms * SAMPLES_PER_MS;
        let p = Params {
            threshold: settings.threshold,
            release: settings.release_threshold,
            min_speech: ms(settings.min_speech_ms),
            hangover: ms(settings.hangover_ms),
            pre_roll: ms(settings.pre_roll_ms),
            post_roll: ms(settings.post_roll_ms),
            max_len: ms(settings.max_utterance_ms),
            split_search: ms(settings.split_search_ms),
        };
        Ok(Segmenter {
            p,
            now: None,
            ring: VecDeque::with_capacity(p.pre_roll as usize),
            active: None,
            events: VecDeque::new(),
        })
    }

    /// Takes one chunk: its first sample's stream time, its speech probability and its
    /// samples. Chunks should follow each other exactly (`at` = the previous chunk's end);
    /// one that does not ends the run first (as [`Segmenter::finish`]) and starts a new one.
    /// Chunks are meant to be short (Silero's 32 ms): a split point is looked for between
    /// chunks. A probability that is not a number counts as 0; empty chunks are ignored.
    pub fn push(&mut self, at: u64, prob: f32, samples: &[f32]) {
        if samples.is_empty() {
            return;
        }
        let prob = if prob.is_nan() { 0.0 } else { prob.clamp(0.0, 1.0) };
        if self.now.is_some_and(|now| now != at) {
            self.finish();
        }
        let end = at.saturating_add(samples.len() as u64);
        self.now = Some(end);
        let record = ChunkRecord { at, len: samples.len().min(u32::MAX as usize) as u32, prob };
        let mut active = match self.active.take() {
            Some(mut active) => {
                extend(&mut active.audio, samples);
                active.chunks.push(record);
                if prob >= self.p.release {
                    active.last_speech = end;
                    if std::mem::take(&mut active.tentative) {
                        self.events.push_back(VadEvent::Resumed);
                    }
                }
                active
            }
            None if prob >= self.p.threshold => {
                let mut audio = Vec::with_capacity(self.ring.len() + samples.len() + GROW);
                audio.extend(self.ring.drain(..));
                let start = at.saturating_sub(audio.len() as u64);
                extend(&mut audio, samples);
                Active {
                    start,
                    speech_start: at,
                    last_speech: end,
                    confirmed: false,
                    tentative: false,
                    audio,
                    chunks: vec![record],
                }
            }
            None => {
                self.remember(samples.iter().copied().map(to_i16));
                return;
            }
        };
        if !active.confirmed && active.last_speech - active.speech_start >= self.p.min_speech {
            active.confirmed = true;
            self.events.push_back(VadEvent::SpeechStart { at: active.speech_start });
        }
        if end - active.last_speech >= self.p.hangover {
            self.end(active);
        } else if end - active.start >= self.p.max_len {
            self.split(active, end);
        } else {
            if active.confirmed && !active.tentative && end - active.last_speech >= self.p.post_roll {
                active.tentative = true;
                let (end, samples) = self.kept(&active);
                self.events.push_back(VadEvent::Tentative(Utterance {
                    start: active.start,
                    speech_start: active.speech_start,
                    speech_end: active.last_speech,
                    end,
                    samples: samples.iter().copied().map(to_f32).collect(),
                }));
            }
            self.active = Some(active);
        }
    }

    /// Where `active` ends if it ends now (its last speech chunk plus the post-roll, within
    /// the audio taken), and its samples up to there.
    fn kept<'a>(&self, active: &'a Active) -> (u64, &'a [i16]) {
        let keep =
            ((active.last_speech - active.start).saturating_add(self.p.post_roll) as usize).min(active.audio.len());
        (active.start + keep as u64, &active.audio[..keep])
    }

    /// Ends the run (the end of the stream, or a break in it): an utterance in progress is
    /// emitted (with what there is of its post-roll), unless it is shorter than the minimum.
    /// The next chunk starts a new run at any time.
    pub fn finish(&mut self) {
        if let Some(active) = self.active.take() {
            self.end(active);
        }
        self.ring.clear();
        self.now = None;
    }

    /// The next event, oldest first. Drain after every [`Segmenter::push`] and
    /// [`Segmenter::finish`]: events wait here until taken.
    pub fn poll_event(&mut self) -> Option<VadEvent> {
        self.events.pop_front()
    }

    /// Whether an announced utterance is in progress (between `SpeechStart` and its
    /// `Utterance`).
    pub fn is_speaking(&self) -> bool {
        self.active.as_ref().is_some_and(|a| a.confirmed)
    }

    /// A copy of the announced utterance in progress so far, for a partial transcript.
    pub fn ongoing(&self) -> Option<Ongoing> {
        let active = self.active.as_ref().filter(|a| a.confirmed)?;
        Some(Ongoing {
            start: active.start,
            speech_start: active.speech_start,
            end: active.start + active.audio.len() as u64,
            samples: active.audio.iter().copied().map(to_f32).collect(),
        })
    }

    /// Bytes this segmenter holds on the heap now (pre-roll ring, utterance in progress).
    pub fn heap_bytes(&self) -> usize {
        let active = self
            .active
            .as_ref()
            .map_or(0, |a| a.audio.capacity() * size_of::<i16>() + a.chunks.capacity() * size_of::<ChunkRecord>());
        self.ring.capacity() * size_of::<i16>() + active
    }

    /// Ends `active` at its last speech chunk plus the post-roll: an utterance if announced,
    /// else dropped. What follows (the rest of the hang-over) becomes the pre-roll of the
    /// next utterance.
    fn end(&mut self, mut active: Active) {
        let keep = (self.kept(&active).0 - active.start) as usize;
        self.ring.clear();
        if active.confirmed {
            let tail = active.audio.split_off(keep);
            self.remember(tail.into_iter());
            self.events.push_back(VadEvent::Utterance(Utterance {
                start: active.start,
                speech_start: active.speech_start,
                speech_end: active.last_speech,
                end: active.start + keep as u64,
                samples: active.audio.into_iter().map(to_f32).collect(),
            }));
        } else {
            self.remember(active.audio.into_iter());
        }
    }

    /// Splits `active`, which has reached the maximum length, at its quietest chunk within
    /// the last `split_search`.
    fn split(&mut self, mut active: Active, end: u64) {
        let from = end.saturating_sub(self.p.split_search).max(active.start.saturating_add(1));
        let energy = |c: &ChunkRecord| -> u64 {
            let i = (c.at - active.start) as usize;
            let j = (i + c.len as usize).min(active.audio.len());
            active.audio[i.min(j)..j].iter().map(|&s| (i64::from(s) * i64::from(s)) as u64).sum()
        };
        let mut best: Option<(f32, u64, u64)> = None;
        for c in active.chunks.iter().filter(|c| c.at >= from) {
            let key = (c.prob, energy(c));
            if best.is_none_or(|(p, e, _)| (key.0, key.1) <= (p, e)) {
                best = Some((key.0, key.1, c.at.saturating_add(u64::from(c.len) / 2)));
            }
        }
        let Some((_, _, cut)) = best.filter(|&(_, _, cut)| cut > active.start && cut < active.last_speech) else {
            // A pause is under way (the quietest point is after the last speech) or there is
            // nothing to choose from: end here as after a hang-over.
            return self.end(active);
        };
        let rest = active.audio.split_off(((cut - active.start) as usize).min(active.audio.len()));
        let chunks = active.chunks.into_iter().filter(|c| c.at >= cut).collect();
        if active.confirmed {
            self.events.push_back(VadEvent::Utterance(Utterance {
                start: active.start,
                speech_start: active.speech_start,
                speech_end: cut,
                end: cut,
                samples: active.audio.into_iter().map(to_f32).collect(),
            }));
        }
        let mut audio = Vec::with_capacity(rest.len() + GROW);
        audio.extend_from_slice(&rest);
        self.events.push_back(VadEvent::SpeechStart { at: cut });
        self.active = Some(Active {
            start: cut,
            speech_start: cut,
            last_speech: active.last_speech,
            confirmed: true,
            tentative: false,
            audio,
            chunks,
        });
    }

    /// Appends to the pre-roll ring, keeping only its latest `pre_roll` samples.
    fn remember(&mut self, samples: impl Iterator<Item = i16>) {
        let cap = self.p.pre_roll as usize;
        if cap == 0 {
            return;
        }
        for s in samples {
            if self.ring.len() == cap {
                self.ring.pop_front();
            }
            self.ring.push_back(s);
        }
    }
}

fn extend(audio: &mut Vec<i16>, samples: &[f32]) {
    if audio.capacity() - audio.len() < samples.len() {
        audio.reserve_exact(samples.len().max(GROW));
    }
    audio.extend(samples.iter().copied().map(to_i16));
}

fn to_i16(x: f32) -> i16 {
    // `as` saturates and maps NaN to 0.
    (x * 32_768.0).round() as i16
}

fn to_f32(s: i16) -> f32 {
    f32::from(s) / 32_768.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHUNK: u64 = 512;

    /// The sample at stream time `t`: a ramp that tells every sample's time apart.
    fn sample_at(t: u64) -> f32 {
        ((t % 20_000) as f32 - 10_000.0) / 32_768.0
    }

    fn chunk(at: u64, len: u64) -> Vec<f32> {
        (at..at + len).map(sample_at).collect()
    }

    /// Feeds 512-sample chunks with these probabilities from time `t0`; returns the end time.
    fn feed(seg: &mut Segmenter, t0: u64, probs: &[f32]) -> u64 {
        let mut t = t0;
        for &p in probs {
            seg.push(t, p, &chunk(t, CHUNK));
            t += CHUNK;
        }
        t
    }

    fn events(seg: &mut Segmenter) -> Vec<VadEvent> {
        std::iter::from_fn(|| seg.poll_event()).collect()
    }

    fn utterances(events: &[VadEvent]) -> Vec<&Utterance> {
        events
            .iter()
            .filter_map(|e| match e {
                VadEvent::Utterance(u) => Some(u),
                _ => None,
            })
            .collect()
    }

    /// The utterance's samples are exactly the input's at its times.
    fn assert_audio_matches_times(u: &Utterance) {
        assert_eq!(u.samples.len() as u64, u.end - u.start, "{u:?}");
        for (i, &s) in u.samples.iter().enumerate() {
            let want = sample_at(u.start + i as u64);
            assert!((s - want).abs() < 1e-6, "sample {i} of {u:?}: {s} != {want}");
        }
    }

    fn rep(p: f32, n: usize) -> Vec<f32> {
        vec![p; n]
    }

    fn cat(parts: &[Vec<f32>]) -> Vec<f32> {
        parts.concat()
    }

    /// The settings these tests' numbers are worked out for (not the defaults, which are
    /// tuned elsewhere): chunks of 512 samples against 250 ms (4000 samples) of minimum
    /// speech, 300 ms (4800) of hang-over, 200 ms (3200) of pre-roll and 100 ms (1600) of
    /// post-roll, a 15 s (240000) maximum searched back 3 s (48000).
    fn settings() -> VadSettings {
        VadSettings {
            threshold: 0.5,
            release_threshold: 0.35,
            min_speech_ms: 250,
            hangover_ms: 300,
            pre_roll_ms: 200,
            post_roll_ms: 100,
            max_utterance_ms: 15_000,
            split_search_ms: 3_000,
        }
    }

    fn seg() -> Segmenter {
        Segmenter::new(&settings()).unwrap()
    }

    #[test]
    fn speech_starts_at_the_threshold_and_ends_after_the_hang_over() {
        let mut s = seg();
        // 20 silent chunks, 20 speech chunks (10240..20480), then silence.
        feed(&mut s, 0, &cat(&[rep(0.1, 20), rep(0.9, 7)]));
        assert!(events(&mut s).is_empty(), "7 chunks (224 ms) are under the minimum speech");
        assert!(s.ongoing().is_none());
        feed(&mut s, 27 * CHUNK, &rep(0.9, 1));
        assert_eq!(events(&mut s), vec![VadEvent::SpeechStart { at: 10_240 }], "announced at 256 ms of speech");
        assert!(s.is_speaking());
        feed(&mut s, 28 * CHUNK, &cat(&[rep(0.9, 12), rep(0.1, 9)]));
        let ev = events(&mut s);
        assert!(
            matches!(ev.as_slice(), [VadEvent::Tentative(_)]),
            "9 chunks (288 ms) of silence are within the 300 ms hang-over: only a tentative end, {ev:?}"
        );
        let ongoing = s.ongoing().unwrap();
        assert_eq!((ongoing.start, ongoing.speech_start, ongoing.end), (7_040, 10_240, 49 * CHUNK));
        feed(&mut s, 49 * CHUNK, &rep(0.1, 1));
        let ev = events(&mut s);
        let u = utterances(&ev);
        assert_eq!(u.len(), 1);
        assert_eq!((u[0].start, u[0].speech_start, u[0].speech_end), (10_240 - 3_200, 10_240, 20_480));
        assert_eq!(u[0].end, 20_480 + 1_600, "with the 100 ms post-roll");
        assert_audio_matches_times(u[0]);
        assert!(!s.is_speaking());
        assert!(s.ongoing().is_none());
    }

    #[test]
    fn hysteresis_keeps_speech_between_the_two_thresholds_but_does_not_start_it() {
        let mut s = seg();
        let end = feed(&mut s, 0, &cat(&[rep(0.4, 20), rep(0.6, 5), rep(0.4, 10), rep(0.2, 10)]));
        assert_eq!(end, 45 * CHUNK);
        let ev = events(&mut s);
        assert_eq!(ev.first(), Some(&VadEvent::SpeechStart { at: 20 * CHUNK }), "0.4 alone never starts speech");
        let u = utterances(&ev);
        assert_eq!(u.len(), 1);
        assert_eq!((u[0].speech_start, u[0].speech_end), (20 * CHUNK, 35 * CHUNK), "0.4 keeps it going");
    }

    #[test]
    fn a_pause_shorter_than_the_hang_over_stays_inside_the_utterance() {
        let mut s = seg();
        feed(&mut s, 0, &cat(&[rep(0.9, 10), rep(0.0, 9), rep(0.9, 10), rep(0.0, 10)]));
        let ev = events(&mut s);
        let u = utterances(&ev);
        assert_eq!(u.len(), 1);
        assert_eq!((u[0].start, u[0].speech_end, u[0].end), (0, 29 * CHUNK, 29 * CHUNK + 1_600));
        assert!(
            matches!(
                ev.as_slice(),
                [
                    VadEvent::SpeechStart { .. },
                    VadEvent::Tentative(_),
                    VadEvent::Resumed,
                    VadEvent::Tentative(_),
                    VadEvent::Utterance(_)
                ]
            ),
            "the pause was a tentative end, void when speech came back: {ev:?}"
        );
    }

    #[test]
    fn a_tentative_end_is_exactly_the_utterance_that_follows_unless_speech_resumes() {
        let mut s = seg();
        // Speech, then 3 quiet chunks (96 ms, under the 100 ms post-roll): nothing yet.
        feed(&mut s, 0, &cat(&[rep(0.9, 10), rep(0.1, 3)]));
        assert_eq!(events(&mut s), vec![VadEvent::SpeechStart { at: 0 }]);
        // The 4th quiet chunk covers the post-roll: the tentative end, once.
        feed(&mut s, 13 * CHUNK, &rep(0.1, 3));
        let ev = events(&mut s);
        let [VadEvent::Tentative(tentative)] = ev.as_slice() else { panic!("{ev:?}") };
        assert_eq!((tentative.speech_end, tentative.end), (10 * CHUNK, 10 * CHUNK + 1_600));
        assert_audio_matches_times(tentative);
        // Speech again before the hang-over ran out: void, and a new tentative at the next pause.
        feed(&mut s, 16 * CHUNK, &cat(&[rep(0.9, 5), rep(0.1, 4)]));
        let ev = events(&mut s);
        let [VadEvent::Resumed, VadEvent::Tentative(tentative)] = ev.as_slice() else { panic!("{ev:?}") };
        assert_eq!(tentative.speech_end, 21 * CHUNK);
        // The hang-over runs out: the utterance is the tentative one, sample for sample.
        feed(&mut s, 25 * CHUNK, &rep(0.1, 6));
        let ev = events(&mut s);
        assert_eq!(ev, vec![VadEvent::Utterance(tentative.clone())]);
        // The end of the stream after a tentative end gives the same utterance too.
        let mut s = seg();
        feed(&mut s, 0, &cat(&[rep(0.9, 10), rep(0.1, 5)]));
        let tentative = events(&mut s).into_iter().find_map(|e| match e {
            VadEvent::Tentative(t) => Some(t),
            _ => None,
        });
        s.finish();
        assert_eq!(utterances(&events(&mut s)), vec![&tentative.unwrap()]);
    }

    #[test]
    fn blips_under_the_minimum_speech_are_dropped() {
        let mut s = seg();
        // 7 chunks = 3584 samples < 4000 (250 ms): dropped. 8 chunks = 4096: kept.
        feed(&mut s, 0, &cat(&[rep(0.0, 20), rep(0.9, 7), rep(0.0, 20), rep(0.9, 8), rep(0.0, 20)]));
        let ev = events(&mut s);
        let u = utterances(&ev);
        assert_eq!(u.len(), 1, "{ev:?}");
        assert_eq!((u[0].speech_start, u[0].speech_end), (47 * CHUNK, 55 * CHUNK));
        assert_eq!(ev[0], VadEvent::SpeechStart { at: 47 * CHUNK });
        // A blip at the end of the stream is dropped too.
        feed(&mut s, 75 * CHUNK, &rep(0.9, 3));
        s.finish();
        assert!(events(&mut s).is_empty());
    }

    #[test]
    fn pre_roll_is_included_but_clipped_at_the_run_start_and_at_the_previous_utterance() {
        // At the start of the run: only 2 chunks exist before the speech.
        let mut s = seg();
        feed(&mut s, 1_000, &cat(&[rep(0.0, 2), rep(0.9, 10), rep(0.0, 10)]));
        let ev = events(&mut s);
        let u = utterances(&ev);
        assert_eq!((u[0].start, u[0].speech_start), (1_000, 1_000 + 2 * CHUNK));
        assert_audio_matches_times(u[0]);

        // Pre-roll (500 ms) longer than the hang-over (100 ms): the second utterance's
        // pre-roll holds only what came after the first one's end.
        let settings = VadSettings { pre_roll_ms: 500, hangover_ms: 100, ..settings() };
        let mut s = Segmenter::new(&settings).unwrap();
        feed(&mut s, 0, &cat(&[rep(0.0, 30), rep(0.9, 10), rep(0.0, 5), rep(0.9, 10), rep(0.0, 5)]));
        let ev = events(&mut s);
        let u = utterances(&ev);
        assert_eq!(u.len(), 2, "{ev:?}");
        assert_eq!((u[0].start, u[0].speech_start, u[0].speech_end), (30 * CHUNK - 8_000, 30 * CHUNK, 40 * CHUNK));
        assert_eq!(u[0].end, 40 * CHUNK + 1_600);
        assert_eq!((u[1].start, u[1].speech_start, u[1].speech_end), (u[0].end, 45 * CHUNK, 55 * CHUNK));
        assert_audio_matches_times(u[0]);
        assert_audio_matches_times(u[1]);
    }

    #[test]
    fn long_speech_is_split_at_the_lowest_probability_in_the_search_window() {
        let mut s = seg();
        // Max 15 s = 240000 samples: reached by the end of chunk 468 (240128). The window is
        // the last 3 s: chunks starting at or after 192128 (chunk 376 on). Chunk 300 has the
        // lowest probability overall but lies outside; chunk 400 is the lowest inside.
        let mut probs = rep(0.9, 469);
        probs[300] = 0.36;
        probs[400] = 0.5;
        probs[420] = 0.6;
        let end = feed(&mut s, 0, &probs);
        let ev = events(&mut s);
        let cut = 400 * CHUNK + CHUNK / 2;
        assert_eq!(ev.len(), 3, "{ev:?}");
        assert_eq!(ev[0], VadEvent::SpeechStart { at: 0 });
        let VadEvent::Utterance(first) = &ev[1] else { panic!("{ev:?}") };
        assert_eq!((first.start, first.speech_start, first.speech_end, first.end), (0, 0, cut, cut));
        assert_audio_matches_times(first);
        assert_eq!(ev[2], VadEvent::SpeechStart { at: cut });
        let ongoing = s.ongoing().unwrap();
        assert_eq!((ongoing.start, ongoing.end), (cut, end));
        // The rest continues and is flushed at the end of the stream.
        feed(&mut s, end, &rep(0.9, 10));
        s.finish();
        let ev = events(&mut s);
        let u = utterances(&ev);
        assert_eq!(u.len(), 1);
        assert_eq!((u[0].start, u[0].speech_start, u[0].end), (cut, cut, end + 10 * CHUNK));
        assert_audio_matches_times(u[0]);
    }

    #[test]
    fn equal_probabilities_split_at_the_quietest_then_the_latest_chunk() {
        let mut s = seg();
        let mut t = 0;
        for i in 0..469u64 {
            let mut samples = chunk(t, CHUNK);
            if i == 390 || i == 410 {
                samples.iter_mut().for_each(|x| *x = 0.0);
            }
            s.push(t, 0.9, &samples);
            t += CHUNK;
        }
        let ev = events(&mut s);
        let u = utterances(&ev);
        assert_eq!(u[0].end, 410 * CHUNK + CHUNK / 2, "the later of two equally quiet chunks");
        let mut s = seg();
        feed(&mut s, 0, &rep(0.9, 469));
        let ev = events(&mut s);
        let u = utterances(&ev);
        // The ramp is quietest around its zero crossings; whatever it picks lies in the window.
        assert!(u[0].end >= 376 * CHUNK && u[0].end < 469 * CHUNK, "{u:?}");
    }

    #[test]
    fn reaching_the_maximum_during_a_pause_ends_at_the_last_speech() {
        let mut s = seg();
        // Speech to chunk 460, then silence: the maximum arrives within the hang-over.
        let end = feed(&mut s, 0, &cat(&[rep(0.9, 461), rep(0.1, 8)]));
        assert_eq!(end, 469 * CHUNK);
        let ev = events(&mut s);
        let u = utterances(&ev);
        assert_eq!(u.len(), 1, "{ev:?}");
        assert_eq!((u[0].speech_end, u[0].end), (461 * CHUNK, 461 * CHUNK + 1_600));
        assert!(!s.is_speaking());
        assert!(
            matches!(ev.as_slice(), [VadEvent::SpeechStart { .. }, VadEvent::Tentative(t), VadEvent::Utterance(u)] if t == u),
            "no SpeechStart for an empty rest; the tentative end held: {ev:?}"
        );
    }

    #[test]
    fn memory_stays_bounded_by_the_maximum_length() {
        let mut s = seg();
        let mut most = 0;
        feed(&mut s, 0, &rep(0.9, 1));
        for i in 1..3_000u64 {
            s.push(i * CHUNK, 0.9, &chunk(i * CHUNK, CHUNK));
            most = most.max(s.heap_bytes());
            while s.poll_event().is_some() {}
        }
        // 15 s of i16, one growth step, one record per chunk, the ring.
        assert!(most < (240_000 + 2 * 16_000) * 2 + 600 * 16 + 3_200 * 2, "{most} bytes");
        s.finish();
        while s.poll_event().is_some() {}
        assert!(s.heap_bytes() <= 8_000, "silent: only the pre-roll ring, {} bytes", s.heap_bytes());
    }

    #[test]
    fn finish_flushes_the_utterance_in_progress_and_starts_a_new_run() {
        let mut s = seg();
        let end = feed(&mut s, 0, &cat(&[rep(0.0, 5), rep(0.9, 20), rep(0.2, 3)]));
        assert!(s.is_speaking());
        s.finish();
        let ev = events(&mut s);
        let u = utterances(&ev);
        assert_eq!(u.len(), 1);
        assert_eq!((u[0].start, u[0].speech_end), (0, 25 * CHUNK));
        assert_eq!(u[0].end, end, "the post-roll is cut short by the end of the stream");
        assert!(!s.is_speaking());
        // A new run may start at any time; its pre-roll holds nothing from the old run.
        feed(&mut s, 1_000_000, &cat(&[rep(0.9, 10), rep(0.0, 10)]));
        let ev = events(&mut s);
        let u = utterances(&ev);
        assert_eq!((u[0].start, u[0].speech_end), (1_000_000, 1_000_000 + 10 * CHUNK));
    }

    #[test]
    fn a_break_in_time_ends_the_run() {
        let mut s = seg();
        feed(&mut s, 0, &rep(0.9, 10));
        // Next chunk 1 s late: the first utterance ends where its audio ended.
        feed(&mut s, 10 * CHUNK + 16_000, &cat(&[rep(0.9, 10), rep(0.0, 10)]));
        let ev = events(&mut s);
        let u = utterances(&ev);
        assert_eq!(u.len(), 2, "{ev:?}");
        assert_eq!((u[0].start, u[0].end), (0, 10 * CHUNK));
        assert_eq!(u[1].start, 10 * CHUNK + 16_000);
        // Going back in time is a break too.
        feed(&mut s, 0, &rep(0.9, 10));
        s.finish();
        assert_eq!(utterances(&events(&mut s)).len(), 1);
    }

    #[test]
    fn odd_input_does_not_panic() {
        let mut s = seg();
        s.push(0, 0.9, &[]);
        s.push(0, f32::NAN, &chunk(0, 512));
        s.push(512, f32::INFINITY, &[f32::NAN, f32::INFINITY, -f32::INFINITY, 2.0, -2.0]);
        s.push(517, -1.0, &chunk(517, 3));
        s.push(u64::MAX - 10, 0.9, &chunk(0, 5));
        s.finish();
        s.push(0, 0.9, &chunk(0, 20 * 16_000));
        s.push(20 * 16_000, 0.9, &chunk(0, 20 * 16_000));
        s.finish();
        let ev = events(&mut s);
        assert!(!utterances(&ev).is_empty());
        let mut s = seg();
        s.push(0, 0.9, &[f32::NAN; 8_000]);
        s.finish();
        let ev = events(&mut s);
        assert_eq!(utterances(&ev)[0].samples, vec![0.0; 8_000]);
    }
}
