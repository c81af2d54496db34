//! Alert settings: when a destination counts as *failing* (an alert), when
//! it is disabled for good, and how often the same alert may repeat. An
//! organization sets them for all its destinations; a destination may
//! override any of their parts. What is not set anywhere takes the
//! defaults: failing after 10 failed attempts in a row, or half of at least
//! 20 attempts in 5 minutes; disabled after 5 days of failing; one alert of
//! a kind per destination per hour; slow when the p99 of its recent attempts
//! passes 5 s.

use serde::{Deserialize, Serialize};

use crate::FieldError;

/// Failing after this many failed attempts in a row, by default.
pub const DEFAULT_FAILING_AFTER: u32 = 10;
/// Disabled after failing for this long (5 days), by default.
pub const DEFAULT_DISABLE_AFTER_S: u64 = 5 * 86_400;
/// At most one alert of a kind per destination in this window, by default.
pub const DEFAULT_DEBOUNCE_S: u64 = 3_600;
/// Slow when the p99 of its recent attempts takes longer, by default.
pub const DEFAULT_SLOW_AFTER_MS: u64 = 5_000;
const MAX_SLOW_AFTER_MS: u64 = 600_000;
const MAX_WINDOW_S: u64 = 86_400;
const MAX_DURATION_S: u64 = 365 * 86_400;

/// An organization's alert settings, or a destination's overrides of them:
/// each part left out is taken from the organization, then the defaults.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSettings {
    /// When a destination is failing: either criterion is enough; `{}`
    /// never alerts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_after: Option<AlertAfter>,
    /// When a failing destination is disabled: either criterion is enough;
    /// `{}` never disables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_after: Option<DisableAfter>,
    /// Seconds before the same alert about the same destination may be
    /// sent again (`failing` while it stays failing, `delivery.exhausted`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debounce_s: Option<u64>,
    /// Slow (`ferry.destination.slow`) when the p99 of its recent attempts
    /// takes longer than this many milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_after_ms: Option<u64>,
}

/// The criteria of *failing*.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertAfter {
    /// Failed attempts in a row (retryable or permanent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_failures: Option<u32>,
    /// The share of failed attempts over a recent window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_rate: Option<FailureRate>,
}

/// At least `percent` % of at least `min_attempts` attempts in the last
/// `window_s` seconds failed.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureRate {
    pub percent: u8,
    pub min_attempts: u32,
    pub window_s: u64,
}

/// The criteria of disabling a failing destination.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisableAfter {
    /// Seconds since the first failed attempt with no delivered one since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_for_s: Option<u64>,
    /// Failed attempts in a row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_failures: Option<u32>,
}

/// The settings in force for one destination, every part resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertPolicy {
    pub alert_after: AlertAfter,
    pub disable_after: DisableAfter,
    pub debounce_s: u64,
    pub slow_after_ms: u64,
}

impl Default for AlertPolicy {
    fn default() -> Self {
        AlertSettings::default().resolve()
    }
}

impl AlertSettings {
    /// These settings over `base`: each part set here wins.
    pub fn over(&self, base: &AlertSettings) -> AlertSettings {
        AlertSettings {
            alert_after: self
                .alert_after
                .clone()
                .or_else(|| base.alert_after.clone()),
            disable_after: self
                .disable_after
                .clone()
                .or_else(|| base.disable_after.clone()),
            debounce_s: self.debounce_s.or(base.debounce_s),
            slow_after_ms: self.slow_after_ms.or(base.slow_after_ms),
        }
    }

    /// The policy: what is not set takes the defaults.
    pub fn resolve(&self) -> AlertPolicy {
        AlertPolicy {
            alert_after: self.alert_after.clone().unwrap_or(AlertAfter {
                consecutive_failures: Some(DEFAULT_FAILING_AFTER),
                failure_rate: Some(FailureRate {
                    percent: 50,
                    min_attempts: 20,
                    window_s: 300,
                }),
            }),
            disable_after: self.disable_after.clone().unwrap_or(DisableAfter {
                failing_for_s: Some(DEFAULT_DISABLE_AFTER_S),
                consecutive_failures: None,
            }),
            debounce_s: self.debounce_s.unwrap_or(DEFAULT_DEBOUNCE_S),
            slow_after_ms: self.slow_after_ms.unwrap_or(DEFAULT_SLOW_AFTER_MS),
        }
    }

    /// Every error, each named by its field under `field` (`alerts`).
    pub fn validate(&self, field: &str) -> Vec<FieldError> {
        let mut errors = Vec::new();
        // A value set must be at least 1, and at most `max` when given.
        let mut check = |name: &str, value: Option<u64>, max: Option<u64>| {
            if value.is_some_and(|v| v == 0 || max.is_some_and(|m| v > m)) {
                let message = match max {
                    Some(m) => format!("must be between 1 and {m}"),
                    None => "must be at least 1".to_owned(),
                };
                errors.push(FieldError::new(format!("{field}.{name}"), message));
            }
        };
        let after = self.alert_after.as_ref();
        let rate = after.and_then(|a| a.failure_rate.as_ref());
        let disable = self.disable_after.as_ref();
        let failures = |n: Option<u32>| n.map(u64::from);
        check(
            "alert_after.consecutive_failures",
            failures(after.and_then(|a| a.consecutive_failures)),
            None,
        );
        check(
            "alert_after.failure_rate.percent",
            rate.map(|r| u64::from(r.percent)),
            Some(100),
        );
        check(
            "alert_after.failure_rate.min_attempts",
            failures(rate.map(|r| r.min_attempts)),
            None,
        );
        check(
            "alert_after.failure_rate.window_s",
            rate.map(|r| r.window_s),
            Some(MAX_WINDOW_S),
        );
        check(
            "disable_after.consecutive_failures",
            failures(disable.and_then(|d| d.consecutive_failures)),
            None,
        );
        check(
            "disable_after.failing_for_s",
            disable.and_then(|d| d.failing_for_s),
            Some(MAX_DURATION_S),
        );
        check("debounce_s", self.debounce_s, Some(MAX_DURATION_S));
        check("slow_after_ms", self.slow_after_ms, Some(MAX_SLOW_AFTER_MS));
        errors
    }

    pub fn is_empty(&self) -> bool {
        *self == AlertSettings::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_destination_overrides_whole_parts_and_the_rest_takes_defaults() {
        let org = AlertSettings {
            alert_after: Some(AlertAfter {
                consecutive_failures: Some(3),
                failure_rate: None,
            }),
            disable_after: None,
            debounce_s: Some(60),
            slow_after_ms: None,
        };
        let dest = AlertSettings {
            disable_after: Some(DisableAfter::default()),
            debounce_s: Some(5),
            ..AlertSettings::default()
        };
        let policy = dest.over(&org).resolve();
        assert_eq!(policy.alert_after.consecutive_failures, Some(3));
        assert_eq!(policy.alert_after.failure_rate, None);
        assert_eq!(policy.disable_after, DisableAfter::default());
        assert_eq!(policy.debounce_s, 5);
        let defaults = AlertPolicy::default();
        assert_eq!(
            defaults.disable_after.failing_for_s,
            Some(DEFAULT_DISABLE_AFTER_S)
        );
        assert_eq!(defaults.debounce_s, DEFAULT_DEBOUNCE_S);
    }

    #[test]
    fn every_bad_value_is_named() {
        let s: AlertSettings = serde_json::from_value(serde_json::json!({
            "alert_after": {"consecutive_failures": 0,
                "failure_rate": {"percent": 0, "min_attempts": 0, "window_s": 0}},
            "disable_after": {"failing_for_s": 0, "consecutive_failures": 0},
            "debounce_s": 0, "slow_after_ms": 0
        }))
        .unwrap();
        let fields: Vec<String> = s.validate("alerts").into_iter().map(|e| e.field).collect();
        assert_eq!(fields.len(), 8, "{fields:?}");
        assert!(fields.contains(&"alerts.alert_after.failure_rate.window_s".to_owned()));
        assert!(serde_json::from_str::<AlertSettings>(r#"{"alert_afer": {}}"#).is_err());
    }
}
