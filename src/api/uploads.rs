//! `POST /v1/uploads`: recorded calls, one file or a batch, through the same pipeline as live
//! calls. Each file that hark can decode becomes a voice session (source `upload`) at once; the
//! response (202) names the sessions, and the files are then transcribed in the background, a
//! few at a time (`uploads.concurrent`), each ending with its call record like a hung-up call.
//!
//! The request is `multipart/form-data`: `file` parts (at most `uploads.max_files`), and optional
//! `phone` (the customer's number: the record's `from.number`), `category` (stored as the
//! record's `to.name`, the line the call was for), `extension` (the agent's: the record's
//! `to.number`, which places the calls on that agent like a live call to the extension) and
//! `left_channel` (who is on a stereo file's left channel). Files are spooled to unnamed
//! temporary files under `DATA_DIR/uploads/` (nothing is left behind, even after a crash), so a
//! 200 MB batch never sits in memory.
//!
//! Decoding is symphonia's (WAV with PCM, G.711 or ADPCM; FLAC; MP3; Ogg Vorbis; AAC and ALAC
//! in MP4/M4A; AIFF, CAF, Matroska), plus libopus for Opus in Ogg or WebM (hark's own
//! recordings among them), on blocking threads. Each file is probed while the request
//! lasts (a file hark cannot read is reported in the response and gets no session); the
//! transcription decodes it again, as a stream: a mono file is one speaker, the customer; a
//! stereo file is two, by default the agent on the left channel and the customer on the right;
//! recorders differ (Amazon Connect puts the customer left), so `left_channel=customer` swaps
//! them. More channels are mixed to one customer. Each speaker is resampled to 16 kHz by the
//! media stage's resampler and handed to the call in 20 ms frames with
//! [`LiveCall::audio_paced`], which waits for the speech stage instead of dropping: an upload
//! goes as fast as Whisper takes it, and loses nothing.

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::sync::Arc;

use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Extension, Json, Router};
use serde::Serialize;
use symphonia::core::audio::{AsGenericAudioBufferRef, AudioBuffer, AudioMut, AudioSpec, GenericAudioBufferRef};
use symphonia::core::codecs::audio::well_known::CODEC_ID_OPUS;
use symphonia::core::codecs::audio::{AudioCodecParameters, AudioDecoder, AudioDecoderOptions, FinalizeResult};
use symphonia::core::codecs::registry::{CodecRegistry, RegisterableAudioDecoder, SupportedAudioCodec};
use symphonia::core::codecs::CodecInfo;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::packet::PacketRef;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use crate::config::UploadsConfig;
use crate::error::Problem;
use crate::ingest::call::{CallSpec, LiveCall, Party, Role, SAMPLE_RATE};
use crate::media::resample::{ResampleError, Resampler};
use crate::server::App;

use super::auth::Principal;

/// The hang-up cause of an upload transcribed to its end.
pub const COMPLETE: &str = "upload complete";

/// Samples of one frame handed to the call: 20 ms at 16 kHz, as live media comes.
const FRAME: usize = SAMPLE_RATE as usize / 50;
/// Frames per speaker the decoding thread sends at once (one second).
const FRAMES_PER_BLOCK: usize = 50;
/// Blocks the decoding thread may be ahead of the call.
const BLOCKS_AHEAD: usize = 4;
/// Packets in a row that may fail to decode (and are skipped) before the file counts as broken.
const MAX_BAD_PACKETS: usize = 64;
/// Longest `phone` and `category`, in bytes.
const MAX_FIELD_BYTES: usize = 256;
/// Longest file name kept as the call's external id, in characters.
const MAX_NAME_CHARS: usize = 200;

/// The upload queue of one server: how many files may be transcribed at once and how many may
/// wait.
pub(super) struct Uploads {
    config: UploadsConfig,
    /// One permit per file being transcribed.
    running: Arc<Semaphore>,
    /// One permit per file accepted and not finished.
    waiting: Arc<Semaphore>,
}

pub fn router(config: &UploadsConfig) -> axum::Router<Arc<App>> {
    let uploads = Arc::new(Uploads {
        running: Arc::new(Semaphore::new(config.concurrent)),
        waiting: Arc::new(Semaphore::new(config.max_queued)),
        config: config.clone(),
    });
    Router::new()
        .route("/v1/uploads", post(create_upload))
        .layer(DefaultBodyLimit::max(config.max_request_bytes))
        .layer(Extension(uploads))
}

/// The form of `POST /v1/uploads` (`multipart/form-data`).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(super) struct UploadForm {
    /// One part per recorded call (at most `uploads.max_files`), with its file name.
    #[schema(value_type = Vec<String>, format = Binary)]
    file: Vec<Vec<u8>>,
    /// The customer's phone number, for every file of the request.
    phone: Option<String>,
    /// The calls' category (the line or queue they were for), for every file of the request.
    category: Option<String>,
    /// The agent's extension: places the calls on that agent (a user scoped to desks or agents
    /// must name one of theirs).
    extension: Option<String>,
    /// Who speaks on a stereo file's left channel: `agent` (the default; the customer is on the
    /// right) or `customer` (the agent is on the right). Mono files ignore it.
    left_channel: Option<String>,
}

/// What became of each file of an upload, in request order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct UploadAccepted {
    pub files: Vec<UploadedFile>,
}

/// One file of an upload.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct UploadedFile {
    /// The file name as sent: the call record's `external_id`.
    pub file: String,
    pub status: FileStatus,
    /// The voice session the file became (`GET /v1/sessions/{id}`), when accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Container and codec as decoded (`wave`/`pcm_s16le`, `flac`/`flac`, `ogg`/`vorbis`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub codec: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<usize>,
    /// Length of the audio, when the file states it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// The call's speakers in stream order: `[customer]`, or `[agent, customer]` for stereo.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub speakers: Vec<Role>,
    /// Why the file was not accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `accepted`: a session was opened and the file is (or waits to be) transcribed; `undecodable`:
/// hark cannot read the file as audio; `failed`: hark could not open its session (see the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum FileStatus {
    Accepted,
    Undecodable,
    Failed,
}

/// A file of the request, spooled to disk.
struct Spooled {
    name: String,
    content_type: Option<String>,
    file: File,
}

/// Recorded calls (WAV, FLAC, MP3, Ogg Vorbis, AAC/M4A, …), one file or a batch, become voice
/// sessions transcribed in the background; each ends with its call record (hang-up cause
/// `upload complete`). A mono file is the customer; a stereo one is the agent (left) and the
/// customer (right).
#[utoipa::path(post, path = "/v1/uploads",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 202, description = "the files hark can decode are sessions now; the others say why not", body = UploadAccepted),
        (status = 400, description = "not a multipart form, no file, too many files, an unknown field, a bad phone or category", body = Problem),
        (status = 401, body = Problem),
        (status = 413, description = "larger than `uploads.max_request_bytes`", body = Problem),
        (status = 422, description = "no file of the request could be decoded", body = Problem),
        (status = 503, description = "the upload queue is full (`uploads.max_queued`)", body = Problem)))]
pub(super) async fn create_upload(
    State(app): State<Arc<App>>,
    Extension(uploads): Extension<Arc<Uploads>>,
    principal: Principal,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<UploadAccepted>), Problem> {
    principal.require(crate::org::Permission::Uploads)?;
    let limit = uploads.config.max_request_bytes;
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    if declared.is_some_and(|length: usize| length > limit) {
        return Err(too_large(limit));
    }
    let mut multipart = multipart.map_err(|rejection| Problem::new(rejection.status(), rejection.body_text()))?;
    let spool_dir = app.config.data_dir.join("uploads");
    std::fs::create_dir_all(&spool_dir).map_err(Problem::internal)?;
    let (mut phone, mut category, mut extension, mut left_channel, mut files) = (None, None, None, None, Vec::new());
    while let Some(mut field) = multipart.next_field().await.map_err(|e| multipart_problem(e, limit))? {
        match field.name().unwrap_or_default() {
            "file" => {
                if files.len() == uploads.config.max_files {
                    return Err(Problem::bad_request(format!(
                        "at most {} files per upload (uploads.max_files)",
                        uploads.config.max_files
                    )));
                }
                let name = file_name(field.file_name(), files.len());
                let content_type = field.content_type().map(str::to_string);
                let file = spool(&mut field, &spool_dir, limit).await?;
                files.push(Spooled { name, content_type, file });
            }
            "phone" => phone = Some(text(field, "phone").await?),
            "category" => category = Some(text(field, "category").await?),
            "extension" => extension = Some(text(field, "extension").await?),
            "left_channel" => left_channel = Some(text(field, "left_channel").await?),
            other => {
                return Err(Problem::bad_request(format!(
                    "unknown form field {other:?}: the fields are file, phone, category, extension and left_channel"
                )))
            }
        }
    }
    if files.is_empty() {
        return Err(Problem::bad_request("no file: send the recordings as `file` parts of a multipart form"));
    }
    let phone = phone.filter(|p| !p.is_empty());
    if let Some(phone) = &phone {
        if !phone.chars().all(|c| c.is_ascii_digit() || " +-().".contains(c)) {
            return Err(Problem::bad_request(format!("phone {phone:?} is not a phone number")));
        }
    }
    let category = category.filter(|c| !c.is_empty());
    let customer_left = match left_channel.as_deref().unwrap_or_default() {
        "" | "agent" => false,
        "customer" => true,
        other => {
            return Err(Problem::invalid_field(
                "left_channel",
                format!("must be agent or customer (who speaks on a stereo file's left channel), not {other:?}"),
            ))
        }
    };
    let extension = extension.filter(|e| !e.is_empty());
    let placement = extension.as_deref().and_then(|e| app.sessions.directory.by_extension(&principal.tenant, e));
    if principal.scope != crate::org::Scope::All && !placement.as_ref().is_some_and(|p| principal.scope.allows(p)) {
        return Err(Problem::invalid_field(
            "extension",
            "must be the extension of an agent within your scope: otherwise you could not see the calls",
        ));
    }

    // Probe every file off the async threads.
    let probed = tokio::task::spawn_blocking(move || {
        files
            .into_iter()
            .map(|spooled| {
                let probe = probe(&spooled);
                (spooled, probe)
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(Problem::internal)?;
    let decodable = probed.iter().filter(|(_, p)| p.is_ok()).count();
    if decodable == 0 {
        let reasons: Vec<String> = probed
            .iter()
            .filter_map(|(spooled, probe)| probe.as_ref().err().map(|e| format!("{}: {e}", spooled.name)))
            .collect();
        return Err(Problem::new(StatusCode::UNPROCESSABLE_ENTITY, reasons.join("; ")));
    }
    let Ok(slots) = uploads.waiting.clone().try_acquire_many_owned(decodable as u32) else {
        return Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the upload queue is full: {} files are accepted and not yet transcribed (uploads.max_queued); \
                 try again later",
                uploads.config.max_queued
            ),
        ));
    };
    let mut slots = Some(slots);
    let mut answer = Vec::with_capacity(probed.len());
    for (spooled, probe) in probed {
        let probe = match probe {
            Ok(probe) => probe,
            Err(error) => {
                answer.push(UploadedFile::refused(spooled.name, FileStatus::Undecodable, error.to_string()));
                continue;
            }
        };
        let customer = Party { number: phone.clone(), ..Party::default() };
        let agent = (Role::Agent, Party::default());
        let speakers = match (probe.channels, customer_left) {
            (2, false) => vec![agent, (Role::Customer, customer.clone())],
            (2, true) => vec![(Role::Customer, customer.clone()), agent],
            _ => vec![(Role::Customer, customer.clone())],
        };
        let spec = CallSpec {
            source: "upload",
            external_id: spooled.name.clone(),
            tenant: principal.tenant.clone(),
            trunk: principal.name.clone(),
            from: customer,
            to: Party { name: category.clone(), number: extension.clone(), ..Party::default() },
            codec: probe.codec.clone(),
            speakers: speakers.clone(),
            live: false,
        };
        let call = match LiveCall::start(&app, spec).await {
            Ok(call) => call,
            Err(error) => {
                tracing::error!(file = %spooled.name, %error, "an uploaded file's session could not be opened");
                answer.push(UploadedFile::refused(
                    spooled.name,
                    FileStatus::Failed,
                    "internal error; see the server log",
                ));
                continue;
            }
        };
        let slot = slots.as_mut().and_then(|s| s.split(1)).or_else(|| slots.take());
        let (file, session_id) = (spooled.name.clone(), call.id.to_string());
        let job = Job { call, spooled, channels: probe.channels, _slot: slot };
        app.calls.spawn(transcribe(app.clone(), uploads.clone(), job));
        answer.push(UploadedFile {
            file,
            status: FileStatus::Accepted,
            session_id: Some(session_id),
            format: Some(probe.format),
            codec: Some(probe.codec),
            sample_rate: Some(probe.sample_rate),
            channels: Some(probe.channels),
            seconds: probe.seconds,
            speakers: speakers.iter().map(|(role, _)| *role).collect(),
            error: None,
        });
    }
    Ok((StatusCode::ACCEPTED, Json(UploadAccepted { files: answer })))
}

impl UploadedFile {
    fn refused(file: String, status: FileStatus, error: impl Into<String>) -> UploadedFile {
        UploadedFile {
            file,
            status,
            session_id: None,
            format: None,
            codec: None,
            sample_rate: None,
            channels: None,
            seconds: None,
            speakers: Vec::new(),
            error: Some(error.into()),
        }
    }
}

fn too_large(limit: usize) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the upload is larger than {limit} bytes (uploads.max_request_bytes)"),
    )
}

fn multipart_problem(error: MultipartError, limit: usize) -> Problem {
    match error.status() {
        StatusCode::PAYLOAD_TOO_LARGE => too_large(limit),
        status => Problem::new(status, format!("multipart form: {}", error.body_text())),
    }
}

/// The name a file part is known by: its file name without any folder, or `file-N`.
fn file_name(sent: Option<&str>, index: usize) -> String {
    let base = sent.unwrap_or_default().rsplit(['/', '\\']).next().unwrap_or_default().trim();
    let name: String = base.chars().filter(|c| !c.is_control()).take(MAX_NAME_CHARS).collect();
    if name.is_empty() {
        format!("file-{}", index + 1)
    } else {
        name
    }
}

/// Writes a file part to an unnamed temporary file in `dir`, rewound for reading.
async fn spool(field: &mut Field<'_>, dir: &std::path::Path, limit: usize) -> Result<File, Problem> {
    let file = tempfile::tempfile_in(dir).map_err(Problem::internal)?;
    let mut file = tokio::fs::File::from_std(file);
    while let Some(chunk) = field.chunk().await.map_err(|e| multipart_problem(e, limit))? {
        file.write_all(&chunk).await.map_err(Problem::internal)?;
    }
    file.flush().await.map_err(Problem::internal)?;
    let mut file = file.into_std().await;
    file.seek(SeekFrom::Start(0)).map_err(Problem::internal)?;
    Ok(file)
}

/// A short text field, trimmed.
async fn text(mut field: Field<'_>, name: &str) -> Result<String, Problem> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| Problem::new(e.status(), e.body_text()))? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_FIELD_BYTES {
            return Err(Problem::bad_request(format!("{name} is longer than {MAX_FIELD_BYTES} bytes")));
        }
    }
    let text = String::from_utf8(bytes).map_err(|_| Problem::bad_request(format!("{name} is not UTF-8")))?;
    if text.chars().any(char::is_control) {
        return Err(Problem::bad_request(format!("{name} holds control characters")));
    }
    Ok(text.trim().to_string())
}

/// An accepted file on its way through the call.
struct Job {
    call: LiveCall,
    spooled: Spooled,
    channels: usize,
    /// The file's place in the queue, given back when it is finished.
    _slot: Option<OwnedSemaphorePermit>,
}

/// Waits for the file's turn, decodes it on a blocking thread and feeds the call as fast as the
/// speech stage takes the audio, then ends the call. A stop of the server ends it early.
async fn transcribe(app: Arc<App>, uploads: Arc<Uploads>, job: Job) {
    let Job { mut call, spooled, channels, _slot } = job;
    let turn = tokio::select! {
        permit = uploads.running.clone().acquire_owned() => permit.ok(),
        () = app.shutdown.cancelled() => None,
    };
    let Some(_turn) = turn else {
        call.finish("interrupted: hark stopped before the upload was transcribed").await;
        return;
    };
    let (blocks, mut received) = mpsc::channel(BLOCKS_AHEAD);
    let decoding = tokio::task::spawn_blocking(move || decode(&spooled, channels, &blocks));
    let mut stopped = false;
    loop {
        tokio::select! {
            biased;
            () = app.shutdown.cancelled() => {
                stopped = true;
                break;
            }
            block = received.recv() => {
                let Some(block) = block else { break };
                for frame in block {
                    call.audio_paced(frame.speaker, frame.start_ms, &frame.samples).await;
                }
            }
        }
    }
    drop(received);
    let cause = match decoding.await {
        _ if stopped => "interrupted: hark stopped during the upload".to_string(),
        Ok(Ok(())) => COMPLETE.to_string(),
        Ok(Err(error)) => {
            tracing::warn!(session = %call.id, %error, "an uploaded file stopped decoding");
            format!("upload undecodable: {error}")
        }
        Err(error) => {
            tracing::error!(session = %call.id, %error, "decoding an uploaded file failed");
            "upload failed: internal error".to_string()
        }
    };
    call.finish(&cause).await;
}

// Decoding (blocking threads only).

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not audio hark can decode ({0})")]
    Unsupported(String),
    #[error("no audio track")]
    NoTrack,
    #[error("no audio in the file")]
    Empty,
    #[error("{0} packets in a row could not be decoded ({1})")]
    Broken(usize, String),
    #[error("the audio format changed within the file (from {0} to {1})")]
    Changed(String, String),
    #[error("reading the file: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Resample(#[from] ResampleError),
    #[error("the call stopped taking audio")]
    Stopped,
}

/// What the probe learnt of a file.
#[derive(Debug, Clone)]
struct Probe {
    format: String,
    codec: String,
    sample_rate: u32,
    channels: usize,
    seconds: Option<f64>,
}

/// A file's audio track with its decoder.
struct Source {
    reader: Box<dyn FormatReader>,
    decoder: Box<dyn AudioDecoder>,
    track: u32,
    /// Frames the container states for the track.
    frames: Option<u64>,
}

impl Source {
    fn open(spooled: &Spooled) -> Result<Source, DecodeError> {
        let mut file = spooled.file.try_clone()?;
        file.seek(SeekFrom::Start(0))?;
        let mut hint = Hint::new();
        if let Some((_, extension)) = spooled.name.rsplit_once('.') {
            hint.with_extension(&extension.to_ascii_lowercase());
        }
        if let Some(content_type) = spooled.content_type.as_deref().filter(|t| *t != "application/octet-stream") {
            hint.mime_type(content_type);
        }
        let stream = MediaSourceStream::new(Box::new(file), Default::default());
        let reader = symphonia::default::get_probe()
            .probe(&hint, stream, FormatOptions::default(), MetadataOptions::default())
            .map_err(|e| DecodeError::Unsupported(e.to_string()))?;
        let track = reader.default_track(TrackType::Audio).ok_or(DecodeError::NoTrack)?;
        let params = track.codec_params.as_ref().and_then(|p| p.audio()).ok_or(DecodeError::NoTrack)?;
        let decoder = CODECS
            .make_audio_decoder(params, &AudioDecoderOptions::default())
            .map_err(|e| DecodeError::Unsupported(e.to_string()))?;
        let (track, frames) = (track.id, track.num_frames);
        Ok(Source { reader, decoder, track, frames })
    }

    /// The next decoded audio, interleaved, into `out`: its (sample rate, channels), or `None`
    /// at the end. Packets that fail to decode are skipped, unless too many fail in a row; a file
    /// cut short ends where it is cut.
    fn next(&mut self, out: &mut Vec<f32>) -> Result<Option<(u32, usize)>, DecodeError> {
        let mut bad = 0;
        loop {
            let packet = match self.reader.next_packet() {
                Ok(Some(packet)) => packet,
                Ok(None) | Err(SymphoniaError::ResetRequired) => return Ok(None),
                Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(SymphoniaError::IoError(e)) => return Err(DecodeError::Io(e)),
                Err(e) => return Err(DecodeError::Broken(bad + 1, e.to_string())),
            };
            if packet.track_id != self.track {
                continue;
            }
            match self.decoder.decode(&packet) {
                Ok(audio) if audio.frames() == 0 => continue,
                Ok(audio) => {
                    let spec = audio.spec();
                    let format = (spec.rate(), spec.channels().count());
                    audio.copy_to_vec_interleaved(out);
                    return Ok(Some(format));
                }
                Err(e @ (SymphoniaError::DecodeError(_) | SymphoniaError::IoError(_))) => {
                    bad += 1;
                    if bad >= MAX_BAD_PACKETS {
                        return Err(DecodeError::Broken(bad, e.to_string()));
                    }
                }
                Err(e) => return Err(DecodeError::Unsupported(e.to_string())),
            }
        }
    }
}

/// symphonia's decoders, and Opus.
static CODECS: std::sync::LazyLock<CodecRegistry> = std::sync::LazyLock::new(|| {
    let mut codecs = CodecRegistry::new();
    symphonia::default::register_enabled_codecs(&mut codecs);
    codecs.register_audio_decoder::<OpusDecoder>();
    codecs
});

/// Opus (in Ogg or WebM/Matroska) through libopus, which hark already links for the live media
/// and its recordings: symphonia demuxes Opus but has no decoder for it. Mono and stereo only
/// (channel mapping family 0, as voice recordings are).
struct OpusDecoder {
    params: AudioCodecParameters,
    /// Only for `Sync` (libopus state is `Send`); every use goes through `&mut self`.
    decoder: std::sync::Mutex<opus::Decoder>,
    channels: usize,
    /// One packet's interleaved samples, as libopus gives them.
    pcm: Vec<f32>,
    buf: AudioBuffer<f32>,
}

/// The rate libopus decodes at: Opus's own.
const OPUS_RATE: u32 = 48_000;
/// Longest Opus packet: 120 ms.
const OPUS_MAX_FRAMES: usize = OPUS_RATE as usize * 120 / 1000;

const OPUS_CODECS: &[SupportedAudioCodec] = &[SupportedAudioCodec {
    id: CODEC_ID_OPUS,
    info: CodecInfo { short_name: "opus", long_name: "Opus (libopus)", profiles: &[] },
}];

impl OpusDecoder {
    fn try_new(params: &AudioCodecParameters) -> symphonia::core::errors::Result<OpusDecoder> {
        let channels = params.channels.clone().ok_or(SymphoniaError::Unsupported("opus: no channel count"))?;
        let layout = match channels.count() {
            1 => opus::Channels::Mono,
            2 => opus::Channels::Stereo,
            _ => return Err(SymphoniaError::Unsupported("opus: more than two channels")),
        };
        let decoder = opus::Decoder::new(OPUS_RATE, layout)
            .map_err(|_| SymphoniaError::Unsupported("opus: libopus refused the stream"))?;
        Ok(OpusDecoder {
            params: params.clone(),
            decoder: std::sync::Mutex::new(decoder),
            channels: channels.count(),
            pcm: vec![0.0; OPUS_MAX_FRAMES * channels.count()],
            buf: AudioBuffer::new(AudioSpec::new(OPUS_RATE, channels), OPUS_MAX_FRAMES),
        })
    }
}

impl AudioDecoder for OpusDecoder {
    fn reset(&mut self) {
        if let Ok(decoder) = self.decoder.get_mut() {
            let _ = decoder.reset_state();
        }
    }

    fn codec_info(&self) -> &CodecInfo {
        &OPUS_CODECS[0].info
    }

    fn codec_params(&self) -> &AudioCodecParameters {
        &self.params
    }

    fn decode_ref(&mut self, packet: &PacketRef<'_>) -> symphonia::core::errors::Result<GenericAudioBufferRef<'_>> {
        self.buf.clear();
        let decoder = self.decoder.get_mut().map_err(|_| SymphoniaError::DecodeError("opus: decoder poisoned"))?;
        let frames = decoder
            .decode_float(packet.data, &mut self.pcm, false)
            .map_err(|_| SymphoniaError::DecodeError("opus: invalid packet"))?;
        self.buf.render_uninit(Some(frames));
        for channel in 0..self.channels {
            let plane = self.buf.plane_mut(channel).expect("a plane per channel");
            for (i, sample) in plane[..frames].iter_mut().enumerate() {
                *sample = self.pcm[i * self.channels + channel];
            }
        }
        self.buf.trim(packet.trim_start.get() as usize, packet.trim_end.get() as usize);
        Ok(self.buf.as_generic_audio_buffer_ref())
    }

    fn finalize(&mut self) -> FinalizeResult {
        FinalizeResult::default()
    }

    fn last_decoded(&self) -> GenericAudioBufferRef<'_> {
        self.buf.as_generic_audio_buffer_ref()
    }
}

impl RegisterableAudioDecoder for OpusDecoder {
    fn try_registry_new(
        params: &AudioCodecParameters,
        _options: &AudioDecoderOptions,
    ) -> symphonia::core::errors::Result<Box<dyn AudioDecoder>> {
        Ok(Box::new(OpusDecoder::try_new(params)?))
    }

    fn supported_codecs() -> &'static [SupportedAudioCodec] {
        OPUS_CODECS
    }
}

/// Opens the file and decodes its first audio: a file that passes is audio hark can transcribe.
fn probe(spooled: &Spooled) -> Result<Probe, DecodeError> {
    let mut source = Source::open(spooled)?;
    let mut samples = Vec::new();
    let (sample_rate, channels) = source.next(&mut samples)?.ok_or(DecodeError::Empty)?;
    if sample_rate == 0 || channels == 0 {
        return Err(DecodeError::Unsupported(format!("{sample_rate} Hz, {channels} channels")));
    }
    Ok(Probe {
        format: source.reader.format_info().short_name.to_string(),
        codec: source.decoder.codec_info().short_name.to_string(),
        sample_rate,
        channels,
        seconds: source.frames.map(|frames| frames as f64 / f64::from(sample_rate)),
    })
}

/// A frame for the call.
#[derive(Debug, Clone, PartialEq)]
struct Frame {
    speaker: usize,
    start_ms: u64,
    samples: Vec<i16>,
}

/// Decodes the whole file into frames for the call, a block at a time; `channels` is what the
/// probe found (it decided the call's speakers).
fn decode(spooled: &Spooled, channels: usize, blocks: &mpsc::Sender<Vec<Frame>>) -> Result<(), DecodeError> {
    let mut source = Source::open(spooled)?;
    let mut samples = Vec::new();
    let mut split: Option<(u32, Split)> = None;
    let mut block = Vec::new();
    while let Some((rate, found)) = source.next(&mut samples)? {
        let split = match &mut split {
            Some((first, split)) => {
                if (*first, channels) != (rate, found) {
                    return Err(DecodeError::Changed(describe(*first, channels), describe(rate, found)));
                }
                split
            }
            None if found != channels => {
                return Err(DecodeError::Changed(describe(rate, channels), describe(rate, found)))
            }
            None => &mut split.insert((rate, Split::new(rate, channels)?)).1,
        };
        split.push(&samples, &mut block)?;
        if block.len() >= FRAMES_PER_BLOCK * split.speakers() {
            blocks.blocking_send(std::mem::take(&mut block)).map_err(|_| DecodeError::Stopped)?;
        }
    }
    let Some((_, mut split)) = split else { return Err(DecodeError::Empty) };
    split.finish(&mut block)?;
    blocks.blocking_send(block).map_err(|_| DecodeError::Stopped)
}

fn describe(rate: u32, channels: usize) -> String {
    format!("{rate} Hz, {channels} channels")
}

/// Interleaved audio of one rate and channel count to each speaker's 16 kHz frames: two channels
/// are two speakers (left, right), any other count is mixed to one.
struct Split {
    channels: usize,
    speakers: Vec<Speaker>,
}

struct Speaker {
    resampler: Resampler,
    /// 16 kHz audio not yet a whole frame.
    pending: Vec<f32>,
    /// Samples handed out as frames so far.
    sent: u64,
}

impl Split {
    fn new(rate: u32, channels: usize) -> Result<Split, ResampleError> {
        let speakers = if channels == 2 { 2 } else { 1 };
        let speakers = (0..speakers)
            .map(|_| Ok(Speaker { resampler: Resampler::new(rate)?, pending: Vec::new(), sent: 0 }))
            .collect::<Result<_, ResampleError>>()?;
        Ok(Split { channels, speakers })
    }

    fn speakers(&self) -> usize {
        self.speakers.len()
    }

    /// Takes interleaved samples; appends the whole frames they complete to `out`, in time order.
    fn push(&mut self, interleaved: &[f32], out: &mut Vec<Frame>) -> Result<(), ResampleError> {
        let channels = self.channels;
        if self.speakers.len() == 1 {
            let mono: Vec<f32> = if channels == 1 {
                interleaved.to_vec()
            } else {
                interleaved.chunks_exact(channels).map(|f| f.iter().sum::<f32>() / channels as f32).collect()
            };
            let speaker = &mut self.speakers[0];
            speaker.resampler.process(&mono, &mut speaker.pending)?;
        } else {
            for (index, speaker) in self.speakers.iter_mut().enumerate() {
                let plane: Vec<f32> = interleaved.iter().skip(index).step_by(channels).copied().collect();
                speaker.resampler.process(&plane, &mut speaker.pending)?;
            }
        }
        self.frames(false, out);
        Ok(())
    }

    /// Ends the audio: the resamplers' last samples, and a last short frame per speaker.
    fn finish(&mut self, out: &mut Vec<Frame>) -> Result<(), ResampleError> {
        for speaker in &mut self.speakers {
            speaker.resampler.flush(&mut speaker.pending)?;
        }
        self.frames(true, out);
        Ok(())
    }

    /// Moves whole frames (and, at the end, what is left) from each speaker's pending audio to
    /// `out`, interleaving the speakers frame by frame.
    fn frames(&mut self, end: bool, out: &mut Vec<Frame>) {
        let mut taken = vec![0usize; self.speakers.len()];
        loop {
            let mut any = false;
            for (index, speaker) in self.speakers.iter_mut().enumerate() {
                let left = speaker.pending.len() - taken[index];
                let len = if left >= FRAME {
                    FRAME
                } else if end && left > 0 {
                    left
                } else {
                    continue;
                };
                let start = taken[index];
                let samples = speaker.pending[start..start + len].iter().map(|&x| to_i16(x)).collect();
                out.push(Frame { speaker: index, start_ms: speaker.sent * 1000 / u64::from(SAMPLE_RATE), samples });
                speaker.sent += len as u64;
                taken[index] += len;
                any = true;
            }
            if !any {
                break;
            }
        }
        for (speaker, taken) in self.speakers.iter_mut().zip(taken) {
            speaker.pending.drain(..taken);
        }
    }
}

fn to_i16(x: f32) -> i16 {
    (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spooled(name: &str, bytes: &[u8]) -> Spooled {
        use std::io::Write;
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        Spooled { name: name.into(), content_type: None, file }
    }

    /// A 16-bit WAV of `channels` channels at `rate`, each channel a different constant level.
    fn wav(rate: u32, channels: u16, seconds: f32) -> Vec<u8> {
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut cursor = std::io::Cursor::new(Vec::new());
        let mut writer = hound::WavWriter::new(&mut cursor, spec).unwrap();
        for i in 0..(rate as f32 * seconds) as usize {
            for c in 0..channels {
                let tone = ((i as f32 * 440.0 * std::f32::consts::TAU / rate as f32).sin() * 8000.0) as i16;
                writer.write_sample(if c == 0 { tone } else { tone / 4 }).unwrap();
            }
        }
        writer.finalize().unwrap();
        cursor.into_inner()
    }

    fn decode_all(spooled: &Spooled, channels: usize) -> Vec<Frame> {
        let (tx, mut rx) = mpsc::channel(1000);
        decode(spooled, channels, &tx).unwrap();
        drop(tx);
        let mut frames = Vec::new();
        while let Ok(block) = rx.try_recv() {
            frames.extend(block);
        }
        frames
    }

    #[test]
    fn a_mono_wav_is_one_speaker_in_20_ms_frames_at_16k() {
        let file = spooled("a.wav", &wav(8_000, 1, 1.01));
        let probe = probe(&file).unwrap();
        assert_eq!((probe.format.as_str(), probe.codec.as_str()), ("wave", "pcm_s16le"));
        assert_eq!((probe.sample_rate, probe.channels), (8_000, 1));
        assert!((probe.seconds.unwrap() - 1.01).abs() < 1e-3);
        let frames = decode_all(&file, 1);
        assert!(frames.iter().all(|f| f.speaker == 0));
        assert_eq!(frames.iter().map(|f| f.samples.len()).sum::<usize>(), 16_160, "exactly twice the input");
        assert_eq!(frames.len(), 51);
        for (i, frame) in frames.iter().enumerate() {
            assert_eq!(frame.start_ms, 20 * i as u64);
        }
        assert_eq!(frames.last().unwrap().samples.len(), 160);
    }

    #[test]
    fn a_stereo_wav_is_two_speakers_left_then_right_frame_by_frame() {
        let file = spooled("b.wav", &wav(16_000, 2, 0.5));
        assert_eq!(probe(&file).unwrap().channels, 2);
        let frames = decode_all(&file, 2);
        assert_eq!(frames.len(), 50);
        for pair in frames.chunks(2) {
            assert_eq!((pair[0].speaker, pair[1].speaker), (0, 1));
            assert_eq!(pair[0].start_ms, pair[1].start_ms);
        }
        let peak = |s: usize| frames.iter().filter(|f| f.speaker == s).flat_map(|f| &f.samples).map(|x| x.abs()).max();
        assert_eq!((peak(0), peak(1)), (Some(8000), Some(2000)), "left and right kept apart, levels unchanged");
    }

    #[test]
    fn more_channels_are_mixed_to_one_speaker() {
        let file = spooled("c.wav", &wav(16_000, 3, 0.1));
        let frames = decode_all(&file, 3);
        assert!(frames.iter().all(|f| f.speaker == 0));
        assert_eq!(frames.iter().map(|f| f.samples.len()).sum::<usize>(), 1_600);
    }

    #[test]
    fn garbage_is_undecodable_and_says_why() {
        let bytes: Vec<u8> = (0..50_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        for name in ["noise.bin", "noise.wav", "noise.mp3"] {
            let error = probe(&spooled(name, &bytes)).unwrap_err();
            assert!(
                matches!(error, DecodeError::Unsupported(_) | DecodeError::Broken(..) | DecodeError::Empty),
                "{name}: {error}"
            );
        }
        let error = probe(&spooled("empty.wav", b"")).unwrap_err();
        assert!(error.to_string().contains("not audio"), "{error}");
    }

    #[test]
    fn ogg_opus_decodes_through_libopus_like_hark_s_own_recordings() {
        let tone: Vec<i16> = (0..16_000)
            .map(|i| ((i as f32 * 440.0 * std::f32::consts::TAU / 16_000.0).sin() * 8000.0) as i16)
            .collect();
        let mut writer = crate::ingest::recording::OggOpusWriter::new(Vec::new()).unwrap();
        writer.write(&tone).unwrap();
        let file = spooled("call.opus", &writer.finish().unwrap());
        let probe = probe(&file).unwrap();
        assert_eq!((probe.format.as_str(), probe.codec.as_str()), ("ogg", "opus"));
        assert_eq!((probe.sample_rate, probe.channels), (48_000, 1));
        let frames = decode_all(&file, 1);
        let samples: Vec<i16> = frames.iter().flat_map(|f| f.samples.iter().copied()).collect();
        // The pre-skip is trimmed; the last page's granule position ends the audio.
        assert!((samples.len() as i64 - 16_000).abs() <= 320, "{} samples", samples.len());
        let peak = samples[2_000..14_000].iter().map(|x| x.abs()).max().unwrap();
        assert!((7_000..=9_000).contains(&peak), "level kept: peak {peak}");
    }

    #[test]
    fn a_wav_cut_short_decodes_what_is_there() {
        let mut bytes = wav(16_000, 1, 1.0);
        bytes.truncate(44 + 16_000);
        let frames = decode_all(&spooled("cut.wav", &bytes), 1);
        assert_eq!(frames.iter().map(|f| f.samples.len()).sum::<usize>(), 8_000);
    }

    #[test]
    fn file_names_lose_their_folders() {
        assert_eq!(file_name(Some("C:\\calls\\a.wav"), 0), "a.wav");
        assert_eq!(file_name(Some("../../etc/passwd"), 0), "passwd");
        assert_eq!(file_name(None, 2), "file-3");
        assert_eq!(file_name(Some("  "), 0), "file-1");
    }
}
