//! The delivery task: the thin async shell that empties the outbox. It claims due deliveries
//! (`webhooks.concurrency` at a time, each with a lease), POSTs each signed with its endpoint's
//! secret, logs the attempt and settles the row by [`Schedule::verdict`]. It sleeps until the
//! earliest due row, or until [`Webhooks::wake`] (a commit that queued deliveries, a finished
//! attempt), and at start-up finds whatever a previous run left due.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderValue, CONTENT_TYPE};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::{unix_ms, Clock};
use crate::config::WebhooksConfig;
use crate::store::{AttemptResult, ClaimedDelivery, Store};

use super::backoff::{Schedule, Verdict};
use super::sign;

/// Longest sleep with nothing due: rows another hark process queued are found by then.
const POLL: Duration = Duration::from_secs(60);
/// Wait after a database error before trying again.
const ERROR_RETRY: Duration = Duration::from_secs(5);
/// How much longer than one attempt's timeout a claim lasts (time to record the result).
const LEASE_MARGIN: Duration = Duration::from_secs(30);
/// Longest error text kept per attempt.
const MAX_ERROR_CHARS: usize = 500;

/// Handle to the delivery task (clones share it).
#[derive(Clone)]
pub struct Webhooks {
    wake: Arc<Notify>,
    attempts: TaskTracker,
    /// How long [`Webhooks::drain`] waits for attempts in flight.
    grace: Duration,
}

struct Deliverer {
    store: Store,
    http: reqwest::Client,
    clock: Clock,
    schedule: Schedule,
    lease: Duration,
    slots: Arc<Semaphore>,
    wake: Arc<Notify>,
    attempts: TaskTracker,
}

impl Webhooks {
    /// Starts the delivery task; it stops claiming when `shutdown` is cancelled.
    pub fn start(store: Store, settings: &WebhooksConfig, clock: Clock, shutdown: CancellationToken) -> Webhooks {
        let timeout = Duration::from_secs(settings.timeout_secs);
        let http = reqwest::Client::builder()
            .user_agent(concat!("hark/", env!("CARGO_PKG_VERSION")))
            // A redirect is an answer that is not 2xx: following it would turn the POST into a GET.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .build()
            .expect("TLS backend");
        let wake = Arc::new(Notify::new());
        let attempts = TaskTracker::new();
        let deliverer = Deliverer {
            store,
            http,
            clock,
            schedule: Schedule {
                base: Duration::from_secs_f64(settings.retry_base_secs),
                max: Duration::from_secs_f64(settings.retry_max_secs),
                give_up_after: Duration::from_secs(settings.give_up_after_hours * 3600),
            },
            lease: timeout + LEASE_MARGIN,
            slots: Arc::new(Semaphore::new(settings.concurrency)),
            wake: wake.clone(),
            attempts: attempts.clone(),
        };
        tokio::spawn(run(Arc::new(deliverer), shutdown));
        Webhooks { wake, attempts, grace: timeout + Duration::from_secs(5) }
    }

    /// Tells the task that deliveries were queued (call after the commit).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// After shutdown: waits for the attempts in flight to record their results, so a graceful
    /// restart leaves no delivery claimed.
    pub async fn drain(&self) {
        self.attempts.close();
        if tokio::time::timeout(self.grace, self.attempts.wait()).await.is_err() {
            tracing::warn!("webhook attempts still in flight at shutdown are retried after their claim runs out");
        }
    }
}

async fn run(d: Arc<Deliverer>, shutdown: CancellationToken) {
    loop {
        // One free slot at least, then every free one.
        let first = tokio::select! {
            _ = shutdown.cancelled() => return,
            slot = d.slots.clone().acquire_owned() => slot,
        };
        let Ok(first) = first else { return };
        let mut slots = vec![first];
        while let Ok(slot) = d.slots.clone().try_acquire_owned() {
            slots.push(slot);
        }
        let now = unix_ms(d.clock.now().wall);
        let lease = d.lease.as_millis() as i64;
        let wait = match d.store.claim_webhook_deliveries(now, lease, slots.len() as i64).await {
            Ok(claimed) => {
                for (delivery, slot) in claimed.into_iter().zip(slots.drain(..)) {
                    d.attempts.spawn(attempt(d.clone(), delivery, slot));
                }
                drop(slots);
                record_pending(&d.store).await;
                // More due now (all slots were filled): go on at once, which waits for a slot.
                match d.store.next_webhook_due().await {
                    Ok(Some(due)) => Duration::from_millis((due - now).clamp(0, POLL.as_millis() as i64) as u64),
                    Ok(None) => POLL,
                    Err(error) => {
                        tracing::warn!(%error, "webhook outbox unreadable; retrying");
                        ERROR_RETRY
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, "claiming webhook deliveries failed; retrying");
                ERROR_RETRY
            }
        };
        if wait.is_zero() {
            continue;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = d.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

async fn record_pending(store: &Store) {
    match store.pending_webhook_deliveries().await {
        Ok(pending) => metrics::gauge!(crate::metrics::WEBHOOKS_PENDING).set(pending as f64),
        Err(error) => tracing::warn!(%error, "counting pending webhook deliveries failed"),
    }
}

/// One attempt of a claimed delivery; the slot is free again when it returns.
async fn attempt(d: Arc<Deliverer>, delivery: ClaimedDelivery, _slot: OwnedSemaphorePermit) {
    let at = d.clock.now().wall;
    let signature = sign::signature(&delivery.secret, at.unix_timestamp(), delivery.body.as_bytes());
    let started = Instant::now();
    let sent = match HeaderValue::from_str(&delivery.event) {
        Ok(event) => d
            .http
            .post(&delivery.url)
            .header(CONTENT_TYPE, "application/json")
            .header("Hark-Event", event)
            .header("Idempotency-Key", &delivery.id)
            .header(sign::HEADER, signature)
            .body(delivery.body.clone())
            .send()
            .await
            .map(|response| response.status().as_u16())
            .map_err(|error| describe(&error)),
        Err(_) => Err(format!("event {:?} is not a header value", delivery.event)),
    };
    let result = AttemptResult {
        at: unix_ms(at),
        status: sent.as_ref().ok().copied(),
        error: sent.err(),
        duration_ms: started.elapsed().as_millis() as i64,
    };
    let now = unix_ms(d.clock.now().wall);
    let verdict = d.schedule.verdict(result.status, delivery.attempts + 1, delivery.queued_at, now, rand::random());
    match d.store.finish_webhook_attempt(&delivery, &result, verdict).await {
        Ok(true) => {
            let outcome = match verdict {
                Verdict::Delivered => "delivered",
                Verdict::Retry { .. } => "retried",
                Verdict::Failed | Verdict::Gone => "failed",
            };
            metrics::counter!(crate::metrics::WEBHOOK_DELIVERIES, "result" => outcome).increment(1);
            if verdict == Verdict::Gone {
                tracing::warn!(endpoint = %delivery.endpoint_id, tenant = %delivery.tenant,
                    "webhook receiver answered 410 Gone; endpoint deactivated");
            }
        }
        Ok(false) => tracing::warn!(delivery = %delivery.id,
            "webhook delivery settled elsewhere meanwhile (its claim ran out, or its endpoint was deactivated)"),
        Err(error) => {
            tracing::warn!(%error, delivery = %delivery.id, "recording a webhook attempt failed; it is tried again")
        }
    }
    d.wake.notify_one();
}

/// An error without an answer, with its causes ("… : tcp connect error: Connection refused").
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out".into();
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.chars().take(MAX_ERROR_CHARS).collect()
}
