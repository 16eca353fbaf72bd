//! The one clock: every component takes time from here, so tests can use a manual clock
//! and pure cores receive time as an input instead of reading it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// A point in time as both a monotonic instant (for deadlines) and a wall-clock time (for stamps).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    pub mono: Instant,
    pub wall: OffsetDateTime,
}

impl Now {
    /// The same point moved forward by `d` on both clocks.
    pub fn plus(self, d: Duration) -> Now {
        Now { mono: self.mono + d, wall: self.wall + d }
    }
}

/// The clock handle passed around the server.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    #[default]
    System,
    /// A clock that only moves when a test calls [`Clock::advance`].
    Manual(Arc<Mutex<Now>>),
}

impl Clock {
    pub fn manual(start: Now) -> Clock {
        Clock::Manual(Arc::new(Mutex::new(start)))
    }

    pub fn now(&self) -> Now {
        match self {
            Clock::System => Now { mono: Instant::now(), wall: OffsetDateTime::now_utc() },
            Clock::Manual(now) => *now.lock().expect("clock lock"),
        }
    }

    /// Moves a manual clock forward; a system clock ignores it.
    pub fn advance(&self, d: Duration) {
        if let Clock::Manual(now) = self {
            let mut now = now.lock().expect("clock lock");
            *now = now.plus(d);
        }
    }
}

/// Milliseconds since the Unix epoch, the form times take in the database.
pub fn unix_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The inverse of [`unix_ms`].
pub fn from_unix_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
