//! SIP interop with sipp (Debian `sip-tester`) and the shared fixtures: a real call with G.711
//! RTP appears live, its decoded 16 kHz audio matches the clip, BYE persists the record; also
//! OPTIONS, CANCEL before answer, 488 for an unsupported codec, 403 outside the allowlist, and
//! SIP over TCP.

mod common;

use std::path::Path;

use common::{
    best_correlation, finished_call, fixtures, last_call, pcmu_offer, recording_samples, rtp_packet, scenario_dir,
    sip_server, sipp, stream_rtp, wav_samples, Server, Uac, ADMIN,
};

async fn rtp_socket() -> tokio::net::UdpSocket {
    tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap()
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
    let metrics = server.metrics().await;
    assert!(metrics.contains("hark_media_packets_total{outcome=\"received\"} 550"), "{metrics}");

    let decoded = recording_samples(&server, stream).await;
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

#[tokio::test]
async fn a_siprec_recording_session_yields_two_labelled_speakers() {
    let (server, port) = sip_server(&[]).await;
    let mut uac = Uac::new(port).await;
    let metadata =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sip/siprec_metadata.xml")).unwrap();
    let body = format!(
        "--rec\r\nContent-Type: application/sdp\r\n\r\nv=0\r\no=src 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=label:1\r\na=sendonly\r\n\
         m=audio 40002 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=label:2\r\na=sendonly\r\n\r\n\
         --rec\r\nContent-Type: application/rs-metadata+xml\r\nContent-Disposition: recording-session\r\n\r\n{metadata}\r\n--rec--\r\n"
    );
    uac.send("INVITE", "Require: siprec\r\nContent-Type: multipart/mixed;boundary=rec\r\n", &body).await;
    let answer = uac.final_response().await;
    assert_eq!(answer.status(), 200, "{}", answer.body);
    let ports = answer.sdp_ports();
    assert_eq!(ports.len(), 2, "{}", answer.body);
    assert!(answer.body.contains("a=recvonly"), "{}", answer.body);
    uac.send("ACK", "", "").await;

    let call = fixtures().join("audio/call");
    let to = |p: u16| format!("127.0.0.1:{p}").parse().unwrap();
    let (caller, agent) = (rtp_socket().await, rtp_socket().await);
    let (caller_audio, agent_audio) =
        (std::fs::read(call.join("caller.ulaw")).unwrap(), std::fs::read(call.join("agent.ulaw")).unwrap());
    tokio::join!(
        stream_rtp(&caller, to(ports[0]), &caller_audio, 1),
        stream_rtp(&agent, to(ports[1]), &agent_audio, 2)
    );
    let record = hang_up(&mut uac, &server).await;
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
        // The recording is 16 kHz; the reference 8 kHz: compare every other sample.
        let decoded: Vec<i16> = recording_samples(&server, stream).await.into_iter().step_by(2).collect();
        let reference = wav_samples(&call.join(reference));
        let (lag, correlation) = best_correlation(&decoded, &reference, 2000);
        println!("SIPREC {}: correlation {correlation:.4} at lag {lag} samples (8 kHz)", stream["role"]);
        assert!(correlation > 0.9, "{} matches its track: {correlation} at lag {lag}", stream["role"]);
    }
}

/// A plain call answered by a hark with SIP (and `env`): the server, the UAC that placed it,
/// the UAC's RTP socket and hark's RTP address.
async fn answered_call(env: &[(&str, &str)]) -> (Server, Uac, tokio::net::UdpSocket, std::net::SocketAddr) {
    let (server, port) = sip_server(env).await;
    let mut uac = Uac::new(port).await;
    let rtp = rtp_socket().await;
    let offer = pcmu_offer(rtp.local_addr().unwrap().port(), "sendrecv");
    uac.send("INVITE", "Content-Type: application/sdp\r\n", &offer).await;
    let answer = uac.final_response().await;
    assert_eq!(answer.status(), 200, "{}", answer.body);
    uac.send("ACK", "", "").await;
    let hark_rtp = format!("127.0.0.1:{}", answer.sdp_ports()[0]).parse().unwrap();
    (server, uac, rtp, hark_rtp)
}

/// Sends `count` packets of µ-law silence, 20 ms apart, from `seq` on.
async fn silence(socket: &tokio::net::UdpSocket, to: std::net::SocketAddr, seq: u16, count: u16) {
    for i in seq..seq + count {
        socket.send_to(&rtp_packet(0, i, i as u32 * 160, 7, &[0xff; 160]), to).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Hangs up with BYE, which hark answers 200, and returns the finished call's record.
async fn hang_up(uac: &mut Uac, server: &Server) -> serde_json::Value {
    uac.send("BYE", "", "").await;
    assert_eq!(uac.final_response().await.status(), 200);
    finished_call(server).await
}

/// Waits for hark's BYE, answers it, and returns when it came.
async fn expect_bye(uac: &Uac, within: std::time::Duration) -> std::time::Instant {
    let started = std::time::Instant::now();
    loop {
        let message = uac.recv_within(within.saturating_sub(started.elapsed())).await.expect("hark sends BYE in time");
        if message.first_line.starts_with("BYE ") {
            uac.answer_ok(&message).await;
            return std::time::Instant::now();
        }
    }
}

#[tokio::test]
async fn hold_suspends_the_media_timeout_and_silence_after_resume_hangs_up() {
    // A rule on holds longer than a second, to see the hold reach the rules stage.
    let (_rules, rules) = common::rules_file(
        "[[alerts]]\nid = \"hold\"\nname = \"Long hold\"\ncondition = { kind = \"hold\", seconds = 1 }\n",
    );
    let (server, mut uac, rtp, hark_rtp) =
        answered_call(&[("HARK_SIP_MEDIA_TIMEOUT_SECS", "1"), ("HARK_RULES_FILE", &rules)]).await;
    silence(&rtp, hark_rtp, 0, 10).await;

    // Hold: hark answers inactive and waits through more than the media timeout.
    let held = pcmu_offer(rtp.local_addr().unwrap().port(), "inactive");
    uac.send("INVITE", "Content-Type: application/sdp\r\n", &held).await;
    let answer = uac.final_response().await;
    assert_eq!(answer.status(), 200);
    assert!(answer.body.contains("a=inactive"), "{}", answer.body);
    uac.send("ACK", "", "").await;
    assert!(uac.recv_within(std::time::Duration::from_millis(2500)).await.is_none(), "no BYE while held");
    let (_, alerts) = server.get("/v1/alerts?kind=hold", ADMIN).await;
    assert_eq!(alerts.as_array().map(Vec::len), Some(1), "the hold passed a second: {alerts}");

    // Resume, then stop sending: hark hangs up after the timeout.
    let resumed = pcmu_offer(rtp.local_addr().unwrap().port(), "sendrecv");
    uac.send("INVITE", "Content-Type: application/sdp\r\n", &resumed).await;
    let answer = uac.final_response().await;
    assert!(answer.body.contains("a=recvonly"), "{}", answer.body);
    uac.send("ACK", "", "").await;
    expect_bye(&uac, std::time::Duration::from_secs(5)).await;
    let record = finished_call(&server).await;
    assert_eq!(record["call"]["hangup_cause"], "media timeout");
}

#[tokio::test]
async fn dtmf_and_foreign_rtp_are_counted_and_logged() {
    let (server, mut uac, rtp, hark_rtp) = answered_call(&[]).await;
    silence(&rtp, hark_rtp, 0, 5).await;
    // An injected stream from elsewhere is dropped.
    let intruder = rtp_socket().await;
    for i in 0..7u16 {
        intruder.send_to(&rtp_packet(0, 1000 + i, 0, 99, &[0; 160]), hark_rtp).await.unwrap();
    }
    // Digit 5 as RFC 4733 events (three updates, the last with the end bit, sent three times).
    for (i, duration) in [160u16, 320, 480, 480, 480].into_iter().enumerate() {
        let end = if i >= 2 { 0x80 } else { 0 };
        let event = [5, end | 10, (duration >> 8) as u8, duration as u8];
        rtp.send_to(&rtp_packet(101, 5 + i as u16, 800, 7, &event), hark_rtp).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    silence(&rtp, hark_rtp, 10, 10).await;
    let record = hang_up(&mut uac, &server).await;
    let stats = &record["call"]["streams"][0]["stats"];
    assert_eq!(stats["foreign"], 7, "{stats}");
    let digits: Vec<_> =
        record["messages"].as_array().unwrap().iter().filter_map(|m| m["notice"]["digit"].as_str()).collect();
    assert_eq!(digits, ["5"], "one key press, logged once");
}

#[tokio::test]
async fn packets_sent_just_before_the_bye_are_part_of_the_call() {
    let (server, mut uac, rtp, hark_rtp) = answered_call(&[]).await;
    silence(&rtp, hark_rtp, 0, 5).await;
    // The last second of a call, flushed by the far end at once, and its BYE right behind it.
    for i in 5..55u16 {
        rtp.send_to(&rtp_packet(0, i, i as u32 * 160, 7, &[0xff; 160]), hark_rtp).await.unwrap();
    }
    let record = hang_up(&mut uac, &server).await;
    let stats = &record["call"]["streams"][0]["stats"];
    assert_eq!((stats["packets"].as_u64(), stats["lost"].as_u64()), (Some(55), Some(0)), "{stats}");
}

#[tokio::test]
async fn an_offerless_invite_gets_hark_offer_and_the_ack_answer_decides() {
    let (server, port) = sip_server(&[]).await;
    let mut uac = Uac::new(port).await;
    uac.send("INVITE", "", "").await;
    let offer = uac.final_response().await;
    assert_eq!(offer.status(), 200);
    assert!(
        offer.body.contains("a=rtpmap:0 PCMU/8000") && offer.body.contains("a=rtpmap:8 PCMA/8000"),
        "{}",
        offer.body
    );
    let rtp = rtp_socket().await;
    let answer = format!(
        "v=0\r\no=test 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n",
        rtp.local_addr().unwrap().port()
    );
    uac.send("ACK", "Content-Type: application/sdp\r\n", &answer).await;
    let hark_rtp: std::net::SocketAddr = format!("127.0.0.1:{}", offer.sdp_ports()[0]).parse().unwrap();
    for i in 0..25u16 {
        rtp.send_to(&rtp_packet(8, i, i as u32 * 160, 3, &[0xd5; 160]), hark_rtp).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let stats = hang_up(&mut uac, &server).await["call"]["streams"][0]["stats"].clone();
    assert_eq!(stats["codec"], "PCMA", "{stats}");
    assert_eq!(stats["packets"], 25, "PCMA packets were taken as the ACK's answer said");
}

#[tokio::test]
async fn digest_authentication_admits_the_right_trunk_only() {
    let auth = [("HARK_SIP_DIGEST_USER", "trunk"), ("HARK_SIP_DIGEST_PASSWORD", "s3cret")];
    let (server, port) = sip_server(&auth).await;
    let dir = scenario_dir();
    assert_eq!(sipp(dir.path(), port, "uac_options_auth.xml", &["-au", "trunk", "-ap", "s3cret"]).await, 0);
    assert_ne!(
        sipp(dir.path(), port, "uac_options_auth.xml", &["-au", "trunk", "-ap", "guess", "-timeout", "3"]).await,
        0
    );
    let metrics = server.metrics().await;
    assert!(metrics.contains("hark_sip_refused_total{reason=\"digest\"}"), "{metrics}");
}

#[tokio::test]
async fn refusals_carry_the_right_status_codes() {
    let (_server, port) = sip_server(&[]).await;
    let mut uac = Uac::new(port).await;
    uac.send("REGISTER", "", "").await;
    assert_eq!(uac.final_response().await.status(), 405, "hark is not a registrar");
    let mut uac = Uac::new(port).await;
    uac.send("INVITE", "Content-Type: application/sdp\r\n", "v=0\r\nm=audio banana RTP/AVP 0\r\n").await;
    assert_eq!(uac.final_response().await.status(), 400, "a malformed offer");
    let mut stranger = Uac::new(port).await;
    stranger.to_tag = Some("no-such-dialog".into());
    stranger.send("BYE", "", "").await;
    assert_eq!(stranger.final_response().await.status(), 481);

    let (_full, port) = sip_server(&[("HARK_SIP_MAX_CALLS", "0")]).await;
    let mut uac = Uac::new(port).await;
    uac.send("INVITE", "Content-Type: application/sdp\r\n", &pcmu_offer(4000, "sendrecv")).await;
    assert_eq!(uac.final_response().await.status(), 486, "no room for another call");
}

#[tokio::test]
async fn a_graceful_stop_hangs_up_live_calls_and_keeps_their_records() {
    let (mut server, _uac, rtp, hark_rtp) = answered_call(&[]).await;
    silence(&rtp, hark_rtp, 0, 25).await;
    server.stop().await;
    server.restart().await;
    let record = finished_call(&server).await;
    assert_eq!(record["call"]["hangup_cause"], "server shutting down");
    assert_eq!(record["end_reason"], "hangup");
    let recording = record["call"]["streams"][0]["recording"].as_str().unwrap();
    assert!(recording.ends_with(".opus"), "the recording was closed: {recording}");
    assert!(server.data_dir.path().join("recordings").join(recording).exists());
}

#[tokio::test]
async fn the_200_is_retransmitted_over_udp_until_the_ack() {
    let (_server, port) = sip_server(&[]).await;
    let mut uac = Uac::new(port).await;
    uac.send("INVITE", "Content-Type: application/sdp\r\n", &pcmu_offer(4000, "sendrecv")).await;
    assert_eq!(uac.final_response().await.status(), 200);
    // RFC 3261 §13.3.1.4: T1 = 500 ms, doubling: copies at about 0.5 s and 1.5 s.
    let mut copies = 0;
    while let Some(message) = uac.recv_within(std::time::Duration::from_millis(1800)).await {
        assert_eq!(message.status(), 200);
        copies += 1;
        if copies == 2 {
            break;
        }
    }
    assert_eq!(copies, 2, "the 200 is sent again while no ACK comes");
    uac.send("ACK", "", "").await;
    assert!(uac.recv_within(std::time::Duration::from_millis(2500)).await.is_none(), "no retransmission after the ACK");
}

#[tokio::test]
async fn a_reinvite_can_change_the_codec_mid_call() {
    let (server, mut uac, rtp, hark_rtp) = answered_call(&[]).await;
    silence(&rtp, hark_rtp, 0, 10).await;
    let pcma = format!(
        "v=0\r\no=test 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=sendrecv\r\n",
        rtp.local_addr().unwrap().port()
    );
    uac.send("INVITE", "Content-Type: application/sdp\r\n", &pcma).await;
    let answer = uac.final_response().await;
    assert_eq!(answer.status(), 200);
    assert!(answer.body.contains("a=rtpmap:8 PCMA/8000"), "{}", answer.body);
    uac.send("ACK", "", "").await;
    for i in 10..30u16 {
        rtp.send_to(&rtp_packet(8, i, i as u32 * 160, 7, &[0xd5; 160]), hark_rtp).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let stats = hang_up(&mut uac, &server).await["call"]["streams"][0]["stats"].clone();
    assert_eq!(stats["codec"], "PCMA", "{stats}");
    assert_eq!(stats["packets"], 30, "both codecs' packets were taken: {stats}");
}
