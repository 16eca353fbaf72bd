//! SIP interop with sipp (Debian `sip-tester`) and the shared fixtures: a real call with G.711
//! RTP appears live, its decoded 16 kHz audio matches the clip, BYE persists the record; also
//! OPTIONS, CANCEL before answer, 488 for an unsupported codec, 403 outside the allowlist, and
//! SIP over TCP.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{best_correlation, fixtures, free_udp_tcp_port, wav_samples, Server, ADMIN};
use serde_json::Value;

/// A hark with SIP on a free port and its own RTP port block.
async fn sip_server(extra: &[(&str, &str)]) -> (Server, u16) {
    let port = free_udp_tcp_port();
    let rtp_min = 20000 + (port % 200) * 100;
    let (addr, min, max) = (format!("127.0.0.1:{port}"), rtp_min.to_string(), (rtp_min + 98).to_string());
    let mut env: Vec<(&str, &str)> =
        vec![("HARK_SIP_ADDR", &addr), ("HARK_SIP_RTP_PORT_MIN", &min), ("HARK_SIP_RTP_PORT_MAX", &max)];
    env.extend_from_slice(extra);
    (Server::start(&env).await, port)
}

/// A working directory with the sipp scenarios and audio (sipp resolves audio paths against it
/// and may write logs there; the shared fixtures are read-only).
fn scenario_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixtures().join("sip")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    for file in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sip")).unwrap() {
        let path = file.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    dir
}

/// Runs sipp as a UAC against hark; returns its exit status code.
async fn sipp(dir: &Path, port: u16, scenario: &str, extra: &[&str]) -> i32 {
    let media_port = (free_udp_tcp_port() & !1).to_string();
    let local_port = free_udp_tcp_port().to_string();
    let mut args = vec![
        format!("127.0.0.1:{port}"),
        "-sf".into(),
        scenario.into(),
        "-i".into(),
        "127.0.0.1".into(),
        "-p".into(),
        local_port,
        "-mi".into(),
        "127.0.0.1".into(),
        "-mp".into(),
        media_port,
        "-s".into(),
        "speech".into(),
        "-m".into(),
        "1".into(),
        "-timeout".into(),
        "30".into(),
        "-timeout_error".into(),
        "-nostdin".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let dir: PathBuf = dir.into();
    tokio::task::spawn_blocking(move || {
        let status = Command::new("sipp")
            .args(&args)
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .status()
            .expect("sipp is installed (apt-get install sip-tester)");
        status.code().unwrap_or(-1)
    })
    .await
    .unwrap()
}

/// The newest ended voice session's record.
async fn last_call(server: &Server) -> Value {
    let (_, ended) = server.get("/v1/sessions?state=ended", ADMIN).await;
    let card = ended.as_array().unwrap().iter().find(|c| c["channel"] == "voice").expect("a finished call").clone();
    let (status, record) = server.get(&format!("/v1/sessions/{}", card["session_id"].as_str().unwrap()), ADMIN).await;
    assert_eq!(status, 200);
    record
}

async fn the_jfk_call(transport: &[&str]) {
    let (server, port) = sip_server(&[]).await;
    let dir = scenario_dir();
    let (mut supervisor, _) = server.supervisor(ADMIN).await;
    let call = tokio::spawn({
        let dir = dir.path().to_path_buf();
        let transport: Vec<String> = transport.iter().map(|s| s.to_string()).collect();
        async move {
            let transport: Vec<&str> = transport.iter().map(String::as_str).collect();
            sipp(&dir, port, "uac_speech.xml", &transport).await
        }
    });
    // The call appears live while it lasts.
    let card = supervisor.recv_type("card").await["card"].clone();
    assert_eq!(card["channel"], "voice");
    assert_eq!(card["state"], "live");
    let (_, live) = server.get("/v1/sessions?state=live", ADMIN).await;
    assert_eq!(live[0]["channel"], "voice");
    assert_eq!(call.await.unwrap(), 0, "sipp completed the call");

    let ended = supervisor.recv_type("ended").await;
    assert_eq!(ended["reason"], "hangup");
    let record = last_call(&server).await;
    let call = &record["call"];
    assert_eq!(call["source"], "sip");
    assert_eq!(call["hangup_cause"], "caller hung up");
    assert_eq!(call["codec"], "PCMU");
    assert_eq!(call["from"]["name"], "speech-fixture");
    let stream = &call["streams"][0];
    assert_eq!(stream["role"], "customer");
    assert_eq!(stream["stats"]["packets"], 550, "{stream}");
    assert_eq!(stream["stats"]["lost"], 0);
    assert!(record["duration_secs"].as_i64().unwrap() >= 11, "{record}");

    let recording = server.data_dir.path().join("recordings").join(stream["recording"].as_str().unwrap());
    let decoded = wav_samples(&recording);
    let reference = wav_samples(&fixtures().join("audio/jfk_ask_not.wav"));
    let (lag, correlation) = best_correlation(&decoded, &reference, 4000);
    println!("jfk over SIP {transport:?}: correlation {correlation:.4} at lag {lag} samples");
    assert!(correlation > 0.9, "decoded audio matches the clip: {correlation} at lag {lag}");
}

#[tokio::test]
async fn a_sipp_call_over_udp_is_live_decoded_and_persisted() {
    the_jfk_call(&[]).await;
}

#[tokio::test]
async fn a_sipp_call_over_tcp() {
    the_jfk_call(&["-t", "t1"]).await;
}

#[tokio::test]
async fn options_answers_and_bad_offers_or_sources_are_refused() {
    let (server, port) = sip_server(&[]).await;
    let dir = scenario_dir();
    assert_eq!(sipp(dir.path(), port, "uac_options.xml", &[]).await, 0, "OPTIONS gets 200");
    assert_eq!(sipp(dir.path(), port, "uac_g729.xml", &[]).await, 0, "an offer without a usable codec gets 488");
    let (_, live) = server.get("/v1/sessions?state=live", ADMIN).await;
    assert_eq!(live.as_array().unwrap().len(), 0);

    let (_refusing, port) = sip_server(&[("HARK_SIP_ALLOW", "10.0.0.0/8")]).await;
    assert_eq!(sipp(dir.path(), port, "uac_forbidden.xml", &[]).await, 0, "a source outside the allowlist gets 403");
}

#[tokio::test]
async fn cancel_before_answer_leaves_no_call() {
    let (server, port) = sip_server(&[("HARK_SIP_ANSWER_DELAY_MS", "3000")]).await;
    let dir = scenario_dir();
    assert_eq!(sipp(dir.path(), port, "uac_cancel.xml", &[]).await, 0, "CANCEL gets 200, the INVITE 487");
    let (_, live) = server.get("/v1/sessions?state=live", ADMIN).await;
    assert_eq!(live.as_array().unwrap().len(), 0);
    let metrics = server.metrics().await;
    assert!(metrics.contains("hark_sip_requests_total{method=\"INVITE\"} 1"), "{metrics}");
}

/// A minimal SIP UAC over UDP for what sipp cannot do here: a SIPREC INVITE with two streams,
/// RTP for both (with injected reordering and duplicates), then BYE.
struct Uac {
    socket: tokio::net::UdpSocket,
    hark: std::net::SocketAddr,
    call_id: String,
}

impl Uac {
    async fn new(port: u16) -> Uac {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let hark = format!("127.0.0.1:{port}").parse().unwrap();
        Uac { socket, hark, call_id: format!("{}@test", uuid::Uuid::new_v4()) }
    }

    fn request(&self, method: &str, cseq: u32, to_tag: Option<&str>, extra: &str, body: &str) -> String {
        let local = self.socket.local_addr().unwrap();
        let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
        format!(
            "{method} sip:srs@{hark} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{branch};rport\r\n\
             From: <sip:src@{local}>;tag=src1\r\nTo: <sip:srs@{hark}>{to_tag}\r\nCall-ID: {call_id}\r\n\
             CSeq: {cseq} {method}\r\nContact: <sip:src@{local}>;+sip.src\r\nMax-Forwards: 70\r\n{extra}\
             Content-Length: {len}\r\n\r\n{body}",
            hark = self.hark,
            branch = uuid::Uuid::new_v4().simple(),
            call_id = self.call_id,
            len = body.len(),
        )
    }

    async fn send(&self, message: &str) {
        self.socket.send_to(message.as_bytes(), self.hark).await.unwrap();
    }

    /// The next final response: (status, To tag, body).
    async fn final_response(&self) -> (u16, String, String) {
        let mut buf = vec![0u8; 65536];
        loop {
            let (len, _) = tokio::time::timeout(common::WAIT, self.socket.recv_from(&mut buf)).await.unwrap().unwrap();
            let text = String::from_utf8_lossy(&buf[..len]).to_string();
            let status: u16 = text.split(' ').nth(1).unwrap().parse().unwrap();
            if status < 200 {
                continue;
            }
            let to_tag = text
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("to:"))
                .and_then(|l| l.split(";tag=").nth(1))
                .unwrap_or_default()
                .trim()
                .to_string();
            let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
            return (status, to_tag, body);
        }
    }
}

/// Sends `ulaw` as 20 ms RTP packets at real-time pace, with every 40th pair of packets swapped
/// and every 25th packet sent twice.
async fn stream_rtp(to: std::net::SocketAddr, ulaw: Vec<u8>, ssrc: u32) {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let packets: Vec<Vec<u8>> = ulaw
        .chunks(160)
        .enumerate()
        .map(|(i, chunk)| {
            let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
            p[2..4].copy_from_slice(&(i as u16).to_be_bytes());
            p[4..8].copy_from_slice(&((i * 160) as u32).to_be_bytes());
            p[8..12].copy_from_slice(&ssrc.to_be_bytes());
            p.extend_from_slice(chunk);
            p
        })
        .collect();
    let mut order: Vec<usize> = (0..packets.len()).collect();
    for i in (40..order.len()).step_by(40) {
        order.swap(i - 1, i);
    }
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(20));
    for (n, &i) in order.iter().enumerate() {
        tick.tick().await;
        socket.send_to(&packets[i], to).await.unwrap();
        if n % 25 == 0 {
            socket.send_to(&packets[i], to).await.unwrap();
        }
    }
}

fn sdp_ports(body: &str) -> Vec<u16> {
    body.lines()
        .filter_map(|l| l.strip_prefix("m=audio "))
        .map(|l| l.split(' ').next().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test]
async fn a_siprec_recording_session_yields_two_labelled_speakers() {
    let (server, port) = sip_server(&[]).await;
    let uac = Uac::new(port).await;
    let metadata =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sip/siprec_metadata.xml")).unwrap();
    let body = format!(
        "--rec\r\nContent-Type: application/sdp\r\n\r\nv=0\r\no=src 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=label:1\r\na=sendonly\r\n\
         m=audio 40002 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=label:2\r\na=sendonly\r\n\r\n\
         --rec\r\nContent-Type: application/rs-metadata+xml\r\nContent-Disposition: recording-session\r\n\r\n{metadata}\r\n--rec--\r\n"
    );
    let extra = "Require: siprec\r\nContent-Type: multipart/mixed;boundary=rec\r\n";
    uac.send(&uac.request("INVITE", 1, None, extra, &body)).await;
    let (status, to_tag, answer) = uac.final_response().await;
    assert_eq!(status, 200, "{answer}");
    let ports = sdp_ports(&answer);
    assert_eq!(ports.len(), 2, "{answer}");
    assert!(answer.contains("a=recvonly"), "{answer}");
    uac.send(&uac.request("ACK", 1, Some(&to_tag), "", "")).await;

    let call = fixtures().join("audio/call");
    let to = |p: u16| format!("127.0.0.1:{p}").parse().unwrap();
    tokio::join!(
        stream_rtp(to(ports[0]), std::fs::read(call.join("caller.ulaw")).unwrap(), 1),
        stream_rtp(to(ports[1]), std::fs::read(call.join("agent.ulaw")).unwrap(), 2),
    );
    uac.send(&uac.request("BYE", 2, Some(&to_tag), "", "")).await;
    assert_eq!(uac.final_response().await.0, 200);

    // The record lands once the media task has closed the recordings.
    let record = loop {
        let (_, ended) = server.get("/v1/sessions?state=ended", ADMIN).await;
        if !ended.as_array().unwrap().is_empty() {
            break last_call(&server).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let call_record = &record["call"];
    assert_eq!(call_record["source"], "siprec");
    let streams = call_record["streams"].as_array().unwrap();
    assert_eq!((streams[0]["role"].as_str(), streams[1]["role"].as_str()), (Some("customer"), Some("agent")));
    assert_eq!(streams[0]["party"]["name"], "Jane Caller");
    assert_eq!(streams[1]["party"]["name"], "Agent Dana");
    assert_eq!(streams[1]["party"]["number"], "2001");
    for (stream, reference) in streams.iter().zip(["caller.wav", "agent.wav"]) {
        assert_eq!(stream["stats"]["lost"], 0, "{stream}");
        assert!(stream["stats"]["duplicates"].as_u64().unwrap() >= 30, "{stream}");
        let recording = server.data_dir.path().join("recordings").join(stream["recording"].as_str().unwrap());
        // The recording is 16 kHz; the reference 8 kHz: compare every other sample.
        let decoded: Vec<i16> = wav_samples(&recording).into_iter().step_by(2).collect();
        let reference = wav_samples(&call.join(reference));
        let (lag, correlation) = best_correlation(&decoded, &reference, 2000);
        println!("SIPREC {}: correlation {correlation:.4} at lag {lag} samples (8 kHz)", stream["role"]);
        assert!(correlation > 0.9, "{} matches its track: {correlation} at lag {lag}", stream["role"]);
    }
}
