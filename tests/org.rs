//! The organization and data scopes end to end, on SQLite and PostgreSQL: departments, desks and
//! agents through REST; a call is placed on the agent whose extension it rings, a chat on the
//! agent who takes it over; a user scoped to desk A sees desk A's sessions and nothing of desk
//! B's through every route (list, record, notes, recordings, alerts, acknowledging, the CSV
//! export, reports, uploads, the live feed, watching); the history's filters, full-text search and cursor pages.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{fixtures, pcmu_offer, rules_file, sip_server, stream_rtp, PgDb, Server, Uac, Ws, ADMIN, WAIT};
use serde_json::{json, Value};

const REFUND_ALERT: &str = r#"
[[alerts]]
id = "refund"
name = "Refund asked"
severity = "warning"
condition = { kind = "phrase", speaker = "customer", phrases = ["refund"] }
"#;

async fn send(server: &Server, method: reqwest::Method, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = reqwest::Client::new().request(method, server.http(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn post(server: &Server, path: &str, token: &str, body: Value) -> (u16, Value) {
    send(server, reqwest::Method::POST, path, token, Some(body)).await
}

async fn created(server: &Server, path: &str, body: Value) -> String {
    let (status, made) = post(server, path, ADMIN, body).await;
    assert_eq!(status, 201, "{path}: {made}");
    made["id"].as_str().unwrap().to_string()
}

/// A user with `scope` and `permissions`, and an API key acting for them.
async fn user_token(server: &Server, name: &str, scope: Value, permissions: Value) -> (String, String) {
    let id = created(server, "/v1/users", json!({"name": name, "scope": scope, "permissions": permissions})).await;
    let (status, key) = post(server, &format!("/v1/users/{id}/tokens"), ADMIN, json!({})).await;
    assert_eq!(status, 201, "{key}");
    (id, key["token"].as_str().unwrap().to_string())
}

/// A chat whose visitor asks `text`, taken over by `agent`; the visitor stays connected.
async fn chat(server: &Server, supervisor: &mut Ws, agent: &str, text: &str) -> (Ws, String) {
    let (mut visitor, welcome) = server.visitor().await;
    let id = welcome["session_id"].as_str().unwrap().to_string();
    let taken = supervisor.command(json!({"type": "take_over", "session_id": id, "agent_name": agent})).await;
    assert_eq!(taken["type"], "ok", "{taken}");
    visitor.send(json!({"type": "message", "client_id": "c1", "text": text})).await;
    visitor.recv_type("ack").await;
    (visitor, id)
}

/// A short SIP call to `extension` with the JFK clip; returns once it has hung up.
async fn call(port: u16, extension: &str) {
    let mut uac = Uac::calling(port, extension).await;
    let rtp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let offer = pcmu_offer(rtp.local_addr().unwrap().port(), "sendrecv");
    uac.send("INVITE", "Content-Type: application/sdp\r\n", &offer).await;
    let answer = uac.final_response().await;
    assert_eq!(answer.status(), 200, "{}", answer.body);
    uac.send("ACK", "", "").await;
    let hark_rtp = format!("127.0.0.1:{}", answer.sdp_ports()[0]).parse().unwrap();
    let ulaw = std::fs::read(fixtures().join("sip/jfk_ask_not_8k.ulaw")).unwrap();
    stream_rtp(&rtp, hark_rtp, &ulaw[..16_000], 7).await;
    uac.send("BYE", "", "").await;
    assert_eq!(uac.final_response().await.status(), 200);
}

/// Polls the admin's ended history until `count` sessions are finalized (have a duration).
async fn finalized(server: &Server, count: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, page) = server.get("/v1/sessions?state=ended", ADMIN).await;
        let rows = page.as_array().cloned().unwrap_or_default();
        if rows.iter().filter(|r| r["duration_ms"].is_i64()).count() >= count {
            return rows;
        }
        assert!(tokio::time::Instant::now() < deadline, "{count} sessions finalized: {page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ids(list: &Value) -> HashSet<String> {
    list.as_array().unwrap().iter().map(|c| c["session_id"].as_str().unwrap().to_string()).collect()
}

async fn upload(server: &Server, token: &str, files: &[(String, Vec<u8>)], fields: &[(&str, &str)]) -> (u16, Value) {
    let (content_type, body) = common::multipart_form(files, fields);
    let request = reqwest::Client::new().post(server.http("/v1/uploads")).header("content-type", content_type);
    let response = request.bearer_auth(token).body(body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn csv(server: &Server, query: &str, token: &str) -> String {
    let response = reqwest::Client::new()
        .get(server.http(&format!("/v1/sessions/export.csv{query}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

async fn scoped_user_sees_only_their_desk(env: &[(&str, &str)]) {
    let (_dir, rules) = rules_file(REFUND_ALERT);
    let mut env = env.to_vec();
    env.push(("HARK_RULES_FILE", &rules));
    let (server, port) = sip_server(&env).await;

    // The organization: one department, desks A and B, Alice on A (1001), Bob on B (2002).
    let support = created(&server, "/v1/departments", json!({"name": "Support"})).await;
    let desk_a = created(&server, "/v1/desks", json!({"name": "Desk A", "department_id": support})).await;
    let desk_b = created(&server, "/v1/desks", json!({"name": "Desk B", "department_id": support})).await;
    let alice = created(&server, "/v1/agents", json!({"name": "Alice", "desk_id": desk_a, "extension": "1001"})).await;
    let bob = created(&server, "/v1/agents", json!({"name": "Bob", "desk_id": desk_b, "extension": "2002"})).await;
    let (status, taken) =
        post(&server, "/v1/agents", ADMIN, json!({"name": "Eve", "desk_id": desk_a, "extension": "1001"})).await;
    assert_eq!(status, 409, "an active agent's extension is taken: {taken}");
    let (_, token_a) =
        user_token(&server, "Ann", json!({"kind": "only", "desks": [desk_a]}), json!(["alerts", "uploads", "reports"]))
            .await;

    // Live: Alice takes chat A, Bob takes chat B; both customers ask for a refund.
    let (mut admin, _) = server.supervisor(ADMIN).await;
    let (mut visitor_a, chat_a) = chat(&server, &mut admin, "Alice", "I want a refund for the pineapple order").await;
    let (mut visitor_b, chat_b) = chat(&server, &mut admin, "bob", "refund my kiwi subscription please").await;
    let (mut ann, snapshot) = server.supervisor(&token_a).await;
    assert_eq!(ids(&snapshot["cards"]), HashSet::from([chat_a.clone()]), "the live feed's snapshot is desk A's");
    let card = &snapshot["cards"][0];
    assert_eq!(card["placement"]["agent_id"], json!(alice), "{card}");
    assert_eq!(
        (card["placement"]["agent_name"].as_str(), card["placement"]["desk_name"].as_str()),
        (Some("Alice"), Some("Desk A"))
    );
    let refused = ann.command(json!({"type": "watch", "session_id": chat_b})).await;
    assert_eq!(
        (refused["type"].as_str(), refused["code"].as_str()),
        (Some("error"), Some("unknown_session")),
        "{refused}"
    );
    let (_, live) = server.get("/v1/sessions", &token_a).await;
    assert_eq!(ids(&live), HashSet::from([chat_a.clone()]));
    for path in [format!("/v1/sessions/{chat_b}"), format!("/v1/sessions/{chat_b}/notes")] {
        assert_eq!(server.get(&path, &token_a).await.0, 404, "{path} is out of scope");
    }
    assert_eq!(server.get(&format!("/v1/sessions/{chat_a}"), &token_a).await.0, 200);

    // New activity on both chats reaches Ann only for desk A.
    visitor_b.send(json!({"type": "message", "client_id": "c2", "text": "hello again"})).await;
    visitor_a.send(json!({"type": "message", "client_id": "c2", "text": "still there?"})).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while let Some(frame) = ann.recv_within(deadline.saturating_duration_since(tokio::time::Instant::now())).await {
        for id in [&frame["card"]["session_id"], &frame["alert"]["session_id"], &frame["session_id"]] {
            assert_ne!(id.as_str(), Some(chat_b.as_str()), "desk B reached Ann's feed: {frame}");
        }
    }

    // A call to Bob's extension is placed on desk B.
    call(port, "2002").await;
    visitor_a.send(json!({"type": "leave"})).await;
    visitor_b.send(json!({"type": "leave"})).await;
    let rows = finalized(&server, 3).await;
    let voice = rows.iter().find(|r| r["channel"] == "voice").unwrap();
    assert_eq!(voice["placement"]["agent_id"], json!(bob), "{voice}");
    let call_id = voice["session_id"].as_str().unwrap().to_string();
    assert_eq!(server.get(&format!("/v1/sessions/{call_id}/recordings/0"), &token_a).await.0, 404);
    assert_ne!(server.get(&format!("/v1/sessions/{call_id}/recordings/0"), ADMIN).await.0, 404);

    // Finished: the history, the record, the alerts and the export show desk A only.
    let (_, ended) = server.get("/v1/sessions?state=ended", &token_a).await;
    assert_eq!(ids(&ended), HashSet::from([chat_a.clone()]));
    assert_eq!(server.get(&format!("/v1/sessions/{chat_b}"), &token_a).await.0, 404);
    assert_eq!(server.get(&format!("/v1/sessions/{call_id}"), &token_a).await.0, 404);
    let (_, alerts) = server.get("/v1/alerts", ADMIN).await;
    let alert_b = alerts.as_array().unwrap().iter().find(|a| a["session_id"] == json!(chat_b)).expect("desk B's alert");
    let (_, mine) = server.get("/v1/alerts", &token_a).await;
    assert_eq!(mine.as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(mine[0]["session_id"], json!(chat_a));
    let ack = format!("/v1/alerts/{}/ack", alert_b["id"].as_str().unwrap());
    assert_eq!(post(&server, &ack, &token_a, json!({})).await.0, 404, "acknowledging another desk's alert");
    let export = csv(&server, "?columns=session_id,agent,desk", &token_a).await;
    assert_eq!(export.lines().count(), 2, "a header and desk A's chat: {export}");
    assert!(export.contains(&format!("{chat_a},Alice,Desk A")), "{export}");
    let all = csv(&server, "?columns=session_id,agent,desk,department", ADMIN).await;
    assert!(all.contains(&format!("{call_id},Bob,Desk B,Support")), "{all}");
    let calls = |report: &Value| report["tiles"]["calls"]["value"].as_u64();
    let (_, everything) = server.get("/v1/reports?period=day", ADMIN).await;
    let (_, desk_a_only) = server.get("/v1/reports?period=day", &token_a).await;
    assert_eq!((calls(&everything), calls(&desk_a_only)), (Some(3), Some(1)), "{desk_a_only}");
    assert_eq!(desk_a_only["agents"][0]["agent_name"], "Alice", "{desk_a_only}");

    // Ann's uploads must name an agent of her scope; the call is then hers to see.
    let clip = std::fs::read(fixtures().join("audio/jfk_ask_not.wav")).unwrap();
    let files = [("jfk.wav".to_string(), clip)];
    let (status, problem) = upload(&server, &token_a, &files, &[("extension", "2002")]).await;
    assert_eq!((status, problem["invalid-params"][0]["name"].as_str()), (400, Some("extension")), "{problem}");
    let (status, accepted) = upload(&server, &token_a, &files, &[("extension", "1001")]).await;
    assert_eq!(status, 202, "{accepted}");
    let uploaded = accepted["files"][0]["session_id"].as_str().unwrap();
    let (status, record) = server.get(&format!("/v1/sessions/{uploaded}"), &token_a).await;
    assert_eq!((status, &record["placement"]["agent_id"]), (200, &json!(alice)), "{record}");

    // What Ann may not do: administer the organization; a bad scope is named.
    assert_eq!(post(&server, "/v1/departments", &token_a, json!({"name": "Mine"})).await.0, 403);
    let (status, problem) =
        post(&server, "/v1/users", ADMIN, json!({"name": "X", "scope": {"kind": "only", "desks": [desk_a, "nope"]}}))
            .await;
    assert_eq!(status, 400);
    assert_eq!(problem["invalid-params"][0]["name"], "scope.desks[1]", "{problem}");

    // Bob leaves: deactivated, his history keeps his name, his extension is free again.
    let (status, gone) = send(&server, reqwest::Method::DELETE, &format!("/v1/agents/{bob}"), ADMIN, None).await;
    assert_eq!((status, gone["active"].as_bool()), (200, Some(false)), "{gone}");
    let (_, record) = server.get(&format!("/v1/sessions/{call_id}"), ADMIN).await;
    assert_eq!(record["placement"]["agent_name"], "Bob", "{record}");
    let (status, _) =
        post(&server, "/v1/agents", ADMIN, json!({"name": "Bea", "desk_id": desk_b, "extension": "2002"})).await;
    assert_eq!(status, 201);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_desk_scoped_user_sees_only_their_desk_on_sqlite() {
    scoped_user_sees_only_their_desk(&[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_desk_scoped_user_sees_only_their_desk_on_postgres() {
    let db = PgDb::create().await;
    scoped_user_sees_only_their_desk(&[("HARK_DATABASE_URL", &db.url)]).await;
}

/// Chats, each taken over by `agent` and saying `text`, then ended; Alice greets hers.
async fn finished_chats(server: &Server, supervisor: &mut Ws, texts: &[(&str, &str)]) -> Vec<String> {
    let mut ids = Vec::new();
    for (agent, text) in texts {
        let (mut visitor, id) = chat(server, supervisor, agent, text).await;
        if *agent == "Alice" {
            let sent =
                supervisor.command(json!({"type": "send", "session_id": id, "text": "Hello, Alice here."})).await;
            assert_eq!(sent["type"], "ok", "{sent}");
        }
        visitor.send(json!({"type": "leave"})).await;
        ids.push(id);
    }
    ids
}

async fn history_filters_search_and_pages(env: &[(&str, &str)]) {
    let server = Server::start(env).await;
    let support = created(&server, "/v1/departments", json!({"name": "Support"})).await;
    let desk = created(&server, "/v1/desks", json!({"name": "Desk", "department_id": support})).await;
    let alice = created(&server, "/v1/agents", json!({"name": "Alice", "desk_id": desk})).await;
    let (mut admin, _) = server.supervisor(ADMIN).await;
    let ids = finished_chats(
        &server,
        &mut admin,
        &[
            ("Alice", "my invoice shows a double charge"),
            ("Zed", "the router blinks red after the update"),
            ("Alice", "please cancel my plan, the invoice is wrong"),
            ("Zed", "where is my parcel"),
            ("Alice", "¿Dónde está mi factura? la factura"),
        ],
    )
    .await;
    finalized(&server, ids.len()).await;

    let page = |query: &str| {
        let path = format!("/v1/sessions?state=ended&{query}");
        let server = &server;
        async move {
            let (status, body) = server.get(&path, ADMIN).await;
            assert_eq!(status, 200, "{path}: {body}");
            ids_in_order(&body)
        }
    };
    // Full text: words must all occur, phrases in quotes, exclusions, either-or, accents folded.
    assert_eq!(page("q=invoice").await, vec![ids[2].clone(), ids[0].clone()]);
    assert_eq!(page("q=invoice%20cancel").await, vec![ids[2].clone()]);
    assert_eq!(page("q=%22double%20charge%22").await, vec![ids[0].clone()]);
    assert_eq!(page("q=invoice%20-cancel").await, vec![ids[0].clone()]);
    assert_eq!(page("q=parcel%20or%20router").await, vec![ids[3].clone(), ids[1].clone()]);
    assert_eq!(page("q=donde%20factura").await, vec![ids[4].clone()]);
    assert_eq!(page("q=%22unbalanced").await, Vec::<String>::new(), "odd input is no error");
    // Placement and channel filters, combined with text.
    assert_eq!(page(&format!("agent={alice}&q=invoice")).await, vec![ids[2].clone(), ids[0].clone()]);
    assert_eq!(page(&format!("desk={desk}")).await, vec![ids[4].clone(), ids[2].clone(), ids[0].clone()]);
    assert_eq!(page("channel=voice").await, Vec::<String>::new());
    assert_eq!(page("sort=started_at&limit=2").await, vec![ids[0].clone(), ids[1].clone()]);
    // What the analysis found: category, tags, checklist items, scores.
    assert_eq!(page("category=billing").await, vec![ids[2].clone(), ids[0].clone()]);
    assert_eq!(page("tags=cancellation").await, vec![ids[2].clone()]);
    assert_eq!(page("checklist=greeting:done").await, vec![ids[4].clone(), ids[2].clone(), ids[0].clone()]);
    assert_eq!(page("checklist=greeting:missed").await, vec![ids[3].clone(), ids[1].clone()]);
    assert_eq!(page("checklist=greeting:done&scores=response_speed:10&q=parcel").await, Vec::<String>::new());
    assert!(page("scores=response_speed:10-10,customer_sentiment:1-10").await.contains(&ids[0]));
    let (_, record) = server.get(&format!("/v1/sessions/{}", ids[0]), ADMIN).await;
    let analysis = &record["analysis"];
    let greeting = analysis["checklist"].as_array().unwrap().iter().find(|c| c["id"] == "greeting").unwrap();
    assert_eq!(
        (greeting["done"].as_bool(), greeting["evidence"]["text"].as_str()),
        (Some(true), Some("Hello, Alice here."))
    );
    let speed = analysis["scores"].as_array().unwrap().iter().find(|s| s["label"] == "response_speed").unwrap();
    assert_eq!(speed["score"], 10, "{speed}");
    assert!(!speed["explanation"].as_str().unwrap().is_empty());

    // Cursor pages: every session once, in order, however the pages fall.
    let mut seen = Vec::new();
    let mut next = Some("/v1/sessions?state=ended&limit=2".to_string());
    while let Some(path) = next {
        let response = reqwest::Client::new().get(server.http(&path)).bearer_auth(ADMIN).send().await.unwrap();
        next = response
            .headers()
            .get("link")
            .map(|l| l.to_str().unwrap().trim_start_matches('<').split('>').next().unwrap().to_string());
        seen.extend(ids_in_order(&response.json().await.unwrap()));
    }
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);

    // Bad parameters are named.
    for (query, named) in [
        ("scores=talk_ratio:0-5", "scores"),
        ("checklist=greeting:maybe", "checklist"),
        ("channel=fax", "channel"),
        ("sort=size", "sort"),
        ("cursor=zz", "cursor"),
        ("since=yesterday", "since"),
    ] {
        let (status, problem) = server.get(&format!("/v1/sessions?state=ended&{query}"), ADMIN).await;
        assert_eq!(status, 400, "{query}");
        assert!(problem["detail"].as_str().unwrap().starts_with(named), "{query}: {problem}");
    }
}

fn ids_in_order(list: &Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(|c| c["session_id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn history_filters_search_and_pages_on_sqlite() {
    history_filters_search_and_pages(&[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn history_filters_search_and_pages_on_postgres() {
    let db = PgDb::create().await;
    history_filters_search_and_pages(&[("HARK_DATABASE_URL", &db.url)]).await;
}
