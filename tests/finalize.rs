//! Finalize never misses a finished session: a chat that was live when hark was killed is closed
//! as interrupted at the next start and finalized then — analysed, searchable, its webhook
//! queued — exactly once, however often hark restarts afterwards (SQLite and PostgreSQL). And
//! what it stores is what reports and usage count: the plan's monthly quota stops analysis (the
//! call is still stored and counted), and the day's report shows the calls by agent name.

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
    a_crashed_session_is_finalized_once_at_the_next_start(&[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crashed_session_is_finalized_once_at_the_next_start_on_postgres() {
    let db = PgDb::create().await;
    a_crashed_session_is_finalized_once_at_the_next_start(&[("HARK_DATABASE_URL", &db.url)]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_quota_stops_analysis_and_reports_count_every_finished_call() {
    let server = Server::start(&[("HARK_USAGE_MONTHLY_QUOTA", "1")]).await;
    let post = |path: &'static str, body: Value| {
        let server = &server;
        async move {
            let r = reqwest::Client::new().post(server.http(path)).bearer_auth(ADMIN).json(&body).send().await.unwrap();
            assert_eq!(r.status(), 201, "{path}");
            r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string()
        }
    };
    let department = post("/v1/departments", json!({"name": "Support"})).await;
    let desk = post("/v1/desks", json!({"name": "Desk", "department_id": department})).await;
    let alice = post("/v1/agents", json!({"name": "Alice", "desk_id": desk})).await;
    let (mut supervisor, _) = server.supervisor(ADMIN).await;
    let mut ids = Vec::new();
    for text in ["my invoice is wrong", "my parcel is late"] {
        let (mut visitor, welcome) = server.visitor().await;
        let id = welcome["session_id"].as_str().unwrap().to_string();
        let taken = supervisor.command(json!({"type": "take_over", "session_id": id, "agent_name": "Alice"})).await;
        assert_eq!(taken["type"], "ok");
        visitor.send(json!({"type": "message", "client_id": "c1", "text": text})).await;
        visitor.recv_type("ack").await;
        visitor.send(json!({"type": "leave"})).await;
        // One at a time: the quota is counted in the order sessions finish.
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let (_, record) = server.get(&format!("/v1/sessions/{id}"), ADMIN).await;
            if record["analysis"].is_object() || record["analysis_skipped"].is_string() {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "finalized: {record}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        ids.push(id);
    }
    let (_, first) = server.get(&format!("/v1/sessions/{}", ids[0]), ADMIN).await;
    assert!(first["analysis"].is_object(), "{first}");
    let (_, second) = server.get(&format!("/v1/sessions/{}", ids[1]), ADMIN).await;
    assert!(second["analysis"].is_null(), "{second}");
    assert!(second["analysis_skipped"].as_str().unwrap().contains("used up"), "{second}");

    let (status, usage) = server.get("/v1/usage", ADMIN).await;
    assert_eq!(status, 200, "{usage}");
    assert_eq!(
        (usage["analyzed"].as_u64(), usage["quota"].as_u64(), usage["remaining"].as_u64()),
        (Some(1), Some(1), Some(0))
    );
    let (status, report) = server.get("/v1/reports?period=day", ADMIN).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (report["tiles"]["calls"]["value"].as_u64(), report["tiles"]["analyzed"]["value"].as_u64()),
        (Some(2), Some(1))
    );
    let (status, compared) = server.get(&format!("/v1/reports/agents?agent={alice}&against=desk"), ADMIN).await;
    assert_eq!(status, 200, "{compared}");
    assert_eq!(
        (compared["against"]["id"].as_str(), compared["against"]["name"].as_str()),
        (Some(desk.as_str()), Some("Desk"))
    );
    assert_eq!((compared["agent"]["name"].as_str(), compared["agent"]["calls"].as_f64()), (Some("Alice"), Some(2.0)));
    let row = &report["agents"][0];
    assert_eq!(
        (row["agent_id"].as_str(), row["agent_name"].as_str(), row["calls"].as_u64()),
        (Some(alice.as_str()), Some("Alice"), Some(2)),
        "{report}"
    );
}
