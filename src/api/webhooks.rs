//! `/v1/webhooks`: a tenant's endpoints for finished-session webhooks and their delivery log.
//! Every route needs the Integrations permission and stays inside the token's tenant (another
//! tenant's endpoint is a 404).
//!
//! - `POST /v1/webhooks` `{url, description?}`: adds an endpoint; the answer is the only time
//!   its signing secret is shown.
//! - `GET /v1/webhooks`: the endpoints, active and deactivated, without secrets.
//! - `DELETE /v1/webhooks/{id}`: deactivates one: nothing new is queued for it and its pending
//!   deliveries are given up; its log stays readable.
//! - `GET /v1/webhooks/{id}/deliveries?limit=&status=`: its deliveries, newest first, each with
//!   every attempt.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::error::{Path, Problem, Query};
use crate::org::Permission;
use crate::server::App;
use crate::store::{DeliveryState, WebhookDelivery, WebhookEndpoint};

use super::auth::Principal;

pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/webhooks", get(list_webhooks).post(create_webhook))
        .route("/v1/webhooks/{id}", axum::routing::delete(delete_webhook))
        .route("/v1/webhooks/{id}/deliveries", get(list_deliveries))
}

/// Most active endpoints per tenant (each finished session is queued once per endpoint).
const MAX_ENDPOINTS: i64 = 10;
/// Longest URL, in bytes.
const MAX_URL_BYTES: usize = 2048;
/// Longest description, in characters.
const MAX_DESCRIPTION_CHARS: usize = 500;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewWebhook {
    /// Where to POST: an `http` or `https` URL.
    url: String,
    description: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct WebhookCreated {
    #[serde(flatten)]
    endpoint: WebhookEndpoint,
    /// Signs every delivery (`Hark-Signature`); shown only now.
    secret: String,
}

/// The URL if it is an absolute http(s) URL with a host.
fn checked_url(url: &str) -> Result<&str, Problem> {
    let url = url.trim();
    if url.len() > MAX_URL_BYTES {
        return Err(Problem::invalid_field("url", format!("{} bytes, at most {MAX_URL_BYTES}", url.len())));
    }
    let parsed =
        reqwest::Url::parse(url).map_err(|e| Problem::invalid_field("url", format!("{url:?} is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Problem::invalid_field("url", format!("must be http or https, not {:?}", parsed.scheme())));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(Problem::invalid_field("url", format!("{url:?} has no host")));
    }
    Ok(url)
}

fn checked_description(description: Option<&str>) -> Result<Option<&str>, Problem> {
    let description = description.map(str::trim).filter(|d| !d.is_empty());
    match description.map(|d| d.chars().count()) {
        Some(n) if n > MAX_DESCRIPTION_CHARS => {
            Err(Problem::invalid_field("description", format!("{n} characters, at most {MAX_DESCRIPTION_CHARS}")))
        }
        _ => Ok(description),
    }
}

fn endpoint_id(id: &str) -> Result<String, Problem> {
    id.parse::<uuid::Uuid>()
        .map(|id| id.to_string())
        .map_err(|_| Problem::bad_request(format!("{id:?} is not a webhook id")))
}

/// Adds an endpoint; the answer holds its signing secret, shown only now.
#[utoipa::path(post, path = "/v1/webhooks", request_body = NewWebhook,
    responses((status = 201, body = WebhookCreated), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem)))]
pub(super) async fn create_webhook(
    State(app): State<Arc<App>>,
    principal: Principal,
    crate::error::Json(body): crate::error::Json<NewWebhook>,
) -> Result<(StatusCode, Json<WebhookCreated>), Problem> {
    principal.require(Permission::Integrations)?;
    let url = checked_url(&body.url)?;
    let description = checked_description(body.description.as_deref())?;
    if app.store.active_webhooks(&principal.tenant).await.map_err(Problem::internal)? >= MAX_ENDPOINTS {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            format!("the tenant already has {MAX_ENDPOINTS} active webhooks; delete one first"),
        ));
    }
    let secret = crate::webhooks::sign::new_secret();
    let now = crate::clock::unix_ms(app.clock.now().wall);
    let endpoint =
        app.store.create_webhook(&principal.tenant, url, description, &secret, now).await.map_err(Problem::internal)?;
    tracing::info!(by = %principal.name, id = %endpoint.id, "webhook added");
    Ok((StatusCode::CREATED, Json(WebhookCreated { endpoint, secret })))
}

/// The tenant's endpoints, oldest first, without their secrets.
#[utoipa::path(get, path = "/v1/webhooks",
    responses((status = 200, body = [WebhookEndpoint]), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub(super) async fn list_webhooks(
    State(app): State<Arc<App>>,
    principal: Principal,
) -> Result<Json<Vec<WebhookEndpoint>>, Problem> {
    principal.require(Permission::Integrations)?;
    app.store.webhooks(&principal.tenant).await.map(Json).map_err(Problem::internal)
}

/// Deactivates an endpoint: nothing new is queued for it, its pending deliveries are given up.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", params(("id" = String, Path, description = "webhook id")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(super) async fn delete_webhook(
    State(app): State<Arc<App>>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    principal.require(Permission::Integrations)?;
    let id = endpoint_id(&id)?;
    let now = crate::clock::unix_ms(app.clock.now().wall);
    match app.store.deactivate_webhook(&principal.tenant, &id, "deleted", now).await {
        Ok(true) => {
            tracing::info!(by = %principal.name, %id, "webhook deleted");
            Ok(StatusCode::NO_CONTENT)
        }
        Ok(false) => Err(Problem::not_found(format!("no webhook {id}"))),
        Err(error) => Err(Problem::internal(error)),
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
pub(super) struct DeliveriesQuery {
    /// At most this many deliveries (default 50, at most 500).
    limit: Option<i64>,
    /// Only `pending`, `delivered` or `failed` ones.
    status: Option<String>,
}

/// An endpoint's delivery log, newest first: each delivery's state and every attempt.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries",
    params(("id" = String, Path, description = "webhook id"), DeliveriesQuery),
    responses((status = 200, body = [WebhookDelivery]), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)))]
pub(super) async fn list_deliveries(
    State(app): State<Arc<App>>,
    principal: Principal,
    Path(id): Path<String>,
    Query(query): Query<DeliveriesQuery>,
) -> Result<Json<Vec<WebhookDelivery>>, Problem> {
    principal.require(Permission::Integrations)?;
    let id = endpoint_id(&id)?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(Problem::invalid_field("limit", format!("{limit} is not between 1 and 500")));
    }
    let state = match query.status.as_deref() {
        None => None,
        Some("pending") => Some(DeliveryState::Pending),
        Some("delivered") => Some(DeliveryState::Delivered),
        Some("failed") => Some(DeliveryState::Failed),
        Some(other) => {
            return Err(Problem::invalid_field("status", format!("{other:?} is not pending, delivered or failed")))
        }
    };
    match app.store.webhook_deliveries(&principal.tenant, &id, state, limit).await {
        Ok(Some(deliveries)) => Ok(Json(deliveries)),
        Ok(None) => Err(Problem::not_found(format!("no webhook {id}"))),
        Err(error) => Err(Problem::internal(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_with_a_host_are_endpoints() {
        assert_eq!(checked_url(" https://crm.example/hooks?x=1 ").unwrap(), "https://crm.example/hooks?x=1");
        assert!(checked_url("http://127.0.0.1:8080/").is_ok());
        for bad in ["ftp://crm.example/", "crm.example/hooks", "", "mailto:ops@crm.example", "http://"] {
            let problem = checked_url(bad).unwrap_err();
            assert_eq!((problem.status, problem.invalid_params[0].name.as_str()), (400, "url"), "{bad}");
        }
        assert!(checked_url(&format!("https://crm.example/{}", "a".repeat(MAX_URL_BYTES))).is_err());
    }

    #[test]
    fn descriptions_are_trimmed_and_bounded() {
        assert_eq!(checked_description(Some("  CRM  ")).unwrap(), Some("CRM"));
        assert_eq!(checked_description(Some("   ")).unwrap(), None);
        assert!(checked_description(Some(&"é".repeat(MAX_DESCRIPTION_CHARS + 1))).is_err());
    }
}
