//! The ingest side of a voice session, shared by every way a call arrives (SIP, SIPREC, Twilio,
//! jambonz, audio_fork, AudioSocket): it opens the session and its card, takes each speaker's
//! 16 kHz audio with its stream time, records it, hands it to the speech stage, and on hang-up
//! writes the call record and ends the session.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::chat::bot::Bot;
use crate::server::App;
use crate::session::actor::{self, Command};
use crate::session::core::{Input, Timing};
use crate::session::registry::Live;
use crate::session::{Author, Card, Channel, SessionId, StreamCard};
use crate::speech::live;
use crate::store::Write;

use super::recording::{Recorder, Transcoder};

/// Sample rate of everything that leaves ingest.
pub const SAMPLE_RATE: u32 = 16_000;

/// Who speaks on a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Customer,
    Agent,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Agent => "agent",
        }
    }
}

/// A party of a call, as far as the signalling tells.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Party {
    pub name: Option<String>,
    pub number: Option<String>,
    pub uri: Option<String>,
}

/// What is known of a call when it starts.
#[derive(Debug, Clone)]
pub struct CallSpec {
    /// `sip`, `siprec`, `twilio`, `jambonz`, `audio_fork` or `audiosocket`.
    pub source: &'static str,
    /// The call's id at the source (SIP Call-ID, Twilio callSid, AudioSocket UUID, …).
    pub external_id: String,
    pub tenant: String,
    /// Where it came from: the trunk's address or the account.
    pub trunk: String,
    pub from: Party,
    pub to: Party,
    pub codec: String,
    /// One entry per media stream, in stream order.
    pub speakers: Vec<(Role, Party)>,
    /// False for a recording transcribed after the fact (an upload): its speech waits behind
    /// live calls' and makes no partials.
    pub live: bool,
}

/// One speaker's stream in the finished call record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CallStream {
    pub role: Role,
    pub party: Party,
    pub stats: StreamCard,
    /// Seconds of audio recorded.
    pub recorded_secs: f64,
    /// Path of the recording below the data directory's `recordings/`, when one was kept.
    pub recording: Option<String>,
}

/// What a voice session adds to its session record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CallRecord {
    pub source: String,
    pub external_id: String,
    pub trunk: String,
    pub from: Party,
    pub to: Party,
    pub codec: String,
    /// Why the call ended (e.g. `caller hung up`, `media timeout`), once it has.
    pub hangup_cause: Option<String>,
    pub streams: Vec<CallStream>,
}

/// A slice of one speaker's audio for the speech stage.
#[derive(Debug, Clone)]
pub struct AudioFrame {
    pub session: SessionId,
    pub speaker: usize,
    /// Milliseconds from the call's start to the first sample.
    pub start_ms: u64,
    /// 16 kHz mono samples.
    pub samples: Arc<[i16]>,
}

/// Frames the speech stage may fall behind by (per call) before frames are dropped: 10 s of
/// two speakers in 20 ms frames. Media never waits for speech; recordings keep everything.
pub const SPEECH_QUEUE: usize = 1000;

/// Longest a call may last before hark ends it.
const MAX_CALL: Duration = Duration::from_secs(12 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("recording: {0}")]
    Recording(#[from] std::io::Error),
}

/// A call in progress.
pub struct LiveCall {
    pub id: SessionId,
    live: Live,
    record: CallRecord,
    recorders: Vec<Option<Recorder>>,
    /// The speech stage's hand-off and its task, while speech is on.
    speech: Option<(mpsc::Sender<AudioFrame>, tokio::task::JoinHandle<()>)>,
    writer: crate::store::Writer,
    transcoder: Transcoder,
}

impl LiveCall {
    /// Opens the voice session (its card appears live) and the recordings.
    pub async fn start(app: &App, spec: CallSpec) -> Result<LiveCall, CallError> {
        let now = app.clock.now().wall;
        let id = uuid::Uuid::new_v4();
        let card = Card {
            streams: spec
                .speakers
                .iter()
                .map(|(role, _)| StreamCard {
                    speaker: role.as_str().into(),
                    codec: spec.codec.clone(),
                    ..StreamCard::default()
                })
                .collect(),
            placement: placement(&app.sessions.directory, &spec),
            ..Card::new(id, &spec.tenant, spec.source, Channel::Voice, now)
        };
        let dir = recordings_dir(&app.config.data_dir).join(id.to_string());
        std::fs::create_dir_all(&dir)?;
        let mut recorders = Vec::new();
        let mut streams = Vec::new();
        for (index, (role, party)) in spec.speakers.iter().enumerate() {
            let file = format!("{index}-{}.wav", role.as_str());
            recorders.push(Some(Recorder::create(&dir.join(&file))?));
            streams.push(CallStream {
                role: *role,
                party: party.clone(),
                stats: StreamCard { speaker: role.as_str().into(), codec: spec.codec.clone(), ..StreamCard::default() },
                recorded_secs: 0.0,
                recording: Some(format!("{id}/{file}")),
            });
        }
        let record = CallRecord {
            source: spec.source.to_string(),
            external_id: spec.external_id,
            trunk: spec.trunk,
            from: spec.from,
            to: spec.to,
            codec: spec.codec,
            hangup_cause: None,
            streams,
        };
        let timing = Timing { idle_timeout: MAX_CALL, release_grace: app.sessions.timing.release_grace };
        let (_, live) = actor::start(&app.sessions, card, Arc::new(Bot::None), timing).await;
        app.writer.send(Write::Call(id, record.clone())).await;
        metrics::counter!(crate::metrics::CALLS, "source" => record.source.clone()).increment(1);
        let speech = app.speech.clone().map(|engine| {
            let (frames, frames_rx) = mpsc::channel(SPEECH_QUEUE);
            let speakers = record.streams.iter().map(speaker).collect();
            let task = tokio::spawn(live::run(engine, id, spec.live, speakers, frames_rx, live.commands.clone()));
            (frames, task)
        });
        Ok(LiveCall {
            id,
            live,
            record,
            recorders,
            speech,
            writer: app.writer.clone(),
            transcoder: app.transcoder.clone(),
        })
    }

    /// Audio of `speaker`, 16 kHz mono, whose first sample is `start_ms` into the call. Live
    /// media never waits: when the speech stage is behind, the frame is dropped (and counted).
    pub fn audio(&mut self, speaker: usize, start_ms: u64, samples: &[i16]) {
        let Some((frames, frame)) = self.record_audio(speaker, start_ms, samples) else { return };
        if let Err(mpsc::error::TrySendError::Full(_)) = frames.try_send(frame) {
            metrics::counter!(crate::metrics::SPEECH_FRAMES_DROPPED).increment(1);
        }
    }

    /// As [`LiveCall::audio`], for audio that is not live (an uploaded file): waits for room in
    /// the speech hand-off instead of dropping, so the speech stage gets every frame, as fast as
    /// it takes them.
    pub async fn audio_paced(&mut self, speaker: usize, start_ms: u64, samples: &[i16]) {
        let Some((frames, frame)) = self.record_audio(speaker, start_ms, samples) else { return };
        // An error means the speech task has stopped (it logged why); the recording goes on.
        let _ = frames.send(frame).await;
    }

    /// Records the audio; returns it as a frame for the speech stage with the hand-off, when
    /// speech is on (and the speaker's recording has not failed).
    fn record_audio(
        &mut self,
        speaker: usize,
        start_ms: u64,
        samples: &[i16],
    ) -> Option<(&mpsc::Sender<AudioFrame>, AudioFrame)> {
        // A recording that failed stops; the speaker's transcription goes on.
        if let Some(slot) = self.recorders.get_mut(speaker) {
            if let Some(Err(error)) = slot.as_mut().map(|recorder| recorder.write(start_ms, samples)) {
                tracing::error!(session = %self.id, speaker, %error, "recording write failed; recording stopped");
                *slot = None;
            }
        }
        let (frames, _) = self.speech.as_ref()?;
        Some((frames, AudioFrame { session: self.id, speaker, start_ms, samples: samples.into() }))
    }

    /// New media figures for the card (one per speaker, in stream order).
    pub async fn stats(&mut self, stats: Vec<StreamCard>) {
        for (stream, stats) in self.record.streams.iter_mut().zip(stats) {
            stream.stats = StreamCard { speaker: stream.role.as_str().into(), ..stats };
        }
        let cards = self.record.streams.iter().map(|s| s.stats.clone()).collect();
        let _ = self.live.commands.send(Command::input(Input::Streams(cards), None)).await;
    }

    /// The call was put on hold (every stream) or resumed.
    pub async fn hold(&self, on: bool) {
        let _ = self.live.commands.send(Command::input(Input::Hold(on), None)).await;
    }

    /// A DTMF digit (RFC 4733 or the protocol's own event) pressed by `speaker`.
    pub async fn dtmf(&self, speaker: usize, digit: char) {
        let Some(stream) = self.record.streams.get(speaker) else { return };
        let input = Input::Dtmf { speaker: stream.role.as_str().into(), digit };
        let _ = self.live.commands.send(Command::input(input, None)).await;
    }

    /// Ends the call: lets the speech stage transcribe what was still being said (its finals
    /// reach the session before it ends), closes the recordings, stores the call record, ends
    /// the session, and queues the recordings for transcoding to Ogg Opus.
    pub async fn finish(mut self, cause: &str) {
        if let Some((frames, task)) = self.speech.take() {
            drop(frames);
            if let Err(error) = task.await {
                tracing::error!(session = %self.id, %error, "the speech stage failed");
            }
        }
        let recorders = std::mem::take(&mut self.recorders);
        let closing = move || recorders.into_iter().map(|r| r.map(Recorder::close)).collect::<Vec<_>>();
        let closed = tokio::task::spawn_blocking(closing).await.unwrap_or_else(|error| {
            tracing::error!(session = %self.id, %error, "closing the recordings failed");
            Vec::new()
        });
        for (stream, closed) in self.record.streams.iter_mut().zip(closed) {
            match closed {
                Some(Ok(kept)) => {
                    stream.recorded_secs = kept.secs;
                    stream.recording = Some(format!("{}/{}", self.id, kept.file_name));
                }
                Some(Err(error)) => tracing::error!(session = %self.id, %error, "recording could not be closed"),
                None => {}
            }
        }
        for stream in &self.record.streams {
            let stats = &stream.stats;
            metrics::counter!(crate::metrics::MEDIA_PACKETS, "outcome" => "received").increment(stats.packets);
            metrics::counter!(crate::metrics::MEDIA_PACKETS, "outcome" => "lost").increment(stats.lost);
            metrics::counter!(crate::metrics::MEDIA_PACKETS, "outcome" => "late").increment(stats.late);
            metrics::counter!(crate::metrics::MEDIA_PACKETS, "outcome" => "duplicate").increment(stats.duplicates);
            metrics::histogram!(crate::metrics::MEDIA_JITTER_SECONDS).record(stats.jitter_ms / 1000.0);
        }
        self.record.hangup_cause = Some(cause.to_string());
        self.writer.send(Write::Call(self.id, self.record.clone())).await;
        let _ = self.live.commands.send(Command::input(Input::Hangup, None)).await;
        self.transcoder.submit(self.id, self.record);
    }
}

/// The agent a call belongs to: the one whose extension is the agent stream's number, else the
/// called number, else the calling one (an agent's outbound call).
fn placement(directory: &crate::org::Directory, spec: &CallSpec) -> crate::org::Placement {
    let agents = spec.speakers.iter().filter(|(role, _)| *role == Role::Agent).map(|(_, party)| party);
    agents
        .chain([&spec.to, &spec.from])
        .filter_map(|party| party.number.as_deref())
        .find_map(|number| directory.by_extension(&spec.tenant, number))
        .unwrap_or_default()
}

/// How the transcript names the speaker of a stream.
fn speaker(stream: &CallStream) -> live::Speaker {
    let author = match stream.role {
        Role::Customer => Author::Customer,
        Role::Agent => Author::Agent { name: stream.party.name.clone().unwrap_or_else(|| "agent".into()) },
    };
    live::Speaker { role: stream.role.as_str().into(), author }
}

/// Where recordings live: DATA_DIR/recordings/SESSION/INDEX-ROLE.opus (`.wav` while the call
/// lasts).
pub fn recordings_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("recordings")
}
