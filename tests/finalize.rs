//! Finalize never misses a finished session: a chat that was live when hark was killed is closed
//! as interrupted at the next start and finalized then — analysed, searchable, its webhook
//! queued — exactly once, however often hark restarts afterwards (SQLite and PostgreSQL).

mod common;

use std::time::Duration;

use common::{PgDb, Server, ADMIN, WAIT};
use serde_json::{json, Value};

/// The record once it has an analysis, polled.
async fn analysed(server: &Server, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, record) = server.get(&format!("/v1/sessions/{id}"), ADMIN).await;
        if status == 200 && record["analysis"].is_object() {
            return record;
        }
        assert!(tokio::time::Instant::now() < deadline, "the session was finalized: {record}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_crashed_session_is_finalized_once_at_the_next_start(env: &[(&str, &str)]) {
    let mut server = Server::start(env).await;
    // An endpoint nobody answers: deliveries stay queued, and the log shows what was queued.
    let hook = reqwest::Client::new()
        .post(server.http("/v1/webhooks"))
        .bearer_auth(ADMIN)
        .json(&json!({"url": "http://127.0.0.1:9/hark"}))
        .send()
        .await
        .unwrap();
    assert_eq!(hook.status(), 201);
    let hook = hook.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();

    let (mut visitor, welcome) = server.visitor().await;
    let id = welcome["session_id"].as_str().unwrap().to_string();
    visitor.send(json!({"type": "message", "client_id": "c1", "text": "I want a refund for the broken kettle"})).await;
    visitor.recv_type("ack").await;
    server.crash();
    server.restart().await;

    let record = analysed(&server, &id).await;
    assert_eq!(record["end_reason"], "interrupted");
    assert!(record["analysis"]["tags"].as_array().unwrap().contains(&json!("refund")), "{record}");
    let (_, found) = server.get("/v1/sessions?state=ended&q=kettle", ADMIN).await;
    assert_eq!(found[0]["session_id"], json!(id), "{found}");

    // Finalized once: another restart queues nothing more.
    server.restart().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, deliveries) = server.get(&format!("/v1/webhooks/{hook}/deliveries"), ADMIN).await;
    let deliveries = deliveries.as_array().unwrap();
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    assert_eq!(deliveries[0]["session_id"], json!(id));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crashed_session_is_finalized_once_at_the_next_start_on_sqlite() {
    a_crashed_session_is_finalized_once_at_the_next_start(&[("HARK_SPEECH_ENABLED", "false")]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crashed_session_is_finalized_once_at_the_next_start_on_postgres() {
    let db = PgDb::create().await;
    a_crashed_session_is_finalized_once_at_the_next_start(&[
        ("HARK_SPEECH_ENABLED", "false"),
        ("HARK_DATABASE_URL", &db.url),
    ])
    .await;
}
