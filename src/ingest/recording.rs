//! A speaker's recording, kept in time with the call (gaps in the media become silence, so
//! every speaker's file starts at the call's start and seeking to a transcript time lands on
//! the right audio).
//!
//! While the call lasts it is 16 kHz mono 16-bit WAV, so a crash leaves a playable file. When
//! the call ends, [`Recorder::close`] completes the WAV and the call record is stored naming it;
//! then the [`Transcoder`] turns it into Ogg Opus (RFC 7845) beside it, about a tenth of the size,
//! removes the WAV and stores the record again naming the `.opus`; browsers play and seek either.
//! Transcoding runs one file at a time on one blocking thread: when a thousand calls end at once,
//! their records are stored at once and the CPU-bound work queues up behind them instead of
//! starving the live calls' media. [`start_retention`] removes recordings older than
//! `recordings.retention_days`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ogg::writing::{PacketWriteEndInfo, PacketWriter};

use super::call::{recordings_dir, CallRecord, SAMPLE_RATE};
use crate::server::App;
use crate::session::SessionId;
use crate::store::Writer;

/// Longest silence filled in at once (a media gap beyond it is clamped: the recording then
/// drifts rather than growing without bound on a bogus timestamp).
const MAX_GAP_SAMPLES: u64 = SAMPLE_RATE as u64 * 60;

pub struct Recorder {
    wav: hound::WavWriter<BufWriter<File>>,
    path: PathBuf,
    /// Samples written so far, silence included.
    written: u64,
}

/// A closed recording: its length and the file kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Kept {
    pub secs: f64,
    /// File name (no folder) of the recording on disk: the `.opus`, or the `.wav` when
    /// transcoding failed.
    pub file_name: String,
}

fn io(error: hound::Error) -> std::io::Error {
    match error {
        hound::Error::IoError(e) => e,
        other => std::io::Error::other(other),
    }
}

impl Recorder {
    pub fn create(path: &Path) -> std::io::Result<Recorder> {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: SAMPLE_RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        Ok(Recorder { wav: hound::WavWriter::create(path, spec).map_err(io)?, path: path.into(), written: 0 })
    }

    /// Writes `samples` whose first one belongs `start_ms` into the call.
    pub fn write(&mut self, start_ms: u64, samples: &[i16]) -> std::io::Result<()> {
        let start = start_ms * SAMPLE_RATE as u64 / 1000;
        let gap = start.saturating_sub(self.written).min(MAX_GAP_SAMPLES);
        for _ in 0..gap {
            self.wav.write_sample(0i16).map_err(io)?;
        }
        self.written += gap;
        // Audio that overlaps what is already written (a late frame) is skipped.
        let overlap = (self.written.saturating_sub(start) as usize).min(samples.len());
        for &sample in &samples[overlap..] {
            self.wav.write_sample(sample).map_err(io)?;
        }
        self.written += (samples.len() - overlap) as u64;
        Ok(())
    }

    /// Completes the WAV (a header update and a flush: quick, but blocking IO).
    pub fn close(self) -> std::io::Result<Kept> {
        let secs = self.written as f64 / SAMPLE_RATE as f64;
        self.wav.finalize().map_err(io)?;
        Ok(Kept { secs, file_name: file_name(&self.path) })
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Transcodes the closed WAV at `wav` to Ogg Opus beside it and removes the WAV; returns the
/// file kept. Blocking and CPU-bound (about a second per 10 minutes of audio). When the
/// transcoding fails the WAV is kept (and the failure logged and counted).
pub fn compact(wav: &Path) -> String {
    let opus = wav.with_extension("opus");
    match transcode(wav, &opus) {
        Ok(()) => {
            if let Err(error) = std::fs::remove_file(wav) {
                tracing::warn!(path = %wav.display(), %error, "transcoded WAV could not be removed");
            }
            file_name(&opus)
        }
        Err(error) => {
            tracing::error!(path = %wav.display(), %error, "transcoding to Ogg Opus failed; the WAV is kept");
            metrics::counter!(crate::metrics::RECORDING_TRANSCODE_FAILURES).increment(1);
            file_name(wav)
        }
    }
}

/// Turns finished calls' WAV recordings into Ogg Opus, one file at a time, and stores each
/// call's record again naming the files kept. Jobs wait in an unbounded queue (one small
/// record per finished call). A graceful stop [`Transcoder::drain`]s it for a while; what is
/// left keeps its WAV, named by its record and served as it is.
#[derive(Clone)]
pub struct Transcoder {
    jobs: tokio::sync::mpsc::UnboundedSender<Job>,
}

enum Job {
    Call(SessionId, Box<CallRecord>),
    /// Answered once every job queued before it is done.
    Drained(tokio::sync::oneshot::Sender<()>),
}

impl Transcoder {
    pub fn start(data_dir: &Path, writer: Writer) -> Transcoder {
        let (jobs, mut queue) = tokio::sync::mpsc::unbounded_channel::<Job>();
        let root = recordings_dir(data_dir);
        tokio::spawn(async move {
            while let Some(job) = queue.recv().await {
                metrics::gauge!(crate::metrics::RECORDING_TRANSCODE_QUEUE).set(queue.len() as f64);
                let (id, mut record) = match job {
                    Job::Call(id, record) => (id, record),
                    Job::Drained(done) => {
                        let _ = done.send(());
                        continue;
                    }
                };
                let wavs: Vec<Option<PathBuf>> = record
                    .streams
                    .iter()
                    .map(|s| s.recording.as_ref().filter(|r| r.ends_with(".wav")).map(|r| root.join(r)))
                    .collect();
                let work = move || wavs.into_iter().map(|wav| wav.map(|wav| compact(&wav))).collect::<Vec<_>>();
                let Ok(kept) = tokio::task::spawn_blocking(work).await else { continue };
                for (stream, kept) in record.streams.iter_mut().zip(kept) {
                    if let Some(file) = kept {
                        stream.recording = Some(format!("{id}/{file}"));
                    }
                }
                writer.send(crate::store::Write::Call(id, *record)).await;
            }
        });
        Transcoder { jobs }
    }

    /// Waits until the recordings queued so far are transcoded and their records stored.
    pub async fn drain(&self) {
        let (done, drained) = tokio::sync::oneshot::channel();
        if self.jobs.send(Job::Drained(done)).is_ok() {
            let _ = drained.await;
        }
    }

    /// Queues the recordings of a finished call.
    pub fn submit(&self, id: SessionId, record: CallRecord) {
        let _ = self.jobs.send(Job::Call(id, Box::new(record)));
    }
}

/// Target bitrate of the Ogg Opus recordings (VBR: speech averages about 10 kbit/s from G.711
/// sources, up to 24 from wideband ones; silence costs almost nothing).
pub const OPUS_BITRATE: i32 = 24_000;
/// Samples per Opus packet: 20 ms at 16 kHz.
const FRAME: usize = SAMPLE_RATE as usize / 50;
/// Granule positions count 48 kHz samples (RFC 7845 §4).
const GRANULE_PER_SAMPLE: u64 = 48_000 / SAMPLE_RATE as u64;
/// Packets per Ogg page: one page a second, the seeking granularity players work with.
const PACKETS_PER_PAGE: u64 = 50;

#[derive(Debug, thiserror::Error)]
pub enum TranscodeError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("WAV: {0}")]
    Wav(#[from] hound::Error),
    #[error("Opus: {0}")]
    Opus(#[from] opus::Error),
    #[error("WAV is not 16 kHz mono 16-bit: {0:?}")]
    Format(hound::WavSpec),
}

/// Transcodes a 16 kHz mono 16-bit WAV to Ogg Opus at `opus`, written to a `.part` file that is
/// synced and renamed into place, so `opus` is complete or absent.
pub fn transcode(wav: &Path, opus: &Path) -> Result<(), TranscodeError> {
    let mut reader = hound::WavReader::open(wav)?;
    let spec = reader.spec();
    if spec.channels != 1 || spec.sample_rate != SAMPLE_RATE || spec.bits_per_sample != 16 {
        return Err(TranscodeError::Format(spec));
    }
    let part = opus.with_extension("opus.part");
    let result = (|| {
        let mut writer = OggOpusWriter::new(BufWriter::new(File::create(&part)?))?;
        let mut frame = Vec::with_capacity(FRAME);
        for sample in reader.samples::<i16>() {
            frame.push(sample?);
            if frame.len() == FRAME {
                writer.write(&frame)?;
                frame.clear();
            }
        }
        writer.write(&frame)?;
        let file = writer.finish()?.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&part, opus)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    result
}

/// An Ogg Opus (RFC 7845) encoder of 16 kHz mono audio: OpusHead and OpusTags pages, then 20 ms
/// packets, a page a second, granule positions in 48 kHz samples, and an end-of-stream page
/// whose granule position trims the padding of the last packet.
pub struct OggOpusWriter<W: Write> {
    ogg: PacketWriter<'static, W>,
    encoder: opus::Encoder,
    serial: u32,
    /// Encoder delay in 16 kHz samples; the stream's pre-skip is this in 48 kHz samples.
    lookahead: usize,
    /// Input not yet a whole frame.
    pending: Vec<i16>,
    /// Samples taken so far.
    input: u64,
    /// Packets encoded so far.
    packets: u64,
    /// The newest packet, written once it is known whether it is the last.
    held: Option<Vec<u8>>,
}

impl<W: Write> OggOpusWriter<W> {
    pub fn new(out: W) -> Result<OggOpusWriter<W>, TranscodeError> {
        // The audio application, hinted at speech: the VOIP application high-passes speech,
        // which on some callers' voices (LibriVox clips here) leaves a waveform correlation of
        // 0.80 at any bitrate, against 0.986 with this one.
        let mut encoder = opus::Encoder::new(SAMPLE_RATE, opus::Channels::Mono, opus::Application::Audio)?;
        encoder.set_signal(opus::Signal::Voice)?;
        encoder.set_bitrate(opus::Bitrate::Bits(OPUS_BITRATE))?;
        encoder.set_vbr(true)?;
        let lookahead = encoder.get_lookahead()?.max(0) as usize;
        let mut writer = OggOpusWriter {
            ogg: PacketWriter::new(out),
            encoder,
            serial: rand::random(),
            lookahead,
            pending: Vec::with_capacity(FRAME),
            input: 0,
            packets: 0,
            held: None,
        };
        let pre_skip = u16::try_from(lookahead as u64 * GRANULE_PER_SAMPLE).unwrap_or(u16::MAX);
        let mut head = b"OpusHead".to_vec();
        head.push(1); // version
        head.push(1); // channels
        head.extend_from_slice(&pre_skip.to_le_bytes());
        head.extend_from_slice(&SAMPLE_RATE.to_le_bytes()); // input sample rate
        head.extend_from_slice(&0i16.to_le_bytes()); // output gain
        head.push(0); // channel mapping family: mono/stereo, no table
        writer.ogg.write_packet(head, writer.serial, PacketWriteEndInfo::EndPage, 0)?;
        let vendor = opus::version();
        let comment = concat!("ENCODER=hark ", env!("CARGO_PKG_VERSION"));
        let mut tags = b"OpusTags".to_vec();
        tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
        tags.extend_from_slice(vendor.as_bytes());
        tags.extend_from_slice(&1u32.to_le_bytes());
        tags.extend_from_slice(&(comment.len() as u32).to_le_bytes());
        tags.extend_from_slice(comment.as_bytes());
        writer.ogg.write_packet(tags, writer.serial, PacketWriteEndInfo::EndPage, 0)?;
        Ok(writer)
    }

    /// Pre-skip of the stream, in 48 kHz samples.
    pub fn pre_skip(&self) -> u64 {
        self.lookahead as u64 * GRANULE_PER_SAMPLE
    }

    /// Encodes 16 kHz mono samples (any count; whole frames are encoded as they fill).
    pub fn write(&mut self, samples: &[i16]) -> Result<(), TranscodeError> {
        self.input += samples.len() as u64;
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (FRAME - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() == FRAME {
                let frame = std::mem::take(&mut self.pending);
                self.encode(&frame)?;
                self.pending = frame;
                self.pending.clear();
            }
        }
        Ok(())
    }

    fn encode(&mut self, frame: &[i16]) -> Result<(), TranscodeError> {
        let mut packet = [0u8; 1500];
        let len = self.encoder.encode(frame, &mut packet)?;
        if let Some(previous) = self.held.replace(packet[..len].to_vec()) {
            // `packets` still counts the held packet's predecessors: this one ends at `packets`.
            let end = if self.packets % PACKETS_PER_PAGE == 0 {
                PacketWriteEndInfo::EndPage
            } else {
                PacketWriteEndInfo::NormalPacket
            };
            self.ogg.write_packet(previous, self.serial, end, self.packets * FRAME as u64 * GRANULE_PER_SAMPLE)?;
        }
        self.packets += 1;
        Ok(())
    }

    /// Flushes the encoder (the last frame padded with silence, enough frames to cover its
    /// delay), writes the end-of-stream page and returns the output.
    pub fn finish(mut self) -> Result<W, TranscodeError> {
        let needed = (self.input + self.lookahead as u64).div_ceil(FRAME as u64).max(1);
        while self.packets < needed {
            let mut frame = std::mem::take(&mut self.pending);
            frame.resize(FRAME, 0);
            self.encode(&frame)?;
        }
        let last = self.held.take().expect("at least one packet");
        // End trimming: the last granule position marks where the input ended.
        let end = self.pre_skip() + self.input * GRANULE_PER_SAMPLE;
        self.ogg.write_packet(last, self.serial, PacketWriteEndInfo::EndStream, end)?;
        let mut out = self.ogg.into_inner();
        out.flush()?;
        Ok(out)
    }
}

/// How often retention runs (and once at start).
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// Starts the retention sweeper unless `recordings.retention_days` is 0 (keep forever): at
/// start and then hourly it removes the recording folders of sessions whose folder was last
/// modified (the folder or any file in it: when the call ended) more than the retention ago,
/// except live sessions. Removals are logged and counted (`hark_recordings_removed_total`);
/// the call record keeps its `recording` field and playback then answers 410 Gone.
pub fn start_retention(app: Arc<App>) {
    let days = app.config.recordings.retention_days;
    if days == 0 {
        tracing::info!("recordings are kept forever (recordings.retention_days = 0)");
        return;
    }
    let retention = Duration::from_secs(u64::from(days) * 86_400);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = app.shutdown.cancelled() => return,
            }
            let root = recordings_dir(&app.config.data_dir);
            let now = SystemTime::from(app.clock.now().wall);
            let registry = app.registry.clone();
            let live = move |name: &str| name.parse().is_ok_and(|id| registry.get(&id).is_some());
            let removed = match tokio::task::spawn_blocking(move || sweep(&root, now, retention, live)).await {
                Ok(removed) => removed,
                Err(error) => {
                    tracing::error!(%error, "recording retention sweep failed");
                    continue;
                }
            };
            for folder in &removed {
                tracing::info!(folder = %folder.display(), retention_days = days, "recording removed by retention");
            }
            metrics::counter!(crate::metrics::RECORDINGS_REMOVED).increment(removed.len() as u64);
        }
    });
}

/// The newest modification time of `dir` and the files in it.
fn last_modified(dir: &Path) -> std::io::Result<SystemTime> {
    let mut newest = std::fs::metadata(dir)?.modified()?;
    for entry in std::fs::read_dir(dir)? {
        newest = newest.max(entry?.metadata()?.modified()?);
    }
    Ok(newest)
}

/// Removes the session folders below `root` (named by a session id) last modified more than
/// `retention` before `now`, except those `live` names. Returns the folders removed.
pub fn sweep(root: &Path, now: SystemTime, retention: Duration, live: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let Some(cutoff) = now.checked_sub(retention) else { return Vec::new() };
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(error) => {
            tracing::error!(root = %root.display(), %error, "recordings folder unreadable");
            return Vec::new();
        }
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.parse::<uuid::Uuid>().is_err() || !path.is_dir() || live(&name) {
            continue;
        }
        match last_modified(&path) {
            Ok(modified) if modified < cutoff => match std::fs::remove_dir_all(&path) {
                Ok(()) => removed.push(path),
                Err(error) => tracing::error!(folder = %path.display(), %error, "expired recording not removed"),
            },
            Ok(_) => {}
            Err(error) => tracing::warn!(folder = %path.display(), %error, "recording folder unreadable"),
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a call's end and then the transcoder do to a recording.
    fn finish(recorder: Recorder) -> Kept {
        let path = recorder.path.clone();
        let kept = recorder.close().unwrap();
        Kept { file_name: compact(&path), ..kept }
    }

    #[test]
    fn gaps_become_silence_and_overlaps_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.wav");
        let mut r = Recorder::create(&path).unwrap();
        r.write(0, &[1; 320]).unwrap(); // 0–20 ms
        r.write(40, &[2; 320]).unwrap(); // 40–60 ms, after a 20 ms gap
        r.write(50, &[3; 320]).unwrap(); // overlaps 50–60 ms, then 60–70 ms
        let samples: Vec<i16> = {
            // Read the WAV before `finish` transcodes it away.
            r.wav.flush().unwrap();
            hound::WavReader::open(&path).unwrap().samples().map(Result::unwrap).collect()
        };
        assert_eq!(samples.len(), 1120);
        assert!(samples[..320].iter().all(|&s| s == 1));
        assert!(samples[320..640].iter().all(|&s| s == 0));
        assert!(samples[640..960].iter().all(|&s| s == 2));
        assert!(samples[960..].iter().all(|&s| s == 3));
        let kept = finish(r);
        assert_eq!(kept, Kept { secs: 1120.0 / 16000.0, file_name: "r.opus".into() });
        assert!(!path.exists(), "the WAV is removed once transcoded");
        assert!(dir.path().join("r.opus").exists());
    }

    /// What a reader of the file sees.
    struct Decoded {
        pre_skip: u64,
        input_rate: u32,
        /// Granule position of the last page.
        end_granule: u64,
        /// 16 kHz samples, pre-skip removed, trimmed to the end granule.
        samples: Vec<i16>,
    }

    /// Decodes an Ogg Opus file with the `ogg` reader and the Opus decoder at 16 kHz.
    fn decode(path: &Path) -> Decoded {
        let mut reader = ogg::PacketReader::new(std::io::BufReader::new(File::open(path).unwrap()));
        let head = reader.read_packet_expected().unwrap();
        assert!(head.first_in_stream());
        assert_eq!(&head.data[..8], b"OpusHead");
        assert_eq!((head.data[8], head.data[9]), (1, 1), "version 1, mono");
        let pre_skip = u16::from_le_bytes([head.data[10], head.data[11]]) as u64;
        let input_rate = u32::from_le_bytes(head.data[12..16].try_into().unwrap());
        let tags = reader.read_packet_expected().unwrap();
        assert_eq!(&tags.data[..8], b"OpusTags");
        assert_eq!(tags.absgp_page(), 0);
        let mut decoder = opus::Decoder::new(16_000, opus::Channels::Mono).unwrap();
        let mut samples = Vec::new();
        let mut end_granule = 0;
        let mut buf = [0i16; 5760];
        while let Some(packet) = reader.read_packet().unwrap() {
            let n = decoder.decode(&packet.data, &mut buf, false).unwrap();
            samples.extend_from_slice(&buf[..n]);
            assert!(packet.absgp_page() >= end_granule, "granule positions never go back");
            end_granule = packet.absgp_page();
            if packet.last_in_stream() {
                assert!(reader.read_packet().unwrap().is_none(), "nothing after the end of stream");
                break;
            }
        }
        let skip = (pre_skip / GRANULE_PER_SAMPLE) as usize;
        let end = ((end_granule - pre_skip) / GRANULE_PER_SAMPLE) as usize;
        assert!(samples.len() >= skip + end, "the packets cover the end granule");
        Decoded { pre_skip, input_rate, end_granule, samples: samples[skip..skip + end].to_vec() }
    }

    fn correlation(a: &[i16], b: &[i16]) -> f64 {
        let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
        for (&x, &y) in a.iter().zip(b) {
            let (x, y) = (x as f64, y as f64);
            ab += x * y;
            aa += x * x;
            bb += y * y;
        }
        ab / (aa.sqrt() * bb.sqrt())
    }

    /// Page headers of an Ogg file: (flags, granule position).
    fn pages(bytes: &[u8]) -> Vec<(u8, u64)> {
        let mut pages = Vec::new();
        let mut at = 0;
        while at + 27 <= bytes.len() {
            assert_eq!(&bytes[at..at + 4], b"OggS", "page at {at}");
            let flags = bytes[at + 5];
            let granule = u64::from_le_bytes(bytes[at + 6..at + 14].try_into().unwrap());
            let segments = bytes[at + 26] as usize;
            let body: usize = bytes[at + 27..at + 27 + segments].iter().map(|&l| l as usize).sum();
            pages.push((flags, granule));
            at += 27 + segments + body;
        }
        assert_eq!(at, bytes.len());
        pages
    }

    #[test]
    fn a_tone_and_a_chirp_survive_ogg_opus_at_a_tenth_of_the_size() {
        // 1 kHz tone, then a chirp from 200 Hz to 4 kHz, then the tone again: 6.01 s (not a
        // whole number of frames).
        let n = 16_000 * 6 + 160;
        let input: Vec<i16> = (0..n)
            .map(|i| {
                let t = i as f64 / 16_000.0;
                let x = if (2.0..4.0).contains(&t) {
                    let (f0, f1, d) = (200.0, 4000.0, 2.0);
                    let u = t - 2.0;
                    (2.0 * std::f64::consts::PI * (f0 * u + (f1 - f0) * u * u / (2.0 * d))).sin()
                } else {
                    (2.0 * std::f64::consts::PI * 1000.0 * t).sin()
                };
                (x * 8000.0) as i16
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let wav = dir.path().join("0-customer.wav");
        let mut recorder = Recorder::create(&wav).unwrap();
        for (i, chunk) in input.chunks(320).enumerate() {
            recorder.write(i as u64 * 20, chunk).unwrap();
        }
        let wav_bytes = 44 + 2 * n as u64;
        let started = std::time::Instant::now();
        let kept = finish(recorder);
        let took = started.elapsed();
        assert_eq!(kept.file_name, "0-customer.opus");
        assert_eq!(kept.secs, n as f64 / 16_000.0);
        let path = dir.path().join(&kept.file_name);
        let bytes = std::fs::read(&path).unwrap();

        let decoded = decode(&path);
        assert_eq!(decoded.input_rate, 16_000);
        assert!((240..=480).contains(&decoded.pre_skip), "pre-skip {} (the encoder lookahead)", decoded.pre_skip);
        let secs = (decoded.end_granule - decoded.pre_skip) as f64 / 48_000.0;
        assert_eq!(secs, kept.secs, "the granule-based duration is the input's");
        assert_eq!(decoded.samples.len(), n);
        let c = correlation(&decoded.samples, &input);
        let c_chirp = correlation(&decoded.samples[32_000..64_000], &input[32_000..64_000]);
        println!(
            "Ogg Opus: {} bytes for {} WAV bytes (1/{:.1}), correlation {c:.4} (chirp {c_chirp:.4}), \
             transcoded in {took:?}",
            bytes.len(),
            wav_bytes,
            wav_bytes as f64 / bytes.len() as f64
        );
        assert!(c > 0.9 && c_chirp > 0.9, "correlation {c}, chirp {c_chirp}");
        assert!(bytes.len() as u64 * 8 <= wav_bytes, "{} bytes is more than 1/8 of {wav_bytes}", bytes.len());

        // Pages: OpusHead alone (BOS), OpusTags, a page a second, EOS last; headers at granule 0.
        let pages = pages(&bytes);
        assert_eq!(pages[0], (0x02, 0));
        assert_eq!(pages[1], (0x00, 0));
        assert_eq!(pages.len(), 2 + 7, "{pages:?}");
        assert!(pages[2..pages.len() - 1].iter().all(|&(flags, _)| flags == 0));
        assert_eq!(pages[2].1, 48_000, "the first audio page ends after 50 packets");
        assert_eq!(*pages.last().unwrap(), (0x04, decoded.end_granule));
    }

    #[test]
    fn an_empty_recording_is_a_valid_empty_stream() {
        let dir = tempfile::tempdir().unwrap();
        let wav = dir.path().join("1-agent.wav");
        let kept = finish(Recorder::create(&wav).unwrap());
        assert_eq!(kept, Kept { secs: 0.0, file_name: "1-agent.opus".into() });
        let decoded = decode(&dir.path().join("1-agent.opus"));
        assert_eq!(decoded.end_granule, decoded.pre_skip);
        assert!(decoded.samples.is_empty());
    }

    #[test]
    fn a_wav_that_cannot_be_transcoded_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let wav = dir.path().join("r.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        hound::WavWriter::create(&wav, spec).unwrap().finalize().unwrap();
        assert!(matches!(transcode(&wav, &dir.path().join("r.opus")), Err(TranscodeError::Format(_))));
        assert!(wav.exists());
        assert!(!dir.path().join("r.opus").exists() && !dir.path().join("r.opus.part").exists());
    }

    #[test]
    fn retention_removes_old_session_folders_but_not_live_or_foreign_ones() {
        let root = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let day = Duration::from_secs(86_400);
        let folder = |name: &str, age: Duration| {
            let dir = root.path().join(name);
            std::fs::create_dir(&dir).unwrap();
            let file = File::create(dir.join("0-customer.opus")).unwrap();
            file.set_modified(now - age).unwrap();
            File::open(&dir).unwrap().set_modified(now - age).unwrap();
            dir
        };
        let (old, live, recent) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let old = folder(&old.to_string(), day * 91);
        let live_dir = folder(&live.to_string(), day * 91);
        let recent = folder(&recent.to_string(), day * 89);
        let foreign = folder("not-a-session", day * 200);
        let removed = sweep(root.path(), now, day * 90, |name| name == live.to_string());
        assert_eq!(removed, vec![old.clone()]);
        assert!(!old.exists() && live_dir.exists() && recent.exists() && foreign.exists());
        // A file written lately keeps its folder.
        File::create(live_dir.join("1-agent.opus")).unwrap().set_modified(now).unwrap();
        assert!(sweep(root.path(), now, day * 90, |_| false).is_empty());
        assert!(sweep(&root.path().join("missing"), now, day, |_| false).is_empty());
    }
}
