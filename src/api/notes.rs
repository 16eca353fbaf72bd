//! `/v1/sessions/{id}/notes`: supervisors' notes on a session of their tenant, live or finished.
//! Any token of the tenant may read and write them; the author is the token's name.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;

use crate::error::{Path, Problem};
use crate::server::App;
use crate::store::Note;

use super::auth::Principal;
use super::visible_session;

pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/sessions/{id}/notes", get(list_notes).post(add_note))
        .route("/v1/sessions/{id}/notes/{note}", put(update_note).delete(delete_note))
}

/// Longest note, in characters.
const MAX_NOTE_CHARS: usize = 10_000;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NoteText {
    text: String,
}

fn checked(body: &NoteText) -> Result<&str, Problem> {
    let text = body.text.trim();
    match text.chars().count() {
        0 => Err(Problem::bad_request("text: must not be empty")),
        n if n > MAX_NOTE_CHARS => Err(Problem::bad_request(format!("text: {n} characters, at most {MAX_NOTE_CHARS}"))),
        _ => Ok(text),
    }
}

fn parse_id(what: &str, id: &str) -> Result<uuid::Uuid, Problem> {
    id.parse().map_err(|_| Problem::bad_request(format!("{id:?} is not a {what} id")))
}

/// A session's notes, oldest first.
#[utoipa::path(get, path = "/v1/sessions/{id}/notes", params(("id" = String, Path, description = "session id")),
    responses((status = 200, body = [Note]), (status = 404, body = Problem)))]
pub(super) async fn list_notes(
    State(app): State<Arc<App>>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Vec<Note>>, Problem> {
    let id = visible_session(&app, &principal, &id).await?;
    app.store.notes(&principal.tenant, id).await.map(Json).map_err(Problem::internal)
}

/// Adds a note to a session.
#[utoipa::path(post, path = "/v1/sessions/{id}/notes", params(("id" = String, Path, description = "session id")),
    request_body = NoteText, responses((status = 201, body = Note), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub(super) async fn add_note(
    State(app): State<Arc<App>>,
    principal: Principal,
    Path(id): Path<String>,
    crate::error::Json(body): crate::error::Json<NoteText>,
) -> Result<(StatusCode, Json<Note>), Problem> {
    let id = visible_session(&app, &principal, &id).await?;
    let now = app.clock.now().wall;
    let note = Note {
        id: uuid::Uuid::new_v4(),
        author: principal.name.clone(),
        text: checked(&body)?.to_string(),
        created_at: now,
        updated_at: now,
    };
    app.store.add_note(&principal.tenant, id, &note).await.map_err(Problem::internal)?;
    Ok((StatusCode::CREATED, Json(note)))
}

/// Replaces a note's text.
#[utoipa::path(put, path = "/v1/sessions/{id}/notes/{note}",
    params(("id" = String, Path, description = "session id"), ("note" = String, Path, description = "note id")),
    request_body = NoteText, responses((status = 200, body = Note), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub(super) async fn update_note(
    State(app): State<Arc<App>>,
    principal: Principal,
    Path((id, note)): Path<(String, String)>,
    crate::error::Json(body): crate::error::Json<NoteText>,
) -> Result<Json<Note>, Problem> {
    let id = visible_session(&app, &principal, &id).await?;
    let note = parse_id("note", &note)?;
    let text = checked(&body)?;
    match app.store.update_note(&principal.tenant, id, note, text, app.clock.now().wall).await {
        Ok(Some(note)) => Ok(Json(note)),
        Ok(None) => Err(Problem::not_found(format!("no note {note} on session {id}"))),
        Err(error) => Err(Problem::internal(error)),
    }
}

/// Deletes a note.
#[utoipa::path(delete, path = "/v1/sessions/{id}/notes/{note}",
    params(("id" = String, Path, description = "session id"), ("note" = String, Path, description = "note id")),
    responses((status = 204), (status = 404, body = Problem)))]
pub(super) async fn delete_note(
    State(app): State<Arc<App>>,
    principal: Principal,
    Path((id, note)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    let id = visible_session(&app, &principal, &id).await?;
    let note = parse_id("note", &note)?;
    match app.store.delete_note(&principal.tenant, id, note).await {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(Problem::not_found(format!("no note {note} on session {id}"))),
        Err(error) => Err(Problem::internal(error)),
    }
}
