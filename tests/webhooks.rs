//! Webhooks for finished sessions against a real receiver (an HTTP server in this test), on
//! SQLite and PostgreSQL: the deliveries finalize queues for finished chats survive a receiver
//! that refuses and two restarts of hark, and arrive exactly once per idempotency key, every one
//! signed (checked here with the `hmac` crate, independently of hark's signer); the delivery log
//! shows each refused attempt and the success; a receiver's 410 deactivates its endpoint; a
//! deleted endpoint gets nothing new. The routes keep to the token's tenant, need the
//! Integrations permission, refuse a URL that is not http(s), and are in the OpenAPI description.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use common::{PgDb, Server, ADMIN};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};

/// One request the receiver got, and what it answered.
#[derive(Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Bytes,
    answered: u16,
}

/// The customer's system: `/hooks` answers 503 until `accept`, then 200; `/gone` answers 410.
#[derive(Default)]
struct Receiver {
    accept: AtomicBool,
    requests: Mutex<Vec<Received>>,
}

impl Receiver {
    async fn start() -> (Arc<Receiver>, SocketAddr) {
        let receiver = Arc::new(Receiver::default());
        let app = axum::Router::new().route("/{path}", axum::routing::post(receive)).with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, addr)
    }

    fn requests(&self, path: &str) -> Vec<Received> {
        self.requests.lock().unwrap().iter().filter(|r| r.path == path).cloned().collect()
    }
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let status = match path.as_str() {
        "gone" => StatusCode::GONE,
        _ if receiver.accept.load(Ordering::SeqCst) => StatusCode::OK,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    receiver.requests.lock().unwrap().push(Received { path, headers, body, answered: status.as_u16() });
    status
}

fn header<'a>(request: &'a Received, name: &str) -> &'a str {
    request.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_else(|| panic!("no {name} header"))
}

/// Checks `Hark-Signature: t=…,v1=…` over the raw body, as a receiver would.
fn verify(secret: &str, request: &Received) {
    let signature = header(request, "hark-signature");
    let (t, v1) = signature.strip_prefix("t=").and_then(|s| s.split_once(",v1=")).expect("t=…,v1=…");
    let sent: i64 = t.parse().unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((now - sent).abs() < 300, "a fresh timestamp: {sent} vs {now}");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(&request.body);
    mac.verify_slice(&hex::decode(v1).unwrap()).expect("the signature verifies");
}

/// A chat whose visitor says `text` and leaves; its id.
async fn finished_chat(server: &Server, text: &str) -> String {
    let (mut visitor, welcome) = server.visitor().await;
    visitor.send(json!({"type": "message", "client_id": "c1", "text": text})).await;
    visitor.recv_type("ack").await;
    visitor.send(json!({"type": "leave"})).await;
    welcome["session_id"].as_str().unwrap().to_string()
}

/// Waits until the admin's history has `count` finalized sessions.
async fn finalized(server: &Server, count: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, page) = server.get("/v1/sessions?state=ended", ADMIN).await;
        if page.as_array().is_some_and(|rows| rows.iter().filter(|r| r["duration_ms"].is_i64()).count() >= count) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{count} sessions finalized: {page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn send(server: &Server, method: reqwest::Method, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = reqwest::Client::new().request(method, server.http(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Waits until `done` holds, at most `limit`.
async fn until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn delivered_exactly_once_across_restarts(database_url: Option<&str>) {
    let (receiver, addr) = Receiver::start().await;
    let mut env = vec![
        ("HARK_WEBHOOKS_RETRY_BASE_SECS", "0.2"),
        ("HARK_WEBHOOKS_RETRY_MAX_SECS", "0.8"),
        ("HARK_WEBHOOKS_TIMEOUT_SECS", "5"),
    ];
    if let Some(url) = database_url {
        env.push(("HARK_DATABASE_URL", url));
    }
    let mut server = Server::start(&env).await;
    let (status, hooks) = send(
        &server,
        reqwest::Method::POST,
        "/v1/webhooks",
        ADMIN,
        Some(json!({"url": format!("http://{addr}/hooks"), "description": "CRM"})),
    )
    .await;
    assert_eq!(status, 201, "{hooks}");
    let (id, secret) = (hooks["id"].as_str().unwrap().to_string(), hooks["secret"].as_str().unwrap().to_string());
    let (status, gone) = send(
        &server,
        reqwest::Method::POST,
        "/v1/webhooks",
        ADMIN,
        Some(json!({"url": format!("http://{addr}/gone")})),
    )
    .await;
    assert_eq!(status, 201, "{gone}");
    let gone_id = gone["id"].as_str().unwrap().to_string();
    let (status, listed) = server.get("/v1/webhooks", ADMIN).await;
    assert_eq!(status, 200);
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert!(listed.to_string().find("whsec_").is_none(), "the list shows no secret: {listed}");

    // Three chats finish while the receiver is down: finalize queues one delivery each.
    let mut sessions = Vec::new();
    for text in ["I want to cancel", "where is my parcel", "thanks, bye"] {
        sessions.push(finished_chat(&server, text).await);
    }
    finalized(&server, sessions.len()).await;

    // The receiver is down (503) while hark restarts: it finds the queued calls and retries.
    server.restart().await;
    until(Duration::from_secs(15), "two refused attempts per call", || {
        let refused = receiver.requests("hooks");
        sessions.iter().all(|s| refused.iter().filter(|r| r.body.windows(36).any(|w| w == s.as_bytes())).count() >= 2)
    })
    .await;
    // Restarted again mid-retry; then the receiver is back.
    server.restart().await;
    receiver.accept.store(true, Ordering::SeqCst);
    until(Duration::from_secs(15), "every call accepted", || {
        receiver.requests("hooks").iter().filter(|r| r.answered == 200).count() >= sessions.len()
    })
    .await;
    // Longer than the longest retry wait: nothing more arrives.
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    let requests = receiver.requests("hooks");
    let mut accepted: HashMap<String, usize> = HashMap::new();
    let mut attempts: HashMap<String, usize> = HashMap::new();
    let mut delivered_sessions = Vec::new();
    for request in &requests {
        verify(&secret, request);
        assert_eq!(header(request, "content-type"), "application/json");
        assert_eq!(header(request, "hark-event"), "call.finished");
        let key = header(request, "idempotency-key").to_string();
        *attempts.entry(key.clone()).or_default() += 1;
        if request.answered == 200 {
            *accepted.entry(key).or_default() += 1;
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            assert_eq!((body["channel"].as_str(), body["origin_id"].as_str()), (Some("chat"), None), "{body}");
            assert_eq!(body["transcription"][0]["speaker"], "customer", "{body}");
            let said = body["transcription"][0]["text"].as_str().unwrap();
            assert!(["I want to cancel", "where is my parcel", "thanks, bye"].contains(&said), "{body}");
            delivered_sessions.push(body["id"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(accepted.len(), sessions.len(), "one key per call: {accepted:?}");
    assert!(accepted.values().all(|&n| n == 1), "each key accepted exactly once: {accepted:?}");
    delivered_sessions.sort();
    let mut expected = sessions.clone();
    expected.sort();
    assert_eq!(delivered_sessions, expected);

    // The delivery log: every refused attempt (503) and the success, per call.
    let (status, log) = server.get(&format!("/v1/webhooks/{id}/deliveries"), ADMIN).await;
    assert_eq!(status, 200, "{log}");
    let log = log.as_array().unwrap();
    assert_eq!(log.len(), sessions.len());
    for delivery in log {
        let key = delivery["idempotency_key"].as_str().unwrap();
        assert_eq!(delivery["state"], "delivered", "{delivery}");
        assert_eq!(delivery["event"], "call.finished");
        assert_eq!(delivery["last_status"], 200);
        assert!(delivery["next_attempt_at"].is_null() && delivery["settled_at"].is_string());
        let tries = delivery["log"].as_array().unwrap();
        assert_eq!(tries.len(), attempts[key], "every request the receiver got is logged: {delivery}");
        assert_eq!(delivery["attempts"], tries.len());
        assert!(tries.len() >= 3, "two refusals at least, then the success: {delivery}");
        let (last, refused) = tries.split_last().unwrap();
        assert!(refused.iter().all(|t| t["status"] == 503 && t["error"].is_null()), "{delivery}");
        assert_eq!(last["status"], 200);
        assert!(tries.iter().all(|t| t["duration_ms"].as_i64().unwrap() >= 0 && t["at"].is_string()));
    }
    let (_, pending) = server.get(&format!("/v1/webhooks/{id}/deliveries?status=pending"), ADMIN).await;
    assert_eq!(pending, json!([]));
    let (_, one) = server.get(&format!("/v1/webhooks/{id}/deliveries?status=delivered&limit=1"), ADMIN).await;
    assert_eq!(one.as_array().unwrap().len(), 1);
    let metrics = server.metrics().await;
    assert!(metrics.contains("hark_webhook_deliveries_total{result=\"delivered\"} 3"), "{metrics}");
    assert!(metrics.contains("hark_webhook_deliveries_pending 0"), "{metrics}");

    // The receiver that answered 410 Gone: its endpoint is off, its deliveries failed.
    assert!(!receiver.requests("gone").is_empty());
    let (_, listed) = server.get("/v1/webhooks", ADMIN).await;
    let gone = listed.as_array().unwrap().iter().find(|e| e["id"] == gone_id.as_str()).unwrap().clone();
    assert_eq!(gone["active"], false, "{gone}");
    assert!(gone["deactivated_reason"].as_str().unwrap().contains("410"), "{gone}");
    let (_, log) = server.get(&format!("/v1/webhooks/{gone_id}/deliveries"), ADMIN).await;
    assert!(log.as_array().unwrap().iter().all(|d| d["state"] == "failed"), "{log}");
    // Chats that ended after the 410 queued nothing for it.
    assert!((1..=sessions.len()).contains(&log.as_array().unwrap().len()), "{log}");

    // Deleted: nothing new is queued for it.
    let (status, _) = send(&server, reqwest::Method::DELETE, &format!("/v1/webhooks/{id}"), ADMIN, None).await;
    assert_eq!(status, 204);
    finished_chat(&server, "one more").await;
    finalized(&server, sessions.len() + 1).await;
    let (_, log) = server.get(&format!("/v1/webhooks/{id}/deliveries"), ADMIN).await;
    assert_eq!(log.as_array().unwrap().len(), sessions.len());
    let (_, listed) = server.get("/v1/webhooks", ADMIN).await;
    assert_eq!(listed[0]["active"], false);
    assert_eq!(listed[0]["deactivated_reason"], "deleted");
}

#[tokio::test]
async fn deliveries_survive_a_down_receiver_and_restarts_exactly_once_on_sqlite() {
    delivered_exactly_once_across_restarts(None).await;
}

#[tokio::test]
async fn deliveries_survive_a_down_receiver_and_restarts_exactly_once_on_postgres() {
    let db = PgDb::create().await;
    delivered_exactly_once_across_restarts(Some(&db.url)).await;
}

#[tokio::test]
async fn the_routes_keep_to_the_tenant_need_integrations_and_check_the_url() {
    let server = Server::start(&[]).await;
    let body = json!({"url": "https://crm.example/hooks"});
    let (status, created) = send(&server, reqwest::Method::POST, "/v1/webhooks", ADMIN, Some(body.clone())).await;
    assert_eq!(status, 201);
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    let id = created["id"].as_str().unwrap();

    // Another tenant's admin sees nothing of it.
    let (status, other) = send(
        &server,
        reqwest::Method::POST,
        "/v1/tokens",
        ADMIN,
        Some(json!({"name": "Olga", "tenant": "other", "admin": true})),
    )
    .await;
    assert_eq!(status, 201);
    let other = other["token"].as_str().unwrap();
    assert_eq!(server.get("/v1/webhooks", other).await, (200, json!([])));
    assert_eq!(server.get(&format!("/v1/webhooks/{id}/deliveries"), other).await.0, 404);
    assert_eq!(send(&server, reqwest::Method::DELETE, &format!("/v1/webhooks/{id}"), other, None).await.0, 404);

    // A supervisor's token lacks Integrations.
    let supervisor = server.token("Sam").await;
    let (status, problem) = server.get("/v1/webhooks", &supervisor).await;
    assert_eq!(status, 403);
    assert!(problem["detail"].as_str().unwrap().contains("integrations"), "{problem}");
    assert_eq!(send(&server, reqwest::Method::POST, "/v1/webhooks", &supervisor, Some(body)).await.0, 403);
    assert_eq!(server.get(&format!("/v1/webhooks/{id}/deliveries"), &supervisor).await.0, 403);
    assert_eq!(send(&server, reqwest::Method::DELETE, &format!("/v1/webhooks/{id}"), &supervisor, None).await.0, 403);

    // Bad input names what is wrong.
    for url in ["ftp://crm.example/hooks", "crm.example/hooks"] {
        let (status, problem) =
            send(&server, reqwest::Method::POST, "/v1/webhooks", ADMIN, Some(json!({"url": url}))).await;
        assert_eq!(status, 400, "{url}");
        assert_eq!(problem["invalid-params"][0]["name"], "url", "{problem}");
    }
    // An unknown field is a body that does not fit: 422, as everywhere in the API.
    let (status, problem) =
        send(&server, reqwest::Method::POST, "/v1/webhooks", ADMIN, Some(json!({"uri": "https://x.example"}))).await;
    assert_eq!(status, 422);
    assert!(problem["detail"].as_str().unwrap().contains("uri"), "{problem}");
    let (status, problem) = server.get(&format!("/v1/webhooks/{id}/deliveries?status=lost"), ADMIN).await;
    assert_eq!(status, 400);
    assert_eq!(problem["invalid-params"][0]["name"], "status");
    assert_eq!(server.get(&format!("/v1/webhooks/{id}/deliveries?limit=0"), ADMIN).await.0, 400);
    assert_eq!(server.get("/v1/webhooks/nope/deliveries", ADMIN).await.0, 400);
    let unknown = uuid::Uuid::new_v4();
    assert_eq!(server.get(&format!("/v1/webhooks/{unknown}/deliveries"), ADMIN).await.0, 404);

    let (_, openapi) = server.get("/v1/openapi.json", ADMIN).await;
    assert!(openapi["paths"]["/v1/webhooks"]["post"].is_object());
    assert!(openapi["paths"]["/v1/webhooks/{id}/deliveries"]["get"].is_object());
    assert!(openapi["components"]["schemas"]["FinishedCall"]["properties"]["transcription"].is_object());
}
