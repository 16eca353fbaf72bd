//! Finalize: what happens once to every session after its end is committed. One task takes the
//! ended sessions in turn, reads each back from the store, names its placement, analyses it with
//! its tenant's settings (while the plan's monthly quota lasts), and stores in one transaction
//! what the day after needs: duration, analysis (scores, checklist, tags, category, outcome),
//! the report roll-ups, searchable text and the webhooks. A session whose
//! finalize did not commit (a crash, a stop) is picked up again at the next start, so no
//! finished call is ever missed; committing twice is impossible (`finalized_at` is checked).

use tokio::sync::mpsc;

use crate::analysis::{analyze, Conversation};
use crate::clock::Clock;
use crate::org::Directory;
use crate::session::SessionId;
use crate::store::{quota_left, CallFacts, Finalized, SessionRecord, Store, StoreError};

/// Hands ended sessions to the finalize task.
#[derive(Clone)]
pub struct Finalizer {
    tx: mpsc::UnboundedSender<SessionId>,
}

/// What the finalize task works with.
pub struct FinalizeContext {
    pub store: Store,
    pub directory: Directory,
    pub clock: Clock,
    /// Told after each commit: the session's webhooks are queued.
    pub webhooks: crate::webhooks::Webhooks,
    /// Each tenant's analysis settings.
    pub analysis: crate::analysis::Settings,
    /// The zone reports count days and months in.
    pub zone: jiff::tz::TimeZone,
    /// Calls analysed per tenant and month (0: unlimited); the plan's quota.
    pub monthly_quota: u64,
}

/// Sessions left unfinalized by an earlier run, read per batch at start.
const RECOVERY_BATCH: i64 = 500;

impl Finalizer {
    /// Starts the task; it first finalizes what an earlier run left, then each session handed
    /// to [`Finalizer::ended`], in order.
    pub fn start(ctx: FinalizeContext) -> Finalizer {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(ctx, rx));
        Finalizer { tx }
    }

    /// The session's end is committed: finalize it. (Unbounded: one id per ended session.)
    pub fn ended(&self, id: SessionId) {
        let _ = self.tx.send(id);
    }
}

async fn run(ctx: FinalizeContext, mut rx: mpsc::UnboundedReceiver<SessionId>) {
    loop {
        match ctx.store.unfinalized(RECOVERY_BATCH).await {
            Ok(ids) if ids.is_empty() => break,
            Ok(ids) => {
                tracing::info!(sessions = ids.len(), "finalizing sessions an earlier run left");
                for id in ids {
                    finalize_retrying(&ctx, id).await;
                }
            }
            Err(error) => {
                tracing::error!(%error, "cannot list unfinalized sessions; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
    while let Some(id) = rx.recv().await {
        finalize_retrying(&ctx, id).await;
    }
}

/// Finalizes one session, retrying while the database fails (nothing is dropped).
async fn finalize_retrying(ctx: &FinalizeContext, id: SessionId) {
    let mut backoff = std::time::Duration::from_millis(100);
    loop {
        match finalize(ctx, id).await {
            Ok(()) => return,
            Err(error) => {
                metrics::counter!(crate::metrics::STORE_ERRORS).increment(1);
                tracing::error!(session = %id, %error, "finalize failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(std::time::Duration::from_secs(10));
            }
        }
    }
}

async fn finalize(ctx: &FinalizeContext, id: SessionId) -> Result<(), StoreError> {
    let Some(mut record) = ctx.store.ended_session(id).await? else {
        return Ok(()); // finalized already, or not ended
    };
    record.card.placement = ctx.directory.named(&record.card.tenant, &record.card.placement);
    let duration_ms = duration_ms(&record);
    let conversation = Conversation {
        channel: record.card.channel,
        started_at: record.card.started_at,
        ended_at: record.card.started_at + time::Duration::milliseconds(duration_ms),
        entries: &record.messages,
        end_reason: record.card.end_reason,
    };
    let now = ctx.clock.now().wall;
    let tenant = record.card.tenant.clone();
    let analysed = ctx.store.analyzed_in_month(&tenant, now, &ctx.zone).await?;
    if quota_left(ctx.monthly_quota, analysed) == Some(0) {
        let quota = ctx.monthly_quota;
        record.analysis_skipped = Some(format!("the plan's {quota} analysed calls this month are used up"));
    } else {
        match analyze(&ctx.analysis.for_tenant(&tenant), &conversation) {
            Ok(analysis) => record.analysis = Some(analysis),
            Err(skipped) => record.analysis_skipped = Some(skipped.reason),
        }
    }
    let facts = CallFacts {
        tenant: tenant.clone(),
        session_id: id,
        channel: record.card.channel,
        started_at: record.card.started_at,
        duration_ms,
        placement: record.card.placement.clone(),
        scores: record.analysis.iter().flat_map(|a| &a.scores).map(|s| (s.label.clone(), s.score)).collect(),
        alerts: ctx.store.alert_count(id).await?,
        analyzed: record.analysis.is_some(),
    };
    let finalized = Finalized {
        facts,
        duration_ms,
        search_text: search_text(&record),
        webhook: crate::webhooks::payload::finished_call(&record),
    };
    ctx.store.finalize(&record, &finalized, now, &ctx.zone).await?;
    ctx.webhooks.wake();
    metrics::counter!(crate::metrics::SESSIONS_FINALIZED, "channel" => record.card.channel.as_str()).increment(1);
    Ok(())
}

/// How long the conversation lasted: a call's longest recording (an uploaded call is processed
/// faster or slower than it was spoken), else from start to end.
fn duration_ms(record: &SessionRecord) -> i64 {
    let recorded = record.call.iter().flat_map(|c| &c.streams).map(|s| s.recorded_secs).fold(0.0, f64::max);
    if recorded > 0.0 {
        return (recorded * 1000.0).round() as i64;
    }
    let end = record.card.ended_at.unwrap_or(record.card.started_at);
    ((end - record.card.started_at).whole_milliseconds() as i64).max(0)
}

/// The text full-text search finds the session by: every message and transcript line.
fn search_text(record: &SessionRecord) -> String {
    let lines: Vec<&str> = record.messages.iter().filter(|e| e.notice.is_none()).map(|e| e.text.as_str()).collect();
    lines.join("\n")
}
