//! Streaming ingest through real sockets: a client of each protocol (Twilio Media Streams,
//! jambonz, mod_audio_fork, Asterisk AudioSocket) streams the two-party call fixture faster
//! than real time; the call's recordings match the fixture at 16 kHz. Also: a reconnect within
//! the grace continues the same session, a lost stream ends after it, and garbage closes the
//! connection cleanly while the server keeps serving.

mod common;

use std::time::Duration;

use common::{
    best_correlation, call_fixture, chunks, ended_call, recording_samples, twilio_media, twilio_send, twilio_start,
    wav_samples, Server, Ws, ADMIN, CHUNK, WAIT,
};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

/// Search the lag within ±100 ms at 16 kHz.
const MAX_LAG: usize = 1600;

/// The fixture at 16 kHz by linear interpolation: the reference, independent of hark's resampler.
fn upsampled(name: &str) -> Vec<i16> {
    let x = wav_samples(&call_fixture(name));
    let mut out = Vec::with_capacity(2 * x.len());
    for (i, &s) in x.iter().enumerate() {
        out.push(s);
        let next = x.get(i + 1).copied().unwrap_or(s);
        out.push(((i32::from(s) + i32::from(next)) / 2) as i16);
    }
    out
}

fn le_bytes(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

/// The live voice session of `source`, waiting for it to appear.
async fn live_session(server: &Server, source: &str) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, live) = server.get("/v1/sessions?state=live", ADMIN).await;
        if let Some(card) = live.as_array().unwrap().iter().find(|c| c["site"] == source && c["channel"] == "voice") {
            return card["session_id"].as_str().unwrap().to_string();
        }
        assert!(tokio::time::Instant::now() < deadline, "no live {source} call");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Checks the recording of `stream` against the fixture `wav`; returns the correlation.
async fn matches_fixture(server: &Server, stream: &Value, role: &str, wav: &str, label: &str) -> f64 {
    assert_eq!(stream["role"], role, "{stream}");
    let recorded = recording_samples(server, stream).await;
    let reference = upsampled(wav);
    let (lag, correlation) = best_correlation(&recorded, &reference, MAX_LAG);
    println!(
        "{label} {role}: correlation {correlation:.4} at lag {lag} samples; {:.2} s recorded, {:.2} s reference",
        recorded.len() as f64 / 16_000.0,
        reference.len() as f64 / 16_000.0
    );
    assert!(correlation > 0.9, "{label} {role}: {correlation} at lag {lag}");
    assert!(lag.abs() <= 32, "{label} {role}: audio placed {lag} samples off");
    correlation
}

#[tokio::test]
async fn twilio_media_stream_of_both_tracks() {
    let server = Server::start(&[]).await;
    // Twilio sends no headers and no query: the token comes as a custom parameter.
    let mut ws = Ws::connect(&server.ws("/v1/stream/twilio"), &[]).await;
    ws.send(json!({"event": "connected", "protocol": "Call", "version": "1.0.0"})).await;
    ws.send(twilio_start("CA-both-tracks", Some(ADMIN))).await;
    live_session(&server, "twilio").await;
    twilio_send(&mut ws, 0..chunks(), 0).await;
    ws.send(json!({"event": "mark", "streamSid": "MZ1", "mark": {"name": "m"}})).await;
    ws.send(json!({"event": "dtmf", "streamSid": "MZ1", "dtmf": {"track": "inbound_track", "digit": "5"}})).await;
    ws.send(json!({"event": "stop", "streamSid": "MZ1", "stop": {"accountSid": "AC1", "callSid": "CA-both-tracks"}}))
        .await;
    assert_eq!(ws.closed().await, (1000, "stream stopped".into()));

    let record = ended_call(&server, "CA-both-tracks").await;
    let call = &record["call"];
    assert_eq!((call["source"].as_str(), call["hangup_cause"].as_str()), (Some("twilio"), Some("stream stopped")));
    assert_eq!((call["trunk"].as_str(), call["codec"].as_str()), (Some("AC1"), Some("PCMU")));
    assert_eq!(call["from"]["number"], "+15550100");
    let streams = call["streams"].as_array().unwrap();
    assert_eq!(streams[0]["stats"]["packets"], chunks() as u64);
    assert_eq!(streams[1]["stats"]["lost"], 0);
    matches_fixture(&server, &streams[0], "customer", "caller.wav", "twilio").await;
    matches_fixture(&server, &streams[1], "agent", "agent.wav", "twilio").await;
    let metrics = server.metrics().await;
    assert!(
        metrics.contains(&format!("hark_stream_frames_total{{protocol=\"twilio\"}} {}", 2 * chunks() + 5)),
        "{metrics}"
    );
}

#[tokio::test]
async fn jambonz_stereo_listen() {
    let server = Server::start(&[]).await;
    let bearer = format!("Bearer {ADMIN}");
    let headers = [("Authorization", bearer.as_str()), ("Sec-WebSocket-Protocol", "audio.jambonz.org")];
    let mut ws = Ws::connect(&server.ws("/v1/stream/jambonz"), &headers).await;
    ws.send(json!({"callSid": "js-stereo", "direction": "inbound", "from": "+15550100", "to": "+15550199",
                   "accountSid": "acct-1", "sampleRate": 8000, "mixType": "stereo"}))
        .await;
    let (caller, agent) = (wav_samples(&call_fixture("caller.wav")), wav_samples(&call_fixture("agent.wav")));
    let interleaved: Vec<i16> = caller.iter().zip(&agent).flat_map(|(&c, &a)| [c, a]).collect();
    // Frames of 20 ms, one cut mid-sample to show it does not matter.
    let bytes = le_bytes(&interleaved);
    for frame in bytes.chunks(4 * CHUNK - 1) {
        ws.send_raw(Message::Binary(frame.to_vec().into())).await;
    }
    // jambonz ends listen by closing the socket.
    ws.send_raw(Message::Close(None)).await;
    ws.closed().await;

    let record = ended_call(&server, "js-stereo").await;
    let call = &record["call"];
    assert_eq!((call["source"].as_str(), call["hangup_cause"].as_str()), (Some("jambonz"), Some("stream stopped")));
    assert_eq!((call["trunk"].as_str(), call["codec"].as_str()), (Some("acct-1"), Some("L16/8000")));
    let streams = call["streams"].as_array().unwrap();
    matches_fixture(&server, &streams[0], "customer", "caller.wav", "jambonz").await;
    matches_fixture(&server, &streams[1], "agent", "agent.wav", "jambonz").await;
}

#[tokio::test]
async fn audio_fork_mono_at_16k() {
    let server = Server::start(&[]).await;
    let url = server.ws(&format!("/v1/stream/audio_fork?access_token={ADMIN}&sample_rate=16000&mix_type=mono"));
    let mut ws = Ws::connect(&url, &[("Sec-WebSocket-Protocol", "audiostream.drachtio.org")]).await;
    ws.send(json!({"uuid": "fs-mono-16k", "caller": "1000", "callee": "1002"})).await;
    for frame in le_bytes(&upsampled("caller.wav")).chunks(640) {
        ws.send_raw(Message::Binary(frame.to_vec().into())).await;
    }
    ws.send_raw(Message::Close(None)).await;
    ws.closed().await;

    let record = ended_call(&server, "fs-mono-16k").await;
    let call = &record["call"];
    assert_eq!((call["source"].as_str(), call["codec"].as_str()), (Some("audio_fork"), Some("L16/16000")));
    assert_eq!(call["to"]["number"], "1002");
    let streams = call["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 1);
    // 16 kHz passes through unresampled (exact in the unit tests); the stored recording is Opus.
    matches_fixture(&server, &streams[0], "customer", "caller.wav", "audio_fork").await;
}

fn audiosocket_frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![kind];
    frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// A hark with its AudioSocket listener on a free port, and `env`.
async fn audiosocket_server(env: &[(&str, &str)]) -> (Server, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let mut env = env.to_vec();
    env.push(("HARK_AUDIOSOCKET_ADDR", &addr));
    (Server::start(&env).await, port)
}

/// Reads until the server closes the connection.
async fn until_closed(tcp: &mut tokio::net::TcpStream) {
    let mut buf = [0u8; 64];
    loop {
        match tokio::time::timeout(WAIT, tcp.read(&mut buf)).await.expect("the server closes in time") {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

#[tokio::test]
async fn asterisk_audiosocket() {
    let (server, port) = audiosocket_server(&[]).await;
    let id = uuid::Uuid::new_v4();
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    tcp.write_all(&audiosocket_frame(0x01, id.as_bytes())).await.unwrap();
    for samples in wav_samples(&call_fixture("caller.wav")).chunks(CHUNK) {
        tcp.write_all(&audiosocket_frame(0x10, &le_bytes(samples))).await.unwrap();
    }
    tcp.write_all(&audiosocket_frame(0x03, b"7")).await.unwrap();
    tcp.write_all(&audiosocket_frame(0x00, &[])).await.unwrap();
    until_closed(&mut tcp).await;

    let record = ended_call(&server, &id.to_string()).await;
    let call = &record["call"];
    assert_eq!((call["source"].as_str(), call["hangup_cause"].as_str()), (Some("audiosocket"), Some("stream stopped")));
    assert_eq!(call["trunk"], "127.0.0.1");
    let streams = call["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 1);
    matches_fixture(&server, &streams[0], "customer", "caller.wav", "audiosocket").await;
}

#[tokio::test]
async fn a_reconnect_within_the_grace_continues_the_same_session() {
    let server = Server::start(&[]).await;
    let url = server.ws(&format!("/v1/stream/twilio?access_token={ADMIN}"));
    let half = chunks() / 2;
    let mut first = Ws::connect(&url, &[]).await;
    first.send(twilio_start("CA-reconnect", None)).await;
    let session = live_session(&server, "twilio").await;
    twilio_send(&mut first, 0..half, 0).await;
    // Wait until the server has read everything, then lose the connection without a stop.
    let deadline = tokio::time::Instant::now() + WAIT;
    while !server.metrics().await.contains(&format!("hark_stream_frames_total{{protocol=\"twilio\"}} {}", 2 * half + 1))
    {
        assert!(tokio::time::Instant::now() < deadline, "frames arrive");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.drop_connection();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(live_session(&server, "twilio").await, session, "the call waits, still live");

    // A new stream of the same call: its timestamps start again at 0.
    let mut second = Ws::connect(&url, &[]).await;
    second.send(twilio_start("CA-reconnect", None)).await;
    twilio_send(&mut second, half..chunks(), half).await;
    second.send(json!({"event": "stop", "streamSid": "MZ2"})).await;
    assert_eq!(second.closed().await, (1000, "stream stopped".into()));

    let record = ended_call(&server, "CA-reconnect").await;
    assert_eq!(record["session_id"], session, "the same session");
    assert_eq!(record["call"]["hangup_cause"], "stream stopped");
    let (_, ended) = server.get("/v1/sessions?state=ended", ADMIN).await;
    assert_eq!(ended.as_array().unwrap().len(), 1, "one call, not two");
    let stream = &record["call"]["streams"][0];
    assert_eq!(stream["stats"]["packets"], chunks() as u64, "both connections' media in one stream");
    let secs = stream["recorded_secs"].as_f64().unwrap();
    assert!((16.8..18.5).contains(&secs), "the whole call plus the time it was parked: {secs}");
    // Each half matches its part of the fixture.
    let recorded = recording_samples(&server, stream).await;
    let reference = upsampled("caller.wav");
    let cut = half * 2 * CHUNK;
    let (lag, c1) = best_correlation(&recorded[..cut], &reference[..cut], MAX_LAG);
    println!("reconnect: first connection correlation {c1:.4} at lag {lag}");
    // The second connection's audio lies later by the time the call was parked.
    let parked = recorded.len() - reference.len();
    let (lag, c2) = best_correlation(&recorded[cut + parked..], &reference[cut..], MAX_LAG);
    println!("reconnect: second connection correlation {c2:.4} at lag {lag} after {parked} samples parked");
    assert!(c1 > 0.9 && c2 > 0.9, "{c1} {c2}");
    assert!(server.metrics().await.contains("hark_stream_resumes_total{protocol=\"twilio\"} 1"));
}

#[tokio::test]
async fn a_stream_lost_for_the_whole_grace_ends_the_call() {
    let server = Server::start(&[("HARK_STREAMS_RECONNECT_GRACE_SECS", "1")]).await;
    let url = server.ws(&format!("/v1/stream/jambonz?access_token={ADMIN}"));
    let mut ws = Ws::connect(&url, &[]).await;
    ws.send(json!({"callSid": "js-lost", "sampleRate": 8000, "mixType": "mono"})).await;
    ws.send_raw(Message::Binary(le_bytes(&wav_samples(&call_fixture("caller.wav"))[..8_000]).into())).await;
    live_session(&server, "jambonz").await;
    ws.drop_connection();
    let record = ended_call(&server, "js-lost").await;
    assert_eq!(record["call"]["hangup_cause"], "stream lost");
    assert!((record["call"]["streams"][0]["recorded_secs"].as_f64().unwrap() - 1.0).abs() < 0.05);
}

#[tokio::test]
async fn garbage_closes_cleanly_and_the_server_keeps_serving() {
    let (server, port) =
        audiosocket_server(&[("HARK_STREAMS_MAX_FRAME_BYTES", "4096"), ("HARK_STREAMS_START_TIMEOUT_SECS", "1")]).await;
    let token = format!("access_token={ADMIN}");

    // No token: the L16 protocols refuse the upgrade; Twilio closes at a start without one.
    assert_eq!(Ws::try_connect(&server.ws("/v1/stream/jambonz"), &[]).await.err(), Some(401));
    let mut ws = Ws::connect(&server.ws("/v1/stream/twilio"), &[]).await;
    ws.send(twilio_start("CA-no-token", None)).await;
    assert_eq!(ws.closed().await.0, 4401);
    let mut ws = Ws::connect(&server.ws("/v1/stream/twilio"), &[]).await;
    ws.send(twilio_start("CA-bad-token", Some("nope"))).await;
    assert_eq!(ws.closed().await, (4401, "unknown bearer token".into()));

    let cases: Vec<(&str, Message, u16, &str)> = vec![
        ("twilio", Message::Text("garbage".into()), 4400, "malformed event"),
        ("twilio", Message::Binary(vec![1, 2, 3].into()), 1003, "text frames only"),
        ("twilio", Message::Text(twilio_media("inbound", 0, 0, &[0xff]).to_string().into()), 4400, "expected start"),
        ("jambonz", Message::Binary(vec![0; 640].into()), 4400, "before the metadata"),
        ("jambonz", Message::Text("[1]".into()), 4400, "JSON object"),
        ("audio_fork", Message::Text(json!({"caller": "x"}).to_string().into()), 4400, "no call id"),
        ("audio_fork", Message::Text("x".repeat(5000).into()), 1009, "exceeds 4096"),
    ];
    for (protocol, message, code, reason) in cases {
        let mut ws = Ws::connect(&server.ws(&format!("/v1/stream/{protocol}?{token}")), &[]).await;
        ws.send_raw(message).await;
        let (got, why) = ws.closed().await;
        assert_eq!(got, code, "{protocol}: {why}");
        assert!(why.contains(reason), "{protocol}: {why}");
    }
    // Nothing at all: the start timeout.
    let mut ws = Ws::connect(&server.ws(&format!("/v1/stream/jambonz?{token}")), &[]).await;
    assert_eq!(ws.closed().await, (4408, "no start within 1 s".into()));
    // Garbage mid-stream closes too (the call waits for a reconnect like any lost stream).
    let mut ws = Ws::connect(&server.ws(&format!("/v1/stream/twilio?{token}")), &[]).await;
    ws.send(twilio_start("CA-garbage", None)).await;
    ws.send(twilio_media("inbound", 0, 0, &[0xff; 160])).await;
    ws.send(json!({"event": "media", "media": {"track": "inbound", "timestamp": "20", "payload": "%%%"}})).await;
    let (code, why) = ws.closed().await;
    assert_eq!(code, 4400, "{why}");
    // The same call id on a second connection while the first holds it.
    let mut holder = Ws::connect(&server.ws(&format!("/v1/stream/twilio?{token}")), &[]).await;
    holder.send(twilio_start("CA-busy", None)).await;
    live_session(&server, "twilio").await;
    let mut other = Ws::connect(&server.ws(&format!("/v1/stream/twilio?{token}")), &[]).await;
    other.send(twilio_start("CA-busy", None)).await;
    assert_eq!(other.closed().await.0, 4409);

    // AudioSocket: audio before the UUID, an unknown kind, a cut frame: the TCP connection closes.
    for bytes in [audiosocket_frame(0x10, &[0; 320]), audiosocket_frame(0x42, &[1]), audiosocket_frame(0x01, &[1, 2])] {
        let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        tcp.write_all(&bytes).await.unwrap();
        until_closed(&mut tcp).await;
    }

    // Still serving: a clean Twilio call goes through.
    let (status, _) = server.get("/readyz", ADMIN).await;
    assert_eq!(status, 200);
    let mut ws = Ws::connect(&server.ws(&format!("/v1/stream/twilio?{token}")), &[]).await;
    ws.send(twilio_start("CA-after", None)).await;
    twilio_send(&mut ws, 0..50, 0).await;
    ws.send(json!({"event": "stop"})).await;
    assert_eq!(ws.closed().await.0, 1000);
    assert_eq!(ended_call(&server, "CA-after").await["call"]["hangup_cause"], "stream stopped");
    let metrics = server.metrics().await;
    assert!(metrics.contains("hark_stream_errors_total{protocol=\"audiosocket\"} 3"), "{metrics}");
}
