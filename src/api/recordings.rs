//! Playback of call recordings: `GET /v1/sessions/{id}/recordings/{index}` serves speaker
//! `index`'s recording (Ogg Opus once the call ended; WAV while it lasts, or where transcoding
//! failed) with HTTP Range support, so browsers play and seek it.

use std::path::{Component, PathBuf};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use tower_http::services::ServeFile;

use crate::error::{Path, Problem, Query};
use crate::ingest::call::recordings_dir;
use crate::server::App;

use super::auth::authenticate;

pub fn router() -> Router<Arc<App>> {
    Router::new().route("/v1/sessions/{id}/recordings/{index}", get(get_recording))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub(super) struct RecordingQuery {
    /// The bearer token, for players that cannot send headers (an `<audio src>`); the
    /// `Authorization` header wins.
    access_token: Option<String>,
}

/// A speaker's recording of a call: `audio/ogg` (Opus) once the call ended, `audio/wav` while
/// it lasts. Supports `Range` (206), `If-Modified-Since` and `HEAD`.
#[utoipa::path(get, path = "/v1/sessions/{id}/recordings/{index}",
    params(("id" = String, Path, description = "session id"),
        ("index" = usize, Path, description = "stream index in the call record's `streams`"),
        RecordingQuery),
    responses(
        (status = 200, description = "the whole file (`audio/wav` while the call lasts)", content_type = "audio/ogg"),
        (status = 206, description = "the requested byte range", content_type = "audio/ogg"),
        (status = 401, body = Problem),
        (status = 404, description = "no such session (for this tenant), call stream or recording", body = Problem),
        (status = 410, description = "the recording was removed by retention", body = Problem),
        (status = 416, description = "the range is outside the file")))]
pub(super) async fn get_recording(
    State(app): State<Arc<App>>,
    Path((id, index)): Path<(String, usize)>,
    Query(query): Query<RecordingQuery>,
    request: Request,
) -> Result<Response, Problem> {
    let principal = authenticate(&app, request.headers(), query.access_token.as_deref()).await?;
    let id = super::visible_session(&app, &principal, &id).await?;
    let call = app.store.call(id).await.map_err(Problem::internal)?;
    let call = call.ok_or_else(|| Problem::not_found(format!("session {id} has no call record")))?;
    let stream =
        call.streams.get(index).ok_or_else(|| Problem::not_found(format!("call {id} has no stream {index}")))?;
    let relative = stream
        .recording
        .as_deref()
        .ok_or_else(|| Problem::not_found(format!("stream {index} of call {id} was not recorded")))?;
    let relative = PathBuf::from(relative);
    if !relative.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(Problem::internal(format!("recording path {relative:?} leaves the recordings folder")));
    }
    let Some(path) = on_disk(recordings_dir(&app.config.data_dir).join(relative)) else {
        let retention = match app.config.recordings.retention_days {
            0 => String::new(),
            days => format!(" (recordings are kept {days} days)"),
        };
        return Err(Problem::new(
            StatusCode::GONE,
            format!("stream {index} of call {id} is no longer kept{retention}"),
        ));
    };
    let mut response =
        ServeFile::new(path).try_call(request).await.map_err(Problem::internal)?.map(axum::body::Body::new);
    // Another tenant's audio must not land in a shared cache.
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
    Ok(response)
}

/// The recording, or its other form: a crash after transcoding but before the call record
/// was stored leaves the record naming the `.wav` while only the `.opus` remains.
fn on_disk(path: PathBuf) -> Option<PathBuf> {
    if path.is_file() {
        return Some(path);
    }
    let other = match path.extension()?.to_str()? {
        "wav" => path.with_extension("opus"),
        "opus" => path.with_extension("wav"),
        _ => return None,
    };
    other.is_file().then_some(other)
}
