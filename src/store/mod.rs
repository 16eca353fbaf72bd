//! Persistence in SQLite (the embedded default) or PostgreSQL, through one set of portable sqlx
//! migrations. Live sessions are written as they happen — each log entry as it is appended — by
//! one batching [`Writer`] task, so a crash loses nothing acknowledged and the end of a session
//! only updates its row.

use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use tokio::sync::{mpsc, oneshot};

use crate::clock::{from_unix_ms, unix_ms};
use crate::ingest::call::CallRecord;
use crate::session::{Author, Card, Channel, EndReason, Entry, Hold, Holder, Notice, SessionId};

mod analysis;
mod finalize;
mod history;
mod notes;
mod org;
mod reports;
mod rules;
mod search;
mod webhooks;

pub use finalize::Finalized;
pub use history::{Cursor, HistoryFilter, ScoreValue, SessionSummary, Sort};
pub use notes::Note;
pub use org::{Agent, Department, Desk, OrgRows, User};
pub use reports::{
    local_time, quota_left, record_call, Against, AgentRow, Bucket, CallFacts, Comparison, Metrics, MonthUsage, Period,
    Report, Side, Tile, Tiles, Usage, Window,
};
pub use rules::{AlertFilter, AlertRecord};
pub use webhooks::{
    enqueue, AttemptResult, ClaimedDelivery, DeliveryState, WebhookAttempt, WebhookDelivery, WebhookEndpoint,
    CALL_FINISHED,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("stored value: {0}")]
    Value(String),
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

/// Which database the store runs on, where portable SQL is not enough (full-text search).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A session as stored: its card, its log and who held it when.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SessionRecord {
    #[serde(flatten)]
    pub card: Card,
    pub messages: Vec<Entry>,
    pub holds: Vec<Hold>,
    /// What a voice session adds: source, parties, codec, hang-up cause, streams, recordings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call: Option<CallRecord>,
    /// Supervisors' notes, oldest first.
    pub notes: Vec<Note>,
    /// The post-call analysis, once the session is finalized and was analysed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis: Option<crate::analysis::Analysis>,
    /// Why a finalized session was not analysed (too short, over the plan's quota).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis_skipped: Option<String>,
}

/// A bearer token as stored (only its hash).
#[derive(Debug, Clone)]
pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub tenant: String,
    pub admin: bool,
    /// The user the token acts for; None for the admin's and legacy supervisor tokens.
    pub user_id: Option<String>,
}

/// A token with what its user may see and do.
#[derive(Debug, Clone)]
pub struct TokenGrant {
    pub token: TokenRow,
    /// The user's scope, permissions and whether they are active, when the token has a user.
    pub user: Option<User>,
}

const CARD_COLUMNS: &str = "id, tenant, site, channel, state, started_at, ended_at, end_reason, \
     message_count, last_message, last_message_at, country, device, holder, sentiment, tags, priority, assignee, \
     team, sla, agent_id, desk_id, department_id";

impl Store {
    /// Connects, migrates, and closes sessions a crash left live as `interrupted`.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let sqlite = url.starts_with("sqlite:");
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        sqlx::query("PRAGMA journal_mode = WAL").execute(&mut *conn).await?;
                        sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut *conn).await?;
                        sqlx::query("PRAGMA busy_timeout = 5000").execute(&mut *conn).await?;
                        sqlx::query("PRAGMA foreign_keys = ON").execute(&mut *conn).await?;
                        // Checkpoints (the only commits that fsync) run in their own task, off
                        // the writer's commit path; see `checkpoint_loop`.
                        sqlx::query("PRAGMA wal_autocheckpoint = 0").execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        MIGRATOR.run(&pool).await?;
        let backend = if sqlite { Backend::Sqlite } else { Backend::Postgres };
        search::ensure(&pool, backend).await?;
        if sqlite {
            tokio::spawn(checkpoint_loop(pool.clone()));
        }
        let store = Store { pool, backend };
        store.close_orphans().await?;
        Ok(store)
    }

    async fn close_orphans(&self) -> Result<(), StoreError> {
        let closed = sqlx::query(
            "UPDATE sessions SET state = 'ended', end_reason = 'interrupted', \
             ended_at = COALESCE(last_message_at, started_at) WHERE state = 'live'",
        )
        .execute(&self.pool)
        .await?
        .rows_affected();
        if closed > 0 {
            tracing::warn!(closed, "sessions left live by an unclean stop are now interrupted");
        }
        Ok(())
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The history of ended sessions matching `filter` within `scope`, as a bounded stream:
    /// a task reads it page by page (keyset pagination) and waits while the receiver is behind,
    /// so an export of any size holds one page at a time.
    pub fn history_stream(
        &self,
        tenant: &str,
        scope: &crate::org::Scope,
        mut filter: HistoryFilter,
    ) -> mpsc::Receiver<Result<SessionSummary, StoreError>> {
        const PAGE: i64 = 500;
        let (tx, rx) = mpsc::channel(PAGE as usize);
        let (store, tenant, scope) = (self.clone(), tenant.to_string(), scope.clone());
        filter.limit = PAGE;
        tokio::spawn(async move {
            let mut conn = match store.pool.acquire().await {
                Ok(conn) => conn,
                Err(error) => {
                    let _ = tx.send(Err(error.into())).await;
                    return;
                }
            };
            loop {
                let (rows, next) = match store.history_on(&mut conn, &tenant, &scope, &filter).await {
                    Ok(page) => page,
                    Err(error) => {
                        let _ = tx.send(Err(error)).await;
                        return;
                    }
                };
                for row in rows {
                    if tx.send(Ok(row)).await.is_err() {
                        return;
                    }
                }
                match next {
                    Some(next) => filter.after = Some(next),
                    None => return,
                }
            }
        });
        rx
    }

    /// One session of a tenant with its log and holds.
    pub async fn session(&self, tenant: &str, id: SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let sql =
            format!("SELECT {CARD_COLUMNS}, analysis, analysis_skipped FROM sessions WHERE id = $1 AND tenant = $2");
        let Some(row) = sqlx::query(&sql).bind(id.to_string()).bind(tenant).fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        let card = card_from_row(&row)?;
        let analysis = row.try_get::<Option<String>, _>("analysis")?.map(|a| serde_json::from_str(&a)).transpose()?;
        let analysis_skipped = row.try_get("analysis_skipped")?;
        let messages = sqlx::query(
            "SELECT seq, at, author_role, author_name, text, client_id, notice, speech \
             FROM session_messages WHERE session_id = $1 ORDER BY seq",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(entry_from_row)
        .collect::<Result<_, _>>()?;
        let holds =
            sqlx::query("SELECT holder, from_at, until_at FROM session_holds WHERE session_id = $1 ORDER BY idx")
                .bind(id.to_string())
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|row| {
                    Ok(Hold {
                        holder: serde_json::from_str(&row.try_get::<String, _>("holder")?)?,
                        from: from_unix_ms(row.try_get("from_at")?),
                        until: row.try_get::<Option<i64>, _>("until_at")?.map(from_unix_ms),
                    })
                })
                .collect::<Result<_, StoreError>>()?;
        let call = self.call(id).await?;
        let notes = self.notes(tenant, id).await?;
        Ok(Some(SessionRecord { card, messages, holds, call, notes, analysis, analysis_skipped }))
    }

    /// Deletes an ended session of the tenant with everything kept of it (log, holds, call
    /// record, notes, alerts, analysis, search text); false when there is no such ended session.
    /// The caller removes the recordings' files.
    pub async fn delete_session(&self, tenant: &str, id: SessionId) -> Result<bool, StoreError> {
        let id = id.to_string();
        let mut tx = self.pool.begin().await?;
        let found = sqlx::query("SELECT 1 AS one FROM sessions WHERE id = $1 AND tenant = $2 AND state = 'ended'")
            .bind(&id)
            .bind(tenant)
            .fetch_optional(&mut *tx)
            .await?;
        if found.is_none() {
            return Ok(false);
        }
        for table in [
            "session_messages",
            "session_holds",
            "calls",
            "session_notes",
            "alerts",
            "session_scores",
            "session_checklist",
            "session_search",
        ] {
            sqlx::query(&format!("DELETE FROM {table} WHERE session_id = $1")).bind(&id).execute(&mut *tx).await?;
        }
        sqlx::query("DELETE FROM sessions WHERE id = $1").bind(&id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The call record of a voice session.
    pub async fn call(&self, id: SessionId) -> Result<Option<CallRecord>, StoreError> {
        sqlx::query(
            "SELECT source, external_id, trunk, from_party, to_party, codec, hangup_cause, streams \
             FROM calls WHERE session_id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?
        .map(|row| {
            Ok::<_, StoreError>(CallRecord {
                source: row.try_get("source")?,
                external_id: row.try_get("external_id")?,
                trunk: row.try_get("trunk")?,
                from: serde_json::from_str(&row.try_get::<String, _>("from_party")?)?,
                to: serde_json::from_str(&row.try_get::<String, _>("to_party")?)?,
                codec: row.try_get("codec")?,
                hangup_cause: row.try_get("hangup_cause")?,
                streams: serde_json::from_str(&row.try_get::<String, _>("streams")?)?,
            })
        })
        .transpose()
    }

    pub async fn token_by_hash(&self, sha256: &str) -> Result<Option<TokenGrant>, StoreError> {
        let row = sqlx::query(
            "SELECT t.id, t.name, t.tenant, t.is_admin, t.user_id, u.name AS user_name, u.scope, u.permissions, u.active \
             FROM api_tokens t LEFT JOIN users u ON u.id = t.user_id WHERE t.token_sha256 = $1",
        )
        .bind(sha256)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            let token = TokenRow {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                tenant: row.try_get("tenant")?,
                admin: row.try_get::<i64, _>("is_admin")? != 0,
                user_id: row.try_get("user_id")?,
            };
            let user = match &token.user_id {
                Some(id) => Some(User {
                    id: id.clone(),
                    name: row.try_get("user_name")?,
                    scope: serde_json::from_str(&row.try_get::<String, _>("scope")?)?,
                    permissions: serde_json::from_str(&row.try_get::<String, _>("permissions")?)?,
                    active: row.try_get::<i64, _>("active")? != 0,
                }),
                None => None,
            };
            Ok(TokenGrant { token, user })
        })
        .transpose()
    }

    /// Stores a token by its hash; an existing `id` is replaced (the admin's bootstrap token).
    pub async fn put_token(&self, token: &TokenRow, sha256: &str, now_ms: i64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM api_tokens WHERE id = $1").bind(&token.id).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO api_tokens (id, name, tenant, is_admin, token_sha256, created_at, user_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&token.id)
        .bind(&token.name)
        .bind(&token.tenant)
        .bind(token.admin as i64)
        .bind(sha256)
        .bind(now_ms)
        .bind(token.user_id.clone())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Starts the writer task; it runs until every [`Writer`] clone is dropped.
    pub fn spawn_writer(&self) -> Writer {
        let (tx, rx) = mpsc::channel(WRITER_QUEUE);
        tokio::spawn(write_loop(self.pool.clone(), rx));
        Writer { tx }
    }
}

/// How often the SQLite WAL is copied back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Checkpoints the SQLite WAL on a connection of its own. A passive checkpoint never blocks the
/// writer, so its fsyncs stay off the path of every message (automatic checkpoints would run
/// inside whichever commit crosses the threshold, stalling it for the fsync).
async fn checkpoint_loop(pool: AnyPool) {
    loop {
        tokio::time::sleep(CHECKPOINT_EVERY).await;
        if pool.is_closed() {
            return;
        }
        if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
            tracing::warn!(%error, "WAL checkpoint failed; retrying");
        }
    }
}

/// Capacity of the writer queue; session tasks wait when it is full (nothing is dropped).
const WRITER_QUEUE: usize = 8192;
/// Most writes committed in one transaction.
const BATCH: usize = 512;

/// A change to persist.
#[derive(Debug, Clone)]
pub enum Write {
    Started(Card),
    Entry(SessionId, Entry),
    Ended(Card, Vec<Hold>),
    /// A call's record, written when it starts and again when it ends.
    Call(SessionId, CallRecord),
    /// An alert the rules stage raised.
    Alert(AlertRecord),
    /// A live session was placed on an agent (data scopes filter by it at once).
    Placement(SessionId, crate::org::Placement),
}

// Jobs live only in the queue, so their size difference costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
enum Job {
    Write(Write),
    Flush(oneshot::Sender<()>),
}

/// Handle to the writer task.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
}

impl Writer {
    pub async fn send(&self, write: Write) {
        if self.tx.send(Job::Write(write)).await.is_err() {
            tracing::error!("store writer has stopped; a write was not persisted");
        }
    }

    /// Waits until everything sent before is committed.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Job::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn write_loop(pool: AnyPool, mut rx: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut jobs, BATCH).await > 0 {
        let writes: Vec<&Write> = jobs
            .iter()
            .filter_map(|j| match j {
                Job::Write(w) => Some(w),
                Job::Flush(_) => None,
            })
            .collect();
        let mut backoff = Duration::from_millis(50);
        while let Err(error) = apply(&pool, &writes).await {
            // Never drop a write: retry until the database answers again.
            metrics::counter!(crate::metrics::STORE_ERRORS).increment(1);
            tracing::error!(%error, writes = writes.len(), "store write failed; retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
        for job in jobs.drain(..) {
            if let Job::Flush(done) = job {
                let _ = done.send(());
            }
        }
    }
}

async fn apply(pool: &AnyPool, writes: &[&Write]) -> Result<(), StoreError> {
    if writes.is_empty() {
        return Ok(());
    }
    let started = std::time::Instant::now();
    let mut tx = pool.begin().await?;
    for write in writes {
        match write {
            Write::Started(card) => {
                sqlx::query(
                    "INSERT INTO sessions (id, tenant, site, channel, state, started_at, device, holder, country, \
                     agent_id, desk_id, department_id) \
                     VALUES ($1, $2, $3, $4, 'live', $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO NOTHING",
                )
                .bind(card.session_id.to_string())
                .bind(&card.tenant)
                .bind(&card.site)
                .bind(card.channel.as_str())
                .bind(unix_ms(card.started_at))
                .bind(&card.device)
                .bind(serde_json::to_string(&card.holder)?)
                .bind(card.country.clone())
                .bind(card.placement.agent_id.clone())
                .bind(card.placement.desk_id.clone())
                .bind(card.placement.department_id.clone())
                .execute(&mut *tx)
                .await?;
            }
            Write::Placement(id, placement) => {
                sqlx::query("UPDATE sessions SET agent_id = $2, desk_id = $3, department_id = $4 WHERE id = $1")
                    .bind(id.to_string())
                    .bind(placement.agent_id.clone())
                    .bind(placement.desk_id.clone())
                    .bind(placement.department_id.clone())
                    .execute(&mut *tx)
                    .await?;
            }
            Write::Entry(id, e) => {
                let name = match &e.author {
                    Author::Agent { name } => Some(name.clone()),
                    _ => None,
                };
                let notice = e.notice.as_ref().map(serde_json::to_string).transpose()?;
                let speech = e.speech.as_ref().map(serde_json::to_string).transpose()?;
                sqlx::query(
                    "INSERT INTO session_messages (session_id, seq, at, author_role, author_name, text, client_id, notice, speech) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (session_id, seq) DO NOTHING",
                )
                .bind(id.to_string())
                .bind(e.seq as i64)
                .bind(unix_ms(e.at))
                .bind(e.author.role())
                .bind(name)
                .bind(&e.text)
                .bind(e.client_id.clone())
                .bind(notice)
                .bind(speech)
                .execute(&mut *tx)
                .await?;
            }
            Write::Call(id, call) => {
                sqlx::query(
                    "INSERT INTO calls (session_id, source, external_id, trunk, from_party, to_party, codec, hangup_cause, streams) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (session_id) DO UPDATE SET \
                     hangup_cause = excluded.hangup_cause, streams = excluded.streams, codec = excluded.codec",
                )
                .bind(id.to_string())
                .bind(&call.source)
                .bind(&call.external_id)
                .bind(&call.trunk)
                .bind(serde_json::to_string(&call.from)?)
                .bind(serde_json::to_string(&call.to)?)
                .bind(&call.codec)
                .bind(call.hangup_cause.clone())
                .bind(serde_json::to_string(&call.streams)?)
                .execute(&mut *tx)
                .await?;
            }
            Write::Alert(alert) => rules::insert_alert(&mut tx, alert).await?,
            Write::Ended(card, holds) => {
                sqlx::query(
                    "UPDATE sessions SET state = 'ended', ended_at = $2, end_reason = $3, message_count = $4, \
                     last_message = $5, last_message_at = $6, holder = $7, sentiment = $8, tags = $9, priority = $10, \
                     assignee = $11, team = $12, sla = $13, agent_id = $14, desk_id = $15, department_id = $16 WHERE id = $1",
                )
                .bind(card.session_id.to_string())
                .bind(card.ended_at.map(unix_ms))
                .bind(card.end_reason.map(|r| r.as_str()))
                .bind(card.message_count as i64)
                .bind(card.last_message.clone())
                .bind(card.last_message_at.map(unix_ms))
                .bind(serde_json::to_string(&card.holder)?)
                .bind(card.sentiment.map(f64::from))
                .bind(serde_json::to_string(&card.tags)?)
                .bind(card.priority.clone())
                .bind(card.assignee.clone())
                .bind(card.team.clone())
                .bind(card.sla.as_ref().map(serde_json::to_string).transpose()?)
                .bind(card.placement.agent_id.clone())
                .bind(card.placement.desk_id.clone())
                .bind(card.placement.department_id.clone())
                .execute(&mut *tx)
                .await?;
                for (idx, hold) in holds.iter().enumerate() {
                    sqlx::query(
                        "INSERT INTO session_holds (session_id, idx, holder, from_at, until_at) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (session_id, idx) DO NOTHING",
                    )
                    .bind(card.session_id.to_string())
                    .bind(idx as i64)
                    .bind(serde_json::to_string(&hold.holder)?)
                    .bind(unix_ms(hold.from))
                    .bind(hold.until.map(unix_ms))
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
    }
    tx.commit().await?;
    metrics::histogram!(crate::metrics::STORE_COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
    Ok(())
}

fn card_from_row(row: &AnyRow) -> Result<Card, StoreError> {
    let id: String = row.try_get("id")?;
    let channel = channel_from_str(&row.try_get::<String, _>("channel")?)?;
    let end_reason = row
        .try_get::<Option<String>, _>("end_reason")?
        .map(|r| serde_json::from_value::<EndReason>(serde_json::Value::String(r)))
        .transpose()?;
    let card = Card {
        session_id: id.parse().map_err(|_| StoreError::Value(format!("session id {id:?}")))?,
        tenant: row.try_get("tenant")?,
        site: row.try_get("site")?,
        channel,
        state: row.try_get("state")?,
        started_at: from_unix_ms(row.try_get("started_at")?),
        duration_secs: 0,
        message_count: row.try_get::<i64, _>("message_count")? as u64,
        last_message: row.try_get("last_message")?,
        last_message_at: row.try_get::<Option<i64>, _>("last_message_at")?.map(from_unix_ms),
        country: row.try_get("country")?,
        device: row.try_get("device")?,
        holder: serde_json::from_str::<Holder>(&row.try_get::<String, _>("holder")?)?,
        visitor_online: false,
        sentiment: row.try_get::<Option<f64>, _>("sentiment")?.map(|s| s as f32),
        ended_at: row.try_get::<Option<i64>, _>("ended_at")?.map(from_unix_ms),
        end_reason,
        streams: Vec::new(),
        tags: row
            .try_get::<Option<String>, _>("tags")?
            .map(|t| serde_json::from_str(&t))
            .transpose()?
            .unwrap_or_default(),
        priority: row.try_get("priority")?,
        assignee: row.try_get("assignee")?,
        team: row.try_get("team")?,
        bot_muted: false,
        on_hold: false,
        sla: row.try_get::<Option<String>, _>("sla")?.map(|s| serde_json::from_str(&s)).transpose()?,
        placement: crate::org::Placement {
            agent_id: row.try_get("agent_id")?,
            desk_id: row.try_get("desk_id")?,
            department_id: row.try_get("department_id")?,
            ..Default::default()
        },
    };
    Ok(card.at(time::OffsetDateTime::now_utc()))
}

fn channel_from_str(channel: &str) -> Result<Channel, StoreError> {
    match channel {
        "chat" => Ok(Channel::Chat),
        "voice" => Ok(Channel::Voice),
        other => Err(StoreError::Value(format!("channel {other:?}"))),
    }
}

fn entry_from_row(row: &AnyRow) -> Result<Entry, StoreError> {
    let author = match row.try_get::<String, _>("author_role")?.as_str() {
        "visitor" => Author::Visitor,
        "bot" => Author::Bot,
        "agent" => Author::Agent { name: row.try_get::<Option<String>, _>("author_name")?.unwrap_or_default() },
        "system" => Author::System,
        "customer" => Author::Customer,
        other => return Err(StoreError::Value(format!("author role {other:?}"))),
    };
    Ok(Entry {
        seq: row.try_get::<i64, _>("seq")? as u64,
        at: from_unix_ms(row.try_get("at")?),
        author,
        text: row.try_get("text")?,
        client_id: row.try_get("client_id")?,
        notice: row.try_get::<Option<String>, _>("notice")?.map(|n| serde_json::from_str::<Notice>(&n)).transpose()?,
        speech: row.try_get::<Option<String>, _>("speech")?.map(|s| serde_json::from_str(&s)).transpose()?,
    })
}
