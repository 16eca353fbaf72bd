//! Call recordings: a SIP call's recording ends as Ogg Opus, `GET /v1/sessions/{id}/recordings/
//! {index}` serves it with Range support to its tenant only, and retention removes it (410).

mod common;

use std::time::{Duration, SystemTime};

use common::{finished_call, fixtures, opus_samples, pcmu_offer, sip_server, stream_rtp, Server, Uac, ADMIN, WAIT};
use serde_json::{json, Value};

/// A 4 s call over SIP with the JFK clip; returns its finished record.
async fn a_call(server: &Server, port: u16) -> Value {
    let mut uac = Uac::new(port).await;
    let rtp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    uac.send("INVITE", "Content-Type: application/sdp\r\n", &pcmu_offer(rtp.local_addr().unwrap().port(), "sendrecv"))
        .await;
    let answer = uac.final_response().await;
    assert_eq!(answer.status(), 200, "{}", answer.body);
    uac.send("ACK", "", "").await;
    let hark_rtp = format!("127.0.0.1:{}", answer.sdp_ports()[0]).parse().unwrap();
    let ulaw = std::fs::read(fixtures().join("sip/jfk_ask_not_8k.ulaw")).unwrap();
    stream_rtp(&rtp, hark_rtp, &ulaw[..32_000], 1).await;
    uac.send("BYE", "", "").await;
    assert_eq!(uac.final_response().await.status(), 200);
    let record = finished_call(server).await;
    // The record is stored at once naming the WAV, and again once the transcoder is done.
    let id = record["session_id"].as_str().unwrap().to_string();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, record) = server.get(&format!("/v1/sessions/{id}"), ADMIN).await;
        if record["call"]["streams"][0]["recording"].as_str().is_some_and(|r| r.ends_with(".opus")) {
            return record;
        }
        assert!(tokio::time::Instant::now() < deadline, "the recording was transcoded: {record}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn get(server: &Server, path: &str, token: &str, range: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(server.http(path)).bearer_auth(token);
    if let Some(range) = range {
        request = request.header("Range", range);
    }
    request.send().await.unwrap()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response.headers().get(name).map(|v| v.to_str().unwrap()).unwrap_or_default()
}

#[tokio::test]
async fn a_call_recording_is_ogg_opus_served_with_ranges_to_its_tenant_then_expires() {
    let (mut server, port) = sip_server(&[]).await;
    let record = a_call(&server, port).await;
    let id = record["session_id"].as_str().unwrap().to_string();
    let stream = &record["call"]["streams"][0];
    let recording = stream["recording"].as_str().unwrap();
    assert_eq!(recording, format!("{id}/0-customer.opus"), "{stream}");
    let folder = server.data_dir.path().join("recordings").join(&id);
    let files: Vec<_> = std::fs::read_dir(&folder).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(files, ["0-customer.opus"], "the WAV is gone once transcoded");
    let path = folder.join("0-customer.opus");
    let bytes = std::fs::read(&path).unwrap();
    let secs = stream["recorded_secs"].as_f64().unwrap();
    assert!((3.9..4.5).contains(&secs), "{secs}");
    assert_eq!(opus_samples(&path).len(), (secs * 16_000.0).round() as usize, "the Ogg duration is recorded_secs");
    println!(
        "4 s call: {} bytes of Ogg Opus ({:.1} kbit/s overall)",
        bytes.len(),
        bytes.len() as f64 * 8.0 / secs / 1000.0
    );

    // The whole file.
    let url = format!("/v1/sessions/{id}/recordings/0");
    let response = get(&server, &url, ADMIN, None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), "audio/ogg");
    assert_eq!(header(&response, "accept-ranges"), "bytes");
    assert_eq!(header(&response, "cache-control"), "private");
    assert_eq!(response.bytes().await.unwrap(), bytes);

    let head = reqwest::Client::new().head(server.http(&url)).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!((head.status().as_u16(), header(&head, "content-length")), (200, bytes.len().to_string().as_str()));

    // A range, as a seeking player asks.
    let response = get(&server, &url, ADMIN, Some("bytes=100-199")).await;
    assert_eq!(response.status(), 206);
    assert_eq!(header(&response, "content-range"), format!("bytes 100-199/{}", bytes.len()));
    assert_eq!(response.bytes().await.unwrap(), bytes[100..200]);
    let response = get(&server, &url, ADMIN, Some(&format!("bytes={}-", bytes.len() + 10))).await;
    assert_eq!(response.status(), 416);

    // A player that cannot send headers passes the token in the query.
    let response = reqwest::get(server.http(&format!("{url}?access_token={ADMIN}"))).await.unwrap();
    assert_eq!(response.status(), 200);

    // Only the session's tenant sees it; a missing stream or session is 404, no token 401.
    let other = reqwest::Client::new()
        .post(server.http("/v1/tokens"))
        .bearer_auth(ADMIN)
        .json(&json!({ "name": "elsewhere", "tenant": "other" }))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let response = get(&server, &url, &other, None).await;
    assert_eq!(response.status(), 404);
    assert_eq!(header(&response, "content-type"), "application/problem+json");
    let (status, problem) = server.get(&format!("/v1/sessions/{id}/recordings/1"), ADMIN).await;
    assert_eq!((status, problem["status"].as_u64()), (404, Some(404)), "{problem}");
    let unknown = format!("/v1/sessions/{}/recordings/0", uuid::Uuid::new_v4());
    assert_eq!(server.get(&unknown, ADMIN).await.0, 404);
    assert_eq!(reqwest::get(server.http(&url)).await.unwrap().status(), 401);

    // The route is described.
    let (_, openapi) = server.get("/v1/openapi.json", ADMIN).await;
    assert!(openapi["paths"]["/v1/sessions/{id}/recordings/{index}"]["get"].is_object());

    // Retention: a folder last touched 91 days ago goes at the next sweep (one runs at start).
    let old = SystemTime::now() - Duration::from_secs(91 * 86_400);
    std::fs::File::open(&path).unwrap().set_modified(old).unwrap();
    std::fs::File::open(&folder).unwrap().set_modified(old).unwrap();
    server.restart().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while folder.exists() {
        assert!(tokio::time::Instant::now() < deadline, "retention removes the old recording");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, problem) = server.get(&url, ADMIN).await;
    assert_eq!(status, 410, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("90 days"), "{problem}");
    let (_, record) = server.get(&format!("/v1/sessions/{id}"), ADMIN).await;
    assert_eq!(record["call"]["streams"][0]["recording"], recording, "the call record keeps its path");
    // The removal is counted once the sweep is done (just after the folder went).
    while !server.metrics().await.contains("hark_recordings_removed_total 1") {
        assert!(tokio::time::Instant::now() < deadline, "the removal is counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn retention_zero_keeps_recordings() {
    let (mut server, port) = sip_server(&[("HARK_RECORDINGS_RETENTION_DAYS", "0")]).await;
    let record = a_call(&server, port).await;
    let folder = server.data_dir.path().join("recordings").join(record["session_id"].as_str().unwrap());
    let old = SystemTime::now() - Duration::from_secs(10 * 365 * 86_400);
    for entry in std::fs::read_dir(&folder).unwrap() {
        std::fs::File::open(entry.unwrap().path()).unwrap().set_modified(old).unwrap();
    }
    std::fs::File::open(&folder).unwrap().set_modified(old).unwrap();
    server.restart().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(folder.join("0-customer.opus").exists());
}
