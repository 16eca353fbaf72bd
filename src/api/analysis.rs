//! `/v1/analysis/settings`: the caller's tenant's post-call analysis settings (the format of
//! `config/analysis.toml`, as JSON). `GET` shows the settings in force (the embedded default
//! until the tenant changes them); `PUT` replaces them whole, needs the `integrations`
//! permission, answers 400 naming every bad field, saves them and puts them in force for the
//! next finished conversation.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use crate::analysis::AnalysisConfig;
use crate::error::Problem;
use crate::org::Permission;
use crate::server::App;

use super::auth::Principal;

pub fn router() -> Router<Arc<App>> {
    Router::new().route("/v1/analysis/settings", get(get_settings).put(put_settings))
}

/// The analysis settings in force for the caller's tenant.
#[utoipa::path(get, path = "/v1/analysis/settings",
    responses((status = 200, body = AnalysisConfig), (status = 401, body = Problem)))]
pub(super) async fn get_settings(State(app): State<Arc<App>>, principal: Principal) -> Json<AnalysisConfig> {
    Json(AnalysisConfig::clone(&app.analysis.for_tenant(&principal.tenant)))
}

/// Replaces the caller's tenant's analysis settings.
#[utoipa::path(put, path = "/v1/analysis/settings", request_body = AnalysisConfig,
    responses((status = 200, body = AnalysisConfig), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem)))]
pub(super) async fn put_settings(
    State(app): State<Arc<App>>,
    principal: Principal,
    body: String,
) -> Result<Json<AnalysisConfig>, Problem> {
    principal.require(Permission::Integrations)?;
    let config = AnalysisConfig::from_json(&body)
        .map_err(|errors| Problem::invalid(errors.into_iter().map(Into::into).collect()))?;
    let now = app.clock.now().wall;
    let saved = app.analysis.put(&app.store, &principal.tenant, config, &principal.name, now).await;
    let saved = saved.map_err(Problem::internal)?;
    tracing::info!(tenant = %principal.tenant, by = %principal.name, "analysis settings changed");
    Ok(Json(AnalysisConfig::clone(&saved)))
}
