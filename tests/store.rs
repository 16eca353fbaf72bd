//! Persistence through restarts, on SQLite and on the PostgreSQL running on this machine:
//! finished chats survive, a graceful stop ends live chats as interrupted (closing widgets with
//! 1001), and a crash loses no acknowledged message.

mod common;

use common::{PgDb, Server, ADMIN};
use serde_json::{json, Value};

/// A chat with a bot answer, a take-over and an agent reply, then the visitor leaves.
async fn finished_chat(server: &Server) -> String {
    let (mut visitor, welcome) = server.visitor().await;
    let id = welcome["session_id"].as_str().unwrap().to_string();
    visitor.send(json!({"type": "message", "client_id": "c1", "text": "Where is my parcel?"})).await;
    visitor.recv_type("message").await;
    let (mut supervisor, _) = server.supervisor(ADMIN).await;
    assert_eq!(
        supervisor.command(json!({"type": "take_over", "session_id": id, "agent_name": "Dana"})).await["type"],
        "ok"
    );
    assert_eq!(
        supervisor.command(json!({"type": "send", "session_id": id, "text": "שלום, Dana here"})).await["type"],
        "ok"
    );
    visitor.recv_type("message").await;
    visitor.recv_type("message").await;
    visitor.send(json!({"type": "leave"})).await;
    assert_eq!(visitor.closed().await.0, 1000);
    id
}

fn check_finished(record: &Value) {
    assert_eq!(record["state"], "ended");
    assert_eq!(record["end_reason"], "visitor_left");
    assert_eq!(record["message_count"], 3);
    let messages = record["messages"].as_array().unwrap();
    let roles: Vec<_> = messages.iter().map(|m| m["author"]["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["visitor", "bot", "system", "agent"]);
    assert_eq!(messages[0]["client_id"], "c1");
    assert_eq!(messages[3]["author"]["name"], "Dana");
    assert_eq!(messages[3]["text"], "שלום, Dana here");
    assert_eq!(messages[2]["notice"]["kind"], "agent_joined");
    let holds = record["holds"].as_array().unwrap();
    assert_eq!(holds.len(), 2);
    assert_eq!(holds[1]["holder"], json!({"kind": "agent", "name": "Dana"}));
    assert!(holds.iter().all(|h| h["until"].is_string()));
}

async fn sessions_survive_restarts(env: &[(&str, &str)]) {
    let mut server = Server::start(env).await;
    let finished = finished_chat(&server).await;
    let (status, record) = server.get(&format!("/v1/sessions/{finished}"), ADMIN).await;
    assert_eq!(status, 200);
    check_finished(&record);

    // A chat still live at a graceful stop: the widget is told, the chat is kept as interrupted.
    let (mut visitor, welcome) = server.visitor().await;
    let live = welcome["session_id"].as_str().unwrap().to_string();
    visitor.send(json!({"type": "message", "client_id": "c1", "text": "hello"})).await;
    visitor.recv_type("message").await;
    server.stop().await;
    assert_eq!(visitor.closed().await, (1001, "server shutting down".into()));

    server.restart().await;
    let (_, ended) = server.get("/v1/sessions?state=ended", ADMIN).await;
    let ids: Vec<_> = ended.as_array().unwrap().iter().map(|c| c["session_id"].as_str().unwrap()).collect();
    assert!(ids.contains(&finished.as_str()) && ids.contains(&live.as_str()), "{ended}");
    let (_, record) = server.get(&format!("/v1/sessions/{finished}"), ADMIN).await;
    check_finished(&record);
    let (_, record) = server.get(&format!("/v1/sessions/{live}"), ADMIN).await;
    assert_eq!(record["end_reason"], "interrupted");
    assert_eq!(record["messages"].as_array().unwrap().len(), 2);
    let (_, live_now) = server.get("/v1/sessions?state=live", ADMIN).await;
    assert_eq!(live_now, json!([]));

    // A crash: every acknowledged message is still there afterwards.
    let (mut visitor, welcome) = server.visitor().await;
    let crashed = welcome["session_id"].as_str().unwrap().to_string();
    for i in 0..3 {
        visitor.send(json!({"type": "message", "client_id": format!("k{i}"), "text": "hello"})).await;
        visitor.recv_type("ack").await;
    }
    let (_, record) = server.get(&format!("/v1/sessions/{crashed}"), ADMIN).await;
    assert_eq!(record["messages"].as_array().unwrap().iter().filter(|m| m["author"]["role"] == "visitor").count(), 3);
    // Acknowledged means committed: the process dies right after the last ack.
    server.crash();
    server.restart().await;
    let (_, record) = server.get(&format!("/v1/sessions/{crashed}"), ADMIN).await;
    assert_eq!(record["end_reason"], "interrupted");
    let visitor_messages =
        record["messages"].as_array().unwrap().iter().filter(|m| m["author"]["role"] == "visitor").count();
    assert_eq!(visitor_messages, 3, "{record}");
}

#[tokio::test]
async fn sessions_survive_restarts_on_sqlite() {
    sessions_survive_restarts(&[]).await;
}

#[tokio::test]
async fn sessions_survive_restarts_on_postgres() {
    let db = PgDb::create().await;
    sessions_survive_restarts(&[("HARK_DATABASE_URL", &db.url)]).await;
}

#[tokio::test]
async fn listing_checks_its_parameters() {
    let server = Server::start(&[]).await;
    let (status, problem) = server.get("/v1/sessions?state=bogus", ADMIN).await;
    assert_eq!(status, 400);
    assert!(problem["detail"].as_str().unwrap().contains("live or ended"));
    let (status, _) = server.get("/v1/sessions?limit=0", ADMIN).await;
    assert_eq!(status, 400);
    let (status, _) = server.get("/v1/sessions/not-a-uuid", ADMIN).await;
    assert_eq!(status, 400);
    let (status, problem) = server.get(&format!("/v1/sessions/{}", uuid::Uuid::new_v4()), ADMIN).await;
    assert_eq!((status, problem["status"].as_u64()), (404, Some(404)));
}

#[tokio::test]
async fn malformed_http_requests_get_problem_json() {
    let server = Server::start(&[]).await;
    let client = reqwest::Client::new();
    let problem = |r: reqwest::Response| async move {
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["status"], status);
        (status, body["detail"].as_str().unwrap().to_string())
    };
    let r = client
        .post(server.http("/v1/tokens"))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(r).await.0, 400);
    let r = client.post(server.http("/v1/tokens")).bearer_auth(ADMIN).json(&json!({"nom": "x"})).send().await.unwrap();
    let (status, detail) = problem(r).await;
    assert_eq!(status, 422);
    assert!(detail.contains("name"), "{detail}");
    let r = client.get(server.http("/v1/sessions?limit=lots")).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(problem(r).await.0, 400);
    // A plain GET where a WebSocket upgrade is expected.
    let r = client.get(server.http("/v1/chat")).send().await.unwrap();
    assert!(problem(r).await.0 >= 400);
}

async fn notes_are_kept_per_session_and_tenant(env: &[(&str, &str)]) {
    let mut server = Server::start(env).await;
    let finished = finished_chat(&server).await;
    let http = reqwest::Client::new();
    let notes = server.http(&format!("/v1/sessions/{finished}/notes"));
    let added: Value = http
        .post(&notes)
        .bearer_auth(ADMIN)
        .json(&json!({"text": "  Customer asked for a call back  "}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(added["text"], "Customer asked for a call back");
    let id = added["id"].as_str().unwrap();
    let r = http.put(format!("{notes}/{id}")).bearer_auth(ADMIN).json(&json!({"text": "Called back"})).send().await;
    assert_eq!(r.unwrap().status(), 200);
    let r = http.post(&notes).bearer_auth(ADMIN).json(&json!({"text": "   "})).send().await.unwrap();
    assert_eq!(r.status(), 400);
    // Another tenant's token finds no such session.
    let eve = &server.tenant_token("Eve", Some("other")).await;
    let r = http.post(&notes).bearer_auth(eve).json(&json!({"text": "mine"})).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(http.delete(format!("{notes}/{id}")).bearer_auth(eve).send().await.unwrap().status(), 404);

    server.restart().await;
    let (_, record) = server.get(&format!("/v1/sessions/{finished}"), ADMIN).await;
    let kept = record["notes"].as_array().unwrap();
    assert_eq!(kept.len(), 1, "{record}");
    assert_eq!((kept[0]["text"].as_str(), kept[0]["author"].as_str()), (Some("Called back"), Some("admin")));
    assert_eq!(http.delete(format!("{notes}/{id}")).bearer_auth(ADMIN).send().await.unwrap().status(), 204);
    assert_eq!(http.delete(format!("{notes}/{id}")).bearer_auth(ADMIN).send().await.unwrap().status(), 404);
    let (_, listed) = server.get(&format!("/v1/sessions/{finished}/notes"), ADMIN).await;
    assert_eq!(listed, json!([]));
}

#[tokio::test]
async fn notes_are_kept_per_session_and_tenant_on_sqlite() {
    notes_are_kept_per_session_and_tenant(&[]).await;
}

#[tokio::test]
async fn notes_are_kept_per_session_and_tenant_on_postgres() {
    let db = PgDb::create().await;
    notes_are_kept_per_session_and_tenant(&[("HARK_DATABASE_URL", &db.url)]).await;
}

async fn export_csv(server: &Server, query: &str, token: &str) -> (u16, Vec<u8>) {
    let url = server.http(&format!("/v1/sessions/export.csv{query}"));
    let r = reqwest::Client::new().get(url).bearer_auth(token).send().await.unwrap();
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn ended_sessions_export_as_excel_safe_csv_with_chosen_columns() {
    let server = Server::start(&[]).await;
    let first = finished_chat(&server).await;
    // A chat whose last message a spreadsheet would run as a formula.
    let (mut visitor, welcome) = server.visitor().await;
    let second = welcome["session_id"].as_str().unwrap().to_string();
    visitor.send(json!({"type": "message", "client_id": "c1", "text": "hi"})).await;
    visitor.recv_type("ack").await;
    let (mut supervisor, _) = server.supervisor(ADMIN).await;
    supervisor.command(json!({"type": "take_over", "session_id": second, "agent_name": "Dana"})).await;
    let sent =
        supervisor.command(json!({"type": "send", "session_id": second, "text": "=HYPERLINK(\"http://x\")"})).await;
    assert_eq!(sent["type"], "ok");
    visitor.send(json!({"type": "leave"})).await;
    visitor.closed().await;

    let (status, body) = export_csv(&server, "?columns=session_id,channel,last_message,holder", ADMIN).await;
    assert_eq!(status, 200);
    assert!(body.starts_with(b"\xEF\xBB\xBF"), "a UTF-8 byte-order mark for Excel");
    let text = String::from_utf8(body[3..].to_vec()).unwrap();
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines[0], "session_id,channel,last_message,holder");
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[1], format!("{first},chat,\"שלום, Dana here\",Dana"), "oldest first, quoted where needed");
    assert_eq!(lines[2], format!("{second},chat,\"'=HYPERLINK(\"\"http://x\"\")\",Dana"), "the formula is defused");

    let (status, _) = export_csv(&server, "?columns=session_id,password", ADMIN).await;
    assert_eq!(status, 400);
    let (status, body) = export_csv(&server, "?since=2999-01-01T00:00:00Z", ADMIN).await;
    assert_eq!(status, 200);
    assert_eq!(String::from_utf8(body).unwrap().lines().count(), 1, "only the header");
    let eve = server.tenant_token("Eve", Some("other")).await;
    let (_, body) = export_csv(&server, "", &eve).await;
    assert_eq!(String::from_utf8(body).unwrap().lines().count(), 1, "another tenant's export has no rows");
}
