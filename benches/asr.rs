//! Whisper decode time per utterance: hark's setting (`audio_ctx` = the utterance's length plus
//! 256 encoder positions, see `src/speech/asr.rs`) against a decode of the same audio with
//! Whisper's whole 30 s window (`audio_ctx_margin = 1500`, what a plain whisper.cpp or
//! faster-whisper decode costs), with the real model (`models/ggml-tiny.en-q8_0.bin`), one worker,
//! 1 and 2 whisper.cpp threads. The ratio full window / hark is what the short context saves.
//!
//! The utterances are the four turns of the two-party call fixture (`../shared/fixtures/audio/
//! call`, cut by `turns.tsv` with the live path's 200 ms pre-roll and 100 ms post-roll), decoded
//! from its µ-law and resampled to 16 kHz by hark's own resampler as a Twilio call's audio is,
//! and the 11 s JFK clip whole (16 kHz). They are also written to
//! `$CARGO_TARGET_TMPDIR/asr-utterances/NAME.f32` (16 kHz, f32 little-endian) so that
//! `loadtest/faster_whisper.py` times the very same samples; the medians go to
//! `$CARGO_TARGET_TMPDIR/asr-bench.json` for its hark / faster-whisper ratios.
//!
//! Decode time is the transcriber's own measure (`Transcript::decode`: the worker's time from
//! taking the job to its answer, mel spectrogram included), not the queue hand-off. Criterion's
//! figures are the mean of 10 samples; the table printed at the end gives the median of every
//! decode timed (criterion's warm-up included) and the ratios.
//!
//! Needs the model files (`hark models fetch`, or `HARK_SPEECH_MODELS_DIR`) and the fixtures
//! (`HARK_FIXTURES`, default `../shared/fixtures`).
//!
//! `CARGO_TARGET_DIR=/work/speech-target nice -n 19 cargo bench --bench asr` (about 5 minutes);
//! results in docs/PERFORMANCE.md, section "Speech".

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode};
use hark::media::codec::ulaw_to_linear;
use hark::media::resample::Resampler;
use hark::speech::asr::{AsrSettings, Kind, Request, Transcriber};

const RATE: usize = 16_000;
/// The live path's pre-roll and post-roll around a turn (`speech.vad` defaults).
const PRE_ROLL_S: f64 = 0.2;
const POST_ROLL_S: f64 = 0.1;
/// hark's default margin, and the margin that always gives the whole window.
const SETTINGS: [(&str, usize); 2] = [("hark", 256), ("full_window", 1500)];
const THREADS: [usize; 2] = [1, 2];

struct Utterance {
    name: String,
    samples: Arc<[f32]>,
}

impl Utterance {
    fn seconds(&self) -> f64 {
        self.samples.len() as f64 / RATE as f64
    }
}

fn fixtures() -> PathBuf {
    std::env::var_os("HARK_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures"))
}

fn model() -> PathBuf {
    let dir = std::env::var_os("HARK_SPEECH_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("models"));
    let path = dir.join(hark::speech::models::WHISPER_FILE);
    if !path.is_file() {
        eprintln!(
            "benches/asr: the Whisper model {} is missing; fetch it with `cargo run -- models fetch` \
             (or `make models`), or point HARK_SPEECH_MODELS_DIR at a folder that has it",
            path.display()
        );
        std::process::exit(2);
    }
    path
}

/// A track of the call fixture as hark hears it over Twilio: µ-law → 16-bit → 16 kHz.
fn call_track(name: &str) -> Vec<f32> {
    let path = fixtures().join("audio/call").join(name);
    let ulaw = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let input: Vec<f32> = ulaw.iter().map(|&b| f32::from(ulaw_to_linear(b)) / 32_768.0).collect();
    let mut resampler = Resampler::new(8_000).expect("an 8 kHz resampler");
    let mut out = Vec::with_capacity(input.len() * 2);
    resampler.process(&input, &mut out).expect("resampling");
    resampler.flush(&mut out).expect("resampling");
    out
}

fn utterances() -> Vec<Utterance> {
    let tracks = [("caller", call_track("caller.ulaw")), ("agent", call_track("agent.ulaw"))];
    let turns_path = fixtures().join("audio/call/turns.tsv");
    let turns = std::fs::read_to_string(&turns_path).unwrap_or_else(|e| panic!("{}: {e}", turns_path.display()));
    let mut out = Vec::new();
    for (n, line) in turns.lines().skip(1).filter(|l| !l.starts_with("total")).enumerate() {
        let cols: Vec<&str> = line.split('\t').collect();
        let (party, start, end): (&str, f64, f64) = (cols[0], cols[1].parse().unwrap(), cols[2].parse().unwrap());
        let track = &tracks.iter().find(|(p, _)| *p == party).expect("caller or agent").1;
        let from = (((start - PRE_ROLL_S) * RATE as f64) as usize).min(track.len());
        let to = (((end + POST_ROLL_S) * RATE as f64) as usize).min(track.len());
        out.push(Utterance { name: format!("call_turn{}_{party}", n + 1), samples: track[from..to].into() });
    }
    let jfk_path = fixtures().join("audio/jfk_ask_not.wav");
    let jfk = hound::WavReader::open(&jfk_path).unwrap_or_else(|e| panic!("{}: {e}", jfk_path.display()));
    assert_eq!(jfk.spec().sample_rate, RATE as u32, "jfk_ask_not.wav is 16 kHz");
    let samples: Vec<f32> = jfk.into_samples::<i16>().map(|s| f32::from(s.unwrap()) / 32_768.0).collect();
    out.push(Utterance { name: "jfk_ask_not".into(), samples: samples.into() });
    out
}

/// Writes the utterances for `loadtest/faster_whisper.py`.
fn dump(utterances: &[Utterance]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("asr-utterances");
    std::fs::create_dir_all(&dir).expect("creating the utterance folder");
    for u in utterances {
        let bytes: Vec<u8> = u.samples.iter().flat_map(|x| x.to_le_bytes()).collect();
        std::fs::write(dir.join(format!("{}.f32", u.name)), bytes).expect("writing an utterance");
    }
    dir
}

/// Every decode time measured, by (threads, setting, utterance).
type Timings = BTreeMap<(usize, &'static str, String), Vec<Duration>>;

fn decode(runtime: &tokio::runtime::Runtime, transcriber: &Transcriber, samples: &Arc<[f32]>) -> (Duration, String) {
    let request = Request { stream: (uuid::Uuid::nil(), 0), kind: Kind::Final, samples: samples.clone(), start_ms: 0 };
    let transcript = runtime
        .block_on(transcriber.transcribe(request))
        .expect("the decode succeeds")
        .expect("a final is never dropped");
    (transcript.decode, transcript.text)
}

fn bench(c: &mut Criterion, utterances: &[Utterance], timings: &Mutex<Timings>) {
    let model = model();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    for threads in THREADS {
        let mut group = c.benchmark_group(format!("asr_decode_{threads}t"));
        group.sampling_mode(SamplingMode::Flat).sample_size(10).warm_up_time(Duration::from_secs(1));
        group.measurement_time(Duration::from_secs(3));
        for (label, margin) in SETTINGS {
            let settings = AsrSettings {
                workers: 1,
                threads_per_worker: threads,
                audio_ctx_margin: margin,
                ..AsrSettings::default()
            };
            let transcriber = Transcriber::start(&model, &settings).expect("the model loads");
            for u in utterances {
                // One untimed decode: warms the worker up and shows what this setting hears
                // (not under `cargo test --benches`, which runs each benchmark once).
                if benching() {
                    let (took, text) = decode(&runtime, &transcriber, &u.samples);
                    eprintln!(
                        "{threads}t {label:<11} {:<18} {:5.2} s audio, {:6.3} s: {text:?}",
                        u.name,
                        u.seconds(),
                        took.as_secs_f64()
                    );
                }
                group.bench_with_input(BenchmarkId::new(label, &u.name), &u.samples, |b, samples| {
                    b.iter_custom(|iters| {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            let (took, _) = decode(&runtime, &transcriber, samples);
                            timings.lock().unwrap().entry((threads, label, u.name.clone())).or_default().push(took);
                            total += took;
                        }
                        total
                    })
                });
            }
        }
        group.finish();
    }
}

/// `cargo bench` runs the binary with `--bench`; `cargo test` without.
fn benching() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn median(samples: &[Duration]) -> f64 {
    let mut s: Vec<f64> = samples.iter().map(Duration::as_secs_f64).collect();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

fn summary(utterances: &[Utterance], timings: &Timings) {
    if timings.is_empty() || !benching() {
        return;
    }
    println!();
    println!("== Whisper decode time per utterance (median of every decode timed, seconds) ==");
    println!(
        "{:<18} {:>7} {:>7} {:>9} {:>12} {:>12} {:>7}",
        "utterance", "audio s", "threads", "decodes", "hark", "full window", "full/hark"
    );
    let mut json = Vec::new();
    for threads in THREADS {
        for u in utterances {
            let get = |label: &'static str| timings.get(&(threads, label, u.name.clone()));
            let (Some(hark), Some(full)) = (get("hark"), get("full_window")) else { continue };
            let (h, f) = (median(hark), median(full));
            println!(
                "{:<18} {:>7.2} {:>7} {:>4}+{:<4} {:>12.4} {:>12.4} {:>6.2}×",
                u.name,
                u.seconds(),
                threads,
                hark.len(),
                full.len(),
                h,
                f,
                f / h
            );
            json.push(format!(
                r#"{{"utterance":"{}","audio_s":{:.3},"threads":{threads},"hark_s":{h:.6},"full_window_s":{f:.6},"hark_decodes":{},"full_window_decodes":{}}}"#,
                u.name,
                u.seconds(),
                hark.len(),
                full.len()
            ));
        }
    }
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("asr-bench.json");
    let written = std::fs::File::create(&path).and_then(|mut f| writeln!(f, "[{}]", json.join(",\n ")));
    match written {
        Ok(()) => println!("medians written to {}", path.display()),
        Err(e) => eprintln!("writing {}: {e}", path.display()),
    }
}

fn main() {
    let utterances = utterances();
    let dir = dump(&utterances);
    eprintln!("utterances written to {} (for loadtest/faster_whisper.py)", dir.display());
    let timings = Mutex::new(Timings::new());
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c, &utterances, &timings);
    c.final_summary();
    summary(&utterances, &timings.into_inner().unwrap());
}
