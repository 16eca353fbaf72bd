//! `/v1/rules`: the rule set (alert rules, SLA policies, automations) read and changed through
//! REST. A change is checked whole by the engine (every bad field is named in the 400), takes
//! effect at once for live sessions, and is saved in the database, where it wins over the
//! configured file at the next start. Changing needs the integrations permission (the admin has
//! every permission).
//!
//! - `GET` / `PUT /v1/rules`: the whole set.
//! - `POST /v1/rules/{section}`: add one (`section` is `alerts`, `sla_policies` or
//!   `automations`); 409 if its id is taken.
//! - `GET` / `PUT` / `DELETE /v1/rules/{section}/{id}`: one by id (`PUT` adds or replaces).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;

use crate::error::{Path, Problem};
use crate::rules::{FieldError, RulesConfig};
use crate::server::App;

use super::auth::Principal;

pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/rules", get(get_rules).put(put_rules))
        .route("/v1/rules/{section}", axum::routing::post(add_rule))
        .route("/v1/rules/{section}/{id}", get(get_rule).put(put_rule).delete(delete_rule))
}

/// Edits are read-modify-write of the whole set: one at a time.
static EDIT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const SECTIONS: [&str; 3] = ["alerts", "sla_policies", "automations"];

fn invalid(errors: Vec<FieldError>) -> Problem {
    Problem::invalid(errors.into_iter().map(Into::into).collect())
}

async fn current(app: &App) -> Result<RulesConfig, Problem> {
    app.rules.config().await.ok_or_else(|| Problem::internal("the rules stage has stopped"))
}

/// Checks `config` in the engine, puts it in force and saves it.
async fn install(app: &App, principal: &Principal, config: RulesConfig) -> Result<RulesConfig, Problem> {
    app.rules.replace(config.clone()).await.map_err(invalid)?;
    let json = serde_json::to_string(&config).map_err(Problem::internal)?;
    app.store.put_rules_config(&json, &principal.name, app.clock.now().wall).await.map_err(Problem::internal)?;
    tracing::info!(by = %principal.name, "rules changed");
    Ok(config)
}

/// The rule set in force.
#[utoipa::path(get, path = "/v1/rules", responses((status = 200, body = RulesConfig), (status = 401, body = Problem)))]
pub(super) async fn get_rules(
    State(app): State<Arc<App>>,
    _principal: Principal,
) -> Result<Json<RulesConfig>, Problem> {
    current(&app).await.map(Json)
}

/// Replaces the whole rule set.
#[utoipa::path(put, path = "/v1/rules", request_body = RulesConfig,
    responses((status = 200, body = RulesConfig), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub(super) async fn put_rules(
    State(app): State<Arc<App>>,
    principal: Principal,
    body: String,
) -> Result<Json<RulesConfig>, Problem> {
    principal.require(crate::org::Permission::Integrations)?;
    let config = RulesConfig::from_json(&body).map_err(|e| invalid(vec![e]))?;
    let _edit = EDIT.lock().await;
    install(&app, &principal, config).await.map(Json)
}

/// The section's list in `config`, as JSON.
fn section_of(config: &RulesConfig, section: &str) -> Result<(Value, Vec<Value>), Problem> {
    if !SECTIONS.contains(&section) {
        return Err(Problem::not_found(format!("no rule section {section:?} (one of {})", SECTIONS.join(", "))));
    }
    let whole = serde_json::to_value(config).map_err(Problem::internal)?;
    let items = whole[section].as_array().cloned().unwrap_or_default();
    Ok((whole, items))
}

fn id_of(item: &Value) -> Option<&str> {
    item.get("id").and_then(Value::as_str)
}

/// Puts `items` back as the section and checks the result as a whole.
async fn install_section(
    app: &App,
    principal: &Principal,
    mut whole: Value,
    section: &str,
    items: Vec<Value>,
) -> Result<RulesConfig, Problem> {
    whole[section] = Value::Array(items);
    let config = RulesConfig::from_json(&whole.to_string()).map_err(|e| invalid(vec![e]))?;
    install(app, principal, config).await
}

/// One rule of a section by id.
#[utoipa::path(get, path = "/v1/rules/{section}/{id}",
    params(("section" = String, Path, description = "alerts, sla_policies or automations"), ("id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = Problem)))]
pub(super) async fn get_rule(
    State(app): State<Arc<App>>,
    _principal: Principal,
    Path((section, id)): Path<(String, String)>,
) -> Result<Json<Value>, Problem> {
    let (_, items) = section_of(&current(&app).await?, &section)?;
    items
        .into_iter()
        .find(|item| id_of(item) == Some(&id))
        .map(Json)
        .ok_or_else(|| Problem::not_found(format!("no {section} rule {id:?}")))
}

/// Adds a rule to a section.
#[utoipa::path(post, path = "/v1/rules/{section}",
    params(("section" = String, Path, description = "alerts, sla_policies or automations")), request_body = Object,
    responses((status = 201, body = Object), (status = 400, body = Problem), (status = 409, body = Problem)))]
pub(super) async fn add_rule(
    State(app): State<Arc<App>>,
    principal: Principal,
    Path(section): Path<String>,
    crate::error::Json(item): crate::error::Json<Value>,
) -> Result<(StatusCode, Json<Value>), Problem> {
    principal.require(crate::org::Permission::Integrations)?;
    let _edit = EDIT.lock().await;
    let (whole, mut items) = section_of(&current(&app).await?, &section)?;
    let Some(id) = id_of(&item).map(String::from) else {
        return Err(invalid(vec![FieldError::new(format!("{section}[{}].id", items.len()), "missing")]));
    };
    if items.iter().any(|i| id_of(i) == Some(&id)) {
        return Err(Problem::new(StatusCode::CONFLICT, format!("{section} already has a rule {id:?}")));
    }
    items.push(item.clone());
    install_section(&app, &principal, whole, &section, items).await?;
    Ok((StatusCode::CREATED, Json(item)))
}

/// Adds or replaces a rule of a section by id (the body's `id`, if any, must be the same).
#[utoipa::path(put, path = "/v1/rules/{section}/{id}",
    params(("section" = String, Path, description = "alerts, sla_policies or automations"), ("id" = String, Path)),
    request_body = Object, responses((status = 200, body = Object), (status = 400, body = Problem)))]
pub(super) async fn put_rule(
    State(app): State<Arc<App>>,
    principal: Principal,
    Path((section, id)): Path<(String, String)>,
    crate::error::Json(mut item): crate::error::Json<Value>,
) -> Result<Json<Value>, Problem> {
    principal.require(crate::org::Permission::Integrations)?;
    let _edit = EDIT.lock().await;
    let (whole, mut items) = section_of(&current(&app).await?, &section)?;
    let at = items.iter().position(|i| id_of(i) == Some(&id)).unwrap_or(items.len());
    match id_of(&item) {
        Some(given) if given != id => {
            return Err(invalid(vec![FieldError::new(format!("{section}[{at}].id"), format!("must be {id:?}"))]));
        }
        Some(_) => {}
        None if item.is_object() => item["id"] = Value::String(id),
        None => return Err(invalid(vec![FieldError::new(format!("{section}[{at}]"), "must be an object")])),
    }
    if at == items.len() {
        items.push(item.clone());
    } else {
        items[at] = item.clone();
    }
    install_section(&app, &principal, whole, &section, items).await?;
    Ok(Json(item))
}

/// Removes a rule of a section by id.
#[utoipa::path(delete, path = "/v1/rules/{section}/{id}",
    params(("section" = String, Path, description = "alerts, sla_policies or automations"), ("id" = String, Path)),
    responses((status = 204), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub(super) async fn delete_rule(
    State(app): State<Arc<App>>,
    principal: Principal,
    Path((section, id)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    principal.require(crate::org::Permission::Integrations)?;
    let _edit = EDIT.lock().await;
    let (whole, mut items) = section_of(&current(&app).await?, &section)?;
    let before = items.len();
    items.retain(|i| id_of(i) != Some(&id));
    if items.len() == before {
        return Err(Problem::not_found(format!("no {section} rule {id:?}")));
    }
    // Removing a policy others name fails validation, naming where it is still used.
    install_section(&app, &principal, whole, &section, items).await?;
    Ok(StatusCode::NO_CONTENT)
}
