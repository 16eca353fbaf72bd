//! `GET /v1/alerts` and `POST /v1/alerts/{id}/ack`: the alerts the rules stage raised, for the
//! caller's tenant, with filters; acknowledging one tells every supervisor of the tenant.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use crate::error::{Path, Problem, Query};
use crate::server::App;
use crate::session::registry::FeedEvent;
use crate::store::{AlertFilter, AlertRecord};

use super::auth::Principal;
use super::time_param;
use crate::org::Permission;

pub fn router() -> Router<Arc<App>> {
    Router::new().route("/v1/alerts", get(list_alerts)).route("/v1/alerts/{id}/ack", post(acknowledge))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(super) struct AlertQuery {
    /// Only this session's alerts.
    session_id: Option<String>,
    /// `score`, `phrase`, `emotion`, `silence`, `hold` or `sla`.
    kind: Option<String>,
    /// `info`, `warning` or `critical`.
    severity: Option<String>,
    rule_id: Option<String>,
    /// `true`: acknowledged only; `false`: open only.
    acknowledged: Option<bool>,
    /// Raised at or after this time (RFC 3339).
    since: Option<String>,
    /// Raised before this time (RFC 3339); pass the last alert's `raised_at` for the next page.
    before: Option<String>,
    /// At most this many (default 100, at most 1000).
    limit: Option<i64>,
}

/// The caller's tenant's alerts, newest first.
#[utoipa::path(get, path = "/v1/alerts", params(AlertQuery),
    responses((status = 200, body = [AlertRecord]), (status = 400, body = Problem), (status = 401, body = Problem)))]
pub(super) async fn list_alerts(
    State(app): State<Arc<App>>,
    principal: Principal,
    Query(query): Query<AlertQuery>,
) -> Result<Json<Vec<AlertRecord>>, Problem> {
    principal.require(Permission::Alerts)?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Problem::bad_request("limit: must be between 1 and 1000"));
    }
    let session_id = query
        .session_id
        .as_deref()
        .map(|s| s.parse().map_err(|_| Problem::bad_request(format!("session_id: {s:?} is not a session id"))))
        .transpose()?;
    let filter = AlertFilter {
        session_id,
        kind: query.kind,
        severity: query.severity,
        rule_id: query.rule_id,
        acknowledged: query.acknowledged,
        since: time_param("since", query.since.as_deref())?,
        before: time_param("before", query.before.as_deref())?,
        limit,
    };
    app.store.alerts(&principal.tenant, &principal.scope, &filter).await.map(Json).map_err(Problem::internal)
}

/// Acknowledges an alert; the first acknowledgement is kept (acknowledging again is no error).
#[utoipa::path(post, path = "/v1/alerts/{id}/ack", params(("id" = String, Path, description = "alert id")),
    responses((status = 200, body = AlertRecord), (status = 404, body = Problem), (status = 401, body = Problem)))]
pub(super) async fn acknowledge(
    State(app): State<Arc<App>>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<AlertRecord>, Problem> {
    principal.require(Permission::Alerts)?;
    let id: uuid::Uuid = id.parse().map_err(|_| Problem::bad_request(format!("{id:?} is not an alert id")))?;
    // Raised alerts are written by the store's writer: make sure a just-raised one is there.
    app.writer.flush().await;
    let alert = app.store.alert(&principal.tenant, id).await.map_err(Problem::internal)?;
    let alert = alert.ok_or_else(|| Problem::not_found(format!("no alert {id}")))?;
    super::visible_session(&app, &principal, &alert.session_id.to_string())
        .await
        .map_err(|_| Problem::not_found(format!("no alert {id}")))?;
    let now = app.clock.now().wall;
    match app.store.acknowledge_alert(&principal.tenant, id, &principal.name, now).await {
        Ok(Some(alert)) => {
            app.registry.publish(&alert.tenant.clone(), FeedEvent::Alert(Arc::new(alert.clone())));
            Ok(Json(alert))
        }
        Ok(None) => Err(Problem::not_found(format!("no alert {id}"))),
        Err(error) => Err(Problem::internal(error)),
    }
}
