//! The speech stage through the live path, with the real models: every fixture clip placed as a
//! sipp call is transcribed with a word error rate no worse than the same model decoding the
//! same audio whole; silence and noise give no words; a watching supervisor gets partials, then
//! the final; the two-party call's utterances carry the right speaker and times.
//!
//! Needs the model files (`hark models fetch`, run by `make test`) and sox.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{
    chunks, manifest, models_dir, sip_server, sipp, sox, transcript, twilio_send_live, twilio_start, utterances,
    word_errors, Server, Ws, ADMIN, SPEECH, WAIT,
};
use hark::speech::asr::{AsrSettings, Kind, Request, Transcriber};
use serde_json::{json, Value};

/// Writes `ulaw` and a sipp scenario that streams it as the caller `name` into `dir`.
fn call_scenario(dir: &Path, name: &str, ulaw: &str, seconds: f64) -> String {
    let template = std::fs::read_to_string(dir.join("uac_speech.xml")).unwrap();
    let scenario = template
        .replace("jfk_ask_not_8k.ulaw", ulaw)
        .replace("milliseconds=\"11500\"", &format!("milliseconds=\"{}\"", (seconds * 1000.0) as u64 + 800))
        .replace("speech-fixture", name);
    let file = format!("uac_{name}.xml");
    std::fs::write(dir.join(&file), scenario).unwrap();
    file
}

/// The audio as the call carries it (8 kHz G.711 µ-law) into `dir`, and back at 16 kHz as
/// Whisper gets it, for the whole-clip decode.
fn telephone(dir: &Path, wav: &Path, name: &str) -> (String, Vec<f32>) {
    let ulaw = format!("{name}.ulaw");
    sox(&["-D", wav.to_str().unwrap(), "-r", "8000", "-c", "1", "-t", "ul", dir.join(&ulaw).to_str().unwrap()]);
    let back = dir.join(format!("{name}.16k.wav"));
    sox(&[
        "-D",
        "-t",
        "ul",
        "-r",
        "8000",
        "-c",
        "1",
        dir.join(&ulaw).to_str().unwrap(),
        "-r",
        "16000",
        "-b",
        "16",
        back.to_str().unwrap(),
    ]);
    let samples = common::wav_samples(&back).iter().map(|&s| f32::from(s) / 32768.0).collect();
    (ulaw, samples)
}

/// The stored records of every ended call, by caller name.
async fn ended_calls(server: &Server, expected: usize) -> Vec<(String, Value)> {
    let deadline = tokio::time::Instant::now() + WAIT * 6;
    loop {
        let (_, ended) = server.get("/v1/sessions?state=ended&limit=100", ADMIN).await;
        let ids: Vec<String> =
            ended.as_array().unwrap().iter().map(|c| c["session_id"].as_str().unwrap().to_string()).collect();
        if ids.len() >= expected {
            let mut calls = Vec::new();
            for id in ids {
                let (_, record) = server.get(&format!("/v1/sessions/{id}"), ADMIN).await;
                calls.push((record["call"]["from"]["name"].as_str().unwrap_or_default().to_string(), record));
            }
            return calls;
        }
        assert!(tokio::time::Instant::now() < deadline, "{} of {expected} calls ended", ids.len());
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Places one sipp call per `(name, ulaw, seconds)` at once and waits for all of them.
async fn place_calls(dir: &Path, port: u16, calls: &[(String, String, f64)]) {
    let tasks: Vec<_> = calls
        .iter()
        .map(|(name, ulaw, seconds)| {
            let scenario = call_scenario(dir, name, ulaw, *seconds);
            let dir = dir.to_path_buf();
            tokio::spawn(async move { sipp(&dir, port, &scenario, &["-timeout", "60"]).await })
        })
        .collect();
    for (task, (name, ..)) in tasks.into_iter().zip(calls) {
        assert_eq!(task.await.unwrap(), 0, "sipp completed the call of {name}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_clip_through_a_live_call_is_no_worse_than_a_whole_decode() {
    let models = models_dir();
    let (server, port) = sip_server(&[SPEECH]).await;
    let dir = common::scenario_dir();
    let clips = manifest();
    assert!(clips.len() >= 12, "the manifest lists the fixture clips");
    let mut calls = Vec::new();
    let mut audio = Vec::new();
    for clip in &clips {
        let (ulaw, samples) = telephone(dir.path(), &clip.wav, &clip.name);
        calls.push((clip.name.clone(), ulaw, clip.seconds));
        audio.push(samples);
    }
    place_calls(dir.path(), port, &calls).await;
    let records = ended_calls(&server, clips.len()).await;

    // The same model decoding each clip whole, with Whisper's full 30 s window.
    let whole_settings =
        AsrSettings { workers: 1, threads_per_worker: 2, audio_ctx_margin: 1500, ..AsrSettings::default() };
    let whole = Transcriber::start(&models.join(hark::speech::models::WHISPER_FILE), &whole_settings).unwrap();
    let (mut live_errors, mut whole_errors, mut total) = (0, 0, 0);
    println!("{:<42} {:>6} {:>6}  live transcript", "clip", "live", "whole");
    for (clip, samples) in clips.iter().zip(audio) {
        let record =
            &records.iter().find(|(name, _)| *name == clip.name).unwrap_or_else(|| panic!("call {}", clip.name)).1;
        let live_text = transcript(record);
        let request =
            Request { stream: (uuid::Uuid::nil(), 0), kind: Kind::Final, samples: Arc::from(samples), start_ms: 0 };
        let whole_text = whole.transcribe(request).await.unwrap().unwrap().text;
        let (live, n) = word_errors(&clip.reference, &live_text);
        let (whole, _) = word_errors(&clip.reference, &whole_text);
        println!(
            "{:<42} {:>5.1}% {:>5.1}%  {live_text:?} (whole: {whole_text:?})",
            clip.name,
            100.0 * live as f64 / n as f64,
            100.0 * whole as f64 / n as f64
        );
        for line in utterances(record) {
            assert_eq!(line["author"]["role"], "customer");
            assert_eq!(line["speech"]["speaker"], "customer");
        }
        live_errors += live;
        whole_errors += whole;
        total += n;
    }
    let (live_wer, whole_wer) = (live_errors as f64 / total as f64, whole_errors as f64 / total as f64);
    println!("overall WER: live {:.2}%, whole {:.2}% ({total} reference words)", 100.0 * live_wer, 100.0 * whole_wer);
    assert!(
        live_wer <= whole_wer + 0.01,
        "streaming WER {live_wer:.4} is more than a point worse than whole {whole_wer:.4}"
    );
    assert!(whole_wer < 0.25, "the model itself works: {whole_wer:.4}");
}

#[tokio::test(flavor = "multi_thread")]
async fn silence_and_noise_give_no_words() {
    models_dir();
    let (server, port) = sip_server(&[SPEECH]).await;
    let dir = common::scenario_dir();
    let mut calls = Vec::new();
    for (name, effect) in [
        ("silence", vec!["trim", "0", "6"]),
        ("white", vec!["synth", "6", "whitenoise", "vol", "0.1"]),
        ("pink", vec!["synth", "6", "pinknoise", "vol", "0.3"]),
        ("brown", vec!["synth", "6", "brownnoise", "vol", "0.5"]),
        ("hum", vec!["synth", "6", "sine", "50", "vol", "0.3"]),
    ] {
        let ulaw = format!("{name}.ulaw");
        let out = dir.path().join(&ulaw);
        let mut args = vec!["-n", "-r", "8000", "-c", "1", "-t", "ul", out.to_str().unwrap()];
        args.extend(effect);
        sox(&args);
        calls.push((name.to_string(), ulaw, 6.0));
    }
    place_calls(dir.path(), port, &calls).await;
    for (name, record) in ended_calls(&server, calls.len()).await {
        assert_eq!(transcript(&record), "", "{name} gave words");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watching_supervisor_gets_partials_then_the_final() {
    models_dir();
    let (server, port) = sip_server(&[SPEECH]).await;
    let dir = common::scenario_dir();
    let (mut supervisor, _) = server.supervisor(ADMIN).await;
    let call = tokio::spawn({
        let dir = dir.path().to_path_buf();
        async move { sipp(&dir, port, "uac_speech.xml", &[]).await }
    });
    let card = supervisor.recv_type("card").await["card"].clone();
    let session = card["session_id"].as_str().unwrap().to_string();
    supervisor.command(json!({"type": "watch", "session_id": session})).await;
    let (mut partials, mut finals) = (Vec::new(), Vec::new());
    let deadline = tokio::time::Instant::now() + WAIT * 4;
    while finals.iter().map(|f: &Value| f["text"].as_str().unwrap().len()).sum::<usize>() < 80 {
        let Some(frame) = supervisor.recv_within(deadline - tokio::time::Instant::now()).await else { break };
        match frame["type"].as_str() {
            Some("partial") => partials.push(frame),
            Some("message") if frame.get("speech").is_some() => finals.push(frame),
            _ => {}
        }
    }
    assert_eq!(call.await.unwrap(), 0);
    assert!(!partials.is_empty(), "partials arrive while the caller speaks");
    assert!(!finals.is_empty(), "finals arrive");
    let first = &partials[0];
    assert_eq!(first["session_id"], session);
    assert_eq!(first["speaker"], "customer");
    assert!(first["revision"].as_u64().unwrap() >= 1);
    let text: Vec<&str> = finals.iter().map(|f| f["text"].as_str().unwrap()).collect();
    let (errors, n) = word_errors(
        "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.",
        &text.join(" "),
    );
    assert!(errors * 10 <= n, "the finals say what JFK said: {text:?}");
    for f in &finals {
        let speech = &f["speech"];
        assert!(speech["end_ms"].as_u64() > speech["start_ms"].as_u64());
        assert!(!speech["words"].as_array().unwrap().is_empty());
        assert!(speech["emotion"].is_string() && speech["sentiment"].is_number(), "{f}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_two_party_call_has_the_right_speakers_and_times() {
    models_dir();
    let server = Server::start(&[SPEECH]).await;
    let mut ws = Ws::connect(&server.ws("/v1/stream/twilio"), &[]).await;
    ws.send(json!({"event": "connected", "protocol": "Call", "version": "1.0.0"})).await;
    ws.send(twilio_start("CA-two-party", Some(ADMIN))).await;
    twilio_send_live(&mut ws, 0..chunks(), 0).await;
    ws.send(json!({"event": "stop", "streamSid": "MZ1", "stop": {"accountSid": "AC1", "callSid": "CA-two-party"}}))
        .await;
    assert_eq!(ws.closed().await.0, 1000);
    let record = common::ended_call(&server, "CA-two-party").await;

    let turns = std::fs::read_to_string(common::fixtures().join("audio/call/turns.tsv")).unwrap();
    let turns: Vec<(String, f64, f64, String)> = turns
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with("total"))
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            let role = if c[0] == "caller" { "customer" } else { "agent" };
            (role.to_string(), c[1].parse().unwrap(), c[2].parse().unwrap(), c[3].to_string())
        })
        .collect();
    let lines = utterances(&record);
    println!(
        "{:#?}",
        lines
            .iter()
            .map(|l| (&l["speech"]["speaker"], &l["speech"]["start_ms"], &l["speech"]["end_ms"], &l["text"]))
            .collect::<Vec<_>>()
    );
    assert_eq!(lines.len(), turns.len(), "one utterance per turn");
    for (line, (role, start, end, reference)) in lines.iter().zip(&turns) {
        let speech = &line["speech"];
        assert_eq!(speech["speaker"], role.as_str(), "{line}");
        let (s, e) = (speech["start_ms"].as_f64().unwrap() / 1000.0, speech["end_ms"].as_f64().unwrap() / 1000.0);
        assert!((s - start).abs() <= 0.3, "{role} starts at {s:.3} s, turn at {start:.3} s");
        assert!((e - end).abs() <= 0.3, "{role} ends at {e:.3} s, turn at {end:.3} s");
        let (errors, n) = word_errors(reference, line["text"].as_str().unwrap());
        assert!(errors * 4 <= n, "{role}: {:?} for {reference:?}", line["text"]);
    }
    assert_eq!(lines[0]["author"]["role"], "agent");
    assert_eq!(lines[1]["author"]["role"], "customer");
}

#[test]
fn wer_normalises_case_punctuation_and_numbers() {
    assert_eq!(word_errors("Go forward ten meters", "go forward 10 meters."), (0, 4));
    assert_eq!(word_errors("one zero zero oh", "100 0"), (0, 4));
    assert_eq!(word_errors("Mister Quilter is", "Mr. Quilter is"), (0, 3));
    assert_eq!(word_errors("a b c", "a x c d"), (2, 3));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lone_decode_uses_the_idle_workers_threads_and_never_more_than_the_pool_has() {
    let model = models_dir().join(hark::speech::models::WHISPER_FILE);
    let samples: Arc<[f32]> = common::wav_samples(&common::fixtures().join("audio/jfk_ask_not.wav"))[..3 * 16_000]
        .iter()
        .map(|&s| f32::from(s) / 32768.0)
        .collect();
    let request =
        || Request { stream: (uuid::Uuid::nil(), 0), kind: Kind::Final, samples: samples.clone(), start_ms: 0 };
    let two = Transcriber::start(&model, &AsrSettings { workers: 2, threads_per_worker: 1, ..AsrSettings::default() });
    let alone = two.unwrap().transcribe(request()).await.unwrap().unwrap();
    assert_eq!(alone.threads, 2, "alone in an idle pool of 2 workers × 1 thread");
    assert!(alone.text.to_lowercase().contains("fellow americans"), "{}", alone.text);
    let one = Transcriber::start(&model, &AsrSettings { workers: 1, threads_per_worker: 1, ..AsrSettings::default() });
    assert_eq!(one.unwrap().transcribe(request()).await.unwrap().unwrap().threads, 1, "never more than the pool owns");
}
