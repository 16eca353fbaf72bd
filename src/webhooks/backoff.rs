//! What an attempt's answer means for a delivery: delivered (2xx), the endpoint gone (410), or a
//! retry after base × 2^(attempt−1), capped, with jitter, until the give-up deadline counted from
//! when the delivery was queued — the last attempt falls on the deadline itself, so a receiver
//! is tried for the whole window. Pure: times in, the decision out.

use std::time::Duration;

/// Largest share of a delay that jitter takes off (deliveries that failed together spread out
/// instead of retrying in lockstep).
const JITTER: f64 = 0.2;

/// The retry schedule (settings `webhooks.retry_base_secs`, `retry_max_secs`,
/// `give_up_after_hours`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    pub base: Duration,
    pub max: Duration,
    pub give_up_after: Duration,
}

/// What becomes of a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A 2xx answer.
    Delivered,
    /// Tried again at this time (Unix ms).
    Retry { at_ms: i64 },
    /// Past the give-up deadline: no further attempt.
    Failed,
    /// 410 Gone: the receiver says the endpoint no longer exists; hark deactivates it.
    Gone,
}

impl Schedule {
    /// The delay after `failed` failed attempts (1 or more), before jitter: base × 2^(failed−1),
    /// at most `max`.
    pub fn delay(&self, failed: u32) -> Duration {
        let factor = 2f64.powi(failed.saturating_sub(1).min(64) as i32);
        Duration::from_secs_f64((self.base.as_secs_f64() * factor).min(self.max.as_secs_f64()))
    }

    /// When to try again after the `failed`-th failed attempt, made at `now_ms`, of a delivery
    /// queued at `queued_ms`; `jitter` in [0, 1) takes up to a fifth off the delay. `None` once
    /// the deadline is reached.
    pub fn next_attempt(&self, failed: u32, queued_ms: i64, now_ms: i64, jitter: f64) -> Option<i64> {
        let deadline = queued_ms.saturating_add(self.give_up_after.as_millis().min(i64::MAX as u128) as i64);
        if now_ms >= deadline {
            return None;
        }
        let delay = self.delay(failed).as_secs_f64() * (1.0 - JITTER * jitter.clamp(0.0, 1.0));
        Some(now_ms.saturating_add((delay * 1000.0) as i64).min(deadline))
    }

    /// The verdict on attempt number `attempt` answered with `status` (`None`: no answer — a
    /// refused connection, a timeout).
    pub fn verdict(&self, status: Option<u16>, attempt: u32, queued_ms: i64, now_ms: i64, jitter: f64) -> Verdict {
        match status {
            Some(200..=299) => Verdict::Delivered,
            Some(410) => Verdict::Gone,
            _ => match self.next_attempt(attempt, queued_ms, now_ms, jitter) {
                Some(at_ms) => Verdict::Retry { at_ms },
                None => Verdict::Failed,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR_MS: i64 = 3_600_000;

    fn defaults(give_up_hours: u64) -> Schedule {
        Schedule {
            base: Duration::from_secs(30),
            max: Duration::from_secs(3600),
            give_up_after: Duration::from_secs(give_up_hours * 3600),
        }
    }

    #[test]
    fn delays_double_from_the_base_up_to_the_cap() {
        let s = defaults(72);
        let secs: Vec<u64> = (1..=9).map(|n| s.delay(n).as_secs()).collect();
        assert_eq!(secs, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(s.delay(10_000), Duration::from_secs(3600), "no overflow far out");
    }

    #[test]
    fn jitter_only_shortens_and_by_at_most_a_fifth() {
        let s = defaults(72);
        assert_eq!(s.next_attempt(1, 0, 0, 0.0), Some(30_000));
        assert_eq!(s.next_attempt(1, 0, 0, 0.999_999), Some(24_000));
        assert_eq!(s.next_attempt(3, 0, 1_000, 0.5), Some(1_000 + 108_000));
    }

    /// Every attempt failing at once: the times of all attempts until the give-up.
    fn attempts_until_failed(s: &Schedule, jitter: f64) -> Vec<i64> {
        let mut at = vec![0];
        loop {
            match s.verdict(Some(503), at.len() as u32, 0, *at.last().unwrap(), jitter) {
                Verdict::Retry { at_ms } => at.push(at_ms),
                Verdict::Failed => return at,
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_failing_receiver_is_tried_until_the_deadline_and_then_given_up() {
        for give_up in [24, 72] {
            for jitter in [0.0, 0.999] {
                let at = attempts_until_failed(&defaults(give_up), jitter);
                let last = *at.last().unwrap();
                assert_eq!(last, give_up as i64 * HOUR_MS, "the last attempt is on the deadline");
                assert!(last >= 24 * HOUR_MS);
                assert!(at.windows(2).all(|w| w[1] > w[0] && w[1] - w[0] <= HOUR_MS), "gaps within the cap");
                // About one attempt an hour once capped, plus the doubling ones before.
                let expected = give_up as usize + 8;
                assert!(at.len().abs_diff(expected) <= (give_up as usize) / 4 + 2, "{} attempts", at.len());
            }
        }
    }

    #[test]
    fn answers_decide_the_verdict() {
        let s = defaults(72);
        assert_eq!(s.verdict(Some(200), 1, 0, 0, 0.0), Verdict::Delivered);
        assert_eq!(s.verdict(Some(204), 5, 0, 0, 0.0), Verdict::Delivered);
        assert_eq!(s.verdict(Some(410), 1, 0, 0, 0.0), Verdict::Gone);
        assert_eq!(s.verdict(Some(301), 1, 0, 0, 0.0), Verdict::Retry { at_ms: 30_000 });
        assert_eq!(s.verdict(None, 2, 0, 10, 0.0), Verdict::Retry { at_ms: 60_010 });
        assert_eq!(s.verdict(Some(500), 80, 0, 72 * HOUR_MS, 0.0), Verdict::Failed);
    }
}
