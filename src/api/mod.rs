//! The HTTP surface: REST routes (sessions, recordings, tokens), health, metrics, the OpenAPI description,
//! and the pages served by the binary. The two sockets live with their stages ([`crate::chat`],
//! [`crate::supervise`]); [`router`] mounts everything.

pub mod alerts;
pub mod auth;
pub mod export;
pub mod notes;
pub mod pages;
pub mod recordings;
pub mod reports;
pub mod rules;
pub mod uploads;

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::error::{Path, Query};
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
        .route("/v1/sessions", get(list_sessions))
        .merge(export::router())
        .route("/v1/sessions/{id}", get(get_session))
        .route("/v1/tokens", post(create_token))
        .route("/v1/openapi.json", get(openapi))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(alerts::router())
        .merge(rules::router())
        .merge(notes::router())
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
    paths(list_sessions, get_session, export::export, alerts::list_alerts, alerts::acknowledge,
        notes::list_notes, notes::add_note, notes::update_note, notes::delete_note,
        rules::get_rules, rules::put_rules, rules::get_rule, rules::add_rule, rules::put_rule, rules::delete_rule, recordings::get_recording,
        reports::report, reports::compare_agents, reports::usage, uploads::create_upload, create_token, healthz, readyz),
    components(schemas(Card, SessionRecord, crate::store::AlertRecord, crate::rules::RulesConfig, Problem,
        crate::error::InvalidParam, crate::store::Note, notes::NoteText, TokenRequest, TokenCreated,
        uploads::UploadForm, uploads::UploadAccepted, uploads::UploadedFile, uploads::FileStatus,
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

#[derive(Deserialize, utoipa::IntoParams)]
struct ListQuery {
    /// `live` (default) or `ended`.
    state: Option<String>,
    /// At most this many cards (default 100, at most 1000).
    limit: Option<i64>,
}

/// Sessions of the caller's tenant, newest first.
#[utoipa::path(get, path = "/v1/sessions", params(ListQuery),
    responses((status = 200, body = [Card]), (status = 400, body = Problem), (status = 401, body = Problem)))]
async fn list_sessions(
    State(app): State<Arc<App>>,
    principal: Principal,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<Card>>, Problem> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Problem::bad_request("limit must be between 1 and 1000"));
    }
    match query.state.as_deref().unwrap_or("live") {
        "live" => {
            let now = app.clock.now().wall;
            let cards = app.registry.cards(Some(&principal.tenant), None);
            Ok(Json(cards.iter().take(limit as usize).map(|c| c.at(now)).collect()))
        }
        "ended" => app.store.ended_sessions(&principal.tenant, limit).await.map(Json).map_err(Problem::internal),
        other => Err(Problem::bad_request(format!("state must be live or ended, not {other:?}"))),
    }
}

/// One session with its log and who held it when; live or ended.
#[utoipa::path(get, path = "/v1/sessions/{id}", params(("id" = String, Path, description = "session id")),
    responses((status = 200, body = SessionRecord), (status = 404, body = Problem), (status = 401, body = Problem)))]
async fn get_session(
    State(app): State<Arc<App>>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<SessionRecord>, Problem> {
    let id: SessionId = id.parse().map_err(|_| Problem::bad_request(format!("{id:?} is not a session id")))?;
    if let Some(live) = app.registry.get(&id).filter(|l| l.card.tenant == principal.tenant) {
        if let Some(mut record) = ask(&live, |reply| Command::Record { reply }).await {
            record.call = app.store.call(id).await.map_err(Problem::internal)?;
            record.notes = app.store.notes(&principal.tenant, id).await.map_err(Problem::internal)?;
            return Ok(Json(record));
        }
        // It ended meanwhile; its owner committed the end before leaving the registry.
    }
    match app.store.session(&principal.tenant, id).await {
        Ok(Some(record)) => Ok(Json(record)),
        Ok(None) => Err(Problem::not_found(format!("no session {id}"))),
        Err(error) => Err(Problem::internal(error)),
    }
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
