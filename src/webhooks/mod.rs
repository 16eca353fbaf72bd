//! Webhooks for finished sessions: every finished call and chat flows into the customer's own
//! systems as one signed POST per session to each of the tenant's endpoints. The finalize stage
//! queues the deliveries in the database (the outbox, [`crate::store::enqueue`]) in the same
//! transaction that stores the analysis, so a delivery is queued exactly when a session is
//! finalized and survives restarts; the delivery task sends them, retrying with exponential
//! backoff for at least a day, and logs every attempt for `GET /v1/webhooks/{id}/deliveries`.
//!
//! - [`payload`]: the JSON body, built from the stored session record.
//! - [`sign`]: the `Hark-Signature` header (HMAC-SHA256 over timestamp and body).
//! - [`backoff`]: the retry schedule and what an answer means for a delivery.
//! - [`delivery`]: the task that claims due deliveries and sends them.

pub mod backoff;
pub mod delivery;
pub mod payload;
pub mod sign;

pub use delivery::Webhooks;
