//! The per-destination circuit breaker, as pure functions over `Health`.
//!
//! After `threshold` consecutive retryable failures a destination pauses: its
//! waiting deliveries are not attempted (they spend no retries) and one probe
//! delivery is tried at a backoff that doubles up to `probe_max`. The first
//! success — or any answer that shows the target is reachable — resumes it.

use chrono::{DateTime, Duration, Utc};
use ferry_core::destination::Health;
use ferry_core::retry::next_probe_backoff;

#[derive(Debug, Clone, Copy)]
pub struct Breaker {
    pub threshold: u32,
    pub probe_initial_ms: u64,
    pub probe_max_ms: u64,
}

/// What a result did to the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    None,
    Paused,
    Resumed,
}

impl Breaker {
    pub fn is_paused(health: &Health) -> bool {
        health.next_probe_at.is_some()
    }

    pub fn probe_due(health: &Health, now: DateTime<Utc>) -> bool {
        health.next_probe_at.is_some_and(|at| at <= now)
    }

    /// A delivered attempt.
    pub fn on_success(&self, h: &mut Health, now: DateTime<Utc>) -> Change {
        h.success_count += 1;
        h.last_success_at = Some(now);
        self.reachable(h)
    }

    /// A permanent failure: the target answered, so it is reachable.
    pub fn on_permanent(&self, h: &mut Health, now: DateTime<Utc>, error: &str) -> Change {
        h.failure_count += 1;
        h.last_failure_at = Some(now);
        h.last_error = Some(error.to_owned());
        self.reachable(h)
    }

    /// A retryable failure (outage, timeout, 5xx …).
    pub fn on_retryable(
        &self,
        h: &mut Health,
        now: DateTime<Utc>,
        error: &str,
        probe: bool,
    ) -> Change {
        h.failure_count += 1;
        h.last_failure_at = Some(now);
        h.last_error = Some(error.to_owned());
        h.consecutive_failures = h.consecutive_failures.saturating_add(1);
        if Self::is_paused(h) {
            if probe {
                h.probe_backoff_ms = next_probe_backoff(
                    h.probe_backoff_ms,
                    self.probe_initial_ms,
                    self.probe_max_ms,
                );
                h.next_probe_at = Some(now + Duration::milliseconds(h.probe_backoff_ms as i64));
            }
            Change::None
        } else if h.consecutive_failures >= self.threshold {
            h.probe_backoff_ms = self.probe_initial_ms;
            h.next_probe_at = Some(now + Duration::milliseconds(h.probe_backoff_ms as i64));
            Change::Paused
        } else {
            Change::None
        }
    }

    fn reachable(&self, h: &mut Health) -> Change {
        h.consecutive_failures = 0;
        if Self::is_paused(h) {
            h.next_probe_at = None;
            h.probe_backoff_ms = 0;
            Change::Resumed
        } else {
            Change::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Breaker = Breaker {
        threshold: 3,
        probe_initial_ms: 1_000,
        probe_max_ms: 4_000,
    };

    #[test]
    fn pauses_at_threshold_probes_with_capped_backoff_and_resumes() {
        let now = Utc::now();
        let mut h = Health::default();
        assert_eq!(B.on_retryable(&mut h, now, "e", false), Change::None);
        assert_eq!(B.on_retryable(&mut h, now, "e", false), Change::None);
        assert_eq!(B.on_retryable(&mut h, now, "e", false), Change::Paused);
        assert_eq!(h.next_probe_at, Some(now + Duration::seconds(1)));
        assert!(!Breaker::probe_due(&h, now));
        assert!(Breaker::probe_due(&h, now + Duration::seconds(1)));
        // Failures of deliveries already in flight do not move the probe.
        B.on_retryable(&mut h, now, "e", false);
        assert_eq!(h.next_probe_at, Some(now + Duration::seconds(1)));
        for expected in [2, 4, 4] {
            B.on_retryable(&mut h, now, "e", true);
            assert_eq!(h.next_probe_at, Some(now + Duration::seconds(expected)));
        }
        assert_eq!(B.on_success(&mut h, now), Change::Resumed);
        assert_eq!(
            (h.consecutive_failures, h.next_probe_at, h.probe_backoff_ms),
            (0, None, 0)
        );
    }

    #[test]
    fn a_permanent_answer_shows_the_target_is_reachable() {
        let now = Utc::now();
        let mut h = Health::default();
        for _ in 0..3 {
            B.on_retryable(&mut h, now, "e", false);
        }
        assert_eq!(B.on_permanent(&mut h, now, "HTTP 400"), Change::Resumed);
        assert_eq!(h.failure_count, 4);
    }
}
