//! What the rules stage keeps: alerts (written by the store's writer as they are raised, so
//! none is lost; listed with filters newest first; acknowledged once) and the rule set as last
//! changed through REST.

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use time::OffsetDateTime;

use crate::clock::{from_unix_ms, unix_ms};
use crate::session::SessionId;

use super::{Store, StoreError};

/// One alert: which rule saw what in which session, and whether someone acknowledged it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct AlertRecord {
    #[schema(value_type = String)]
    pub id: uuid::Uuid,
    pub tenant: String,
    #[schema(value_type = String)]
    pub session_id: SessionId,
    pub rule_id: String,
    pub rule_name: String,
    /// `score`, `phrase`, `emotion`, `silence`, `hold` or `sla`.
    pub kind: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    /// What happened, for a person ("customer said \"cancel my contract\"").
    pub message: String,
    /// The text that triggered it, when there is one.
    pub evidence: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub raised_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub acknowledged_at: Option<OffsetDateTime>,
    /// The name of the supervisor who acknowledged it.
    pub acknowledged_by: Option<String>,
}

/// Filters of the alerts list; all optional, combined with AND.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    pub session_id: Option<SessionId>,
    pub kind: Option<String>,
    pub severity: Option<String>,
    pub rule_id: Option<String>,
    pub acknowledged: Option<bool>,
    /// Raised at or after.
    pub since: Option<OffsetDateTime>,
    /// Raised before (also the cursor of the next page: the last alert's `raised_at`).
    pub before: Option<OffsetDateTime>,
    pub limit: i64,
}

const COLUMNS: &str = "id, tenant, session_id, rule_id, rule_name, kind, severity, message, evidence, \
     raised_at, acknowledged_at, acknowledged_by";

pub(super) async fn insert_alert(tx: &mut Transaction<'_, Any>, alert: &AlertRecord) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO alerts ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         ON CONFLICT (id) DO NOTHING"
    ))
    .bind(alert.id.to_string())
    .bind(&alert.tenant)
    .bind(alert.session_id.to_string())
    .bind(&alert.rule_id)
    .bind(&alert.rule_name)
    .bind(&alert.kind)
    .bind(&alert.severity)
    .bind(&alert.message)
    .bind(alert.evidence.clone())
    .bind(unix_ms(alert.raised_at))
    .bind(alert.acknowledged_at.map(unix_ms))
    .bind(alert.acknowledged_by.clone())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// A tenant's alerts matching `filter`, newest first.
    /// The tenant's alerts on sessions within `scope`, newest first.
    pub async fn alerts(
        &self,
        tenant: &str,
        scope: &crate::org::Scope,
        filter: &AlertFilter,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        let mut sql = format!("SELECT {COLUMNS} FROM alerts WHERE tenant = $1");
        let mut n = 1;
        let mut next = |column: &str, op: &str| {
            n += 1;
            format!(" AND {column} {op} ${n}")
        };
        let session = filter.session_id.map(|s| s.to_string());
        let texts = [
            ("session_id", session.as_ref()),
            ("kind", filter.kind.as_ref()),
            ("severity", filter.severity.as_ref()),
            ("rule_id", filter.rule_id.as_ref()),
        ];
        let mut binds: Vec<String> = Vec::new();
        for (column, value) in texts {
            if let Some(value) = value {
                sql.push_str(&next(column, "="));
                binds.push(value.clone());
            }
        }
        let mut times: Vec<i64> = Vec::new();
        if let Some(since) = filter.since {
            sql.push_str(&next("raised_at", ">="));
            times.push(unix_ms(since));
        }
        if let Some(before) = filter.before {
            sql.push_str(&next("raised_at", "<"));
            times.push(unix_ms(before));
        }
        match filter.acknowledged {
            Some(true) => sql.push_str(" AND acknowledged_at IS NOT NULL"),
            Some(false) => sql.push_str(" AND acknowledged_at IS NULL"),
            None => {}
        }
        let (scope_sql, scope_binds) = scope.sql("s", n + 1);
        if *scope != crate::org::Scope::All {
            sql.push_str(&format!(
                " AND session_id IN (SELECT s.id FROM sessions s WHERE s.tenant = $1 AND {scope_sql})"
            ));
        }
        n += scope_binds.len();
        n += 1;
        sql.push_str(&format!(" ORDER BY raised_at DESC, id DESC LIMIT ${n}"));
        let mut query = sqlx::query(&sql).bind(tenant);
        for value in binds {
            query = query.bind(value);
        }
        for value in times {
            query = query.bind(value);
        }
        for value in scope_binds {
            query = query.bind(value);
        }
        let rows = query.bind(filter.limit).fetch_all(&self.pool).await?;
        rows.iter().map(alert_from_row).collect()
    }

    /// Acknowledges a tenant's alert (the first acknowledgement stays); `None` if there is no
    /// such alert.
    pub async fn acknowledge_alert(
        &self,
        tenant: &str,
        id: uuid::Uuid,
        by: &str,
        at: OffsetDateTime,
    ) -> Result<Option<AlertRecord>, StoreError> {
        sqlx::query(
            "UPDATE alerts SET acknowledged_at = $3, acknowledged_by = $4 \
             WHERE tenant = $1 AND id = $2 AND acknowledged_at IS NULL",
        )
        .bind(tenant)
        .bind(id.to_string())
        .bind(unix_ms(at))
        .bind(by)
        .execute(&self.pool)
        .await?;
        self.alert(tenant, id).await
    }

    /// One alert of the tenant.
    pub async fn alert(&self, tenant: &str, id: uuid::Uuid) -> Result<Option<AlertRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM alerts WHERE tenant = $1 AND id = $2"))
            .bind(tenant)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(alert_from_row).transpose()
    }
}

impl Store {
    /// The rule set last saved through REST, as JSON, if any.
    pub async fn rules_config(&self) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT config FROM rules_config WHERE id = 1").fetch_optional(&self.pool).await?;
        Ok(row.map(|r| r.try_get("config")).transpose()?)
    }

    /// Saves the rule set (JSON) changed through REST by `by`.
    pub async fn put_rules_config(&self, config: &str, by: &str, at: OffsetDateTime) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO rules_config (id, config, updated_at, updated_by) VALUES (1, $1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at, \
             updated_by = excluded.updated_by",
        )
        .bind(config)
        .bind(unix_ms(at))
        .bind(by)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

fn alert_from_row(row: &AnyRow) -> Result<AlertRecord, StoreError> {
    let uuid = |column: &str| -> Result<uuid::Uuid, StoreError> {
        let text: String = row.try_get(column)?;
        text.parse().map_err(|_| StoreError::Value(format!("{column} {text:?}")))
    };
    Ok(AlertRecord {
        id: uuid("id")?,
        tenant: row.try_get("tenant")?,
        session_id: uuid("session_id")?,
        rule_id: row.try_get("rule_id")?,
        rule_name: row.try_get("rule_name")?,
        kind: row.try_get("kind")?,
        severity: row.try_get("severity")?,
        message: row.try_get("message")?,
        evidence: row.try_get("evidence")?,
        raised_at: from_unix_ms(row.try_get("raised_at")?),
        acknowledged_at: row.try_get::<Option<i64>, _>("acknowledged_at")?.map(from_unix_ms),
        acknowledged_by: row.try_get("acknowledged_by")?,
    })
}
