//! Whisper transcription of utterances on a fixed pool of blocking worker threads that share one
//! model. Whisper is the most expensive step of the whole server, so it runs off the async
//! threads, fed by one bounded, prioritised queue:
//!
//! - a **final** (the whole utterance, once the speaker stopped) is never dropped: when the
//!   queue holds `queue` finals, the submitter waits for room;
//! - a **partial** (the utterance so far, while the speaker talks) is worth only its newest
//!   version: a newer partial of the same stream replaces a queued one, a final of the stream
//!   removes it, and when `queue` partials wait, the oldest is dropped;
//! - a **recorded** utterance (of an upload, transcribed after the fact) is never dropped either,
//!   but waits behind everything live, so uploads never delay a live call's transcript.
//!
//! Workers take finals first, then partials, then recorded utterances.
//!
//! The pool owns `workers × threads_per_worker` threads' worth of CPU. A decode that starts
//! while nothing else waits and the other workers are idle borrows their threads too (one call
//! at a time gets its line about twice as fast); a worker that finds too few threads free waits
//! for them, so the pool never runs more whisper.cpp threads than it owns (whisper.cpp's threads
//! spin at their barriers and collapse when they outnumber the cores).
//!
//! Each decode covers only the utterance: `audio_ctx` is sized to its length plus a margin
//! (whisper.cpp loops on repeated text when the context is cut exactly at the audio's end), one
//! segment, bounded tokens, greedy decoding with no temperature fallback. Segments that look like
//! non-speech (Whisper's own no-speech test, or a text that compresses too well, the sign of a
//! loop) give no text.

use std::collections::VecDeque;
use std::io::Write as _;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};
use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState};

/// Sample rate Whisper takes.
const RATE: usize = 16_000;
/// Encoder positions per second of audio (1500 for Whisper's 30 s window).
const POSITIONS_PER_SEC: usize = 50;
/// Whisper's whole window, in encoder positions.
const MAX_AUDIO_CTX: usize = 1500;
/// whisper.cpp gives nothing for less than a second of audio; shorter utterances are padded
/// with silence to this many samples.
const MIN_SAMPLES: usize = RATE + RATE / 20;

/// Settings of the transcriber (`[speech.asr]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AsrSettings {
    /// Worker threads, each decoding one utterance at a time.
    pub workers: usize,
    /// Threads whisper.cpp uses inside one decode (a decode alone in the pool uses the idle
    /// workers' threads too).
    pub threads_per_worker: usize,
    /// Spoken language (`en` for the `.en` models; `auto` detects it per utterance).
    pub language: String,
    /// Encoder positions added past the utterance's end (about 256; see the module doc).
    pub audio_ctx_margin: usize,
    /// Most tokens one decode may produce.
    pub max_tokens: usize,
    /// Finals (and, separately, partials) that may wait for a worker.
    pub queue: usize,
    /// A segment whose no-speech probability is above this …
    pub no_speech_threshold: f32,
    /// … and whose mean token log-probability is below this is silence (Whisper's rule).
    pub logprob_threshold: f32,
    /// A segment whose text compresses better than this (gzip ratio) is a loop, not speech.
    pub compression_ratio_threshold: f32,
}

impl Default for AsrSettings {
    fn default() -> Self {
        AsrSettings {
            workers: 2,
            threads_per_worker: 1,
            language: "en".into(),
            audio_ctx_margin: 256,
            max_tokens: 128,
            queue: 256,
            no_speech_threshold: 0.6,
            logprob_threshold: -1.0,
            compression_ratio_threshold: 2.4,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AsrError {
    #[error("loading the Whisper model {path}: {source}")]
    Model { path: String, source: whisper_rs::WhisperError },
    #[error("whisper: {0}")]
    Whisper(#[from] whisper_rs::WhisperError),
    #[error("the transcriber has stopped")]
    Stopped,
    #[error("settings: {0}")]
    Settings(&'static str),
}

/// One speaker of one call: the session and the speaker's stream index.
pub type StreamId = (crate::session::SessionId, usize);

/// What a request is, which decides its place in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A live utterance so far.
    Partial,
    /// A whole live utterance.
    Final,
    /// A whole utterance of a recording transcribed after the fact.
    Recorded,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Partial => "partial",
            Kind::Final => "final",
            Kind::Recorded => "recorded",
        }
    }
}

/// One utterance (or its beginning) to transcribe.
#[derive(Debug, Clone)]
pub struct Request {
    /// The stream it belongs to: partials of one stream replace each other.
    pub stream: StreamId,
    pub kind: Kind,
    /// 16 kHz mono samples in −1..1.
    pub samples: Arc<[f32]>,
    /// Stream time of the first sample, added to the word times.
    pub start_ms: u64,
}

/// A word with its time on the stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Word {
    pub text: String,
    pub start_ms: u64,
    pub end_ms: u64,
    /// Whisper's probability of the word's weakest token.
    pub confidence: f32,
}

/// What Whisper heard.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transcript {
    /// Empty when nothing was said (or the guard judged it non-speech).
    pub text: String,
    pub words: Vec<Word>,
    /// Time the decode took on its worker.
    pub decode: Duration,
    /// whisper.cpp threads it ran on.
    pub threads: usize,
}

/// The outcome of a request: a transcript, or `None` for a partial that was superseded or
/// dropped under load.
pub type Answer = Result<Option<Transcript>, AsrError>;

struct Job {
    request: Request,
    reply: oneshot::Sender<Answer>,
    /// Room in the final queue, held until the decode ends.
    _permit: Option<OwnedSemaphorePermit>,
}

#[derive(Default)]
struct Queue {
    finals: VecDeque<Job>,
    partials: VecDeque<Job>,
    recorded: VecDeque<Job>,
    stopped: bool,
    /// Whisper threads no decode is using now.
    free_threads: usize,
}

impl Queue {
    fn is_empty(&self) -> bool {
        self.finals.is_empty() && self.partials.is_empty() && self.recorded.is_empty()
    }

    /// Sets the queue gauge to what waits now.
    fn report(&self) {
        metrics::gauge!(crate::metrics::ASR_QUEUE)
            .set((self.finals.len() + self.partials.len() + self.recorded.len()) as f64);
    }
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
}

/// The worker pool. Dropping it stops the workers after the jobs in hand.
pub struct Transcriber {
    shared: Arc<Shared>,
    finals: Arc<Semaphore>,
    recorded: Arc<Semaphore>,
    partial_capacity: usize,
    workers: Vec<JoinHandle<()>>,
}

impl Transcriber {
    /// Loads the ggml model at `model` and starts the workers.
    pub fn start(model: &Path, settings: &AsrSettings) -> Result<Transcriber, AsrError> {
        if settings.workers == 0 || settings.threads_per_worker == 0 || settings.queue == 0 {
            return Err(AsrError::Settings("workers, threads_per_worker and queue must be at least 1"));
        }
        // whisper.cpp's own log lines go to tracing (debug and below), not to stderr.
        whisper_rs::install_logging_hooks();
        let context = WhisperContext::new_with_params(model, WhisperContextParameters::default())
            .map_err(|source| AsrError::Model { path: model.display().to_string(), source })?;
        let context = Arc::new(context);
        let queue = Queue { free_threads: settings.workers * settings.threads_per_worker, ..Queue::default() };
        let shared = Arc::new(Shared { queue: Mutex::new(queue), ready: Condvar::new() });
        let mut workers = Vec::with_capacity(settings.workers);
        for index in 0..settings.workers {
            let state = context.create_state()?;
            let decoder = Decoder { context: context.clone(), state, settings: settings.clone() };
            let shared = shared.clone();
            let worker = std::thread::Builder::new()
                .name(format!("hark-asr-{index}"))
                .spawn(move || work(&shared, decoder))
                .map_err(|_| AsrError::Settings("cannot start a worker thread"))?;
            workers.push(worker);
        }
        Ok(Transcriber {
            shared,
            finals: Arc::new(Semaphore::new(settings.queue)),
            recorded: Arc::new(Semaphore::new(settings.queue)),
            partial_capacity: settings.queue,
            workers,
        })
    }

    /// Queues `request` and returns where its answer arrives. A final or recorded utterance
    /// waits for room in its lane; a partial never waits (see the module doc for what replaces
    /// or drops it).
    pub async fn submit(&self, request: Request) -> oneshot::Receiver<Answer> {
        let (reply, answer) = oneshot::channel();
        let lane = match request.kind {
            Kind::Final => Some(&self.finals),
            Kind::Recorded => Some(&self.recorded),
            Kind::Partial => None,
        };
        let permit = match lane.map(|lane| lane.clone().acquire_owned()) {
            Some(acquire) => match acquire.await {
                Ok(permit) => Some(permit),
                Err(_) => {
                    let _ = reply.send(Err(AsrError::Stopped));
                    return answer;
                }
            },
            None => None,
        };
        self.push(Job { request, reply, _permit: permit });
        answer
    }

    /// Transcribes `request` and waits for the answer.
    pub async fn transcribe(&self, request: Request) -> Answer {
        self.submit(request).await.await.unwrap_or(Err(AsrError::Stopped))
    }

    fn push(&self, job: Job) {
        let mut queue = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
        if queue.stopped {
            let _ = job.reply.send(Err(AsrError::Stopped));
            return;
        }
        let stream = job.request.stream;
        // Whatever comes, a queued partial of the same stream is now stale.
        if let Some(at) = queue.partials.iter().position(|j| j.request.stream == stream) {
            if let Some(stale) = queue.partials.remove(at) {
                let _ = stale.reply.send(Ok(None));
            }
        }
        match job.request.kind {
            Kind::Final => queue.finals.push_back(job),
            Kind::Recorded => queue.recorded.push_back(job),
            Kind::Partial => {
                if queue.partials.len() >= self.partial_capacity {
                    if let Some(oldest) = queue.partials.pop_front() {
                        metrics::counter!(crate::metrics::ASR_PARTIALS_DROPPED).increment(1);
                        let _ = oldest.reply.send(Ok(None));
                    }
                }
                queue.partials.push_back(job);
            }
        }
        queue.report();
        drop(queue);
        self.shared.ready.notify_one();
    }
}

impl Drop for Transcriber {
    fn drop(&mut self) {
        self.finals.close();
        self.recorded.close();
        self.shared.queue.lock().unwrap_or_else(|e| e.into_inner()).stopped = true;
        self.shared.ready.notify_all();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

/// A worker: finals first, then partials, then recorded utterances, until the pool stops and
/// the queue is empty. It starts a decode only with at least its own threads free, and takes
/// every free thread when nothing else waits (see the module doc).
fn work(shared: &Shared, mut decoder: Decoder) {
    let own = decoder.settings.threads_per_worker;
    loop {
        let (job, threads) = {
            let mut queue = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if queue.free_threads >= own {
                    let next = queue.finals.pop_front().or_else(|| queue.partials.pop_front());
                    if let Some(job) = next.or_else(|| queue.recorded.pop_front()) {
                        if job.reply.is_closed() {
                            metrics::counter!(crate::metrics::ASR_ABANDONED, "decoded" => "false").increment(1);
                            continue;
                        }
                        let threads = if queue.is_empty() { queue.free_threads } else { own };
                        queue.free_threads -= threads;
                        queue.report();
                        break (job, threads);
                    }
                }
                if queue.stopped && queue.is_empty() {
                    return;
                }
                queue = shared.ready.wait(queue).unwrap_or_else(|e| e.into_inner());
            }
        };
        let kind = job.request.kind.as_str();
        let answer = decoder.decode(&job.request.samples, job.request.start_ms, threads);
        shared.queue.lock().unwrap_or_else(|e| e.into_inner()).free_threads += threads;
        shared.ready.notify_all();
        if let Ok(transcript) = &answer {
            metrics::histogram!(crate::metrics::ASR_DECODE_SECONDS, "kind" => kind)
                .record(transcript.decode.as_secs_f64());
        }
        if job.reply.send(answer.map(Some)).is_err() {
            metrics::counter!(crate::metrics::ASR_ABANDONED, "decoded" => "true").increment(1);
        }
    }
}

/// One worker's whisper.cpp state and settings.
struct Decoder {
    /// The shared model (its end-of-text token: ids from there on are special).
    context: Arc<WhisperContext>,
    state: WhisperState,
    settings: AsrSettings,
}

impl Decoder {
    /// Transcribes one utterance. A decode that loops (the sign of a context cut too short) is
    /// run once more with Whisper's whole window before its text is given up.
    fn decode(&mut self, samples: &[f32], start_ms: u64, threads: usize) -> Result<Transcript, AsrError> {
        let started = Instant::now();
        let mut padded;
        let audio = if samples.len() < MIN_SAMPLES {
            padded = samples.to_vec();
            padded.resize(MIN_SAMPLES, 0.0);
            &padded[..]
        } else {
            samples
        };
        let ctx = audio_ctx(audio.len(), self.settings.audio_ctx_margin);
        let mut segments = self.run(audio, ctx, threads)?;
        if ctx < MAX_AUDIO_CTX && segments.iter().any(|(verdict, _)| *verdict == Verdict::Loop) {
            tracing::debug!(ctx, "decode looped; again with the whole window");
            segments = self.run(audio, MAX_AUDIO_CTX, threads)?;
        }
        let mut text = String::new();
        let mut words: Vec<Word> = Vec::new();
        for (verdict, tokens) in segments {
            let segment_text: String = tokens.iter().map(|t| t.text.as_str()).collect();
            if verdict != Verdict::Speech {
                tracing::debug!(?verdict, text = %segment_text.trim(), "segment dropped");
                continue;
            }
            text.push_str(&segment_text);
            words.extend(group_words(&tokens, start_ms, samples.len()));
        }
        Ok(Transcript { text: text.trim().to_string(), words, decode: started.elapsed(), threads })
    }

    /// One whisper.cpp decode of `audio` with `ctx` encoder positions: each segment's text
    /// tokens and the guard's verdict on them.
    fn run(&mut self, audio: &[f32], ctx: usize, threads: usize) -> Result<Vec<(Verdict, Vec<Token>)>, AsrError> {
        let settings = &self.settings;
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_n_threads(threads as i32);
        let language = (settings.language != "auto").then_some(settings.language.as_str());
        params.set_language(language);
        params.set_detect_language(language.is_none());
        params.set_audio_ctx(ctx as i32);
        params.set_single_segment(true);
        params.set_no_context(true);
        params.set_max_tokens(settings.max_tokens as i32);
        params.set_temperature(0.0);
        params.set_temperature_inc(0.0);
        params.set_token_timestamps(true);
        params.set_suppress_blank(true);
        params.set_suppress_nst(true);
        params.set_no_speech_thold(settings.no_speech_threshold);
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        self.state.full(params, audio)?;

        let eot = self.context.token_eot();
        let guard = Guard::from(settings);
        let mut segments = Vec::new();
        for segment in self.state.as_iter() {
            let mut tokens = Vec::new();
            for index in 0..segment.n_tokens() {
                let Some(token) = segment.get_token(index) else { continue };
                let data = token.token_data();
                if data.id >= eot {
                    continue;
                }
                let piece = token.to_str_lossy().map(|s| s.into_owned()).unwrap_or_default();
                tokens.push(Token { text: piece, t0: data.t0, t1: data.t1, p: data.p, plog: data.plog });
            }
            let text: String = tokens.iter().map(|t| t.text.as_str()).collect();
            segments.push((guard.judge(segment.no_speech_probability(), &tokens, &text), tokens));
        }
        Ok(segments)
    }
}

/// Encoder positions for `samples` of audio plus `margin`, within Whisper's window.
fn audio_ctx(samples: usize, margin: usize) -> usize {
    (samples * POSITIONS_PER_SEC).div_ceil(RATE).saturating_add(margin).min(MAX_AUDIO_CTX)
}

/// A decoded text token with its times (whisper.cpp's 10 ms units from the audio's start).
#[derive(Debug, Clone, PartialEq)]
struct Token {
    text: String,
    t0: i64,
    t1: i64,
    p: f32,
    plog: f32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Speech,
    /// Whisper's own test: likely no speech and not confident.
    NoSpeech,
    /// The text repeats itself (compresses too well).
    Loop,
    Empty,
}

/// The hallucination guard's thresholds.
#[derive(Debug, Clone, Copy)]
struct Guard {
    no_speech: f32,
    logprob: f32,
    compression: f32,
}

impl From<&AsrSettings> for Guard {
    fn from(s: &AsrSettings) -> Guard {
        Guard {
            no_speech: s.no_speech_threshold,
            logprob: s.logprob_threshold,
            compression: s.compression_ratio_threshold,
        }
    }
}

impl Guard {
    fn judge(&self, no_speech: f32, tokens: &[Token], text: &str) -> Verdict {
        if !text.chars().any(char::is_alphanumeric) {
            return Verdict::Empty;
        }
        let mean_logprob = tokens.iter().map(|t| t.plog).sum::<f32>() / tokens.len().max(1) as f32;
        if no_speech > self.no_speech && mean_logprob < self.logprob {
            return Verdict::NoSpeech;
        }
        if compression_ratio(text) > self.compression {
            return Verdict::Loop;
        }
        Verdict::Speech
    }
}

/// Whisper's repetition measure: text bytes over their gzip-compressed size.
fn compression_ratio(text: &str) -> f32 {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    if encoder.write_all(text.as_bytes()).is_err() {
        return 0.0;
    }
    match encoder.finish() {
        Ok(compressed) if !compressed.is_empty() => text.len() as f32 / compressed.len() as f32,
        _ => 0.0,
    }
}

/// Joins tokens into words (a token starting with a space starts a word) with their stream
/// times; times past the real audio (the padding) are clamped to its end.
fn group_words(tokens: &[Token], start_ms: u64, samples: usize) -> Vec<Word> {
    let audio_ms = (samples * 1000 / RATE) as u64;
    let at = |t: i64| start_ms + (t.max(0) as u64 * 10).min(audio_ms);
    let mut words: Vec<Word> = Vec::new();
    for token in tokens {
        let starts_word = token.text.starts_with(' ') || words.is_empty();
        let piece = token.text.trim();
        if piece.is_empty() {
            continue;
        }
        match words.last_mut() {
            Some(word) if !starts_word => {
                word.text.push_str(piece);
                word.end_ms = at(token.t1).max(word.start_ms);
                word.confidence = word.confidence.min(token.p);
            }
            _ => words.push(Word {
                text: piece.to_string(),
                start_ms: at(token.t0),
                end_ms: at(token.t1).max(at(token.t0)),
                confidence: token.p,
            }),
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(text: &str, t0: i64, t1: i64) -> Token {
        Token { text: text.into(), t0, t1, p: 0.9, plog: -0.1 }
    }

    #[test]
    fn audio_ctx_covers_the_utterance_plus_the_margin_within_the_window() {
        assert_eq!(audio_ctx(16_000, 256), 50 + 256);
        assert_eq!(audio_ctx(16_001, 256), 51 + 256);
        assert_eq!(audio_ctx(16_000 * 29, 256), 1500);
        assert_eq!(audio_ctx(0, 256), 256);
    }

    #[test]
    fn tokens_become_words_with_stream_times() {
        let tokens = [token(" ask", 0, 30), token(" not", 30, 50), token(" what", 60, 80), token("'s", 80, 90)];
        let words = group_words(&tokens, 10_000, 16_000);
        let texts: Vec<_> = words.iter().map(|w| (w.text.as_str(), w.start_ms, w.end_ms)).collect();
        assert_eq!(texts, vec![("ask", 10_000, 10_300), ("not", 10_300, 10_500), ("what's", 10_600, 10_900)]);
    }

    #[test]
    fn word_times_stop_at_the_end_of_the_real_audio() {
        // 0.5 s of audio padded to a second: a token timed in the padding ends at 0.5 s.
        let words = group_words(&[token(" yes", 40, 90)], 0, 8_000);
        assert_eq!((words[0].start_ms, words[0].end_ms), (400, 500));
    }

    #[test]
    fn the_guard_drops_silence_loops_and_empty_text() {
        let guard = Guard::from(&AsrSettings::default());
        let sure = [token(" hello", 0, 10)];
        let unsure = [Token { plog: -1.5, ..token(" you", 0, 10) }];
        assert_eq!(guard.judge(0.1, &sure, " hello"), Verdict::Speech);
        assert_eq!(guard.judge(0.9, &unsure, " you"), Verdict::NoSpeech);
        // Likely no speech but confident: Whisper keeps it, and so do we.
        assert_eq!(guard.judge(0.9, &sure, " hello"), Verdict::Speech);
        let looped = " thank you".repeat(20);
        assert_eq!(guard.judge(0.1, &sure, &looped), Verdict::Loop);
        assert_eq!(guard.judge(0.1, &sure, " ..."), Verdict::Empty);
    }

    #[test]
    fn a_normal_sentence_does_not_compress_like_a_loop() {
        let ratio = compression_ratio("And so my fellow Americans, ask not what your country can do for you.");
        assert!(ratio < 1.5, "{ratio}");
    }
}
