//! The speech stage of one live call: its speakers' 16 kHz frames in, utterances out to the
//! session (partials while someone speaks, a final when they stop).
//!
//! One task per call runs Silero on every frame (inline: a 32 ms chunk costs well under a
//! millisecond; each tokio worker thread keeps its own ONNX Runtime session), cuts utterances
//! with the segmenter, and submits them to the shared [`Transcriber`]. A live call's final is
//! asked for at the segmenter's *tentative* end, as soon as the speaker paused for the
//! post-roll, so Whisper decodes while the hang-over runs out; if the speaker goes on, that
//! decode is cancelled (or its answer dropped) and the final is asked for again at the real
//! end. The final therefore arrives about one decode after the speech ended, not one hang-over
//! plus one decode. Answers are delivered to
//! the session in the order they were asked for, per speaker, by a small delivery task, so a
//! partial never overtakes its final. When the call ends, each speaker's utterance in progress
//! is flushed and transcribed: no final is lost.

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::ingest::call::AudioFrame;
use crate::session::actor::Command;
use crate::session::core::Input;
use crate::session::{Author, Partial, Speech};

use super::asr::{Answer, Kind, Request, StreamId, Transcriber};
use super::emotion::{Emotion, ProsodyBaseline};
use super::vad::{ms_to_samples, samples_to_ms, SileroModel, VadEvent, VadStream};
use super::SpeechConfig;

/// What the speech stage shares between calls: the Whisper pool and the settings.
pub struct Engine {
    pub transcriber: Transcriber,
    config: SpeechConfig,
    models_dir: PathBuf,
    emotion: Emotion,
}

thread_local! {
    /// This thread's Silero session (ONNX Runtime sessions are not shared across threads).
    static SILERO: RefCell<Option<SileroModel>> = const { RefCell::new(None) };
}

impl Engine {
    /// Loads Whisper and checks that Silero loads, so a missing model fails at start-up.
    pub fn start(config: &SpeechConfig) -> Result<Engine, super::SpeechError> {
        config.vad.validate()?;
        let missing = config.missing();
        if !missing.is_empty() {
            return Err(super::SpeechError::Missing(missing));
        }
        let transcriber = Transcriber::start(&config.whisper_model(), &config.asr)?;
        let engine = Engine {
            transcriber,
            config: config.clone(),
            models_dir: config.models_dir.clone(),
            emotion: Emotion::new(),
        };
        engine.with_silero(|_| Ok(()))?;
        Ok(engine)
    }

    /// Runs `f` with this thread's Silero session, loading it on first use.
    fn with_silero<T>(
        &self,
        f: impl FnOnce(&mut SileroModel) -> Result<T, super::vad::VadError>,
    ) -> Result<T, super::vad::VadError> {
        SILERO.with(|cell| {
            let mut slot = cell.borrow_mut();
            let model = match slot.as_mut() {
                Some(model) => model,
                None => slot.insert(SileroModel::from_dir(&self.models_dir)?),
            };
            f(model)
        })
    }
}

/// Who speaks on a stream of the call, as the transcript names them.
#[derive(Debug, Clone)]
pub struct Speaker {
    /// `customer` or `agent`.
    pub role: String,
    pub author: Author,
}

/// A stream of the call as the speech task tracks it.
struct Track {
    index: usize,
    vad: VadStream,
    /// Numbers this speaker's utterances; the one in progress (or last) is `utterance`.
    utterance: u64,
    revision: u32,
    /// Stream time (samples) up to which the last partial was asked for.
    partial_until: u64,
    /// The final asked for at a tentative end: its `(start, end)` and where its answer comes.
    tentative: Option<((u64, u64), oneshot::Receiver<Answer>)>,
    /// Answers to deliver, in order.
    deliveries: mpsc::UnboundedSender<Delivery>,
}

struct Delivery {
    kind: Kind,
    utterance: u64,
    revision: u32,
    /// Where the speech was found (after the pre-roll).
    start_ms: u64,
    end_ms: u64,
    samples: Arc<[f32]>,
    answer: oneshot::Receiver<Answer>,
}

/// Runs the speech stage of a call until its frames end (the call hung up), then flushes.
/// `session` is the call's session command queue. A call that is not `live` (an upload) makes
/// no partials, and its utterances wait behind live calls'.
pub async fn run(
    engine: Arc<Engine>,
    call: uuid::Uuid,
    live: bool,
    speakers: Vec<Speaker>,
    mut frames: mpsc::Receiver<AudioFrame>,
    session: mpsc::Sender<Command>,
) {
    let mut tracks = Vec::with_capacity(speakers.len());
    let mut deliverers = Vec::with_capacity(speakers.len());
    for (index, speaker) in speakers.into_iter().enumerate() {
        let vad = match VadStream::new(&engine.config.vad) {
            Ok(vad) => vad,
            Err(error) => {
                tracing::error!(%call, %error, "speech stage off for this call");
                return;
            }
        };
        let (deliveries, queue) = mpsc::unbounded_channel();
        deliverers.push(tokio::spawn(deliver(engine.clone(), call, speaker.clone(), queue, session.clone())));
        tracks.push(Track { index, vad, utterance: 0, revision: 0, partial_until: 0, tentative: None, deliveries });
    }
    let partial_every = ms_to_samples(engine.config.partial_interval_ms.max(100));
    while let Some(frame) = frames.recv().await {
        let Some(track) = tracks.get_mut(frame.speaker) else { continue };
        let start = ms_to_samples(frame.start_ms);
        if let Err(error) = engine.with_silero(|model| model.push(&mut track.vad, start, &frame.samples)) {
            tracing::error!(%call, %error, "voice activity detection failed; speech stage off for this call");
            break;
        }
        drain(&engine, call, live, track).await;
        // No partials while a final is already being decoded for the pause under way; the
        // utterance so far is copied only when a partial is due.
        let due = live
            && track.tentative.is_none()
            && track.vad.is_speaking()
            && track.vad.position().is_some_and(|at| at >= track.partial_until + partial_every);
        if let Some(ongoing) = due.then(|| track.vad.ongoing()).flatten() {
            track.partial_until = ongoing.end;
            track.revision += 1;
            let samples: Arc<[f32]> = ongoing.samples.into();
            let answer = submit(&engine, (call, track.index), Kind::Partial, samples.clone(), ongoing.start).await;
            let delivery = Delivery {
                kind: Kind::Partial,
                utterance: track.utterance,
                revision: track.revision,
                start_ms: samples_to_ms(ongoing.speech_start),
                end_ms: samples_to_ms(ongoing.end),
                samples,
                answer,
            };
            let _ = track.deliveries.send(delivery);
        }
    }
    // The call ended: what anyone was still saying is an utterance too.
    for track in &mut tracks {
        if let Err(error) = engine.with_silero(|model| model.finish(&mut track.vad)) {
            tracing::warn!(%call, %error, "flushing voice activity detection failed");
        }
        drain(&engine, call, live, track).await;
    }
    drop(tracks);
    for deliverer in deliverers {
        let _ = deliverer.await;
    }
}

/// Handles the track's segmenter events: a new utterance, or a finished one to transcribe.
async fn drain(engine: &Engine, call: uuid::Uuid, live: bool, track: &mut Track) {
    let kind = if live { Kind::Final } else { Kind::Recorded };
    while let Some(event) = track.vad.poll_event() {
        match event {
            VadEvent::SpeechStart { at } => {
                track.utterance += 1;
                track.revision = 0;
                track.partial_until = at;
            }
            VadEvent::Tentative(utterance) if live && engine.config.tentative_finals => {
                let times = (utterance.start, utterance.end);
                let answer = submit(engine, (call, track.index), kind, utterance.samples.into(), utterance.start).await;
                track.tentative = Some((times, answer));
            }
            VadEvent::Tentative(_) => {}
            // Dropping the answer's receiver cancels the decode if it has not started.
            VadEvent::Resumed => track.tentative = None,
            VadEvent::Utterance(utterance) => {
                let samples: Arc<[f32]> = utterance.samples.into();
                let answer = match track.tentative.take() {
                    Some((times, answer)) if times == (utterance.start, utterance.end) => answer,
                    _ => submit(engine, (call, track.index), kind, samples.clone(), utterance.start).await,
                };
                let delivery = Delivery {
                    kind,
                    utterance: track.utterance,
                    revision: track.revision + 1,
                    start_ms: samples_to_ms(utterance.speech_start),
                    end_ms: samples_to_ms(utterance.speech_end),
                    samples,
                    answer,
                };
                let _ = track.deliveries.send(delivery);
                // The next partial starts a new utterance's revisions.
                track.partial_until = utterance.end;
            }
        }
    }
}

/// Asks the transcriber for `samples`, which start at stream time `start` (samples). Word times
/// count from the audio's start (pre-roll included); the line itself starts and ends where the
/// speech was found.
async fn submit(
    engine: &Engine,
    stream: StreamId,
    kind: Kind,
    samples: Arc<[f32]>,
    start: u64,
) -> oneshot::Receiver<Answer> {
    engine.transcriber.submit(Request { stream, kind, samples, start_ms: samples_to_ms(start) }).await
}

/// Delivers one speaker's answers to the session, in the order they were asked for; finals get
/// their emotion here.
async fn deliver(
    engine: Arc<Engine>,
    call: uuid::Uuid,
    speaker: Speaker,
    mut queue: mpsc::UnboundedReceiver<Delivery>,
    session: mpsc::Sender<Command>,
) {
    let mut baseline = ProsodyBaseline::default();
    while let Some(delivery) = queue.recv().await {
        let transcript = match delivery.answer.await {
            Ok(Ok(Some(transcript))) => transcript,
            Ok(Ok(None)) => continue,
            Ok(Err(error)) => {
                tracing::error!(%call, %error, "transcription failed");
                continue;
            }
            Err(_) => continue,
        };
        if transcript.text.is_empty() {
            continue;
        }
        let input = match delivery.kind {
            Kind::Partial => Input::Partial(Box::new(Partial {
                utterance: delivery.utterance,
                revision: delivery.revision,
                speaker: speaker.role.clone(),
                start_ms: delivery.start_ms,
                end_ms: delivery.end_ms,
                text: transcript.text,
            })),
            Kind::Final | Kind::Recorded => {
                let felt = engine.emotion.judge(&transcript.text, &delivery.samples, &transcript.words, &mut baseline);
                let speech = Speech {
                    speaker: speaker.role.clone(),
                    start_ms: delivery.start_ms,
                    end_ms: delivery.end_ms,
                    words: transcript.words,
                    emotion: Some(felt.label.as_str().to_string()),
                    sentiment: Some(felt.sentiment),
                };
                Input::Speech { author: speaker.author.clone(), text: transcript.text, speech: Box::new(speech) }
            }
        };
        // A final must reach the session; the session queue applies backpressure, never drops.
        if session.send(Command::input(input, None)).await.is_err() {
            tracing::warn!(%call, "the call's session ended before its transcript was delivered");
        }
    }
}
