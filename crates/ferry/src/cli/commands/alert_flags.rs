//! The alert-setting flags `ferry orgs update` and `ferry destinations
//! alerts` share. The API replaces `alerts` whole, so the flags change the
//! settings read from the server: each of the three parts (`alert_after`,
//! `disable_after`, `debounce_s`) a flag names is replaced, the others kept.

use ferry_client::usage;
use serde_json::{Map, Value, json};

use crate::cli::args::parse_seconds;

#[derive(Debug, Clone, Default, PartialEq, clap::Args)]
pub struct AlertFlags {
    /// Failing after N failed attempts in a row.
    #[arg(long, value_name = "N")]
    pub alert_after_failures: Option<u32>,
    /// Failing when PERCENT of at least MIN attempts in WINDOW failed, e.g. 50:20:5m.
    #[arg(long, value_name = "PERCENT:MIN:WINDOW", value_parser = parse_rate)]
    pub alert_after_rate: Option<Value>,
    /// Never announce failing.
    #[arg(long, conflicts_with_all = ["alert_after_failures", "alert_after_rate"])]
    pub never_alert: bool,
    /// Disable after failing this long, e.g. 5d (seconds or 15m, 2h, 5d).
    #[arg(long, value_name = "DURATION", value_parser = parse_seconds)]
    pub disable_after: Option<u64>,
    /// Disable after N failed attempts in a row.
    #[arg(long, value_name = "N")]
    pub disable_after_failures: Option<u32>,
    /// Never disable automatically.
    #[arg(long, conflicts_with_all = ["disable_after", "disable_after_failures"])]
    pub never_disable: bool,
    /// At most one alert of a kind per destination in this window, e.g. 1h.
    #[arg(long, value_name = "DURATION", value_parser = parse_seconds)]
    pub alert_debounce: Option<u64>,
    /// Slow when the p99 of its recent attempts takes longer than MS.
    #[arg(long, value_name = "MS")]
    pub slow_after_ms: Option<u64>,
    /// Drop every setting here: take the organization's (or the defaults).
    #[arg(long, conflicts_with_all = [
        "alert_after_failures", "alert_after_rate", "never_alert", "disable_after",
        "disable_after_failures", "never_disable", "alert_debounce", "slow_after_ms"
    ])]
    pub default_alerts: bool,
}

/// The flag names, for argument groups.
pub const FLAG_IDS: [&str; 9] = [
    "slow_after_ms",
    "alert_after_failures",
    "alert_after_rate",
    "never_alert",
    "disable_after",
    "disable_after_failures",
    "never_disable",
    "alert_debounce",
    "default_alerts",
];

fn parse_rate(raw: &str) -> Result<Value, String> {
    let invalid = || format!("expected PERCENT:MIN_ATTEMPTS:WINDOW like 50:20:5m; got {raw:?}");
    let parts: Vec<&str> = raw.trim().trim_end_matches('%').split(':').collect();
    let [percent, min, window] = parts[..] else {
        return Err(invalid());
    };
    let percent: u8 = percent
        .trim_end_matches('%')
        .parse()
        .map_err(|_| invalid())?;
    let min: u32 = min.parse().map_err(|_| invalid())?;
    let window = parse_seconds(window)?;
    Ok(json!({"percent": percent, "min_attempts": min, "window_s": window}))
}

impl AlertFlags {
    /// Whether any alert flag was given.
    pub fn given(&self) -> bool {
        *self != Self::default()
    }

    /// The settings with the flags applied over `current`; `None` when no
    /// flag was given.
    pub fn apply(&self, current: &Value) -> anyhow::Result<Option<Value>> {
        if !self.given() {
            return Ok(None);
        }
        if self.default_alerts {
            return Ok(Some(json!({})));
        }
        let mut settings = match current {
            Value::Object(map) => map.clone(),
            Value::Null => Map::new(),
            other => {
                return Err(usage(format!(
                    "the server's alert settings are not an object: {other}"
                )));
            }
        };
        if self.never_alert
            || self.alert_after_failures.is_some()
            || self.alert_after_rate.is_some()
        {
            let mut part = Map::new();
            if let Some(n) = self.alert_after_failures {
                part.insert("consecutive_failures".into(), json!(n));
            }
            if let Some(rate) = &self.alert_after_rate {
                part.insert("failure_rate".into(), rate.clone());
            }
            settings.insert("alert_after".into(), Value::Object(part));
        }
        if self.never_disable
            || self.disable_after.is_some()
            || self.disable_after_failures.is_some()
        {
            let mut part = Map::new();
            if let Some(s) = self.disable_after {
                part.insert("failing_for_s".into(), json!(s));
            }
            if let Some(n) = self.disable_after_failures {
                part.insert("consecutive_failures".into(), json!(n));
            }
            settings.insert("disable_after".into(), Value::Object(part));
        }
        if let Some(s) = self.alert_debounce {
            settings.insert("debounce_s".into(), json!(s));
        }
        if let Some(ms) = self.slow_after_ms {
            settings.insert("slow_after_ms".into(), json!(ms));
        }
        Ok(Some(Value::Object(settings)))
    }
}

/// The settings in one line: `failing after 10 in a row or 50% of 20 in
/// 300s; disabled after 432000s failing; debounce 3600s`, `defaults` for none.
pub fn describe(alerts: &Value) -> String {
    let Some(map) = alerts.as_object().filter(|m| !m.is_empty()) else {
        return "defaults".to_owned();
    };
    let mut parts = Vec::new();
    if let Some(after) = map.get("alert_after") {
        let mut when = Vec::new();
        if let Some(n) = after.get("consecutive_failures") {
            when.push(format!("{n} in a row"));
        }
        if let Some(r) = after.get("failure_rate") {
            when.push(format!(
                "{}% of {} in {}s",
                r["percent"], r["min_attempts"], r["window_s"]
            ));
        }
        parts.push(if when.is_empty() {
            "never failing".to_owned()
        } else {
            format!("failing after {}", when.join(" or "))
        });
    }
    if let Some(disable) = map.get("disable_after") {
        let mut when = Vec::new();
        if let Some(s) = disable.get("failing_for_s") {
            when.push(format!("{s}s failing"));
        }
        if let Some(n) = disable.get("consecutive_failures") {
            when.push(format!("{n} in a row"));
        }
        parts.push(if when.is_empty() {
            "never disabled".to_owned()
        } else {
            format!("disabled after {}", when.join(" or "))
        });
    }
    if let Some(s) = map.get("debounce_s") {
        parts.push(format!("debounce {s}s"));
    }
    if let Some(ms) = map.get("slow_after_ms") {
        parts.push(format!("slow after {ms} ms"));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_replace_the_parts_they_name_and_keep_the_rest() {
        let current = json!({"alert_after": {"consecutive_failures": 3}, "debounce_s": 60});
        let flags = AlertFlags {
            disable_after: Some(432_000),
            alert_after_rate: Some(parse_rate("50%:20:5m").unwrap()),
            ..AlertFlags::default()
        };
        assert_eq!(
            flags.apply(&current).unwrap(),
            Some(json!({
                "alert_after": {"failure_rate": {"percent": 50, "min_attempts": 20, "window_s": 300}},
                "disable_after": {"failing_for_s": 432000},
                "debounce_s": 60
            }))
        );
        let never = AlertFlags {
            never_disable: true,
            ..AlertFlags::default()
        };
        assert_eq!(
            never.apply(&Value::Null).unwrap(),
            Some(json!({"disable_after": {}}))
        );
        assert_eq!(AlertFlags::default().apply(&current).unwrap(), None);
        assert!(parse_rate("50:20").is_err());
        assert_eq!(
            describe(&json!({"disable_after": {}, "debounce_s": 60})),
            "never disabled; debounce 60s"
        );
        assert_eq!(describe(&json!({})), "defaults");
    }
}
