//! Emotion of spoken customer lines, end to end with the real Whisper model: each labelled line
//! of `tests/emotion/lines.tsv` is spoken by espeak-ng, resampled with sox to 16 kHz mono 16-bit,
//! transcribed by `hark::speech::asr::Transcriber` (`models/ggml-tiny.en-q8_0.bin`, the live path's
//! settings) and judged by `Emotion::judge` against a prosody baseline of the same voice.
//!
//! The speakers: four espeak-ng voices (`en-us`, `en-us+f3`, `en-gb`, `en-gb+f2`), line `i`
//! spoken by voice `i % 4`. Each line gets its own baseline, primed with two neutral lines (not
//! in the scored set) of the same voice at its calm settings, as the first utterances of a call
//! would be. The label changes how the voice speaks (espeak-ng `-s` words/min, `-p` pitch 0–99,
//! `-a` amplitude 0–200): neutral (and the primers) 160/50/100, angry faster, higher and louder
//! 185/62/170, happy a little livelier 170/60/115, sad slower, lower and quieter 130/35/65.
//!
//! Asserts accuracy ≥ 0.7 over the four labels, and that the sentiment's sign agrees with the
//! label (happy > 0; angry and sad < 0) on most (more than half) of each of those labels' lines.
//! Prints the confusion matrix, per-label recall, and the same figures for the reference text
//! judged with the same voice (to tell transcription errors from the classifier's). An ignored
//! test measures two more sets the same way (`heldout.tsv`, `fresh.tsv`).
//!
//! Needs the model files (`cargo run -- models fetch`, run by `make test`), espeak-ng and sox.

mod common;

use common::models_dir;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use hark::speech::asr::{AsrSettings, Kind, Request, Transcriber, Transcript};
use hark::speech::emotion::{classify, Emotion, ProsodyBaseline};

const LABELS: [&str; 4] = ["angry", "happy", "sad", "neutral"];
const VOICES: [&str; 4] = ["en-us", "en-us+f3", "en-gb", "en-gb+f2"];
const PRIMERS: [&str; 2] =
    ["Hi, I'm calling about my account with you.", "Yes, the account is in my name, I can give you the details."];

/// espeak-ng's speed (words/min), pitch (0–99) and amplitude (0–200) for a label's voice.
fn delivery(label: &str) -> (u32, u32, u32) {
    match label {
        "angry" => (185, 62, 170),
        "happy" => (170, 60, 115),
        "sad" => (130, 35, 65),
        _ => (160, 50, 100),
    }
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} is not runnable ({e}); install it (apt-get install espeak-ng sox)"));
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// `text` spoken by `voice` as a `label` line, at 16 kHz mono, as samples in −1..1.
fn speak(dir: &Path, name: &str, voice: &str, label: &str, text: &str) -> Vec<f32> {
    let (speed, pitch, amplitude) = delivery(label);
    let raw = dir.join(format!("{name}.espeak.wav"));
    let wav = dir.join(format!("{name}.wav"));
    let (speed, pitch, amplitude) = (speed.to_string(), pitch.to_string(), amplitude.to_string());
    let raw_path = raw.to_str().unwrap();
    run("espeak-ng", &["-v", voice, "-s", &speed, "-p", &pitch, "-a", &amplitude, "-w", raw_path, text]);
    run("sox", &[raw_path, "-r", "16000", "-c", "1", "-b", "16", wav.to_str().unwrap()]);
    let reader = hound::WavReader::open(&wav).unwrap();
    assert_eq!(reader.spec().sample_rate, 16_000);
    reader.into_samples::<i16>().map(|s| f32::from(s.unwrap()) / 32768.0).collect()
}

async fn transcribe(asr: &Transcriber, samples: &[f32]) -> Transcript {
    let request =
        Request { stream: (uuid::Uuid::nil(), 0), kind: Kind::Final, samples: Arc::from(samples), start_ms: 0 };
    asr.transcribe(request).await.unwrap().unwrap_or_default()
}

fn index(label: &str) -> usize {
    LABELS.iter().position(|l| *l == label).unwrap_or_else(|| panic!("unknown label {label:?}"))
}

/// Prints the confusion matrix (rows: true label) and per-label recall; returns the accuracy.
fn report(title: &str, matrix: &[[usize; 4]; 4]) -> f64 {
    println!("\n{title}: rows are the true label, columns the verdict");
    println!("{:>10} {}", "", LABELS.map(|l| format!("{l:>8}")).join(""));
    for (row, label) in matrix.iter().zip(LABELS) {
        println!("{label:>10} {}", row.map(|n| format!("{n:>8}")).join(""));
    }
    let total: usize = matrix.iter().flatten().sum();
    let right: usize = (0..4).map(|i| matrix[i][i]).sum();
    for (i, label) in LABELS.iter().enumerate() {
        let n: usize = matrix[i].iter().sum();
        println!("recall {label:>8}: {}/{n} = {:.2}", matrix[i][i], matrix[i][i] as f64 / n.max(1) as f64);
    }
    let accuracy = right as f64 / total as f64;
    println!("accuracy: {right}/{total} = {accuracy:.3}");
    accuracy
}

/// The labelled lines of `tests/emotion/<file>`.
fn labelled(file: &str) -> Vec<(String, String)> {
    let table =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/emotion").join(file)).unwrap();
    table
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (label, text) = l.split_once('\t').unwrap_or_else(|| panic!("{file}: not label<TAB>text: {l:?}"));
            index(label);
            (label.to_string(), text.to_string())
        })
        .collect()
}

/// Confusion matrices (rows: true label) of one set, from the transcript and from the
/// reference text, and how many lines of each label had a sentiment of the label's sign.
struct Outcome {
    heard: [[usize; 4]; 4],
    text: [[usize; 4]; 4],
    sign_agrees: [usize; 4],
}

/// Speaks, transcribes and judges every line of `file`; line `i` by voice `i % 4` against a
/// copy of that voice's primed baseline.
async fn measure(file: &str, asr: &Transcriber, emotion: &Emotion, primed: &[ProsodyBaseline], dir: &Path) -> Outcome {
    let lines = labelled(file);
    let vader = vader_sentimental::SentimentIntensityAnalyzer::new();
    let mut out = Outcome { heard: [[0; 4]; 4], text: [[0; 4]; 4], sign_agrees: [0; 4] };
    println!("\n{file}\n{:<8} {:<9} {:<8} {:>6} {:>6}  transcript", "label", "voice", "verdict", "sent", "arous");
    for (i, (label, text)) in lines.iter().enumerate() {
        let voice = VOICES[i % VOICES.len()];
        let samples = speak(dir, &format!("{file}{i}"), voice, label, text);
        let heard = transcribe(asr, &samples).await;
        let felt = emotion.judge(&heard.text, &samples, &heard.words, &mut primed[i % VOICES.len()].clone());
        // The reference text with the same voice: what a perfect transcript would have got.
        let on_text = classify(text, vader.polarity_scores(text).compound as f32, felt.arousal);
        let (truth, verdict) = (index(label), index(felt.label.as_str()));
        out.heard[truth][verdict] += 1;
        out.text[truth][index(on_text.label.as_str())] += 1;
        out.sign_agrees[truth] += usize::from(match label.as_str() {
            "happy" => felt.sentiment > 0.0,
            "angry" | "sad" => felt.sentiment < 0.0,
            _ => false,
        });
        let mark = if truth == verdict { ' ' } else { '✗' };
        println!(
            "{label:<8} {voice:<9} {:<7}{mark} {:>6.2} {:>6.2}  {:?}{}",
            felt.label.as_str(),
            felt.sentiment,
            felt.arousal,
            heard.text.trim(),
            if on_text.label == felt.label {
                String::new()
            } else {
                format!("  (reference text: {})", on_text.label.as_str())
            }
        );
    }
    out
}

/// The transcriber (live settings, one worker) and each voice's calm baseline: its two primer
/// lines, judged as a call's first utterances.
async fn setup(dir: &Path) -> (Transcriber, Emotion, Vec<ProsodyBaseline>) {
    let models = models_dir();
    let settings = AsrSettings { workers: 1, threads_per_worker: 2, ..AsrSettings::default() };
    let asr = Transcriber::start(&models.join(hark::speech::models::WHISPER_FILE), &settings)
        .expect("the Whisper model loads");
    let emotion = Emotion::new();
    let mut primed = Vec::new();
    for (v, voice) in VOICES.iter().enumerate() {
        let mut baseline = ProsodyBaseline::default();
        for (p, primer) in PRIMERS.iter().enumerate() {
            let samples = speak(dir, &format!("primer{v}_{p}"), voice, "neutral", primer);
            let heard = transcribe(&asr, &samples).await;
            emotion.judge(&heard.text, &samples, &heard.words, &mut baseline);
        }
        primed.push(baseline);
    }
    (asr, emotion, primed)
}

/// The issue's set: accuracy ≥ 0.7, and the sentiment's sign right on most lines.
#[tokio::test(flavor = "multi_thread")]
async fn spoken_customer_lines_get_the_right_emotion() {
    for label in LABELS {
        let n = labelled("lines.tsv").iter().filter(|(l, _)| l == label).count();
        assert!(n >= 15, "lines.tsv: only {n} {label} lines");
    }
    let dir = tempfile::tempdir().unwrap();
    let (asr, emotion, primed) = setup(dir.path()).await;
    let out = measure("lines.tsv", &asr, &emotion, &primed, dir.path()).await;
    let mut failures = Vec::new();
    check("lines.tsv", &out, &mut failures);
    assert!(failures.is_empty(), "{failures:#?} (confusion matrix above)");
}

/// How far the method generalises: `heldout.tsv` was written before the cue lists were last
/// changed, `fresh.tsv` after that change was decided and before it was measured on them.
/// Reports the same figures and asserts nothing (slow: 96 more lines). Run with
/// `cargo test --test emotion -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "measurement only, slow; run with --ignored"]
async fn unseen_customer_lines_measured() {
    let dir = tempfile::tempdir().unwrap();
    let (asr, emotion, primed) = setup(dir.path()).await;
    let mut ignored = Vec::new();
    for file in ["heldout.tsv", "fresh.tsv"] {
        let out = measure(file, &asr, &emotion, &primed, dir.path()).await;
        check(file, &out, &mut ignored);
    }
    println!("\nbelow target (not asserted): {ignored:#?}");
}

/// Reports `out`, adding to `failures` an accuracy under 0.7 and each label among happy, angry
/// and sad whose sentiment has the label's sign on no more than half its lines.
fn check(name: &str, out: &Outcome, failures: &mut Vec<String>) {
    report(&format!("{name}, reference text (same voice)"), &out.text);
    let accuracy = report(&format!("{name}, transcribed by Whisper"), &out.heard);
    if accuracy < 0.7 {
        failures.push(format!("{name}: accuracy {accuracy:.3} is below 0.7"));
    }
    for label in ["happy", "angry", "sad"] {
        let i = index(label);
        let (agree, n) = (out.sign_agrees[i], out.heard[i].iter().sum::<usize>());
        let sign = if label == "happy" { "> 0" } else { "< 0" };
        println!("{name}: sentiment {sign} on {agree}/{n} {label} lines");
        if agree * 2 <= n {
            failures.push(format!("{name}: the sentiment is {sign} on only {agree}/{n} {label} lines"));
        }
    }
}
