//! The chat channel end to end through real sockets: visitor ↔ bot, take-over, resume,
//! contention, transfer, auth refusals, bad input, the HTTP bot connector and metrics.

mod common;

use std::time::Duration;

use common::{Server, Ws, ADMIN};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

fn message(client_id: &str, text: &str) -> Value {
    json!({"type": "message", "client_id": client_id, "text": text})
}

/// Reads frames until the visitor's own message `client_id` is acknowledged; returns its seq.
async fn acked(ws: &mut Ws, client_id: &str) -> u64 {
    loop {
        let f = ws.recv().await;
        if f["type"] == "ack" && f["client_id"] == client_id {
            return f["seq"].as_u64().unwrap();
        }
    }
}

/// The visitor asks what the bot would answer; nothing but the ack comes back for a while.
async fn asks_unanswered(visitor: &mut Ws, client_id: &str, why: &str) {
    visitor.send(message(client_id, "What are your opening hours?")).await;
    acked(visitor, client_id).await;
    assert_eq!(visitor.recv_within(Duration::from_millis(700)).await, None, "{why}");
}

/// The next log entry sent to the visitor by someone other than the visitor.
async fn next_entry(ws: &mut Ws) -> Value {
    ws.recv_type("message").await
}

#[tokio::test]
async fn visitor_and_bot_round_trip() {
    let server = Server::start(&[]).await;
    let (mut visitor, welcome) = server.visitor().await;
    assert_eq!(welcome["holder"]["kind"], "bot");
    assert_eq!(welcome["resumed"], false);
    assert_eq!(welcome["last_seq"], 0);
    visitor.send(message("c1", "What are your opening hours?")).await;
    assert_eq!(acked(&mut visitor, "c1").await, 1);
    let reply = next_entry(&mut visitor).await;
    assert_eq!(reply["seq"], 2);
    assert_eq!(reply["author"]["role"], "bot");
    assert!(reply["text"].as_str().unwrap().contains("Monday to Friday"), "{reply}");
    visitor.send(message("c2", "Can you explain quantum chromodynamics?")).await;
    acked(&mut visitor, "c2").await;
    let fallback = next_entry(&mut visitor).await;
    assert!(fallback["text"].as_str().unwrap().contains("Let me get a person"), "{fallback}");
}

#[tokio::test]
async fn take_over_silences_the_bot_and_leave_brings_it_back() {
    let server = Server::start(&[]).await;
    let (mut visitor, welcome) = server.visitor().await;
    let id = welcome["session_id"].as_str().unwrap().to_string();
    let (mut supervisor, _) = server.supervisor(ADMIN).await;

    supervisor.send(json!({"type": "watch", "session_id": id, "ref": "w"})).await;
    let history = supervisor.recv_type("history").await;
    assert_eq!(history["messages"], json!([]));
    assert_eq!(supervisor.recv_type("ok").await["ref"], "w");

    assert_eq!(
        supervisor.command(json!({"type": "take_over", "session_id": id, "agent_name": "Dana", "ref": "t"})).await
            ["ref"],
        "t"
    );
    let joined = next_entry(&mut visitor).await;
    assert_eq!(joined["notice"], json!({"kind": "agent_joined", "agent": "Dana"}));
    assert_eq!(visitor.recv_type("holder").await["holder"], json!({"kind": "agent", "name": "Dana"}));

    // While held, the bot never answers.
    asks_unanswered(&mut visitor, "c1", "no bot message while held").await;
    // The watcher saw the visitor's message.
    let seen = supervisor.recv_type("message").await;
    assert_eq!(seen["notice"]["kind"], "agent_joined");
    let seen = supervisor.recv_type("message").await;
    assert_eq!((seen["author"]["role"].as_str(), seen["client_id"].as_str()), (Some("visitor"), Some("c1")));

    supervisor
        .send(json!({"type": "send", "session_id": id, "text": "Hi, Dana here. We open at 8.", "ref": "s"}))
        .await;
    let reply = next_entry(&mut visitor).await;
    assert_eq!(reply["author"], json!({"role": "agent", "name": "Dana"}));
    assert_eq!(reply["text"], "Hi, Dana here. We open at 8.");

    supervisor.send(json!({"type": "leave", "session_id": id})).await;
    let left = next_entry(&mut visitor).await;
    assert_eq!(left["notice"], json!({"kind": "agent_left", "agent": "Dana"}));
    assert_eq!(visitor.recv_type("holder").await["holder"], json!({"kind": "bot"}));
    visitor.send(message("c2", "Where is my parcel?")).await;
    acked(&mut visitor, "c2").await;
    let bot = next_entry(&mut visitor).await;
    assert_eq!(bot["author"]["role"], "bot");

    // The log records who held the session when.
    visitor.send(json!({"type": "leave"})).await;
    assert_eq!(visitor.closed().await, (1000, "session ended".into()));
    let (status, record) = server.get(&format!("/v1/sessions/{id}"), ADMIN).await;
    assert_eq!(status, 200);
    let holders: Vec<_> = record["holds"].as_array().unwrap().iter().map(|h| h["holder"]["kind"].clone()).collect();
    assert_eq!(holders, vec![json!("bot"), json!("agent"), json!("bot")]);
    assert!(record["messages"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["author"]["role"] != "bot" || m["seq"].as_u64() > Some(5)));
}

#[tokio::test]
async fn a_dropped_widget_connection_resumes_with_nothing_lost_or_duplicated() {
    let server = Server::start(&[]).await;
    let (mut visitor, welcome) = server.visitor().await;
    let id = welcome["session_id"].as_str().unwrap().to_string();
    let token = welcome["resume_token"].as_str().unwrap().to_string();
    visitor.send(message("c1", "hello")).await;
    acked(&mut visitor, "c1").await;
    let last_seen = next_entry(&mut visitor).await["seq"].as_u64().unwrap();
    assert_eq!(last_seen, 2);

    // The visitor sends, then the network drops before the ack can arrive.
    visitor.send(message("c2", "are you there?")).await;
    visitor.drop_connection();

    // Meanwhile an agent takes over and writes.
    let (mut supervisor, _) = server.supervisor(ADMIN).await;
    assert_eq!(
        supervisor.command(json!({"type": "take_over", "session_id": id, "agent_name": "Dana"})).await["type"],
        "ok"
    );
    assert_eq!(supervisor.command(json!({"type": "send", "session_id": id, "text": "Dana here"})).await["type"], "ok");

    // Reconnect with the highest seq seen: everything after it, once, in order.
    let mut visitor = Ws::connect(&server.ws("/v1/chat"), &[]).await;
    visitor.send(json!({"type": "hello", "site_key": "demo", "resume_token": token, "last_seq": last_seen})).await;
    let welcome = visitor.recv_type("welcome").await;
    assert_eq!(welcome["resumed"], true);
    assert_eq!(welcome["session_id"], id.as_str());
    let last = welcome["last_seq"].as_u64().unwrap();
    let mut replayed = Vec::new();
    while let Some(frame) = visitor.recv_within(Duration::from_millis(500)).await {
        replayed.push(frame);
    }
    let seqs: Vec<u64> = replayed.iter().filter_map(|f| f["seq"].as_u64()).collect();
    assert_eq!(seqs, ((last_seen + 1)..=last).collect::<Vec<_>>(), "{replayed:?}");
    assert!(replayed.iter().any(|f| f["text"] == "Dana here"));
    // The lost message is in the replay if it arrived; resending it never duplicates it.
    visitor.send(message("c2", "are you there?")).await;
    let seq = acked(&mut visitor, "c2").await;
    if let Some(stored) = replayed.iter().find(|f| f["client_id"] == "c2") {
        assert_eq!(stored["seq"].as_u64(), Some(seq), "the resend is acked with the original seq");
    }
    let (_, record) = server.get(&format!("/v1/sessions/{id}"), ADMIN).await;
    let copies = record["messages"].as_array().unwrap().iter().filter(|m| m["client_id"] == "c2").count();
    assert_eq!(copies, 1);

    // The old resume token on a second socket replaces the first.
    let mut second = Ws::connect(&server.ws("/v1/chat"), &[]).await;
    second.send(json!({"type": "hello", "site_key": "demo", "resume_token": token, "last_seq": last})).await;
    second.recv_type("welcome").await;
    assert_eq!(visitor.closed().await.0, 4409);
}

#[tokio::test]
async fn a_second_supervisor_is_refused_and_a_gone_holder_is_released_after_the_grace() {
    let server = Server::start(&[("HARK_SUPERVISE_RELEASE_GRACE_SECS", "1")]).await;
    let (mut visitor, welcome) = server.visitor().await;
    let id = welcome["session_id"].as_str().unwrap().to_string();
    let other = server.token("Eve").await;
    let (mut a, _) = server.supervisor(ADMIN).await;
    let (mut b, _) = server.supervisor(&other).await;

    assert_eq!(
        a.command(json!({"type": "take_over", "session_id": id, "agent_name": "Dana", "ref": 1})).await["ref"],
        1
    );
    b.send(json!({"type": "take_over", "session_id": id, "agent_name": "Eve", "ref": 2})).await;
    let refused = b.recv_type("error").await;
    assert_eq!((refused["ref"].as_i64(), refused["code"].as_str()), (Some(2), Some("held")));
    assert!(refused["message"].as_str().unwrap().contains("Dana"), "{refused}");
    b.send(json!({"type": "send", "session_id": id, "text": "sneaky", "ref": 3})).await;
    assert_eq!(b.recv_type("error").await["code"], "not_holder");

    next_entry(&mut visitor).await; // Dana joined
    a.drop_connection();
    let left = next_entry(&mut visitor).await;
    assert_eq!(left["notice"], json!({"kind": "agent_left", "agent": "Dana"}));
    assert_eq!(
        b.command(json!({"type": "take_over", "session_id": id, "agent_name": "Eve", "ref": 4})).await["ref"],
        4
    );
    assert_eq!(next_entry(&mut visitor).await["notice"]["agent"], "Eve");
    let metrics = server.metrics().await;
    assert!(metrics.contains("hark_takeovers_total{outcome=\"refused\"} 1"), "{metrics}");
}

#[tokio::test]
async fn transfer_puts_the_chat_in_a_queue_with_the_bot_silent() {
    let server = Server::start(&[]).await;
    let (mut visitor, welcome) = server.visitor().await;
    let id = welcome["session_id"].as_str().unwrap().to_string();
    let (mut a, _) = server.supervisor(ADMIN).await;
    assert_eq!(a.command(json!({"type": "take_over", "session_id": id, "agent_name": "Dana"})).await["type"], "ok");
    assert_eq!(
        a.command(json!({"type": "transfer", "session_id": id, "to_group": "billing", "ref": "x"})).await["ref"],
        "x"
    );
    let card = loop {
        let f = a.recv_type("card").await;
        if f["card"]["holder"]["kind"] == "waiting" {
            break f["card"].clone();
        }
    };
    assert_eq!(card["holder"], json!({"kind": "waiting", "queue": "billing"}));
    next_entry(&mut visitor).await; // joined
    assert_eq!(next_entry(&mut visitor).await["notice"], json!({"kind": "transferred", "to": "billing"}));
    asks_unanswered(&mut visitor, "c1", "the bot stays silent in a queue").await;
    let eve = server.token("Eve").await;
    let (mut b, _) = server.supervisor(&eve).await;
    assert_eq!(b.command(json!({"type": "take_over", "session_id": id, "agent_name": "Eve"})).await["type"], "ok");
}

#[tokio::test]
async fn refusals_without_a_valid_token() {
    let server = Server::start(&[]).await;
    assert_eq!(Ws::try_connect(&server.ws("/v1/supervise"), &[]).await.err(), Some(401));
    assert_eq!(Ws::try_connect(&server.ws("/v1/supervise?access_token=nope"), &[]).await.err(), Some(401));
    let bearer = [("authorization", "Bearer nope")];
    assert_eq!(Ws::try_connect(&server.ws("/v1/supervise"), &bearer).await.err(), Some(401));
    let good = [("authorization", &*format!("Bearer {ADMIN}"))];
    assert!(Ws::try_connect(&server.ws("/v1/supervise"), &good).await.is_ok());

    let r = reqwest::get(server.http("/v1/sessions")).await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert_eq!(r.json::<Value>().await.unwrap()["status"], 401);
    let (status, _) = server.get("/v1/sessions", "wrong").await;
    assert_eq!(status, 401);

    let supervisor = server.token("Dana").await;
    let r = reqwest::Client::new()
        .post(server.http("/v1/tokens"))
        .bearer_auth(&supervisor)
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Only hashes are stored.
    let db = std::fs::read(server.data_dir.path().join("hark.db")).unwrap();
    let plain = supervisor.as_bytes();
    assert!(!db.windows(plain.len()).any(|w| w == plain), "tokens are stored hashed");

    // A tenant sees only its own sessions.
    let r = reqwest::Client::new()
        .post(server.http("/v1/tokens"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "other", "tenant": "acme"}))
        .send()
        .await
        .unwrap();
    let acme = r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string();
    let (_visitor, welcome) = server.visitor().await;
    let id = welcome["session_id"].as_str().unwrap();
    let (status, _) = server.get(&format!("/v1/sessions/{id}"), &acme).await;
    assert_eq!(status, 404);
    let (mut foreign, snapshot) = server.supervisor(&acme).await;
    assert_eq!(snapshot["cards"], json!([]));
    foreign.send(json!({"type": "watch", "session_id": id})).await;
    assert_eq!(foreign.recv_type("error").await["code"], "unknown_session");
}

/// Opens a socket, sends `frames`, and returns how the server closed it.
async fn close_after(server: &Server, frames: Vec<Message>) -> (u16, String) {
    let mut ws = Ws::connect(&server.ws("/v1/chat"), &[]).await;
    for frame in frames {
        ws.send_raw(frame).await;
    }
    ws.closed().await
}

fn text(value: Value) -> Message {
    Message::Text(value.to_string().into())
}

#[tokio::test]
async fn bad_input_gets_close_codes_with_reasons_and_the_server_carries_on() {
    let server = Server::start(&[("HARK_CHAT_HELLO_TIMEOUT_SECS", "1"), ("HARK_CHAT_RATE_BURST", "5")]).await;
    let hello = || text(json!({"type": "hello", "site_key": "demo"}));

    let (code, reason) = close_after(&server, vec![Message::Text("{not json".into())]).await;
    assert_eq!(code, 4400);
    assert!(reason.starts_with("malformed JSON"), "{reason}");
    let (code, reason) = close_after(
        &server,
        vec![hello(), text(json!({"type": "message", "client_id": "x", "text": "a".repeat(9000)}))],
    )
    .await;
    assert_eq!((code, reason.as_str()), (1009, "frame exceeds 8192 bytes"));
    let (code, _) = close_after(&server, vec![hello(), Message::Text("x".repeat(100_000).into())]).await;
    assert_eq!(code, 1009);
    let (code, reason) =
        close_after(&server, vec![text(json!({"type": "hello", "site_key": "demo", "resume_token": "r_bogus"}))]).await;
    assert_eq!((code, reason.as_str()), (4404, "unknown session"));
    let (code, reason) = close_after(&server, vec![text(json!({"type": "hello", "site_key": "nope"}))]).await;
    assert_eq!((code, reason.as_str()), (4401, "unknown site key"));
    let (code, reason) =
        close_after(&server, vec![text(json!({"type": "message", "client_id": "x", "text": "hi"}))]).await;
    assert_eq!((code, reason.as_str()), (4400, "expected hello"));
    let (code, _) = close_after(&server, vec![Message::Binary(vec![1, 2, 3].into())]).await;
    assert_eq!(code, 1003);
    let (code, reason) = close_after(&server, vec![]).await;
    assert_eq!((code, reason.as_str()), (4408, "no hello within 1 s"));
    let (code, reason) = close_after(
        &server,
        vec![hello(), text(json!({"type": "message", "client_id": "x", "text": "a".repeat(2001)}))],
    )
    .await;
    assert_eq!(code, 4400);
    assert!(reason.contains("text too long"), "{reason}");

    // Flooding: the burst is accepted and kept, the rest closes the socket.
    let (mut flood, welcome) = server.visitor().await;
    let id = welcome["session_id"].as_str().unwrap().to_string();
    for i in 0..20 {
        flood.send_raw(text(message(&format!("f{i}"), "spam"))).await;
    }
    let mut acks = 0;
    let (code, reason) = loop {
        match flood.next_or_close().await {
            Ok(frame) => acks += (frame["type"] == "ack") as usize,
            Err(close) => break close,
        }
    };
    assert_eq!((code, reason.as_str()), (4429, "rate limit exceeded"));
    assert_eq!(acks, 5);
    let (_, record) = server.get(&format!("/v1/sessions/{id}"), ADMIN).await;
    let kept = record["messages"].as_array().unwrap().iter().filter(|m| m["author"]["role"] == "visitor").count();
    assert_eq!(kept, 5, "messages accepted before the close are kept");

    // The server is unaffected, and counted every refusal.
    let (mut visitor, _) = server.visitor().await;
    visitor.send(message("ok", "hello")).await;
    acked(&mut visitor, "ok").await;
    let metrics = server.metrics().await;
    for code in ["4400", "1009", "4404", "4401", "1003", "4408", "4429"] {
        assert!(
            metrics.contains(&format!("hark_ws_closed_total{{socket=\"chat\",code=\"{code}\"}}")),
            "{code} counted:\n{metrics}"
        );
    }
}

#[tokio::test]
async fn unknown_session_commands_from_a_supervisor_are_refused() {
    let server = Server::start(&[]).await;
    let (mut supervisor, _) = server.supervisor(ADMIN).await;
    supervisor
        .send(json!({"type": "take_over", "session_id": uuid::Uuid::new_v4(), "agent_name": "Dana", "ref": "a"}))
        .await;
    let error = supervisor.recv_type("error").await;
    assert_eq!((error["code"].as_str(), error["ref"].as_str()), (Some("unknown_session"), Some("a")));
    supervisor.send_raw(Message::Text("[1,2".into())).await;
    let (code, reason) = supervisor.closed().await;
    assert_eq!(code, 4400);
    assert!(reason.starts_with("malformed JSON"));
}

#[tokio::test]
async fn the_card_shows_country_from_a_trusted_proxy_and_device_class() {
    let server = Server::start(&[]).await;
    let (mut supervisor, _) = server.supervisor(ADMIN).await;
    let ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148";
    let mut visitor = Ws::connect(&server.ws("/v1/chat"), &[("user-agent", ua), ("cf-ipcountry", "DE")]).await;
    visitor.send(json!({"type": "hello", "site_key": "demo"})).await;
    visitor.recv_type("welcome").await;
    visitor.send(message("c1", "hello")).await;
    let card = loop {
        let f = supervisor.recv_type("card").await;
        if f["card"]["message_count"] == 2 {
            break f["card"].clone();
        }
    };
    assert_eq!(card["country"], "DE");
    assert_eq!(card["device"], "mobile");
    assert_eq!(card["channel"], "chat");
    assert_eq!(card["visitor_online"], true);
    assert_eq!(card["last_message"].as_str().unwrap(), "Hello! How can I help you today?");
    let (_, live) = server.get("/v1/sessions?state=live", ADMIN).await;
    assert_eq!(live.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_http_bot_endpoint_answers_for_its_site() {
    use axum::{routing::post, Json, Router};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let bot = Router::new().route(
        "/bot",
        post(|Json(body): Json<Value>| async move {
            let text = body["message"]["text"].as_str().unwrap_or("").to_string();
            assert!(body["session_id"].is_string());
            if text == "silence" {
                return Json(json!({"reply": null}));
            }
            Json(json!({"reply": format!("echo from {}: {text}", body["site"].as_str().unwrap())}))
        }),
    );
    tokio::spawn(async move { axum::serve(listener, bot).await.unwrap() });
    let url = format!("http://{addr}/bot");
    let server = Server::start(&[("HARK_SITES_0_BOT", "http"), ("HARK_SITES_0_BOT_URL", &url)]).await;
    let (mut visitor, _) = server.visitor().await;
    visitor.send(message("c1", "silence")).await;
    acked(&mut visitor, "c1").await;
    visitor.send(message("c2", "ping")).await;
    acked(&mut visitor, "c2").await;
    let reply = next_entry(&mut visitor).await;
    assert_eq!(reply["text"], "echo from demo: ping");
    assert_eq!(reply["seq"], 3, "the silent answer added nothing");
}

#[tokio::test]
async fn idle_chats_end_and_close_the_widget() {
    let server = Server::start(&[("HARK_CHAT_IDLE_TIMEOUT_SECS", "1")]).await;
    let (mut visitor, welcome) = server.visitor().await;
    let id = welcome["session_id"].as_str().unwrap().to_string();
    assert_eq!(visitor.closed().await, (1000, "session ended".into()));
    let (_, record) = server.get(&format!("/v1/sessions/{id}"), ADMIN).await;
    assert_eq!(record["end_reason"], "idle");
    let metrics = server.metrics().await;
    assert!(metrics.contains("hark_sessions_ended_total{channel=\"chat\",reason=\"idle\"} 1"), "{metrics}");
}

#[tokio::test]
async fn operations_routes_answer() {
    let server = Server::start(&[]).await;
    let (mut visitor, _) = server.visitor().await;
    visitor.send(message("c1", "hi")).await;
    acked(&mut visitor, "c1").await;
    next_entry(&mut visitor).await;
    let metrics = server.metrics().await;
    for name in [
        "hark_live_sessions{channel=\"chat\"} 1",
        "hark_messages_total{channel=\"chat\",role=\"visitor\"} 1",
        "hark_ws_connections{socket=\"chat\"} 1",
        "hark_fanout_latency_seconds_bucket",
    ] {
        assert!(metrics.contains(name), "{name} in\n{metrics}");
    }
    assert_eq!(reqwest::get(server.http("/healthz")).await.unwrap().status(), 200);
    assert_eq!(reqwest::get(server.http("/readyz")).await.unwrap().status(), 200);
    let openapi: Value = reqwest::get(server.http("/v1/openapi.json")).await.unwrap().json().await.unwrap();
    assert!(openapi["paths"]["/v1/sessions/{id}"]["get"].is_object());
    for (path, kind) in [("/widget.js", "javascript"), ("/console", "html"), ("/demo", "html")] {
        let r = reqwest::get(server.http(path)).await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(r.headers()["content-type"].to_str().unwrap().contains(kind), "{path}");
    }
    let r = reqwest::get(server.http("/nowhere")).await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn personal_data_is_masked_before_anyone_keeps_or_sees_it() {
    let server = Server::start(&[]).await;
    let (mut supervisor, _) = server.supervisor(ADMIN).await;
    let (mut visitor, welcome) = server.visitor().await;
    let session = welcome["session_id"].as_str().unwrap().to_string();
    let watched = supervisor.command(json!({"type": "watch", "session_id": session, "ref": 1})).await;
    assert_eq!(watched["type"], "ok");
    visitor.send(message("c1", "card 4111 1111 1111 1111, mail dana@example.com, call +1 212 555 0199")).await;
    acked(&mut visitor, "c1").await;
    let seen = supervisor.recv_type("message").await;
    let masked = "card ***, mail ***, call ***";
    assert_eq!(seen["text"], masked, "the watching supervisor sees it masked");
    let took =
        supervisor.command(json!({"type": "take_over", "session_id": session, "agent_name": "Dana", "ref": 2})).await;
    assert_eq!(took["type"], "ok");
    let sent = supervisor
        .command(json!({"type": "send", "session_id": session, "text": "Your SSN 078-05-1120?", "ref": 3}))
        .await;
    assert_eq!(sent["type"], "ok");
    let (_, record) = server.get(&format!("/v1/sessions/{session}"), ADMIN).await;
    let texts: Vec<&str> = record["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert!(texts.contains(&masked), "{texts:?}");
    assert!(texts.contains(&"Your SSN ***?"), "agents' messages too: {texts:?}");
    assert!(!texts.iter().any(|t| t.contains("4111") || t.contains('@')), "{texts:?}");
}
