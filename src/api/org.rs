//! The organization and its users through REST, within the caller's tenant:
//!
//! - `GET` / `POST /v1/departments`, `GET` / `POST /v1/desks`, `GET` / `POST /v1/agents`,
//!   `DELETE /v1/agents/{id}` (deactivates: an agent who leaves keeps their history and name).
//! - `GET` / `POST /v1/users`, `PUT /v1/users/{id}` (scope, permissions, active),
//!   `POST /v1/users/{id}/tokens` (an API key acting for the user, shown once).
//!
//! Anyone of the tenant may read the organization (consoles build their filters from it);
//! changing it, and everything about users, needs the `agent_admin` permission.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::error::{InvalidParam, Path, Problem};
use crate::org::{Permission, Scope};
use crate::server::App;
use crate::store::{Agent, Department, Desk, OrgRows, TokenRow, User};

use super::auth::{self, Principal};

pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/departments", get(list_departments).post(add_department))
        .route("/v1/desks", get(list_desks).post(add_desk))
        .route("/v1/agents", get(list_agents).post(add_agent))
        .route("/v1/agents/{id}", delete(deactivate_agent))
        .route("/v1/users", get(list_users).post(add_user))
        .route("/v1/users/{id}", put(update_user))
        .route("/v1/users/{id}/tokens", post(add_user_token))
}

/// Organization changes are checked against the tenant's current rows: one at a time.
static EDIT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const MAX_NAME_CHARS: usize = 200;

fn name(field: &str, text: &str) -> Result<String, Problem> {
    let text = text.trim();
    match text.chars().count() {
        0 => Err(Problem::invalid_field(field, "must not be empty")),
        n if n > MAX_NAME_CHARS => {
            Err(Problem::invalid_field(field, format!("{n} characters, at most {MAX_NAME_CHARS}")))
        }
        _ => Ok(text.to_string()),
    }
}

/// The tenant's rows after a change, and the directory told.
async fn reload(app: &App, tenant: &str) -> Result<Arc<OrgRows>, Problem> {
    app.sessions.directory.reload(&app.store, tenant).await.map_err(Problem::internal)?;
    Ok(app.sessions.directory.rows(tenant))
}

/// The tenant's departments.
#[utoipa::path(get, path = "/v1/departments", responses((status = 200, body = [Department])))]
pub(super) async fn list_departments(State(app): State<Arc<App>>, principal: Principal) -> Json<Vec<Department>> {
    Json(app.sessions.directory.rows(&principal.tenant).departments.clone())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewDepartment {
    name: String,
}

/// Adds a department.
#[utoipa::path(post, path = "/v1/departments", request_body = NewDepartment,
    responses((status = 201, body = Department), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub(super) async fn add_department(
    State(app): State<Arc<App>>,
    principal: Principal,
    crate::error::Json(body): crate::error::Json<NewDepartment>,
) -> Result<(StatusCode, Json<Department>), Problem> {
    principal.require(Permission::AgentAdmin)?;
    let name = name("name", &body.name)?;
    let _edit = EDIT.lock().await;
    let department =
        app.store.add_department(&principal.tenant, &name, app.clock.now().wall).await.map_err(Problem::internal)?;
    reload(&app, &principal.tenant).await?;
    Ok((StatusCode::CREATED, Json(department)))
}

/// The tenant's desks.
#[utoipa::path(get, path = "/v1/desks", responses((status = 200, body = [Desk])))]
pub(super) async fn list_desks(State(app): State<Arc<App>>, principal: Principal) -> Json<Vec<Desk>> {
    Json(app.sessions.directory.rows(&principal.tenant).desks.clone())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewDesk {
    name: String,
    department_id: String,
}

/// Adds a desk to a department.
#[utoipa::path(post, path = "/v1/desks", request_body = NewDesk,
    responses((status = 201, body = Desk), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub(super) async fn add_desk(
    State(app): State<Arc<App>>,
    principal: Principal,
    crate::error::Json(body): crate::error::Json<NewDesk>,
) -> Result<(StatusCode, Json<Desk>), Problem> {
    principal.require(Permission::AgentAdmin)?;
    let name = name("name", &body.name)?;
    let _edit = EDIT.lock().await;
    if !app.sessions.directory.rows(&principal.tenant).departments.iter().any(|d| d.id == body.department_id) {
        return Err(Problem::invalid_field("department_id", "no such department"));
    }
    let desk = Desk { id: uuid::Uuid::new_v4().to_string(), department_id: body.department_id, name };
    app.store.add_desk(&principal.tenant, &desk, app.clock.now().wall).await.map_err(Problem::internal)?;
    reload(&app, &principal.tenant).await?;
    Ok((StatusCode::CREATED, Json(desk)))
}

/// The tenant's agents, deactivated ones included.
#[utoipa::path(get, path = "/v1/agents", responses((status = 200, body = [Agent])))]
pub(super) async fn list_agents(State(app): State<Arc<App>>, principal: Principal) -> Json<Vec<Agent>> {
    Json(app.sessions.directory.rows(&principal.tenant).agents.clone())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewAgent {
    name: String,
    desk_id: String,
    /// The phone extension calls are placed by; unique among active agents.
    extension: Option<String>,
}

/// Adds an agent to a desk.
#[utoipa::path(post, path = "/v1/agents", request_body = NewAgent,
    responses((status = 201, body = Agent), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 409, description = "an active agent has this extension", body = Problem)))]
pub(super) async fn add_agent(
    State(app): State<Arc<App>>,
    principal: Principal,
    crate::error::Json(body): crate::error::Json<NewAgent>,
) -> Result<(StatusCode, Json<Agent>), Problem> {
    principal.require(Permission::AgentAdmin)?;
    let name = name("name", &body.name)?;
    let extension = body.extension.as_deref().map(str::trim).filter(|e| !e.is_empty()).map(String::from);
    if extension.as_deref().is_some_and(|e| !e.chars().any(|c| c.is_ascii_digit())) {
        return Err(Problem::invalid_field("extension", "must contain digits"));
    }
    let _edit = EDIT.lock().await;
    let rows = app.sessions.directory.rows(&principal.tenant);
    if !rows.desks.iter().any(|d| d.id == body.desk_id) {
        return Err(Problem::invalid_field("desk_id", "no such desk"));
    }
    if let Some(taken) = extension.as_deref().and_then(|e| app.sessions.directory.by_extension(&principal.tenant, e)) {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            format!("extension: agent {} has it", taken.agent_name.unwrap_or_default()),
        ));
    }
    let agent = Agent {
        id: uuid::Uuid::new_v4().to_string(),
        desk_id: body.desk_id,
        name,
        extension,
        active: true,
        deactivated_at: None,
    };
    app.store.add_agent(&principal.tenant, &agent, app.clock.now().wall).await.map_err(Problem::internal)?;
    reload(&app, &principal.tenant).await?;
    Ok((StatusCode::CREATED, Json(agent)))
}

/// Deactivates an agent who left: their sessions stay theirs, new calls no longer reach them.
#[utoipa::path(delete, path = "/v1/agents/{id}", params(("id" = String, Path)),
    responses((status = 200, body = Agent), (status = 404, body = Problem), (status = 403, body = Problem)))]
pub(super) async fn deactivate_agent(
    State(app): State<Arc<App>>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Agent>, Problem> {
    principal.require(Permission::AgentAdmin)?;
    let _edit = EDIT.lock().await;
    let now = app.clock.now().wall;
    if !app.store.deactivate_agent(&principal.tenant, &id, now).await.map_err(Problem::internal)? {
        return Err(Problem::not_found(format!("no agent {id}")));
    }
    let rows = reload(&app, &principal.tenant).await?;
    let agent = rows.agents.iter().find(|a| a.id == id).cloned();
    agent.map(Json).ok_or_else(|| Problem::not_found(format!("no agent {id}")))
}

/// The tenant's users.
#[utoipa::path(get, path = "/v1/users", responses((status = 200, body = [User]), (status = 403, body = Problem)))]
pub(super) async fn list_users(State(app): State<Arc<App>>, principal: Principal) -> Result<Json<Vec<User>>, Problem> {
    principal.require(Permission::AgentAdmin)?;
    app.store.users(&principal.tenant).await.map(Json).map_err(Problem::internal)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewUser {
    name: String,
    /// What the user sees: `{"kind": "all"}` or `{"kind": "only", "departments": [..],
    /// "desks": [..], "agents": [..]}` (ids).
    scope: Scope,
    #[serde(default)]
    permissions: Vec<Permission>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UserChange {
    scope: Scope,
    #[serde(default)]
    permissions: Vec<Permission>,
    #[serde(default = "yes")]
    active: bool,
}

fn yes() -> bool {
    true
}

/// Every id a scope names must be the tenant's.
fn check_scope(rows: &OrgRows, scope: &Scope) -> Result<(), Problem> {
    let Scope::Only { departments, desks, agents } = scope else { return Ok(()) };
    let mut bad = Vec::new();
    let mut check = |field: &str, ids: &[String], known: &dyn Fn(&str) -> bool| {
        for (i, id) in ids.iter().enumerate() {
            if !known(id) {
                bad.push(InvalidParam { name: format!("scope.{field}[{i}]"), reason: format!("no such id {id:?}") });
            }
        }
    };
    check("departments", departments, &|id| rows.departments.iter().any(|d| d.id == id));
    check("desks", desks, &|id| rows.desks.iter().any(|d| d.id == id));
    check("agents", agents, &|id| rows.agents.iter().any(|a| a.id == id));
    if bad.is_empty() {
        Ok(())
    } else {
        Err(Problem::invalid(bad))
    }
}

/// Adds a user with a data scope and feature permissions.
#[utoipa::path(post, path = "/v1/users", request_body = NewUser,
    responses((status = 201, body = User), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub(super) async fn add_user(
    State(app): State<Arc<App>>,
    principal: Principal,
    crate::error::Json(body): crate::error::Json<NewUser>,
) -> Result<(StatusCode, Json<User>), Problem> {
    principal.require(Permission::AgentAdmin)?;
    let name = name("name", &body.name)?;
    check_scope(&app.sessions.directory.rows(&principal.tenant), &body.scope)?;
    let user = User {
        id: uuid::Uuid::new_v4().to_string(),
        name,
        scope: body.scope,
        permissions: body.permissions,
        active: true,
    };
    app.store.put_user(&principal.tenant, &user, app.clock.now().wall).await.map_err(Problem::internal)?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// Changes a user's scope, permissions or whether they are active (a deactivated user's tokens
/// stop working at once).
#[utoipa::path(put, path = "/v1/users/{id}", params(("id" = String, Path)), request_body = UserChange,
    responses((status = 200, body = User), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub(super) async fn update_user(
    State(app): State<Arc<App>>,
    principal: Principal,
    Path(id): Path<String>,
    crate::error::Json(body): crate::error::Json<UserChange>,
) -> Result<Json<User>, Problem> {
    principal.require(Permission::AgentAdmin)?;
    let user = app.store.user(&principal.tenant, &id).await.map_err(Problem::internal)?;
    let user = user.ok_or_else(|| Problem::not_found(format!("no user {id}")))?;
    check_scope(&app.sessions.directory.rows(&principal.tenant), &body.scope)?;
    let user = User { scope: body.scope, permissions: body.permissions, active: body.active, ..user };
    app.store.put_user(&principal.tenant, &user, app.clock.now().wall).await.map_err(Problem::internal)?;
    Ok(Json(user))
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct ApiKey {
    id: String,
    /// The secret; shown only now, hark keeps only its SHA-256.
    token: String,
}

/// Creates an API key (bearer token) acting for a user: their scope, their permissions.
#[utoipa::path(post, path = "/v1/users/{id}/tokens", params(("id" = String, Path)),
    responses((status = 201, body = ApiKey), (status = 404, body = Problem), (status = 403, body = Problem)))]
pub(super) async fn add_user_token(
    State(app): State<Arc<App>>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<ApiKey>), Problem> {
    principal.require(Permission::AgentAdmin)?;
    let user = app.store.user(&principal.tenant, &id).await.map_err(Problem::internal)?;
    let user = user.ok_or_else(|| Problem::not_found(format!("no user {id}")))?;
    let token = auth::generate();
    let row = TokenRow {
        id: uuid::Uuid::new_v4().to_string(),
        name: user.name,
        tenant: principal.tenant.clone(),
        admin: false,
        user_id: Some(user.id),
    };
    let now = crate::clock::unix_ms(app.clock.now().wall);
    app.store.put_token(&row, &auth::sha256_hex(&token), now).await.map_err(Problem::internal)?;
    Ok((StatusCode::CREATED, Json(ApiKey { id: row.id, token })))
}
