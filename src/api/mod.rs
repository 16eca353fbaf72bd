//! The HTTP surface: REST routes (sessions, recordings, tokens), health, metrics, the OpenAPI description,
//! and the pages served by the binary. The two sockets live with their stages ([`crate::chat`],
//! [`crate::supervise`]); [`router`] mounts everything.

pub mod alerts;
pub mod analysis;
pub mod auth;
pub mod export;
pub mod history;
pub mod notes;
pub mod org;
pub mod pages;
pub mod recordings;
pub mod reports;
pub mod rules;
pub mod uploads;
pub mod webhooks;

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::error::Path;
use serde::{Deserialize, Serialize};
use utoipa::OpenApi;

use crate::chat::socket::ask;
use crate::error::Problem;
use crate::server::App;
use crate::session::actor::Command;
use crate::session::{Card, SessionId};
use crate::store::{SessionRecord, TokenRow};

use auth::Principal;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v1/chat", get(crate::chat::socket::upgrade))
        .route("/v1/supervise", get(crate::supervise::socket::upgrade))
        .route("/v1/sessions", get(history::list_sessions))
        .merge(export::router())
        .route("/v1/sessions/{id}", get(get_session).delete(delete_session))
        .route("/v1/tokens", post(create_token))
        .route("/v1/openapi.json", get(openapi))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(alerts::router())
        .merge(analysis::router())
        .merge(rules::router())
        .merge(notes::router())
        .merge(org::router())
        .merge(webhooks::router())
        .merge(pages::router())
        .merge(recordings::router())
        .merge(reports::router())
        .merge(uploads::router(&app.config.uploads))
        .merge(crate::ingest::stream::router())
        .fallback(|| async { Problem::not_found("no such route") })
        .with_state(app)
}

#[derive(OpenApi)]
#[openapi(
    info(title = "hark", description = "Live contact-center sessions. Socket protocols: docs/PROTOCOLS.md."),
    paths(history::list_sessions, get_session, delete_session, export::export, alerts::list_alerts, alerts::acknowledge,
        notes::list_notes, notes::add_note, notes::update_note, notes::delete_note,
        org::list_departments, org::add_department, org::list_desks, org::add_desk, org::list_agents, org::add_agent,
        org::deactivate_agent, org::list_users, org::add_user, org::update_user, org::add_user_token,
        rules::get_rules, rules::put_rules, rules::get_rule, rules::add_rule, rules::put_rule, rules::delete_rule, analysis::get_settings, analysis::put_settings, recordings::get_recording,
        reports::report, reports::compare_agents, reports::usage, uploads::create_upload,
        webhooks::create_webhook, webhooks::list_webhooks, webhooks::delete_webhook, webhooks::list_deliveries,
        create_token, healthz, readyz),
    components(schemas(Card, SessionRecord, crate::store::SessionSummary, crate::store::ScoreValue, crate::store::AlertRecord, crate::rules::RulesConfig, crate::analysis::AnalysisConfig,
        crate::analysis::Analysis, Problem,
        crate::error::InvalidParam, crate::store::Note, notes::NoteText,
        crate::store::Department, crate::store::Desk, crate::store::Agent, crate::store::User, crate::org::Scope,
        crate::org::Permission, crate::org::Placement, org::NewDepartment, org::NewDesk, org::NewAgent, org::NewUser,
        org::UserChange, org::ApiKey, TokenRequest, TokenCreated,
        uploads::UploadForm, uploads::UploadAccepted, uploads::UploadedFile, uploads::FileStatus,
        webhooks::NewWebhook, webhooks::WebhookCreated, crate::store::WebhookEndpoint, crate::store::WebhookDelivery,
        crate::store::WebhookAttempt, crate::store::DeliveryState, crate::webhooks::payload::FinishedCall,
        reports::ReportAnswer, crate::store::Comparison, crate::store::Usage)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        api.security = Some(vec![SecurityRequirement::new("bearer", Vec::<String>::new())]);
    }
}

/// The session `id` if the principal may see it — in their tenant and data scope, live or
/// stored — else 404: for a user, what lies outside their scope does not exist.
pub(crate) async fn visible_session(app: &App, principal: &Principal, id: &str) -> Result<SessionId, Problem> {
    let id: SessionId = id.parse().map_err(|_| Problem::bad_request(format!("{id:?} is not a session id")))?;
    let placement = match app.registry.get(&id).filter(|l| l.card.tenant == principal.tenant) {
        Some(live) => Some(live.card.placement.clone()),
        None => app.store.session_placement(&principal.tenant, id).await.map_err(Problem::internal)?,
    };
    match placement {
        Some(placement) if principal.scope.allows(&placement) => Ok(id),
        _ => Err(Problem::not_found(format!("no session {id}"))),
    }
}

/// A query parameter holding an RFC 3339 time; a bad one is a 400 naming the parameter.
pub(crate) fn time_param(name: &str, value: Option<&str>) -> Result<Option<time::OffsetDateTime>, Problem> {
    value
        .map(|v| {
            time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
                .map_err(|_| Problem::bad_request(format!("{name}: {v:?} is not an RFC 3339 time")))
        })
        .transpose()
}

async fn openapi() -> impl IntoResponse {
    Json(ApiDoc::openapi())
}

/// One session with its log and who held it when; live or ended.
#[utoipa::path(get, path = "/v1/sessions/{id}", params(("id" = String, Path, description = "session id")),
    responses((status = 200, body = SessionRecord), (status = 404, body = Problem), (status = 401, body = Problem)))]
async fn get_session(
    State(app): State<Arc<App>>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<SessionRecord>, Problem> {
    let id = visible_session(&app, &principal, &id).await?;
    let mut record = match app.registry.get(&id) {
        Some(live) => ask(&live, |reply| Command::Record { reply }).await,
        None => None,
    };
    if let Some(record) = &mut record {
        record.call = app.store.call(id).await.map_err(Problem::internal)?;
        record.notes = app.store.notes(&principal.tenant, id).await.map_err(Problem::internal)?;
    }
    // Not live (or it ended meanwhile; its owner committed the end before leaving the registry).
    if record.is_none() {
        record = app.store.session(&principal.tenant, id).await.map_err(Problem::internal)?;
    }
    let mut record = record.ok_or_else(|| Problem::not_found(format!("no session {id}")))?;
    record.card.placement = app.sessions.directory.named(&principal.tenant, &record.card.placement);
    Ok(Json(record))
}

/// Deletes a finished session with its transcript, notes, alerts, analysis and recordings (the
/// `delete_calls` permission). Reports keep counting it: the conversation happened.
#[utoipa::path(delete, path = "/v1/sessions/{id}", params(("id" = String, Path, description = "session id")),
    responses((status = 204), (status = 404, body = Problem), (status = 403, body = Problem),
        (status = 409, description = "the session is still live", body = Problem)))]
async fn delete_session(
    State(app): State<Arc<App>>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    principal.require(crate::org::Permission::DeleteCalls)?;
    let id = visible_session(&app, &principal, &id).await?;
    if app.registry.get(&id).is_some() {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            format!("session {id} is live; it can be deleted once it ends"),
        ));
    }
    // A finished call's recordings are transcoded after it ends; the transcoder then updates
    // the call record, which must still exist.
    let call = app.store.call(id).await.map_err(Problem::internal)?;
    if call.is_some_and(|c| c.streams.iter().any(|s| s.recording.as_deref().is_some_and(|r| r.ends_with(".wav")))) {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            format!("the recordings of call {id} are still being transcoded; try again in a minute"),
        ));
    }
    if !app.store.delete_session(&principal.tenant, id).await.map_err(Problem::internal)? {
        return Err(Problem::not_found(format!("no session {id}")));
    }
    let folder = crate::ingest::call::recordings_dir(&app.config.data_dir).join(id.to_string());
    match std::fs::remove_dir_all(&folder) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => tracing::warn!(session = %id, %error, "recordings of a deleted session remain"),
    }
    tracing::info!(session = %id, by = %principal.name, "session deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
struct TokenRequest {
    /// Who the token is for (a supervisor's name).
    name: String,
    /// Tenant whose sessions the token sees; the admin's own by default.
    tenant: Option<String>,
    #[serde(default)]
    admin: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
struct TokenCreated {
    id: String,
    /// The secret; shown only now, hark keeps only its SHA-256.
    token: String,
}

/// Creates a bearer token for a supervisor (admin only).
#[utoipa::path(post, path = "/v1/tokens", request_body = TokenRequest,
    responses((status = 201, body = TokenCreated), (status = 400, body = Problem), (status = 403, body = Problem)))]
async fn create_token(
    State(app): State<Arc<App>>,
    principal: Principal,
    crate::error::Json(request): crate::error::Json<TokenRequest>,
) -> Result<(StatusCode, Json<TokenCreated>), Problem> {
    if !principal.admin {
        return Err(Problem::forbidden("only an admin token can create tokens"));
    }
    if request.name.trim().is_empty() {
        return Err(Problem::bad_request("name must not be empty"));
    }
    let token = auth::generate();
    let row = TokenRow {
        id: uuid::Uuid::new_v4().to_string(),
        name: request.name.trim().to_string(),
        tenant: request.tenant.unwrap_or(principal.tenant),
        admin: request.admin,
        user_id: None,
    };
    let now = crate::clock::unix_ms(app.clock.now().wall);
    app.store.put_token(&row, &auth::sha256_hex(&token), now).await.map_err(Problem::internal)?;
    Ok((StatusCode::CREATED, Json(TokenCreated { id: row.id, token })))
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", security(), responses((status = 200)))]
async fn healthz() -> &'static str {
    "ok\n"
}

/// The database answers and hark is not shutting down.
#[utoipa::path(get, path = "/readyz", security(), responses((status = 200), (status = 503, body = Problem)))]
async fn readyz(State(app): State<Arc<App>>) -> Result<&'static str, Problem> {
    if app.shutdown.is_cancelled() {
        return Err(Problem::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down"));
    }
    app.store.ping().await.map_err(|e| Problem::new(StatusCode::SERVICE_UNAVAILABLE, format!("database: {e}")))?;
    Ok("ready\n")
}

async fn metrics(State(app): State<Arc<App>>) -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], app.metrics.render())
}
