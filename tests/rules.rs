//! The rules stage end to end, over real sockets: an unanswered chat raises a first-response
//! breach at the supervisor on time (SQLite and PostgreSQL) and a reply in time raises none; an
//! automation tags a chat and sends a templated message with its fallback; a sipp call whose
//! transcript holds a configured phrase raises an alert while the call is still live; rule
//! changes through REST are checked (400 naming the field, 403 without admin) and kept.

mod common;

use std::time::{Duration, Instant};

use common::{rules_file, sip_server, sipp, PgDb, Server, Ws, ADMIN, SPEECH, WAIT};
use serde_json::{json, Value};

const FIRST_RESPONSE_RULES: &str = r#"
default_sla = { chat = "fast" }

[[sla_policies]]
id = "fast"
name = "Fast chat"
first_response_secs = 2
warning_fraction = 0.5

[[alerts]]
id = "frt-breached"
name = "First response breached"
severity = "critical"
condition = { kind = "sla", metric = "first_response", status = "breached" }
"#;

/// The next frame of `kind`, skipping others, or None within `wait`.
async fn next_of(ws: &mut Ws, kind: &str, wait: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let frame = ws.recv_within(left).await?;
        if frame["type"] == kind {
            return Some(frame);
        }
    }
}

async fn post(server: &Server, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = reqwest::Client::new().post(server.http(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn send(server: &Server, method: reqwest::Method, path: &str, token: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new().request(method, server.http(path)).bearer_auth(token).json(&body).send().await;
    let r = r.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn millis(rfc3339: &Value) -> i128 {
    let t = time::OffsetDateTime::parse(rfc3339.as_str().unwrap(), &time::format_description::well_known::Rfc3339);
    t.unwrap().unix_timestamp_nanos() / 1_000_000
}

async fn unanswered_chat_breaches_first_response_on_time(env: &[(&str, &str)]) {
    let (_dir, path) = rules_file(FIRST_RESPONSE_RULES);
    let mut env = env.to_vec();
    env.push(("HARK_RULES_FILE", &path));
    let server = Server::start(&env).await;
    let (mut supervisor, _) = server.supervisor(ADMIN).await;

    // A visitor writes; only the bot answers, which does not count as a response.
    let (mut visitor, welcome) = server.visitor().await;
    let session = welcome["session_id"].as_str().unwrap().to_string();
    let sent = Instant::now();
    visitor.send(json!({"type": "message", "client_id": "c1", "text": "hello, anyone there?"})).await;
    visitor.recv_type("ack").await;
    let alert = next_of(&mut supervisor, "alert", WAIT).await.expect("an alert frame")["alert"].clone();
    let waited = sent.elapsed();
    assert!(waited >= Duration::from_secs(2), "the breach came {waited:?} after the message, before its deadline");
    assert!(waited < Duration::from_millis(3_000), "the breach came {waited:?} after the message");
    assert_eq!(alert["session_id"], session.as_str());
    assert_eq!((alert["rule_id"].as_str(), alert["kind"].as_str()), (Some("frt-breached"), Some("sla")));
    assert_eq!(alert["severity"], "critical");
    assert!(alert["acknowledged_at"].is_null());

    // The stored message's time plus the threshold is the alert's time, to the clock's grain.
    let (_, record) = server.get(&format!("/v1/sessions/{session}"), ADMIN).await;
    let message = record["messages"].as_array().unwrap().iter().find(|m| m["author"]["role"] == "visitor").unwrap();
    let late = millis(&alert["raised_at"]) - millis(&message["at"]);
    assert!((2_000..2_200).contains(&late), "raised {late} ms after the message");
    // The card carries the SLA clock, now with a miss.
    assert_eq!(record["sla"]["policy"], "fast");
    assert!(record["sla"]["state"].as_str().unwrap().contains("miss"), "{}", record["sla"]);

    // Kept, listed with filters, acknowledged once, and the acknowledgement is pushed.
    let (status, listed) = server.get(&format!("/v1/alerts?session_id={session}&kind=sla"), ADMIN).await;
    assert_eq!(status, 200);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let (_, none) = server.get("/v1/alerts?kind=phrase", ADMIN).await;
    assert_eq!(none, json!([]));
    let id = alert["id"].as_str().unwrap();
    let (status, acked) = post(&server, &format!("/v1/alerts/{id}/ack"), ADMIN, None).await;
    assert_eq!(status, 200, "{acked}");
    assert!(acked["acknowledged_at"].is_string());
    let pushed = next_of(&mut supervisor, "alert", WAIT).await.expect("the acknowledgement is pushed");
    assert_eq!(pushed["alert"]["acknowledged_by"], acked["acknowledged_by"]);
    let (_, open) = server.get("/v1/alerts?acknowledged=false", ADMIN).await;
    assert_eq!(open, json!([]));
    let (status, _) = post(&server, &format!("/v1/alerts/{}/ack", uuid::Uuid::new_v4()), ADMIN, None).await;
    assert_eq!(status, 404);
    let (status, problem) = server.get("/v1/alerts?since=yesterday", ADMIN).await;
    assert_eq!(status, 400, "{problem}");

    // An agent's reply before the deadline cancels it: no second alert.
    let (mut visitor, welcome) = server.visitor().await;
    let answered = welcome["session_id"].as_str().unwrap().to_string();
    visitor.send(json!({"type": "message", "client_id": "c1", "text": "hello again"})).await;
    visitor.recv_type("ack").await;
    let took =
        supervisor.command(json!({"type": "take_over", "session_id": answered, "agent_name": "Dana", "ref": 1})).await;
    assert_eq!(took["type"], "ok", "{took}");
    let replied =
        supervisor.command(json!({"type": "send", "session_id": answered, "text": "Hi, Dana here", "ref": 2})).await;
    assert_eq!(replied["type"], "ok", "{replied}");
    assert_eq!(
        next_of(&mut supervisor, "alert", Duration::from_secs(3)).await,
        None,
        "a reply in time cancels the breach"
    );
    let (_, listed) = server.get(&format!("/v1/alerts?session_id={answered}"), ADMIN).await;
    assert_eq!(listed, json!([]));
}

#[tokio::test]
async fn unanswered_chat_breaches_first_response_on_time_on_sqlite() {
    unanswered_chat_breaches_first_response_on_time(&[]).await;
}

#[tokio::test]
async fn unanswered_chat_breaches_first_response_on_time_on_postgres() {
    let db = PgDb::create().await;
    unanswered_chat_breaches_first_response_on_time(&[("HARK_DATABASE_URL", &db.url)]).await;
}

#[tokio::test]
async fn an_automation_tags_the_chat_and_sends_a_templated_message() {
    let (_dir, path) = rules_file(
        r#"
[[automations]]
id = "refunds"
name = "Refunds go to billing"
event = "message_created"
conditions = { all = [{ author = "customer" }, { text_contains = "refund" }] }
actions = [
    { add_tag = "refund" },
    { assign_team = "billing" },
    { send_message = "Thanks {{contact.name || 'there'}}, billing will look at your refund." },
]
"#,
    );
    let server = Server::start(&[("HARK_RULES_FILE", &path)]).await;
    let (mut supervisor, _) = server.supervisor(ADMIN).await;
    let (mut visitor, welcome) = server.visitor().await;
    let session = welcome["session_id"].as_str().unwrap().to_string();
    visitor.send(json!({"type": "message", "client_id": "c1", "text": "Where is my REFUND?"})).await;
    visitor.recv_type("ack").await;
    // The visitor gets the message, its name unknown, so with the fallback.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let frame = visitor.recv_type("message").await;
        if frame["text"] == "Thanks there, billing will look at your refund." {
            assert_eq!(frame["author"]["role"], "bot");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no templated message");
    }
    // The card shows the tag and the team.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let card = next_of(&mut supervisor, "card", WAIT).await.expect("card frames")["card"].clone();
        if card["session_id"] == session.as_str() && card["tags"] == json!(["refund"]) && card["team"] == "billing" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the card never showed the tag and the team");
    }
    // Another message does not tag twice; other texts do nothing.
    visitor.send(json!({"type": "message", "client_id": "c2", "text": "refund please"})).await;
    visitor.recv_type("ack").await;
    visitor.send(json!({"type": "message", "client_id": "c3", "text": "bye"})).await;
    visitor.send(json!({"type": "leave"})).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let (_, record) = loop {
        let (status, record) = server.get(&format!("/v1/sessions/{session}"), ADMIN).await;
        if record["state"] == "ended" {
            break (status, record);
        }
        assert!(tokio::time::Instant::now() < deadline, "the chat never ended: {record}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(record["tags"], json!(["refund"]), "kept with the ended session");
    let templated = record["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["text"].as_str().unwrap_or_default().starts_with("Thanks there"))
        .count();
    assert_eq!(templated, 2, "one message per matching visitor message");
}

#[tokio::test]
async fn rule_changes_are_checked_and_kept() {
    let mut server = Server::start(&[("HARK_RULES_FILE", "")]).await;
    let (status, rules) = server.get("/v1/rules", ADMIN).await;
    assert_eq!(status, 200);
    let alerts = rules["alerts"].as_array().unwrap().len();

    // A score rule without its value: 400 naming the field.
    let bad = json!({"name": "Low CSAT", "condition": {"kind": "score", "score": "customer_satisfaction", "op": "less_than"}});
    let (status, problem) = send(&server, reqwest::Method::PUT, "/v1/rules/alerts/low-csat", ADMIN, bad).await;
    assert_eq!(status, 400, "{problem}");
    let field = format!("alerts[{alerts}].condition.value");
    assert_eq!(problem["invalid-params"][0]["name"], field.as_str(), "{problem}");
    assert!(problem["detail"].as_str().unwrap().starts_with(&field), "{problem}");
    // A misspelt key names where it is.
    let typo = json!({"id": "t", "name": "T", "evnt": "message_created", "actions": []});
    let (status, problem) = send(&server, reqwest::Method::POST, "/v1/rules/automations", ADMIN, typo).await;
    assert_eq!(status, 400, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("evnt"), "{problem}");
    assert!(problem["invalid-params"][0]["name"].as_str().unwrap().starts_with("automations["), "{problem}");
    // Only admins change rules.
    let supervisor = server.token("Sam").await;
    let good = json!({"name": "Low CSAT", "condition": {"kind": "score", "score": "customer_satisfaction", "op": "less_than", "value": 4}});
    let (status, _) = send(&server, reqwest::Method::PUT, "/v1/rules/alerts/low-csat", &supervisor, good.clone()).await;
    assert_eq!(status, 403);
    let (_, unchanged) = server.get("/v1/rules", ADMIN).await;
    assert_eq!(unchanged, rules, "refused changes change nothing");

    // A good one is in force and survives a restart; removing it works once.
    let (status, saved) = send(&server, reqwest::Method::PUT, "/v1/rules/alerts/low-csat", ADMIN, good).await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["id"], "low-csat");
    server.restart().await;
    let (status, rule) = server.get("/v1/rules/alerts/low-csat", ADMIN).await;
    assert_eq!((status, rule["condition"]["value"].as_f64()), (200, Some(4.0)), "{rule}");
    let (status, _) = send(&server, reqwest::Method::DELETE, "/v1/rules/alerts/low-csat", ADMIN, json!(null)).await;
    assert_eq!(status, 204);
    let (status, _) = send(&server, reqwest::Method::DELETE, "/v1/rules/alerts/low-csat", ADMIN, json!(null)).await;
    assert_eq!(status, 404);
    let (status, _) = server.get("/v1/rules/bogus/x", ADMIN).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_phrase_in_a_live_call_raises_an_alert_before_it_ends() {
    common::models_dir();
    let (_dir, path) = rules_file(
        r#"
[[alerts]]
id = "patriot"
name = "Caller quotes Kennedy"
severity = "warning"
condition = { kind = "phrase", speaker = "customer", phrases = ["fellow americans", "your country"] }

[[alerts]]
id = "agent-only"
name = "Agent says country"
condition = { kind = "phrase", speaker = "agent", phrases = ["your country"] }
"#,
    );
    let (server, port) = sip_server(&[("HARK_RULES_FILE", &path), SPEECH]).await;
    let (mut supervisor, _) = server.supervisor(ADMIN).await;
    let dir = common::scenario_dir();
    let call = tokio::spawn({
        let dir = dir.path().to_path_buf();
        async move { sipp(&dir, port, "uac_speech.xml", &[]).await }
    });
    // Frames in order: the alert must come while the call is live, before its end.
    let mut alert = None;
    let deadline = tokio::time::Instant::now() + WAIT * 3;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let frame = supervisor.recv_within(left).await.expect("the call's alert and end within 30 s");
        match frame["type"].as_str() {
            Some("alert") => {
                assert!(alert.is_none(), "one alert per rule and session: {frame}");
                alert = Some(frame["alert"].clone());
            }
            Some("ended") => break,
            _ => {}
        }
    }
    assert_eq!(call.await.unwrap(), 0, "sipp completed the call");
    let alert = alert.expect("the phrase alert came before the call ended");
    assert_eq!((alert["rule_id"].as_str(), alert["kind"].as_str()), (Some("patriot"), Some("phrase")));
    let evidence = alert["evidence"].as_str().unwrap().to_lowercase();
    assert!(evidence.contains("fellow americans") || evidence.contains("your country"), "{alert}");
    let (_, listed) = server.get("/v1/alerts", ADMIN).await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "the agent-only rule stays quiet: {listed}");
}
