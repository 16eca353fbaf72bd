//! What finalize stores of an ended session, in one transaction: its duration, its analysis (with
//! one row per score and checklist item, for the history's filters), its report roll-ups, its
//! searchable text, its webhooks, and the mark that it is done (`finalized_at`), so it is finalized exactly once.

use sqlx::Row;
use time::OffsetDateTime;

use crate::clock::unix_ms;
use crate::session::SessionId;

use super::{search, SessionRecord, Store, StoreError};

/// What finalize computed for one session.
#[derive(Debug, Clone)]
pub struct Finalized {
    /// What the session adds to the reports.
    pub facts: super::CallFacts,
    pub duration_ms: i64,
    /// Every message and transcript line, for full-text search.
    pub search_text: String,
    /// The body of the session's `call.finished` webhooks.
    pub webhook: crate::webhooks::payload::FinishedCall,
}

impl Store {
    /// How many alerts were raised on a session.
    pub async fn alert_count(&self, session: SessionId) -> Result<u32, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM alerts WHERE session_id = $1")
            .bind(session.to_string())
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>("n")? as u32)
    }

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
        zone: &jiff::tz::TimeZone,
    ) -> Result<(), StoreError> {
        let id = record.card.session_id.to_string();
        let mut tx = self.pool.begin().await?;
        let analysis = record.analysis.as_ref();
        // The session's tags: what automations set live, and what the analysis found.
        let mut tags = record.card.tags.clone();
        for tag in analysis.iter().flat_map(|a| &a.tags) {
            if !tags.contains(tag) {
                tags.push(tag.clone());
            }
        }
        let claimed = sqlx::query(
            "UPDATE sessions SET finalized_at = $2, duration_ms = $3, analysis = $4, analysis_skipped = $5, \
             category = $6, outcome = $7, tags = $8 WHERE id = $1 AND finalized_at IS NULL",
        )
        .bind(&id)
        .bind(unix_ms(now))
        .bind(finalized.duration_ms)
        .bind(analysis.map(serde_json::to_string).transpose()?)
        .bind(record.analysis_skipped.clone())
        .bind(analysis.and_then(|a| a.category.clone()))
        .bind(analysis.and_then(|a| a.outcome.clone()))
        .bind(serde_json::to_string(&tags)?)
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() == 0 {
            return Ok(());
        }
        for score in analysis.iter().flat_map(|a| &a.scores) {
            sqlx::query("INSERT INTO session_scores (session_id, label, score) VALUES ($1, $2, $3)")
                .bind(&id)
                .bind(&score.label)
                .bind(i64::from(score.score))
                .execute(&mut *tx)
                .await?;
        }
        for item in analysis.iter().flat_map(|a| &a.checklist) {
            sqlx::query("INSERT INTO session_checklist (session_id, item_id, done) VALUES ($1, $2, $3)")
                .bind(&id)
                .bind(&item.id)
                .bind(i64::from(item.done))
                .execute(&mut *tx)
                .await?;
        }
        let tenant = &record.card.tenant;
        super::record_call(&mut tx, &finalized.facts, zone).await?;
        search::index(&mut tx, tenant, &id, &finalized.search_text).await?;
        super::webhooks::enqueue(&mut tx, tenant, record.card.session_id, &finalized.webhook, unix_ms(now)).await?;
        tx.commit().await?;
        Ok(())
    }
}
