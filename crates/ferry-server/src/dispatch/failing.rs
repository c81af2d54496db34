//! When a destination is *failing*, has *recovered*, or is to be
//! *disabled*: pure functions over its `Health` and a window of recent
//! outcomes, decided after each attempt against the alert policy in force
//! for it (`ferry_core::alerting`).
//!
//! Failing is announced once, then not again while it stays failing until
//! the debounce window has passed (the time of the last announcement is kept
//! in `Health`, so a restart does not announce it again). It recovers when
//! it delivers and the failure criteria no longer hold. The failure counts
//! that lead to disabling count every failed attempt, retryable or
//! permanent, and start again at a delivered one or when an operator enables
//! the destination.

use std::collections::VecDeque;

use chrono::{DateTime, Duration, Utc};
use ferry_core::alerting::{AlertPolicy, FailureRate};
use ferry_core::destination::Health;

/// What one attempt's outcome announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Failing,
    Recovered,
    Disable,
}

/// Attempts and failures of a recent window, in at most `SLOTS` slots.
#[derive(Debug, Default, Clone)]
pub struct RecentOutcomes {
    /// (slot start in seconds, attempts, failures), oldest first.
    slots: VecDeque<(i64, u32, u32)>,
}

const SLOTS: i64 = 60;

impl RecentOutcomes {
    fn record(&mut self, now: DateTime<Utc>, failed: bool, window_s: u64) {
        let width = (window_s as i64 / SLOTS).max(1);
        let slot = now.timestamp() / width * width;
        match self.slots.back_mut() {
            Some((start, attempts, failures)) if *start == slot => {
                *attempts += 1;
                *failures += u32::from(failed);
            }
            _ => self.slots.push_back((slot, 1, u32::from(failed))),
        }
        let oldest = now.timestamp() - window_s as i64;
        while self
            .slots
            .front()
            .is_some_and(|(s, ..)| *s + width <= oldest)
        {
            self.slots.pop_front();
        }
    }

    fn exceeds(&self, rate: &FailureRate) -> bool {
        let (attempts, failures) = self.slots.iter().fold((0u64, 0u64), |(a, f), (_, sa, sf)| {
            (a + u64::from(*sa), f + u64::from(*sf))
        });
        attempts >= u64::from(rate.min_attempts)
            && failures * 100 >= attempts * u64::from(rate.percent)
    }

    pub fn clear(&mut self) {
        self.slots.clear();
    }
}

/// Whether what was last announced at `last` may be announced again at
/// `now`: never announced, or the debounce window has passed.
pub fn may_announce(last: Option<DateTime<Utc>>, now: DateTime<Utc>, debounce_s: u64) -> bool {
    last.is_none_or(|at| now - at >= Duration::seconds(debounce_s as i64))
}

/// Records one attempt's outcome and says what it announces: `Failing`
/// and `Disable` may come together.
pub fn on_attempt(
    policy: &AlertPolicy,
    h: &mut Health,
    recent: &mut RecentOutcomes,
    now: DateTime<Utc>,
    delivered: bool,
) -> Vec<Signal> {
    let rate = policy.alert_after.failure_rate;
    if let Some(rate) = &rate {
        recent.record(now, !delivered, rate.window_s);
    }
    let rate_exceeded = rate.as_ref().is_some_and(|r| recent.exceeds(r));
    if delivered {
        h.failed_in_a_row = 0;
        h.failing_since = None;
        if h.failing_alert_at.is_some() && !rate_exceeded {
            h.failing_alert_at = None;
            return vec![Signal::Recovered];
        }
        return Vec::new();
    }
    h.failed_in_a_row = h.failed_in_a_row.saturating_add(1);
    let since = *h.failing_since.get_or_insert(now);
    let mut signals = Vec::new();
    let failing = policy
        .alert_after
        .consecutive_failures
        .is_some_and(|n| h.failed_in_a_row >= n)
        || rate_exceeded;
    if failing && may_announce(h.failing_alert_at, now, policy.debounce_s) {
        h.failing_alert_at = Some(now);
        signals.push(Signal::Failing);
    }
    let disable = &policy.disable_after;
    if disable
        .consecutive_failures
        .is_some_and(|n| h.failed_in_a_row >= n)
        || disable
            .failing_for_s
            .is_some_and(|s| now - since >= Duration::seconds(s as i64))
    {
        signals.push(Signal::Disable);
    }
    signals
}

#[cfg(test)]
mod tests {
    use ferry_core::alerting::{AlertAfter, AlertSettings, DisableAfter};

    use super::*;

    fn policy(after: u32, disable_after: u32) -> AlertPolicy {
        AlertSettings {
            alert_after: Some(AlertAfter {
                consecutive_failures: Some(after),
                failure_rate: None,
            }),
            disable_after: Some(DisableAfter {
                failing_for_s: Some(600),
                consecutive_failures: Some(disable_after),
            }),
            debounce_s: Some(60),
            slow_after_ms: None,
        }
        .resolve()
    }

    #[test]
    fn failing_once_per_debounce_window_then_recovered_then_disabled() {
        let p = policy(3, 1_000);
        let (mut h, mut r) = (Health::default(), RecentOutcomes::default());
        let t = Utc::now();
        let mut signals = Vec::new();
        for i in 0..100 {
            signals.extend(on_attempt(
                &p,
                &mut h,
                &mut r,
                t + Duration::milliseconds(i * 100),
                false,
            ));
        }
        assert_eq!(signals, [Signal::Failing]);
        assert_eq!(h.failed_in_a_row, 100);
        // Past the window it is announced again, once.
        let later = t + Duration::seconds(70);
        assert_eq!(
            on_attempt(&p, &mut h, &mut r, later, false),
            [Signal::Failing]
        );
        assert!(on_attempt(&p, &mut h, &mut r, later, false).is_empty());
        assert_eq!(
            on_attempt(&p, &mut h, &mut r, later, true),
            [Signal::Recovered]
        );
        assert_eq!(
            (h.failed_in_a_row, h.failing_since, h.failing_alert_at),
            (0, None, None)
        );
        assert!(on_attempt(&p, &mut h, &mut r, later, true).is_empty());
        // Failing for ten minutes disables.
        on_attempt(&p, &mut h, &mut r, later, false);
        assert!(
            on_attempt(&p, &mut h, &mut r, later + Duration::seconds(599), false)
                .iter()
                .all(|s| *s != Signal::Disable)
        );
        assert!(
            on_attempt(&p, &mut h, &mut r, later + Duration::seconds(600), false)
                .contains(&Signal::Disable)
        );
    }

    #[test]
    fn consecutive_failures_disable_and_enabling_starts_them_again() {
        let p = policy(3, 5);
        let (mut h, mut r) = (Health::default(), RecentOutcomes::default());
        let t = Utc::now();
        let signals: Vec<_> = (0..5)
            .flat_map(|_| on_attempt(&p, &mut h, &mut r, t, false))
            .collect();
        assert_eq!(signals, [Signal::Failing, Signal::Disable]);
        h.reset_on_enable();
        assert!(on_attempt(&p, &mut h, &mut r, t, false).is_empty());
        // Still failing after the enable: announced once the window passes.
        assert!(h.failing_alert_at.is_some());
    }

    #[test]
    fn a_failure_rate_over_the_window_is_failing_and_recovers_below_it() {
        let p = AlertSettings {
            alert_after: Some(AlertAfter {
                consecutive_failures: None,
                failure_rate: Some(FailureRate {
                    percent: 50,
                    min_attempts: 20,
                    window_s: 300,
                }),
            }),
            disable_after: Some(DisableAfter::default()),
            debounce_s: None,
            slow_after_ms: None,
        }
        .resolve();
        let (mut h, mut r) = (Health::default(), RecentOutcomes::default());
        let t = Utc::now();
        let mut signals = Vec::new();
        // Alternating: 50% of 20 attempts at the 20th.
        for i in 0..20 {
            signals.extend(on_attempt(
                &p,
                &mut h,
                &mut r,
                t + Duration::seconds(i),
                i % 2 == 0,
            ));
        }
        assert_eq!(signals, [Signal::Failing]);
        // A delivery while the rate still holds does not recover it.
        assert!(on_attempt(&p, &mut h, &mut r, t + Duration::seconds(21), false).is_empty());
        assert!(on_attempt(&p, &mut h, &mut r, t + Duration::seconds(22), false).is_empty());
        assert!(on_attempt(&p, &mut h, &mut r, t + Duration::seconds(23), true).is_empty());
        // Once the failures have left the window, a delivery recovers it.
        let later = t + Duration::seconds(400);
        assert_eq!(
            on_attempt(&p, &mut h, &mut r, later, true),
            [Signal::Recovered]
        );
    }
}
