//! Post-call analysis settings through REST, on SQLite and PostgreSQL: a tenant reads the
//! embedded default, bad settings get a 400 naming the field, a token without the
//! `integrations` permission gets a 403, other tenants keep their own settings, and a saved
//! change survives a restart.

mod common;

use common::{PgDb, Server, ADMIN};
use serde_json::{json, Value};

const PATH: &str = "/v1/analysis/settings";

async fn put(server: &Server, token: &str, body: String) -> (u16, Value) {
    let request = reqwest::Client::new().put(server.http(PATH)).bearer_auth(token);
    let r = request.header("content-type", "application/json").body(body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The 400's first bad field, checked to be named in the detail too.
fn bad_field(problem: &Value) -> String {
    let name = problem["invalid-params"][0]["name"].as_str().unwrap_or_else(|| panic!("{problem}")).to_string();
    assert!(problem["detail"].as_str().unwrap().starts_with(&name), "{problem}");
    name
}

async fn settings_are_checked_and_kept(env: &[(&str, &str)]) {
    let mut server = Server::start(env).await;
    let (status, default) = server.get(PATH, ADMIN).await;
    assert_eq!(status, 200, "{default}");
    assert_eq!(default["min_duration_secs"], 0);
    assert_eq!(default["scorers"]["talk_ratio"]["best_from_pct"], 40.0);
    assert_eq!(default["checklist"][0]["id"], "greeting", "{default}");
    let (status, _) = server.get(PATH, "no-such-token").await;
    assert_eq!(status, 401);
    // Described in the OpenAPI document, every schema it refers to included.
    let (_, openapi) = server.get("/v1/openapi.json", ADMIN).await;
    assert!(openapi["paths"][PATH]["put"].is_object(), "{openapi}");
    for name in ["AnalysisConfig", "Analysis", "Window", "Party", "EndReason"] {
        assert!(openapi["components"]["schemas"][name].is_object(), "{name} missing");
    }
    let text = openapi.to_string();
    for reference in text.split("\"#/components/schemas/").skip(1) {
        let name = &reference[..reference.find('"').unwrap()];
        assert!(openapi["components"]["schemas"][name].is_object(), "a $ref to {name}, which is missing");
    }

    // A window that ends before it starts, a misspelt key, a phrase without words: 400 naming
    // the field.
    let mut bad = default.clone();
    bad["checklist"][2]["within"] = json!({"from_secs": 20, "to_secs": 15});
    let (status, problem) = put(&server, ADMIN, bad.to_string()).await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(bad_field(&problem), "checklist[2].within.to_secs");
    let mut typo = default.clone();
    typo["scorers"]["talk_ratio"]["best_form_pct"] = json!(30);
    let (status, problem) = put(&server, ADMIN, typo.to_string()).await;
    assert_eq!(status, 400, "{problem}");
    assert!(bad_field(&problem).starts_with("scorers.talk_ratio"), "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("best_form_pct"), "{problem}");
    let mut wordless = default.clone();
    wordless["tags"][0]["phrases"] = json!(["refund", "!!!"]);
    let (status, problem) = put(&server, ADMIN, wordless.to_string()).await;
    assert_eq!((status, bad_field(&problem)), (400, "tags[0].phrases[1]".to_string()));
    let (status, _) = put(&server, ADMIN, "min_duration_secs = 90".into()).await;
    assert_eq!(status, 400, "not JSON");

    // A supervisor reads their tenant's settings but lacks the integrations permission.
    let supervisor = server.token("Sam").await;
    let (status, seen) = server.get(PATH, &supervisor).await;
    assert_eq!((status, &seen), (200, &default));
    let mut change = default.clone();
    change["min_duration_secs"] = json!(90);
    change["checklist"].as_array_mut().unwrap().push(json!({
        "id": "verified", "label": "Verified the caller", "speaker": "agent",
        "phrases": ["date of birth", "security question"], "within": {"to_secs": 120.0}
    }));
    let (status, problem) = put(&server, &supervisor, change.to_string()).await;
    assert_eq!(status, 403, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("integrations"), "{problem}");
    let (_, unchanged) = server.get(PATH, ADMIN).await;
    assert_eq!(unchanged, default, "refused changes change nothing");

    // A good change is in force, for this tenant only, and survives a restart.
    let (status, saved) = put(&server, ADMIN, change.to_string()).await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved, change);
    let (_, now) = server.get(PATH, &supervisor).await;
    assert_eq!(now, change);
    let other = server.tenant_token("Olga", Some("other-tenant")).await;
    let (_, theirs) = server.get(PATH, &other).await;
    assert_eq!(theirs, default, "another tenant keeps the default");
    server.restart().await;
    let (status, kept) = server.get(PATH, ADMIN).await;
    assert_eq!((status, &kept), (200, &change));
    let (_, theirs) = server.get(PATH, &other).await;
    assert_eq!(theirs, default);
}

#[tokio::test]
async fn settings_are_checked_and_kept_on_sqlite() {
    settings_are_checked_and_kept(&[]).await;
}

#[tokio::test]
async fn settings_are_checked_and_kept_on_postgres() {
    let db = PgDb::create().await;
    settings_are_checked_and_kept(&[("HARK_DATABASE_URL", &db.url)]).await;
}
