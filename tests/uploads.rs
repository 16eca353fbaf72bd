//! `POST /v1/uploads` through the real binary: recorded calls (WAV, FLAC, Ogg Vorbis, Ogg Opus;
//! mono and stereo; one or a batch) become voice sessions that end with their transcript and call
//! record; what cannot be decoded is reported per file; the file count, size and auth are
//! enforced; a stop ends queued and running uploads with their records.
//!
//! Needs the model files (`hark models fetch`, run by `make test`) and sox.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{fixtures, manifest, models_dir, sox, transcript, utterances, word_errors, Server, ADMIN, SPEECH};
use serde_json::Value;

/// Longest wait for an upload (or a batch of them) to be transcribed.
const UPLOAD_WAIT: Duration = Duration::from_secs(300);

/// Posts an upload; returns the status, the content type and the JSON answer.
async fn upload(
    server: &Server,
    token: Option<&str>,
    files: &[(String, Vec<u8>)],
    fields: &[(&str, &str)],
) -> (u16, String, Value) {
    let (content_type, body) = common::multipart_form(files, fields);
    let mut request = reqwest::Client::new()
        .post(server.http("/v1/uploads"))
        .header("content-type", content_type)
        .timeout(Duration::from_secs(60))
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type =
        response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, content_type, response.json().await.unwrap_or(Value::Null))
}

/// A fixture clip's bytes, under its own name.
fn clip(name: &str) -> (String, Vec<u8>) {
    (name.to_string(), std::fs::read(fixtures().join("audio").join(name)).unwrap())
}

/// `wav` converted by sox to `name` (the extension picks the format) in `dir`.
fn converted(dir: &Path, wav: &Path, name: &str, extra: &[&str]) -> (String, Vec<u8>) {
    let out = dir.join(name);
    let mut args = vec![wav.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push(out.to_str().unwrap());
    sox(&args);
    (name.to_string(), std::fs::read(out).unwrap())
}

/// The session ids of the accepted files of an answer, in request order.
fn session_ids(answer: &Value) -> Vec<String> {
    answer["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["status"] == "accepted")
        .map(|f| f["session_id"].as_str().unwrap().to_string())
        .collect()
}

/// The records of `ids` once every one of them has ended.
async fn ended(server: &Server, ids: &[String]) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + UPLOAD_WAIT;
    let mut records = Vec::new();
    for id in ids {
        loop {
            let (status, record) = server.get(&format!("/v1/sessions/{id}"), ADMIN).await;
            assert_eq!(status, 200, "session {id}: {record}");
            if record["state"] == "ended" {
                records.push(record);
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "the upload of session {id} ends in time");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    records
}

/// Word error rate of a record's transcript against `reference`.
fn wer(reference: &str, record: &Value) -> f64 {
    let (errors, words) = word_errors(reference, &transcript(record));
    errors as f64 / words as f64
}

const JFK: &str =
    "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.";

#[tokio::test(flavor = "multi_thread")]
async fn a_wav_upload_becomes_a_finished_call_with_its_transcript() {
    models_dir();
    let server = Server::start(&[SPEECH]).await;
    let (status, _, answer) =
        upload(&server, Some(ADMIN), &[clip("jfk_ask_not.wav")], &[("phone", "+1 555 0100"), ("category", "billing")])
            .await;
    assert_eq!(status, 202, "{answer}");
    let file = &answer["files"][0];
    assert_eq!(file["file"], "jfk_ask_not.wav");
    assert_eq!(file["status"], "accepted");
    assert_eq!((file["format"].as_str(), file["codec"].as_str()), (Some("wave"), Some("pcm_s16le")));
    assert_eq!((file["sample_rate"].as_u64(), file["channels"].as_u64()), (Some(16_000), Some(1)));
    assert!((file["seconds"].as_f64().unwrap() - 11.0).abs() < 0.01, "{file}");
    assert_eq!(file["speakers"], serde_json::json!(["customer"]));

    let record = &ended(&server, &session_ids(&answer)).await[0];
    assert_eq!(record["channel"], "voice");
    assert_eq!(record["site"], "upload");
    let call = &record["call"];
    assert_eq!(call["source"], "upload");
    assert_eq!(call["external_id"], "jfk_ask_not.wav");
    assert_eq!(call["from"]["number"], "+1 555 0100");
    assert_eq!(call["to"]["name"], "billing");
    assert_eq!(call["trunk"], "admin", "the account that uploaded it");
    assert_eq!(call["hangup_cause"], "upload complete");
    let stream = &call["streams"][0];
    assert_eq!(stream["role"], "customer");
    assert!((stream["recorded_secs"].as_f64().unwrap() - 11.0).abs() < 0.05, "the whole file is recorded: {stream}");
    let text = transcript(record);
    println!("jfk_ask_not.wav: {text:?}");
    assert!(wer(JFK, record) <= 0.10, "the transcript says what JFK said: {text:?}");
    for line in utterances(record) {
        assert_eq!(line["author"]["role"], "customer");
        assert!(line["speech"]["end_ms"].as_u64() > line["speech"]["start_ms"].as_u64());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn flac_vorbis_and_opus_uploads_are_transcribed_too() {
    models_dir();
    let server = Server::start(&[SPEECH]).await;
    let dir = tempfile::tempdir().unwrap();
    let jfk = fixtures().join("audio/jfk_ask_not.wav");
    // FLAC at 44.1 kHz, Vorbis at 22.05 kHz, Opus (48 kHz) as hark writes its own recordings:
    // all also go through the resampler.
    let mut opus = hark::ingest::recording::OggOpusWriter::new(Vec::new()).unwrap();
    opus.write(&common::wav_samples(&jfk)).unwrap();
    let files = [
        converted(dir.path(), &jfk, "jfk.flac", &["-r", "44100"]),
        converted(dir.path(), &jfk, "jfk.ogg", &["-r", "22050"]),
        ("jfk.opus".to_string(), opus.finish().unwrap()),
    ];
    let (status, _, answer) = upload(&server, Some(ADMIN), &files, &[]).await;
    assert_eq!(status, 202, "{answer}");
    let described: Vec<(&str, &str, u64)> = answer["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["format"].as_str().unwrap(), f["codec"].as_str().unwrap(), f["sample_rate"].as_u64().unwrap()))
        .collect();
    assert_eq!(described, [("flac", "flac", 44_100), ("ogg", "vorbis", 22_050), ("ogg", "opus", 48_000)]);
    for (record, (name, _)) in ended(&server, &session_ids(&answer)).await.iter().zip(&files) {
        println!("{name}: {:?}", transcript(record));
        assert_eq!(record["call"]["external_id"], name.as_str());
        assert_eq!(record["call"]["hangup_cause"], "upload complete");
        assert!(wer(JFK, record) <= 0.10, "{name}: {:?}", transcript(record));
        let secs = record["call"]["streams"][0]["recorded_secs"].as_f64().unwrap();
        assert!((secs - 11.0).abs() < 0.05, "{name}: {secs} s recorded");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stereo_upload_is_the_agent_on_the_left_unless_the_form_says_the_customer() {
    models_dir();
    let server = Server::start(&[SPEECH]).await;
    let dir = tempfile::tempdir().unwrap();
    let call = fixtures().join("audio/call");
    let turns = std::fs::read_to_string(call.join("turns.tsv")).unwrap();
    let turns: Vec<(&str, f64, &str)> = turns
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with("total"))
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            (if c[0] == "caller" { "customer" } else { "agent" }, c[1].parse().unwrap(), c[3])
        })
        .collect();
    for (left, right, form, roles) in [
        ("agent.wav", "caller.wav", vec![], ["agent", "customer"]),
        ("caller.wav", "agent.wav", vec![("left_channel", "customer")], ["customer", "agent"]),
    ] {
        let stereo = dir.path().join(format!("{left}-left.wav"));
        sox(&["-M", call.join(left).to_str().unwrap(), call.join(right).to_str().unwrap(), stereo.to_str().unwrap()]);
        let file = ("call.wav".to_string(), std::fs::read(&stereo).unwrap());
        let (status, _, answer) = upload(&server, Some(ADMIN), &[file], &form).await;
        assert_eq!(status, 202, "{answer}");
        assert_eq!(answer["files"][0]["speakers"], serde_json::json!(roles));
        let record = &ended(&server, &session_ids(&answer)).await[0];
        let streams: Vec<&str> =
            record["call"]["streams"].as_array().unwrap().iter().map(|s| s["role"].as_str().unwrap()).collect();
        assert_eq!(streams, roles);

        let lines = utterances(record);
        for line in &lines {
            println!("{} {} {:?}", line["speech"]["speaker"], line["speech"]["start_ms"], line["text"]);
        }
        assert_eq!(lines.len(), turns.len(), "one utterance per turn");
        for (line, (role, start, reference)) in lines.iter().zip(&turns) {
            assert_eq!(line["speech"]["speaker"], *role, "{line}");
            assert_eq!(line["author"]["role"], *role, "{line}");
            let s = line["speech"]["start_ms"].as_f64().unwrap() / 1000.0;
            assert!((s - start).abs() <= 0.3, "{role} starts at {s:.3} s, the turn at {start:.3} s");
            let (errors, n) = word_errors(reference, line["text"].as_str().unwrap());
            assert!(errors * 4 <= n, "{role}: {:?} for {reference:?}", line["text"]);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_of_three_is_three_sessions() {
    models_dir();
    let server = Server::start(&[SPEECH]).await;
    let files =
        [clip("timit_ldc93s1_dark_suit.wav"), clip("cmu_arctic_a0024.wav"), clip("pocketsphinx_go_forward.wav")];
    let (status, _, answer) = upload(&server, Some(ADMIN), &files, &[("category", "sales")]).await;
    assert_eq!(status, 202, "{answer}");
    let ids = session_ids(&answer);
    assert_eq!(ids.len(), 3, "{answer}");
    assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2]);
    for ((record, (name, _)), id) in ended(&server, &ids).await.iter().zip(&files).zip(&ids) {
        assert_eq!(record["session_id"], id.as_str());
        assert_eq!(record["call"]["external_id"], name.as_str());
        assert_eq!(record["call"]["to"]["name"], "sales");
        assert_eq!(record["call"]["hangup_cause"], "upload complete");
        assert!(!transcript(record).is_empty(), "{name} has a transcript");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn what_cannot_be_decoded_is_reported_and_the_rest_still_goes() {
    models_dir();
    let server = Server::start(&[SPEECH]).await;
    let garbage: Vec<u8> = (0..100_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
    let files = [("garbage.wav".to_string(), garbage.clone()), clip("timit_ldc93s1_dark_suit.wav")];
    let (status, _, answer) = upload(&server, Some(ADMIN), &files, &[]).await;
    assert_eq!(status, 202, "{answer}");
    let bad = &answer["files"][0];
    assert_eq!((bad["file"].as_str(), bad["status"].as_str()), (Some("garbage.wav"), Some("undecodable")), "{answer}");
    assert!(bad["error"].as_str().unwrap().contains("not audio"), "{bad}");
    assert!(bad.get("session_id").is_none());
    let good = &ended(&server, &session_ids(&answer)).await[0];
    assert_eq!(good["call"]["external_id"], "timit_ldc93s1_dark_suit.wav");
    assert_eq!(good["call"]["hangup_cause"], "upload complete");

    // Nothing decodable at all: 422, naming the file and why.
    let (status, content_type, problem) =
        upload(&server, Some(ADMIN), &[("notes.txt".to_string(), b"not a recording".to_vec())], &[]).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(content_type, "application/problem+json");
    assert!(problem["detail"].as_str().unwrap().starts_with("notes.txt: not audio"), "{problem}");
    let (_, finished) = server.get("/v1/sessions?state=ended", ADMIN).await;
    assert_eq!(finished.as_array().unwrap().len(), 1, "only the decodable file became a session");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_are_refused_with_problem_json() {
    let server = Server::start(&[("HARK_UPLOADS_MAX_REQUEST_BYTES", "300000")]).await;
    let tiny = clip("pocketsphinx_go_forward.wav");
    assert!(tiny.1.len() < 100_000);

    // No token, or an unknown one: 401 before anything is read.
    for token in [None, Some("hark_nope")] {
        let (status, content_type, problem) = upload(&server, token, std::slice::from_ref(&tiny), &[]).await;
        assert_eq!(status, 401, "{problem}");
        assert_eq!(content_type, "application/problem+json");
    }

    // 21 files: 400 naming the limit.
    let many: Vec<(String, Vec<u8>)> = (0..21).map(|i| (format!("{i}.wav"), tiny.1[..2_000].to_vec())).collect();
    let (status, content_type, problem) = upload(&server, Some(ADMIN), &many, &[]).await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(content_type, "application/problem+json");
    assert!(problem["detail"].as_str().unwrap().contains("at most 20 files"), "{problem}");

    // Over the size limit: 413.
    let big: Vec<(String, Vec<u8>)> = (0..4).map(|i| (format!("{i}.wav"), tiny.1.clone())).collect();
    let (status, content_type, problem) = upload(&server, Some(ADMIN), &big, &[]).await;
    assert_eq!(status, 413, "{problem}");
    assert_eq!(content_type, "application/problem+json");
    assert!(problem["detail"].as_str().unwrap().contains("300000 bytes"), "{problem}");

    // No file, an unknown field, a phone that is not one, not a form at all: 400.
    for (files, fields, says) in [
        (vec![], vec![("phone", "+15550100")], "no file"),
        (vec![tiny.clone()], vec![("files", "x")], "unknown form field"),
        (vec![tiny.clone()], vec![("phone", "call me")], "not a phone number"),
        (vec![tiny.clone()], vec![("left_channel", "right")], "must be agent or customer"),
    ] {
        let (status, _, problem) = upload(&server, Some(ADMIN), &files, &fields).await;
        assert_eq!(status, 400, "{problem}");
        assert!(problem["detail"].as_str().unwrap().contains(says), "{says}: {problem}");
    }
    let response = reqwest::Client::new()
        .post(server.http("/v1/uploads"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"file": "jfk.wav"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    // None of it opened a session.
    for state in ["live", "ended"] {
        let (_, sessions) = server.get(&format!("/v1/sessions?state={state}"), ADMIN).await;
        assert_eq!(sessions.as_array().unwrap().len(), 0, "{state}: {sessions}");
    }
    // The route is in the OpenAPI description.
    let (_, openapi) = server.get("/v1/openapi.json", ADMIN).await;
    assert!(openapi["paths"]["/v1/uploads"]["post"].is_object());
}

/// The issue's figure: every single-speaker fixture clip through an upload, as one batch.
#[tokio::test(flavor = "multi_thread")]
async fn every_fixture_clip_uploaded_as_a_batch_has_a_low_word_error_rate() {
    models_dir();
    let server = Server::start(&[SPEECH]).await;
    let clips = manifest();
    assert!(clips.len() >= 12, "the manifest lists the fixture clips");
    let files: Vec<(String, Vec<u8>)> = clips
        .iter()
        .map(|c| (c.wav.file_name().unwrap().to_str().unwrap().to_string(), std::fs::read(&c.wav).unwrap()))
        .collect();
    let started = std::time::Instant::now();
    let (status, _, answer) = upload(&server, Some(ADMIN), &files, &[]).await;
    assert_eq!(status, 202, "{answer}");
    let ids = session_ids(&answer);
    assert_eq!(ids.len(), clips.len(), "{answer}");
    let records = ended(&server, &ids).await;
    let seconds: f64 = clips.iter().map(|c| c.seconds).sum();
    let (mut errors, mut total) = (0, 0);
    println!("{:<42} {:>6}  transcript", "clip", "WER");
    for (clip, record) in clips.iter().zip(&records) {
        assert_eq!(record["call"]["hangup_cause"], "upload complete");
        let text = transcript(record);
        let (e, n) = word_errors(&clip.reference, &text);
        println!("{:<42} {:>5.1}%  {text:?}", clip.name, 100.0 * e as f64 / n as f64);
        errors += e;
        total += n;
    }
    let overall = errors as f64 / total as f64;
    println!(
        "overall WER {:.2}% ({errors} errors in {total} reference words); {seconds:.1} s of audio in {:.1} s",
        100.0 * overall,
        started.elapsed().as_secs_f64()
    );
    assert!(overall <= 0.10, "overall WER {overall:.4}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stop_ends_waiting_and_running_uploads_with_their_records() {
    models_dir();
    let mut server = Server::start(&[SPEECH]).await;
    let files =
        [clip("librivox_sense_sensibility_0870.wav"), clip("picovoice_3speakers_pauses.wav"), clip("jfk_ask_not.wav")];
    let (status, _, answer) = upload(&server, Some(ADMIN), &files, &[]).await;
    assert_eq!(status, 202, "{answer}");
    let ids = session_ids(&answer);
    server.stop().await;
    server.restart().await;
    let mut interrupted = 0;
    for record in ended(&server, &ids).await {
        let cause = record["call"]["hangup_cause"].as_str().unwrap().to_string();
        assert!(cause == "upload complete" || cause.starts_with("interrupted: hark stopped"), "{cause}");
        interrupted += usize::from(cause != "upload complete");
        assert_eq!(record["end_reason"], "hangup", "each upload ended its own call: {cause}");
        assert!(record["call"]["streams"][0]["recording"].is_string());
    }
    assert!(interrupted > 0, "the stop came before the last file was transcribed");
}
