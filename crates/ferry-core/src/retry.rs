//! Retry policy and backoff math: what happens after a failed attempt.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::FieldError;

/// A destination's retry policy. Defaults: 5 retries, first after 1 s, ×2,
/// capped at one hour.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub initial_backoff_ms: u64,
    pub multiplier: f64,
    pub max_backoff_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 5,
            initial_backoff_ms: 1_000,
            multiplier: 2.0,
            max_backoff_ms: 3_600_000,
        }
    }
}

/// Upper bounds accepted for a policy.
const MAX_RETRIES: u32 = 100;
const MAX_BACKOFF_MS: u64 = 7 * 24 * 3_600_000;

/// Jitter: each delay is scaled by a factor in `[1 - JITTER, 1]`.
pub const JITTER: f64 = 0.2;

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NextStep {
    RetryAfter(Duration),
    GiveUp,
}

impl RetryPolicy {
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.max_retries > MAX_RETRIES {
            errors.push(FieldError::new(
                "retry.max_retries",
                format!("must be at most {MAX_RETRIES}"),
            ));
        }
        if self.initial_backoff_ms == 0 || self.initial_backoff_ms > MAX_BACKOFF_MS {
            errors.push(FieldError::new(
                "retry.initial_backoff_ms",
                format!("must be between 1 and {MAX_BACKOFF_MS}"),
            ));
        }
        if !(self.multiplier.is_finite() && (1.0..=10.0).contains(&self.multiplier)) {
            errors.push(FieldError::new(
                "retry.multiplier",
                "must be between 1.0 and 10.0",
            ));
        }
        if self.max_backoff_ms < self.initial_backoff_ms || self.max_backoff_ms > MAX_BACKOFF_MS {
            errors.push(FieldError::new(
                "retry.max_backoff_ms",
                format!("must be between initial_backoff_ms and {MAX_BACKOFF_MS}"),
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The delay before retry number `retry` (1-based), without jitter:
    /// `initial × multiplier^(retry-1)`, capped at `max_backoff_ms`.
    pub fn base_delay(&self, retry: u32) -> Duration {
        let exp = retry.saturating_sub(1).min(1_000) as i32;
        let ms = self.initial_backoff_ms as f64 * self.multiplier.powi(exp);
        let capped = if ms.is_finite() {
            ms.min(self.max_backoff_ms as f64)
        } else {
            self.max_backoff_ms as f64
        };
        Duration::from_millis(capped as u64)
    }

    /// Decides the next step after the `failures`-th counted failure.
    /// `jitter` is a uniform sample in `[0, 1)`; `retry_after` is the
    /// target's own request, honoured but capped at `max_backoff_ms`.
    pub fn next_step(&self, failures: u32, retry_after: Option<Duration>, jitter: f64) -> NextStep {
        if failures > self.max_retries {
            return NextStep::GiveUp;
        }
        let cap = Duration::from_millis(self.max_backoff_ms);
        let delay = match retry_after {
            Some(asked) => asked.min(cap),
            None => self
                .base_delay(failures)
                .mul_f64(1.0 - JITTER * jitter.clamp(0.0, 1.0)),
        };
        NextStep::RetryAfter(delay)
    }
}

/// Backoff of the breaker's probe: doubles from `initial` up to `cap`.
pub fn next_probe_backoff(current_ms: u64, initial_ms: u64, cap_ms: u64) -> u64 {
    current_ms.saturating_mul(2).max(initial_ms).min(cap_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn defaults_are_one_second_doubling_five_retries() {
        let p = RetryPolicy::default();
        assert_eq!(p.base_delay(1), Duration::from_secs(1));
        assert_eq!(p.base_delay(2), Duration::from_secs(2));
        assert_eq!(p.base_delay(5), Duration::from_secs(16));
        assert!(matches!(p.next_step(5, None, 0.0), NextStep::RetryAfter(_)));
        assert_eq!(p.next_step(6, None, 0.0), NextStep::GiveUp);
    }

    #[test]
    fn retry_after_is_honoured_but_capped() {
        let p = RetryPolicy {
            max_backoff_ms: 10_000,
            ..RetryPolicy::default()
        };
        assert_eq!(
            p.next_step(1, Some(Duration::from_secs(3)), 0.5),
            NextStep::RetryAfter(Duration::from_secs(3))
        );
        assert_eq!(
            p.next_step(1, Some(Duration::from_secs(99)), 0.5),
            NextStep::RetryAfter(Duration::from_secs(10))
        );
    }

    #[test]
    fn invalid_policies_name_their_fields() {
        let p = RetryPolicy {
            multiplier: 0.5,
            initial_backoff_ms: 0,
            ..RetryPolicy::default()
        };
        let fields: Vec<_> = p
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["retry.initial_backoff_ms", "retry.multiplier"]);
    }

    proptest! {
        #[test]
        fn delays_grow_monotonically_and_never_exceed_the_cap(
            initial in 1u64..100_000, mult in 1.0f64..10.0, cap_extra in 0u64..10_000_000,
            retry in 1u32..200, jitter in 0.0f64..1.0,
        ) {
            let p = RetryPolicy { max_retries: 100, initial_backoff_ms: initial, multiplier: mult, max_backoff_ms: initial + cap_extra };
            prop_assert!(p.base_delay(retry) <= p.base_delay(retry + 1));
            prop_assert!(p.base_delay(retry) <= Duration::from_millis(p.max_backoff_ms));
            if let NextStep::RetryAfter(d) = p.next_step(retry.min(100), None, jitter) {
                prop_assert!(d <= p.base_delay(retry.min(100)));
                prop_assert!(d >= p.base_delay(retry.min(100)).mul_f64(1.0 - JITTER) - Duration::from_millis(1));
            }
        }

        #[test]
        fn probe_backoff_stays_within_bounds(current in 0u64..1_000_000, initial in 1u64..10_000, cap in 10_000u64..400_000) {
            let next = next_probe_backoff(current, initial, cap);
            prop_assert!(next <= cap);
            prop_assert!(next >= initial.min(cap));
            prop_assert!(next >= current.min(cap));
        }
    }
}
