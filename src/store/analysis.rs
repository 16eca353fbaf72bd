//! What post-call analysis keeps: each tenant's analysis settings as last changed through REST
//! (JSON), which win over the embedded default.

use sqlx::Row;
use time::OffsetDateTime;

use crate::clock::unix_ms;

use super::{Store, StoreError};

impl Store {
    /// Every tenant's saved analysis settings, as `(tenant, JSON)`.
    pub async fn analysis_settings(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows =
            sqlx::query("SELECT tenant, config FROM analysis_settings ORDER BY tenant").fetch_all(&self.pool).await?;
        rows.iter().map(|row| Ok((row.try_get("tenant")?, row.try_get("config")?))).collect()
    }

    /// Saves `tenant`'s analysis settings (JSON), changed by `by` at `at`.
    pub async fn put_analysis_settings(
        &self,
        tenant: &str,
        config: &str,
        by: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO analysis_settings (tenant, config, updated_at, updated_by) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at, \
             updated_by = excluded.updated_by",
        )
        .bind(tenant)
        .bind(config)
        .bind(unix_ms(at))
        .bind(by)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
