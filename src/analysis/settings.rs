//! Each tenant's analysis settings in force: the ones saved through REST (the
//! `analysis_settings` table) over the embedded `config/analysis.toml`. The finalize stage asks
//! [`Settings::for_tenant`] once per finished session (a map lookup and an `Arc` clone); a REST
//! change is saved first and then swapped in, so what is in force is always what is stored.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use time::OffsetDateTime;

use crate::store::{Store, StoreError};

use super::AnalysisConfig;

/// The embedded default settings.
pub const DEFAULT_ANALYSIS: &str = include_str!("../../config/analysis.toml");

/// Cheap to clone; every clone sees the same settings.
#[derive(Clone)]
pub struct Settings {
    inner: Arc<Inner>,
}

struct Inner {
    default: Arc<AnalysisConfig>,
    tenants: RwLock<HashMap<String, Arc<AnalysisConfig>>>,
    /// Changes are saved and swapped in one at a time, so the map ends as the table does.
    edit: tokio::sync::Mutex<()>,
}

impl Settings {
    /// The settings saved in `store` over the embedded default.
    pub async fn load(store: &Store) -> Result<Settings, StoreError> {
        Settings::from_rows(store.analysis_settings().await?)
    }

    /// Settings from saved `(tenant, JSON)` rows over the embedded default.
    pub fn from_rows(rows: Vec<(String, String)>) -> Result<Settings, StoreError> {
        let default = AnalysisConfig::from_toml(DEFAULT_ANALYSIS)
            .expect("the embedded config/analysis.toml is valid (a unit test parses it)");
        let mut tenants = HashMap::with_capacity(rows.len());
        for (tenant, json) in rows {
            let config = AnalysisConfig::from_json(&json).map_err(|errors| {
                let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
                StoreError::Value(format!("analysis settings of tenant {tenant:?}: {}", errors.join("; ")))
            })?;
            tenants.insert(tenant, Arc::new(config));
        }
        Ok(Settings {
            inner: Arc::new(Inner {
                default: Arc::new(default),
                tenants: RwLock::new(tenants),
                edit: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// The settings `tenant`'s conversations are analysed with.
    pub fn for_tenant(&self, tenant: &str) -> Arc<AnalysisConfig> {
        let tenants = self.inner.tenants.read().unwrap_or_else(PoisonError::into_inner);
        tenants.get(tenant).unwrap_or(&self.inner.default).clone()
    }

    /// Saves `config` (already validated) as `tenant`'s, changed by `by` at `at`, and puts it in
    /// force.
    pub async fn put(
        &self,
        store: &Store,
        tenant: &str,
        config: AnalysisConfig,
        by: &str,
        at: OffsetDateTime,
    ) -> Result<Arc<AnalysisConfig>, StoreError> {
        let _edit = self.inner.edit.lock().await;
        store.put_analysis_settings(tenant, &serde_json::to_string(&config)?, by, at).await?;
        let config = Arc::new(config);
        let mut tenants = self.inner.tenants.write().unwrap_or_else(PoisonError::into_inner);
        tenants.insert(tenant.to_string(), config.clone());
        Ok(config)
    }
}
