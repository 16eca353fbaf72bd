//! Silero VAD and the utterance segmenter on real speech, with the real model: the shared
//! fixtures with known speech boundaries, a two-party call at 8 kHz, silence and noise.
//!
//! The model files come from `HARK_SPEECH_MODELS_DIR` or `<repo>/models` (`hark models
//! fetch` puts them there); without them these tests fail and say so, they never skip.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{fixtures, wav_samples};
use hark::media::resample::Resampler;
use hark::speech::vad::{
    ms_to_samples, Frame, Sample, SileroModel, Utterance, VadEvent, VadSettings, VadStream, ORT_LIBRARY_FILE,
    SILERO_MODEL_FILE,
};

fn models_dir() -> PathBuf {
    std::env::var_os("HARK_SPEECH_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("models"))
}

fn model() -> SileroModel {
    let dir = models_dir();
    for file in [SILERO_MODEL_FILE, ORT_LIBRARY_FILE] {
        assert!(
            dir.join(file).is_file(),
            "{} is missing: fetch the model files with `hark models fetch`, or point \
             HARK_SPEECH_MODELS_DIR at a folder holding {SILERO_MODEL_FILE} and {ORT_LIBRARY_FILE}",
            dir.join(file).display()
        );
    }
    SileroModel::from_dir(&dir).unwrap_or_else(|e| panic!("loading the VAD model from {}: {e}", dir.display()))
}

fn stream() -> VadStream {
    VadStream::new(&VadSettings::default()).unwrap()
}

fn audio(name: &str) -> Vec<i16> {
    wav_samples(&fixtures().join("audio").join(name))
}

fn secs(samples: u64) -> f64 {
    samples as f64 / 16_000.0
}

/// Takes the stream's events, checking that each utterance was announced by its own
/// `SpeechStart` and holds exactly its samples.
fn drain(stream: &mut VadStream, announced: &mut Option<u64>, out: &mut Vec<Utterance>) {
    while let Some(event) = stream.poll_event() {
        match event {
            VadEvent::SpeechStart { at } => {
                assert_eq!(*announced, None, "two SpeechStarts without an utterance between");
                *announced = Some(at);
            }
            VadEvent::Utterance(u) => {
                assert_eq!(announced.take(), Some(u.speech_start), "{u:?} was not announced");
                assert_eq!(u.samples.len() as u64, u.end - u.start, "{u:?}");
                assert!(u.start <= u.speech_start && u.speech_start < u.end, "{u:?}");
                if let Some(last) = out.last() {
                    assert!(u.start >= last.end, "{u:?} overlaps {last:?}");
                }
                out.push(u);
            }
            VadEvent::Tentative(_) | VadEvent::Resumed => {}
        }
    }
}

/// A whole signal through one stream in 20 ms frames, then the end of the stream.
fn utterances<S: Sample>(model: &mut SileroModel, samples: &[S], settings: &VadSettings) -> Vec<Utterance> {
    let mut stream = VadStream::new(settings).unwrap();
    let (mut announced, mut out) = (None, Vec::new());
    for (i, frame) in samples.chunks(320).enumerate() {
        model.push(&mut stream, (i * 320) as u64, frame).unwrap();
        drain(&mut stream, &mut announced, &mut out);
    }
    model.finish(&mut stream).unwrap();
    drain(&mut stream, &mut announced, &mut out);
    assert_eq!(announced, None, "announced speech was never emitted");
    out
}

/// Errors (found − truth, in ms) of each utterance against its truth: of its audio's bounds
/// (what Whisper gets, pre- and post-roll included) and of the detected speech.
struct Errors {
    audio: (f64, f64),
    speech: (f64, f64),
}

fn report(name: &str, found: &[Utterance], truth: &[(f64, f64)]) -> Vec<Errors> {
    eprintln!("{name}: {} utterances, {} in the truth", found.len(), truth.len());
    let mut errors = Vec::new();
    for (i, u) in found.iter().enumerate() {
        let (ts, te) = truth.get(i).copied().unwrap_or((f64::NAN, f64::NAN));
        let ms = |found: u64, truth: f64| (secs(found) - truth) * 1000.0;
        let e =
            Errors { audio: (ms(u.start, ts), ms(u.end, te)), speech: (ms(u.speech_start, ts), ms(u.speech_end, te)) };
        eprintln!(
            "  {i}: audio {:.3}-{:.3} s, speech {:.3}-{:.3} s | truth {ts:.3}-{te:.3} s | \
             audio {:+.0}/{:+.0} ms, speech {:+.0}/{:+.0} ms",
            secs(u.start),
            secs(u.end),
            secs(u.speech_start),
            secs(u.speech_end),
            e.audio.0,
            e.audio.1,
            e.speech.0,
            e.speech.1,
        );
        errors.push(e);
    }
    errors
}

#[test]
fn four_speech_parts_between_long_silences_are_four_utterances() {
    let mut model = model();
    let samples = audio("pocketsphinx_cards_long_silences.wav");
    let found = utterances(&mut model, &samples, &VadSettings::default());
    // The bounds of the four clips mixed into the file. Each clip holds some of its own
    // room noise (about -45 dBFS) before and after its words, so detected speech lies
    // inside: the fourth word starts with a soft "f" that Silero scores under 0.2 until the
    // vowel, 334 ms into the clip; the 200 ms pre-roll brings the audio back to the "f".
    let truth = [(1.500, 2.595), (5.095, 7.056), (10.556, 12.094), (16.594, 18.148)];
    let errors = report("cards_long_silences", &found, &truth);
    assert_eq!(found.len(), 4, "{found:?}");
    for (i, e) in errors.iter().enumerate() {
        assert!(e.audio.0.abs() <= 300.0 && e.audio.1.abs() <= 300.0, "utterance {i}: audio off by {:?}", e.audio);
        assert!((-50.0..=350.0).contains(&e.speech.0), "utterance {i}: speech start off by {:+.0} ms", e.speech.0);
        assert!((-350.0..=50.0).contains(&e.speech.1), "utterance {i}: speech end off by {:+.0} ms", e.speech.1);
    }
    // The pre-roll is there: each utterance's audio starts 200 ms before its speech.
    for u in &found {
        assert_eq!(u.speech_start - u.start, ms_to_samples(200));
    }
}

#[test]
fn probabilities_match_onnxruntime_python_on_the_same_chunks() {
    // Reference values: onnxruntime 1.32's Python API on the same file, 512-sample chunks
    // each preceded by the previous chunk's last 64 samples, state carried over.
    let reference = [
        (0, 0.016787),
        (20, 0.002936),
        (53, 0.774801),
        (60, 0.999727),
        (78, 0.176606),
        (100, 0.012049),
        (170, 0.999963),
        (200, 0.999980),
    ];
    let mut model = model();
    let samples = audio("pocketsphinx_cards_long_silences.wav");
    let mut stream = stream();
    let mut probs = Vec::new();
    for (i, chunk) in samples.chunks_exact(512).take(201).enumerate() {
        model.push(&mut stream, (i * 512) as u64, chunk).unwrap();
        probs.push(stream.last_probability().unwrap());
    }
    for (chunk, want) in reference {
        let got = probs[chunk];
        assert!((got - want).abs() < 1e-4, "chunk {chunk}: {got} vs {want} from onnxruntime-python");
    }
}

#[test]
fn a_batch_of_streams_gives_what_each_stream_gives_alone() {
    let mut model = model();
    let inputs = [
        audio("pocketsphinx_cards_long_silences.wav"),
        audio("jfk_ask_not.wav"),
        audio("picovoice_3speakers_pauses.wav"),
    ];
    let chunks = inputs.iter().map(Vec::len).min().unwrap() / 512;
    let alone: Vec<Vec<f32>> = inputs
        .iter()
        .map(|samples| {
            let mut s = stream();
            (0..chunks)
                .map(|i| {
                    model.push(&mut s, (i * 512) as u64, &samples[i * 512..(i + 1) * 512]).unwrap();
                    s.last_probability().unwrap()
                })
                .collect()
        })
        .collect();
    let mut streams = [stream(), stream(), stream()];
    let mut most = 0f32;
    for i in 0..chunks {
        let mut frames: Vec<Frame<'_, i16>> = streams
            .iter_mut()
            .zip(&inputs)
            .map(|(stream, samples)| Frame {
                stream,
                start: (i * 512) as u64,
                samples: &samples[i * 512..(i + 1) * 512],
            })
            .collect();
        model.push_batch(&mut frames).unwrap();
        for (k, s) in streams.iter().enumerate() {
            most = most.max((s.last_probability().unwrap() - alone[k][i]).abs());
        }
    }
    eprintln!("batch of 3 vs alone, {chunks} chunks each: largest probability difference {most:e}");
    assert!(most < 1e-4, "{most}");
}

#[test]
fn jfk_speech_is_all_inside_utterances() {
    let mut model = model();
    let samples = audio("jfk_ask_not.wav");
    let found = utterances(&mut model, &samples, &VadSettings::default());
    report("jfk_ask_not", &found, &[]);
    // Every loud 32 ms stretch (above -20 dBFS: certainly the speaker) is inside an utterance.
    let mut loud = 0;
    for (i, chunk) in samples.chunks_exact(512).enumerate() {
        let rms = (chunk.iter().map(|&s| (f64::from(s) / 32_768.0).powi(2)).sum::<f64>() / 512.0).sqrt();
        if 20.0 * rms.log10() > -20.0 {
            loud += 1;
            let (a, b) = ((i * 512) as u64, ((i + 1) * 512) as u64);
            assert!(
                found.iter().any(|u| u.start < b && a < u.end),
                "loud chunk at {:.3} s is outside every utterance: {found:?}",
                secs(a)
            );
        }
    }
    assert!(loud > 50, "{loud} loud chunks");
    // "And so my fellow Americans / ask not what your country can do for you / ask what you
    // can do for your country": the pauses of about a second end utterances.
    assert!((2..=5).contains(&found.len()), "{found:?}");
    let total: u64 = found.iter().map(|u| u.end - u.start).sum();
    assert!(secs(total) < 9.5, "{:.2} s of 11 s are speech", secs(total));
}

/// A party of the two-party call fixture (8 kHz), resampled to 16 kHz as the media stage
/// does: 20 ms packets through one `Resampler`, frames timestamped by their output position.
fn call_party(name: &str) -> Vec<(u64, Vec<f32>)> {
    let input = wav_samples(&fixtures().join("audio/call").join(name));
    let mut resampler = Resampler::new(8_000).unwrap();
    let (mut frames, mut at) = (Vec::new(), 0u64);
    for packet in input.chunks(160) {
        let packet: Vec<f32> = packet.iter().map(|&s| f32::from(s) / 32_768.0).collect();
        let mut out = Vec::new();
        resampler.process(&packet, &mut out).unwrap();
        let n = out.len() as u64;
        frames.push((at, out));
        at += n;
    }
    let mut out = Vec::new();
    resampler.flush(&mut out).unwrap();
    frames.push((at, out));
    frames
}

#[test]
fn two_party_call_turns_are_found_on_each_side() {
    let mut model = model();
    let parties = ["caller", "agent"];
    let frames: Vec<Vec<(u64, Vec<f32>)>> = parties.iter().map(|p| call_party(&format!("{p}.wav"))).collect();
    let mut streams = [stream(), stream()];
    let mut announced = [None, None];
    let mut found: [Vec<Utterance>; 2] = [Vec::new(), Vec::new()];
    // Both speakers' frames go through the model together, as a worker would run them.
    for i in 0..frames[0].len().max(frames[1].len()) {
        let mut batch: Vec<Frame<'_, f32>> = Vec::new();
        for (stream, party) in streams.iter_mut().zip(&frames) {
            if let Some((start, samples)) = party.get(i) {
                batch.push(Frame { stream, start: *start, samples });
            }
        }
        model.push_batch(&mut batch).unwrap();
        for k in 0..2 {
            drain(&mut streams[k], &mut announced[k], &mut found[k]);
        }
    }
    for k in 0..2 {
        model.finish(&mut streams[k]).unwrap();
        drain(&mut streams[k], &mut announced[k], &mut found[k]);
    }
    let turns = std::fs::read_to_string(fixtures().join("audio/call/turns.tsv")).unwrap();
    for (k, party) in parties.iter().enumerate() {
        let truth: Vec<(f64, f64)> = turns
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (f.first() == Some(party)).then(|| (f[1].parse().unwrap(), f[2].parse().unwrap()))
            })
            .collect();
        let errors = report(party, &found[k], &truth);
        assert_eq!(found[k].len(), truth.len(), "{party}: {:?}", found[k]);
        // The turns are the clips' bounds; the clips begin and end with a little of their
        // recording's own quiet, so detected speech lies inside them.
        for (i, e) in errors.iter().enumerate() {
            assert!(e.audio.0.abs() <= 300.0 && e.audio.1.abs() <= 300.0, "{party} {i}: audio off by {:?}", e.audio);
            assert!((-50.0..=350.0).contains(&e.speech.0), "{party} {i}: speech start {:+.0} ms", e.speech.0);
            assert!((-350.0..=50.0).contains(&e.speech.1), "{party} {i}: speech end {:+.0} ms", e.speech.1);
        }
    }
}

/// Runs sox to make a 5 s test signal in `dir`.
fn sox(dir: &Path, name: &str, synth: &[&str]) -> Vec<i16> {
    let path = dir.join(format!("{name}.wav"));
    let status = Command::new("sox")
        .args(["-R", "-n", "-r", "16000", "-c", "1", "-b", "16"])
        .arg(&path)
        .args(["synth", "5"])
        .args(synth)
        .status()
        .unwrap_or_else(|e| panic!("sox is needed for this test (apt-get install sox): {e}"));
    assert!(status.success(), "sox {synth:?}: {status}");
    wav_samples(&path)
}

#[test]
fn silence_and_noise_give_no_utterances() {
    let mut model = model();
    let dir = tempfile::tempdir().unwrap();
    let mut signals = vec![("digital silence".to_string(), vec![0i16; 5 * 16_000])];
    for kind in ["whitenoise", "pinknoise", "brownnoise"] {
        for vol in ["0.01", "0.1", "0.3"] {
            signals.push((format!("{kind} vol {vol}"), sox(dir.path(), &format!("{kind}-{vol}"), &[kind, "vol", vol])));
        }
    }
    signals.push(("1 kHz tone vol 0.3".into(), sox(dir.path(), "tone", &["sine", "1000", "vol", "0.3"])));
    let mut failures = Vec::new();
    for (name, samples) in &signals {
        let found = utterances(&mut model, samples, &VadSettings::default());
        let mut stream = stream();
        let mut most = 0f32;
        for (i, chunk) in samples.chunks_exact(512).enumerate() {
            model.push(&mut stream, (i * 512) as u64, chunk).unwrap();
            most = most.max(stream.last_probability().unwrap());
        }
        eprintln!("{name}: {} utterances, highest speech probability {most:.3}", found.len());
        if !found.is_empty() {
            failures.push(format!("{name}: {found:?}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn speech_longer_than_the_maximum_is_split_and_memory_stays_bounded() {
    let mut model = model();
    // JFK three times over with its pauses kept inside (a long hang-over): 33 s of one
    // "utterance", split at 6 s.
    let jfk = audio("jfk_ask_not.wav");
    let samples: Vec<i16> = jfk.iter().chain(&jfk).chain(&jfk).copied().collect();
    let settings =
        VadSettings { hangover_ms: 3_000, max_utterance_ms: 6_000, split_search_ms: 2_000, ..Default::default() };
    let mut stream = VadStream::new(&settings).unwrap();
    let (mut announced, mut found, mut most) = (None, Vec::new(), 0);
    let mut probs = Vec::new();
    for (i, frame) in samples.chunks(512).enumerate() {
        model.push(&mut stream, (i * 512) as u64, frame).unwrap();
        probs.push(stream.last_probability().unwrap_or(0.0));
        most = most.max(stream.memory_bytes());
        drain(&mut stream, &mut announced, &mut found);
    }
    model.finish(&mut stream).unwrap();
    drain(&mut stream, &mut announced, &mut found);
    report("jfk x3, split at 6 s", &found, &[]);
    assert!(found.len() >= 5, "{found:?}");
    for u in &found {
        assert!(u.end - u.start <= ms_to_samples(6_000) + 512, "{u:?}");
    }
    // Where an utterance was split (the next one starts at its end), the split chunk's
    // probability is the lowest of its search window.
    for pair in found.windows(2) {
        if pair[1].start == pair[0].end {
            let chunk = (pair[0].end / 512) as usize;
            let window = &probs[chunk.saturating_sub(2_000 * 16 / 512)..(chunk + 2_000 * 16 / 512).min(probs.len())];
            eprintln!(
                "  split at {:.3} s: probability {:.3}, window median {:.3}",
                secs(pair[0].end),
                probs[chunk],
                median(window)
            );
            assert!(probs[chunk] < 0.5, "split in speech at {:.3} s", secs(pair[0].end));
        }
    }
    eprintln!("most memory of the stream: {most} bytes");
    assert!(most < 6 * 16_000 * 2 + 64 * 1024, "{most} bytes");
}

fn median(v: &[f32]) -> f32 {
    let mut v = v.to_vec();
    v.sort_by(f32::total_cmp);
    v[v.len() / 2]
}

#[test]
fn odd_frames_do_not_break_the_stream() {
    let mut model = model();
    let mut stream = stream();
    let speech = audio("jfk_ask_not.wav");
    model.push::<i16>(&mut stream, 0, &[]).unwrap();
    model.push(&mut stream, 0, &[f32::NAN; 1_000]).unwrap();
    model.push(&mut stream, 1_000, &[f32::INFINITY, f32::NEG_INFINITY, 1e30]).unwrap();
    // A frame repeated, then one from the past, then a long gap.
    model.push(&mut stream, 1_003, &speech[..16_000]).unwrap();
    model.push(&mut stream, 1_003, &speech[..16_000]).unwrap();
    model.push(&mut stream, 0, &speech[..320]).unwrap();
    model.push(&mut stream, 10 * 16_000, &speech[16_000..32_000]).unwrap();
    // One huge frame: a minute of speech and noise in one go.
    let huge: Vec<i16> = speech.iter().cycle().take(60 * 16_000).copied().collect();
    model.push(&mut stream, 20 * 16_000, &huge).unwrap();
    model.finish(&mut stream).unwrap();
    model.finish(&mut stream).unwrap();
    let (mut announced, mut found) = (None, Vec::new());
    drain(&mut stream, &mut announced, &mut found);
    assert!(!found.is_empty());
    assert!(found.iter().all(|u| u.samples.iter().all(|x| x.is_finite())));
    // After the end the stream takes a new run.
    let again = utterances(&mut model, &speech, &VadSettings::default());
    assert!(!again.is_empty());
}

#[test]
fn missing_model_files_say_how_to_get_them() {
    let dir = tempfile::tempdir().unwrap();
    let error = SileroModel::from_dir(dir.path()).unwrap_err().to_string();
    assert!(error.contains("hark models fetch") && error.contains(SILERO_MODEL_FILE), "{error}");
}
