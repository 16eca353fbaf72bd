//! What webhooks keep: each tenant's endpoints (with the secret that signs for them), the
//! outbox — one delivery per endpoint and finished session, queued in the same transaction that
//! finalizes the session, so none is lost or queued twice — and every attempt, the delivery log
//! the API shows. The delivery task claims due rows with a lease (`locked_until`) and settles a
//! row only while it holds its lease; it reads a few rows at a time, never the whole outbox.

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use time::OffsetDateTime;

use crate::clock::from_unix_ms;
use crate::session::SessionId;
use crate::webhooks::backoff::Verdict;
use crate::webhooks::payload::FinishedCall;

use super::{Store, StoreError};

/// The event every delivery carries today (header `Hark-Event`).
pub const CALL_FINISHED: &str = "call.finished";

/// A tenant's webhook endpoint as listed: never with its secret.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct WebhookEndpoint {
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    /// False once deleted, or after the receiver answered 410 Gone: nothing is sent to it.
    pub active: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub deactivated_at: Option<OffsetDateTime>,
    /// Why it was deactivated (`deleted`, or the receiver's 410 Gone).
    pub deactivated_reason: Option<String>,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Waiting for its next attempt.
    Pending,
    /// A 2xx answer came.
    Delivered,
    /// Given up: past the retry window, or its endpoint was deactivated.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Result<DeliveryState, StoreError> {
        match text {
            "pending" => Ok(DeliveryState::Pending),
            "delivered" => Ok(DeliveryState::Delivered),
            "failed" => Ok(DeliveryState::Failed),
            other => Err(StoreError::Value(format!("webhook delivery state {other:?}"))),
        }
    }
}

/// One queued delivery with every attempt made.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct WebhookDelivery {
    /// Sent as `Idempotency-Key`, the same on every attempt; names the delivery.
    pub idempotency_key: String,
    #[schema(value_type = String)]
    pub session_id: SessionId,
    /// `call.finished`.
    pub event: String,
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: u32,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub queued_at: OffsetDateTime,
    /// When the next attempt is due (pending only).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<OffsetDateTime>,
    /// The HTTP status of the last answer, if the last attempt got one.
    pub last_status: Option<u16>,
    /// Why the last attempt failed, when it got no answer (or why the delivery was given up).
    pub last_error: Option<String>,
    /// When it was delivered or given up.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub settled_at: Option<OffsetDateTime>,
    /// Every attempt, oldest first.
    pub log: Vec<WebhookAttempt>,
}

/// One attempt of a delivery.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct WebhookAttempt {
    /// 1 for the first attempt.
    pub attempt: u32,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    /// The HTTP status answered, or null when there was no answer.
    pub status: Option<u16>,
    /// What went wrong without an answer (refused, timed out, …).
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// A due delivery the delivery task has claimed: everything one attempt needs.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub id: String,
    pub tenant: String,
    pub endpoint_id: String,
    pub url: String,
    pub secret: String,
    /// `call.finished`.
    pub event: String,
    /// The exact bytes to send, as serialized when queued.
    pub body: String,
    /// Attempts made before this one.
    pub attempts: u32,
    pub queued_at: i64,
    /// The claim's `locked_until`: the row is this task's until then, and is settled only if
    /// it still is.
    pub lease: i64,
}

/// What one attempt got.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub at: i64,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// Queues one delivery of `payload` per active endpoint of the tenant, inside the caller's
/// transaction; enqueuing the same session again adds nothing (unique per endpoint + session).
pub async fn enqueue(
    tx: &mut Transaction<'_, Any>,
    tenant: &str,
    session: SessionId,
    payload: &FinishedCall,
    now_ms: i64,
) -> Result<(), StoreError> {
    let endpoints = sqlx::query("SELECT id FROM webhook_endpoints WHERE tenant = $1 AND active = 1")
        .bind(tenant)
        .fetch_all(&mut **tx)
        .await?;
    if endpoints.is_empty() {
        return Ok(());
    }
    let body = serde_json::to_string(payload)?;
    for endpoint in endpoints {
        sqlx::query(
            "INSERT INTO webhook_deliveries (id, endpoint_id, tenant, session_id, event, body, state, attempts, \
             queued_at, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7) \
             ON CONFLICT (endpoint_id, session_id) DO NOTHING",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(endpoint.try_get::<String, _>("id")?)
        .bind(tenant)
        .bind(session.to_string())
        .bind(CALL_FINISHED)
        .bind(&body)
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Deactivates an endpoint and gives up its pending deliveries, saying why.
async fn deactivate(
    tx: &mut Transaction<'_, Any>,
    endpoint: &str,
    reason: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE webhook_endpoints SET active = 0, deactivated_at = $2, deactivated_reason = $3 \
         WHERE id = $1 AND active = 1",
    )
    .bind(endpoint)
    .bind(now_ms)
    .bind(reason)
    .execute(&mut **tx)
    .await?;
    give_up_on_inactive_endpoints(&mut **tx, now_ms).await
}

/// Gives up the pending deliveries of deactivated endpoints, saying why. Run when an endpoint
/// is deactivated and before every claim: a call finalized while its endpoint was being
/// deactivated queues a delivery the deactivation could not see yet (neither transaction saw
/// the other's rows), which would otherwise wait forever.
async fn give_up_on_inactive_endpoints<'e>(
    executor: impl sqlx::Executor<'e, Database = Any>,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE webhook_deliveries SET state = 'failed', next_attempt_at = NULL, settled_at = $1, \
         last_error = 'endpoint deactivated: ' || (SELECT e.deactivated_reason FROM webhook_endpoints e \
         WHERE e.id = webhook_deliveries.endpoint_id) \
         WHERE state = 'pending' AND endpoint_id IN (SELECT id FROM webhook_endpoints WHERE active = 0)",
    )
    .bind(now_ms)
    .execute(executor)
    .await?;
    Ok(())
}

const ENDPOINT_COLUMNS: &str = "id, url, description, active, created_at, deactivated_at, deactivated_reason";

fn endpoint_from_row(row: &AnyRow) -> Result<WebhookEndpoint, StoreError> {
    Ok(WebhookEndpoint {
        id: row.try_get("id")?,
        url: row.try_get("url")?,
        description: row.try_get("description")?,
        active: row.try_get::<i64, _>("active")? != 0,
        created_at: from_unix_ms(row.try_get("created_at")?),
        deactivated_at: row.try_get::<Option<i64>, _>("deactivated_at")?.map(from_unix_ms),
        deactivated_reason: row.try_get("deactivated_reason")?,
    })
}

fn small(value: Option<i64>) -> Option<u16> {
    value.and_then(|v| u16::try_from(v).ok())
}

fn delivery_from_row(row: &AnyRow) -> Result<WebhookDelivery, StoreError> {
    let session: String = row.try_get("session_id")?;
    Ok(WebhookDelivery {
        idempotency_key: row.try_get("id")?,
        session_id: session.parse().map_err(|_| StoreError::Value(format!("session id {session:?}")))?,
        event: row.try_get("event")?,
        state: DeliveryState::parse(&row.try_get::<String, _>("state")?)?,
        attempts: row.try_get::<i64, _>("attempts")?.clamp(0, u32::MAX as i64) as u32,
        queued_at: from_unix_ms(row.try_get("queued_at")?),
        next_attempt_at: row.try_get::<Option<i64>, _>("next_attempt_at")?.map(from_unix_ms),
        last_status: small(row.try_get("last_status")?),
        last_error: row.try_get("last_error")?,
        settled_at: row.try_get::<Option<i64>, _>("settled_at")?.map(from_unix_ms),
        log: Vec::new(),
    })
}

impl Store {
    /// Adds an endpoint of a tenant.
    pub async fn create_webhook(
        &self,
        tenant: &str,
        url: &str,
        description: Option<&str>,
        secret: &str,
        now_ms: i64,
    ) -> Result<WebhookEndpoint, StoreError> {
        let id = uuid::Uuid::new_v4().to_string();
        sqlx::query(
            "INSERT INTO webhook_endpoints (id, tenant, url, description, secret, active, created_at) \
             VALUES ($1, $2, $3, $4, $5, 1, $6)",
        )
        .bind(&id)
        .bind(tenant)
        .bind(url)
        .bind(description)
        .bind(secret)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(WebhookEndpoint {
            id,
            url: url.into(),
            description: description.map(Into::into),
            active: true,
            created_at: from_unix_ms(now_ms),
            deactivated_at: None,
            deactivated_reason: None,
        })
    }

    /// A tenant's endpoints, active and deactivated, oldest first.
    pub async fn webhooks(&self, tenant: &str) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE tenant = $1 ORDER BY created_at, id");
        let rows = sqlx::query(&sql).bind(tenant).fetch_all(&self.pool).await?;
        rows.iter().map(endpoint_from_row).collect()
    }

    /// How many active endpoints a tenant has.
    pub async fn active_webhooks(&self, tenant: &str) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM webhook_endpoints WHERE tenant = $1 AND active = 1")
            .bind(tenant)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Deactivates a tenant's endpoint (nothing new is queued for it, its pending deliveries are
    /// given up); `false` if the tenant has no such endpoint. Deactivating twice changes nothing.
    pub async fn deactivate_webhook(
        &self,
        tenant: &str,
        id: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let found = sqlx::query("SELECT 1 AS one FROM webhook_endpoints WHERE id = $1 AND tenant = $2")
            .bind(id)
            .bind(tenant)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if found {
            deactivate(&mut tx, id, reason, now_ms).await?;
        }
        tx.commit().await?;
        Ok(found)
    }

    /// The delivery log of a tenant's endpoint, newest first, each with its attempts; `None` if
    /// the tenant has no such endpoint.
    pub async fn webhook_deliveries(
        &self,
        tenant: &str,
        endpoint: &str,
        state: Option<DeliveryState>,
        limit: i64,
    ) -> Result<Option<Vec<WebhookDelivery>>, StoreError> {
        let owned = sqlx::query("SELECT 1 AS one FROM webhook_endpoints WHERE id = $1 AND tenant = $2")
            .bind(endpoint)
            .bind(tenant)
            .fetch_optional(&self.pool)
            .await?;
        if owned.is_none() {
            return Ok(None);
        }
        let filter = if state.is_some() { "AND state = $3" } else { "" };
        let sql = format!(
            "SELECT id, session_id, event, state, attempts, queued_at, next_attempt_at, last_status, last_error, \
             settled_at FROM webhook_deliveries WHERE endpoint_id = $1 {filter} ORDER BY queued_at DESC, id DESC LIMIT $2"
        );
        let mut query = sqlx::query(&sql).bind(endpoint).bind(limit);
        if let Some(state) = state {
            query = query.bind(state.as_str());
        }
        let mut deliveries: Vec<WebhookDelivery> =
            query.fetch_all(&self.pool).await?.iter().map(delivery_from_row).collect::<Result<_, _>>()?;
        if deliveries.is_empty() {
            return Ok(Some(deliveries));
        }
        let placeholders: Vec<String> = (1..=deliveries.len()).map(|n| format!("${n}")).collect();
        let sql = format!(
            "SELECT delivery_id, attempt, at, status, error, duration_ms FROM webhook_attempts \
             WHERE delivery_id IN ({}) ORDER BY at, attempt",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for delivery in &deliveries {
            query = query.bind(delivery.idempotency_key.clone());
        }
        for row in query.fetch_all(&self.pool).await? {
            let id: String = row.try_get("delivery_id")?;
            let attempt = WebhookAttempt {
                attempt: row.try_get::<i64, _>("attempt")?.clamp(0, u32::MAX as i64) as u32,
                at: from_unix_ms(row.try_get("at")?),
                status: small(row.try_get("status")?),
                error: row.try_get("error")?,
                duration_ms: row.try_get("duration_ms")?,
            };
            if let Some(delivery) = deliveries.iter_mut().find(|d| d.idempotency_key == id) {
                delivery.log.push(attempt);
            }
        }
        Ok(Some(deliveries))
    }

    /// Claims up to `limit` deliveries due at `now_ms` (pending, of an active endpoint, not
    /// claimed by anyone else) for `lease_ms`, oldest due first.
    pub async fn claim_webhook_deliveries(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        give_up_on_inactive_endpoints(&self.pool, now_ms).await?;
        let due = sqlx::query(
            "SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id \
             WHERE d.state = 'pending' AND d.next_attempt_at <= $1 AND e.active = 1 \
             AND (d.locked_until IS NULL OR d.locked_until <= $1) ORDER BY d.next_attempt_at LIMIT $2",
        )
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let lease = now_ms + lease_ms;
        let mut claimed = Vec::with_capacity(due.len());
        for row in due {
            let id: String = row.try_get("id")?;
            // Someone else may have claimed or settled it since the SELECT: then nothing changes.
            let won = sqlx::query(
                "UPDATE webhook_deliveries SET locked_until = $2 WHERE id = $1 AND state = 'pending' \
                 AND (locked_until IS NULL OR locked_until <= $3)",
            )
            .bind(&id)
            .bind(lease)
            .bind(now_ms)
            .execute(&self.pool)
            .await?
            .rows_affected();
            if won == 0 {
                continue;
            }
            let row = sqlx::query(
                "SELECT d.id, d.tenant, d.endpoint_id, d.event, d.body, d.attempts, d.queued_at, e.url, e.secret \
                 FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id WHERE d.id = $1",
            )
            .bind(&id)
            .fetch_one(&self.pool)
            .await?;
            claimed.push(ClaimedDelivery {
                id,
                tenant: row.try_get("tenant")?,
                endpoint_id: row.try_get("endpoint_id")?,
                url: row.try_get("url")?,
                secret: row.try_get("secret")?,
                event: row.try_get("event")?,
                body: row.try_get("body")?,
                attempts: row.try_get::<i64, _>("attempts")?.clamp(0, u32::MAX as i64) as u32,
                queued_at: row.try_get("queued_at")?,
                lease,
            });
        }
        Ok(claimed)
    }

    /// Logs an attempt of a claimed delivery and settles it by `verdict` — only if the claim
    /// still holds (a lease that ran out belongs to whoever claimed the row next). `Gone` also
    /// deactivates the endpoint. `false` if the claim was lost.
    pub async fn finish_webhook_attempt(
        &self,
        claimed: &ClaimedDelivery,
        result: &AttemptResult,
        verdict: Verdict,
    ) -> Result<bool, StoreError> {
        let attempt = claimed.attempts + 1;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO webhook_attempts (id, delivery_id, attempt, at, status, error, duration_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(&claimed.id)
        .bind(attempt as i64)
        .bind(result.at)
        .bind(result.status.map(i64::from))
        .bind(result.error.clone())
        .bind(result.duration_ms)
        .execute(&mut *tx)
        .await?;
        let (state, next, settled) = match verdict {
            Verdict::Delivered => (DeliveryState::Delivered, None, Some(result.at)),
            Verdict::Retry { at_ms } => (DeliveryState::Pending, Some(at_ms), None),
            Verdict::Failed | Verdict::Gone => (DeliveryState::Failed, None, Some(result.at)),
        };
        let held = sqlx::query(
            "UPDATE webhook_deliveries SET state = $3, attempts = $4, next_attempt_at = $5, settled_at = $6, \
             last_status = $7, last_error = $8, locked_until = NULL \
             WHERE id = $1 AND locked_until = $2 AND state = 'pending'",
        )
        .bind(&claimed.id)
        .bind(claimed.lease)
        .bind(state.as_str())
        .bind(attempt as i64)
        .bind(next)
        .bind(settled)
        .bind(result.status.map(i64::from))
        .bind(result.error.clone())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if verdict == Verdict::Gone {
            deactivate(&mut tx, &claimed.endpoint_id, "the receiver answered 410 Gone", result.at).await?;
        }
        tx.commit().await?;
        Ok(held)
    }

    /// When the earliest pending delivery of an active endpoint may be attempted (its due time,
    /// or the end of its claim when later), Unix ms.
    pub async fn next_webhook_due(&self) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "SELECT MIN(CASE WHEN d.locked_until > d.next_attempt_at THEN d.locked_until \
             ELSE d.next_attempt_at END) AS due \
             FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id \
             WHERE d.state = 'pending' AND e.active = 1",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("due")?)
    }

    /// Deliveries waiting to be delivered, all tenants.
    pub async fn pending_webhook_deliveries(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM webhook_deliveries WHERE state = 'pending'")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the race leaves behind on PostgreSQL (a call finalized while its endpoint was being
    /// deactivated): a pending delivery of an inactive endpoint. The next claim gives it up.
    #[tokio::test]
    async fn a_delivery_queued_behind_a_deactivation_is_given_up() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("hark.db").display());
        let store = Store::connect(&url, 1).await.unwrap();
        let endpoint = store.create_webhook("t", "http://127.0.0.1:9/hooks", None, "whsec_x", 1_000).await.unwrap();
        assert!(store.deactivate_webhook("t", &endpoint.id, "the receiver answered 410 Gone", 2_000).await.unwrap());
        sqlx::query(
            "INSERT INTO webhook_deliveries (id, endpoint_id, tenant, session_id, event, body, state, attempts, \
             queued_at, next_attempt_at) VALUES ('late', $1, 't', $2, 'call.finished', '{}', 'pending', 0, 1500, 1500)",
        )
        .bind(&endpoint.id)
        .bind(uuid::Uuid::new_v4().to_string())
        .execute(&store.pool)
        .await
        .unwrap();
        assert_eq!(store.pending_webhook_deliveries().await.unwrap(), 1);

        assert!(store.claim_webhook_deliveries(3_000, 60_000, 10).await.unwrap().is_empty());
        assert_eq!(store.pending_webhook_deliveries().await.unwrap(), 0);
        let log = store.webhook_deliveries("t", &endpoint.id, None, 10).await.unwrap().unwrap();
        assert_eq!(log[0].state, DeliveryState::Failed);
        assert_eq!(log[0].last_error.as_deref(), Some("endpoint deactivated: the receiver answered 410 Gone"));
    }
}
