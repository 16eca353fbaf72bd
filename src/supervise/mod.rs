//! The supervisor socket `/v1/supervise` (protocol in docs/PROTOCOLS.md): a snapshot of the
//! tenant's live cards then deltas, watching a session's log without the visitor knowing, and
//! taking over, replying, leaving and transferring.
//!
//! - [`protocol`]: the frames a supervisor and hark exchange.
//! - [`socket`]: one supervisor connection.

pub mod protocol;
pub mod socket;
