//! What finalize stores of an ended session, in one transaction: its duration, its searchable
//! text, and the mark that it is done (`finalized_at`), so it is finalized exactly once.

use sqlx::Row;
use time::OffsetDateTime;

use crate::clock::unix_ms;
use crate::session::SessionId;

use super::{search, SessionRecord, Store, StoreError};

/// What finalize computed for one session.
#[derive(Debug, Clone)]
pub struct Finalized {
    pub duration_ms: i64,
    /// Every message and transcript line, for full-text search.
    pub search_text: String,
    /// The body of the session's `call.finished` webhooks.
    pub webhook: crate::webhooks::payload::FinishedCall,
}

impl Store {
    /// Ended sessions not finalized yet, oldest first.
    pub async fn unfinalized(&self, limit: i64) -> Result<Vec<SessionId>, StoreError> {
        let rows = sqlx::query(
            "SELECT id FROM sessions WHERE state = 'ended' AND finalized_at IS NULL ORDER BY started_at LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("id")?;
                id.parse().map_err(|_| StoreError::Value(format!("session id {id:?}")))
            })
            .collect()
    }

    /// The record of an ended session not finalized yet.
    pub async fn ended_session(&self, id: SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query("SELECT tenant FROM sessions WHERE id = $1 AND state = 'ended' AND finalized_at IS NULL")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => self.session(&row.try_get::<String, _>("tenant")?, id).await,
            None => Ok(None),
        }
    }

    /// Stores what finalize computed; a session finalized already is left as it is.
    pub async fn finalize(
        &self,
        record: &SessionRecord,
        finalized: &Finalized,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let id = record.card.session_id.to_string();
        let mut tx = self.pool.begin().await?;
        let claimed = sqlx::query(
            "UPDATE sessions SET finalized_at = $2, duration_ms = $3 WHERE id = $1 AND finalized_at IS NULL",
        )
        .bind(&id)
        .bind(unix_ms(now))
        .bind(finalized.duration_ms)
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() == 0 {
            return Ok(());
        }
        let tenant = &record.card.tenant;
        search::index(&mut tx, tenant, &id, &finalized.search_text).await?;
        super::webhooks::enqueue(&mut tx, tenant, record.card.session_id, &finalized.webhook, unix_ms(now)).await?;
        tx.commit().await?;
        Ok(())
    }
}
