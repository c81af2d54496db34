//! Argument parsing shared by the client commands: JSON given inline, as
//! `@file` or as `-` (stdin); `K=V` headers; `--since`/`--until` times
//! (RFC 3339 or a relative `15m`/`2h`/`7d`); and the list filters.

use std::io::Read;

use anyhow::Context as _;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use ferry_client::usage;
use ferry_core::DestinationId;
use serde_json::Value;

/// Delivery states a list can be filtered by.
pub const DELIVERY_STATES: [&str; 6] = [
    "pending",
    "delivering",
    "retrying",
    "delivered",
    "failed",
    "dead",
];

/// JSON from an argument: inline text, `@path` (a file) or `-` (stdin).
pub fn read_json_arg(flag: &str, raw: &str) -> anyhow::Result<Value> {
    read_json_arg_from(flag, raw, &mut std::io::stdin().lock())
}

/// [`read_json_arg`] with the stdin it reads from given (for tests).
pub fn read_json_arg_from(flag: &str, raw: &str, stdin: &mut dyn Read) -> anyhow::Result<Value> {
    let (text, origin) = if raw == "-" {
        let mut text = String::new();
        stdin
            .read_to_string(&mut text)
            .with_context(|| format!("{flag}: cannot read stdin"))?;
        (text, "stdin".to_owned())
    } else if let Some(path) = raw.strip_prefix('@') {
        let text = std::fs::read_to_string(path)
            .map_err(|e| usage(format!("{flag}: cannot read {path}: {e}")))?;
        (text, path.to_owned())
    } else {
        (raw.to_owned(), "the argument".to_owned())
    };
    serde_json::from_str(&text)
        .map_err(|e| usage(format!("{flag}: {origin} is not valid JSON: {e}")))
}

/// A whole request body from `--from-file FILE` (`-`: stdin), which must
/// hold a JSON object.
pub fn read_spec_file(file: &str) -> anyhow::Result<Value> {
    let raw = if file == "-" {
        "-".to_owned()
    } else {
        format!("@{file}")
    };
    let spec = read_json_arg("--from-file", &raw)?;
    if !spec.is_object() {
        return Err(usage("--from-file must hold a JSON object"));
    }
    Ok(spec)
}

/// A `K=V` (or `K: V`) header argument.
pub fn parse_header(raw: &str) -> Result<(String, String), String> {
    let (name, value) = raw
        .split_once('=')
        .or_else(|| raw.split_once(':'))
        .ok_or_else(|| format!("expected NAME=VALUE, got {raw:?}"))?;
    let name = name.trim();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
    {
        return Err(format!("invalid header name {name:?}"));
    }
    Ok((name.to_owned(), value.trim().to_owned()))
}

/// An RFC 3339 time, or a relative one like `30s`, `15m`, `2h`, `7d` (that long ago),
/// normalised to RFC 3339 UTC.
pub fn parse_time(raw: &str) -> Result<String, String> {
    parse_time_at(raw, Utc::now())
}

fn parse_time_at(raw: &str, now: DateTime<Utc>) -> Result<String, String> {
    let raw = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(t
            .with_timezone(&Utc)
            .to_rfc3339_opts(SecondsFormat::AutoSi, true));
    }
    let invalid = || format!("expected an RFC 3339 time or an age like 15m, 2h, 7d; got {raw:?}");
    let age = span(raw).ok_or_else(invalid)?;
    let t = now.checked_sub_signed(age).ok_or_else(invalid)?;
    Ok(t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// A span like `30s`, `15m`, `2h`, `7d`, `1w`.
fn span(raw: &str) -> Option<Duration> {
    let split = raw.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = raw.split_at(split);
    let n: i64 = number.parse().ok()?;
    match unit {
        "s" => Duration::try_seconds(n),
        "m" => Duration::try_minutes(n),
        "h" => Duration::try_hours(n),
        "d" => Duration::try_days(n),
        "w" => Duration::try_weeks(n),
        _ => None,
    }
}

/// A duration in seconds: a number, or a span like `90s`, `15m`, `2h`, `5d`.
pub fn parse_seconds(raw: &str) -> Result<u64, String> {
    let raw = raw.trim();
    raw.parse::<u64>()
        .ok()
        .or_else(|| span(raw).and_then(|d| u64::try_from(d.num_seconds()).ok()))
        .ok_or_else(|| format!("expected seconds or a duration like 15m, 2h, 5d; got {raw:?}"))
}

/// Filters shared by `deliveries list`, `dlq list` and `dlq replay`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Filters {
    /// Only deliveries to this destination.
    #[arg(long, value_name = "DST")]
    pub destination: Option<DestinationId>,
    /// Only events of this type.
    #[arg(long, value_name = "TYPE")]
    pub event_type: Option<String>,
    /// Created at or after (RFC 3339, or an age like 15m, 2h, 7d).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub since: Option<String>,
    /// Created before (RFC 3339, or an age like 15m, 2h, 7d).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub until: Option<String>,
}

impl Filters {
    /// The filters as `(name, value)` pairs with the API's names.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if let Some(d) = &self.destination {
            pairs.push(("destination_id", d.to_string()));
        }
        if let Some(t) = &self.event_type {
            pairs.push(("event_type", t.clone()));
        }
        if let Some(s) = &self.since {
            pairs.push(("since", s.clone()));
        }
        if let Some(u) = &self.until {
            pairs.push(("until", u.clone()));
        }
        pairs
    }

    /// The filters as a JSON object (the body of `POST /v1/dlq/replay`).
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.pairs()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), Value::String(v)))
                .collect(),
        )
    }
}

/// Paging of a list.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Paging {
    /// How many to return (1–1000; the server's default is 50).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: Option<u32>,
    /// Continue after a previous page (its `next cursor`).
    #[arg(long, value_name = "CURSOR")]
    pub cursor: Option<String>,
}

impl Paging {
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if let Some(l) = self.limit {
            pairs.push(("limit", l.to_string()));
        }
        if let Some(c) = &self.cursor {
            pairs.push(("cursor", c.clone()));
        }
        pairs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn no_stdin() -> std::io::Empty {
        std::io::empty()
    }

    #[test]
    fn inline_json_is_parsed() {
        let v = read_json_arg_from("--data", r#"{"a": [1, 2]}"#, &mut no_stdin()).unwrap();
        assert_eq!(v, json!({"a": [1, 2]}));
    }

    #[test]
    fn at_file_reads_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.json");
        std::fs::write(&path, "{\"order\": 42}\n").unwrap();
        let arg = format!("@{}", path.display());
        let v = read_json_arg_from("--data", &arg, &mut no_stdin()).unwrap();
        assert_eq!(v, json!({"order": 42}));
    }

    #[test]
    fn dash_reads_stdin() {
        let mut stdin = std::io::Cursor::new(b"[true, null]".to_vec());
        let v = read_json_arg_from("--data", "-", &mut stdin).unwrap();
        assert_eq!(v, json!([true, null]));
    }

    #[test]
    fn bad_json_and_missing_files_are_usage_errors() {
        let e = read_json_arg_from("--data", "{oops", &mut no_stdin()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("--data: the argument is not valid JSON"),
            "{e}"
        );
        assert!(e.downcast_ref::<ferry_client::UsageError>().is_some());
        let e = read_json_arg_from("--data", "@/nonexistent/x.json", &mut no_stdin()).unwrap_err();
        assert!(
            e.to_string().contains("cannot read /nonexistent/x.json"),
            "{e}"
        );
        let mut stdin = std::io::Cursor::new(b"".to_vec());
        let e = read_json_arg_from("--metadata", "-", &mut stdin).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("--metadata: stdin is not valid JSON"),
            "{e}"
        );
    }

    #[test]
    fn headers_split_on_the_first_separator() {
        assert_eq!(
            parse_header("X-Team=billing=eu").unwrap(),
            ("X-Team".to_owned(), "billing=eu".to_owned())
        );
        assert_eq!(
            parse_header("X-Api: a:b").unwrap(),
            ("X-Api".to_owned(), "a:b".to_owned())
        );
        assert!(parse_header("novalue").is_err());
        assert!(parse_header("bad name=1").is_err());
        assert!(parse_header("=1").is_err());
    }

    #[test]
    fn times_are_rfc3339_or_relative() {
        let now = Utc.with_ymd_and_hms(2026, 11, 2, 12, 0, 0).unwrap();
        assert_eq!(
            parse_time_at("2026-11-01T10:00:00+02:00", now).unwrap(),
            "2026-11-01T08:00:00Z"
        );
        assert_eq!(
            parse_time_at("2026-11-01T08:00:00.250Z", now).unwrap(),
            "2026-11-01T08:00:00.250Z"
        );
        assert_eq!(parse_time_at("90m", now).unwrap(), "2026-11-02T10:30:00Z");
        assert_eq!(parse_time_at("2d", now).unwrap(), "2026-10-31T12:00:00Z");
        assert_eq!(parse_time_at("30s", now).unwrap(), "2026-11-02T11:59:30Z");
        for bad in ["", "yesterday", "5y", "m", "2026-13-01"] {
            assert!(parse_time_at(bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn filters_use_the_api_names() {
        let f = Filters {
            destination: Some(DestinationId::parse("dst_abc").unwrap()),
            event_type: Some("order.*".into()),
            since: None,
            until: Some("2026-11-01T00:00:00Z".into()),
        };
        assert_eq!(
            f.to_json(),
            json!({"destination_id": "dst_abc", "event_type": "order.*", "until": "2026-11-01T00:00:00Z"})
        );
        assert_eq!(Filters::default().to_json(), json!({}));
    }
}
