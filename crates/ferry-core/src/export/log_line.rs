//! A line of Ferry's operational log read back for the `log` export
//! source: the JSON object the server's log writer produced (`timestamp`,
//! `level`, `target`, `message` and the event's fields at the top level).
//! A line that is not such an object (cut short by a crash, edited by
//! hand) is skipped by the reader, never an error.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value as Json};

/// How severe a log line is, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub const ALL: [LogLevel; 5] = [
        LogLevel::Error,
        LogLevel::Warn,
        LogLevel::Info,
        LogLevel::Debug,
        LogLevel::Trace,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }

    /// `error`, `WARN`, … (any case).
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|level| level.as_str().eq_ignore_ascii_case(text))
    }
}

/// One line of the operational log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    pub timestamp: DateTime<Utc>,
    pub level: LogLevel,
    /// Where in Ferry it was logged (`ferry_server::dispatch`).
    pub component: String,
    pub message: String,
    /// Everything else on the line: the event's fields and its span.
    pub fields: Map<String, Json>,
}

impl LogEntry {
    /// The entry a line holds, or `None` when it is not a log line.
    pub fn parse(line: &str) -> Option<Self> {
        let Ok(Json::Object(mut object)) = serde_json::from_str::<Json>(line) else {
            return None;
        };
        let mut text = |name: &str| match object.remove(name) {
            Some(Json::String(s)) => Some(s),
            _ => None,
        };
        let timestamp = DateTime::parse_from_rfc3339(&text("timestamp")?)
            .ok()?
            .with_timezone(&Utc);
        let level = LogLevel::parse(&text("level")?)?;
        let component = text("target").unwrap_or_default();
        let message = text("message").unwrap_or_default();
        Some(Self {
            timestamp,
            level,
            component,
            message,
            fields: object,
        })
    }

    /// Whether the entry is at least `level` severe.
    pub fn is_at_least(&self, level: LogLevel) -> bool {
        self.level <= level
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_of_the_writer_reads_back_with_its_fields() {
        let line = r#"{"timestamp":"2026-12-07T12:00:00.123456Z","level":"WARN","message":"Export failed.","export_id":"exp_1","reason":"disk full","target":"ferry_server::app::exports::runner","span":{"name":"request"}}"#;
        let entry = LogEntry::parse(line).unwrap();
        assert_eq!(entry.level, LogLevel::Warn);
        assert_eq!(entry.component, "ferry_server::app::exports::runner");
        assert_eq!(entry.message, "Export failed.");
        assert_eq!(
            entry.timestamp.to_rfc3339(),
            "2026-12-07T12:00:00.123456+00:00"
        );
        assert_eq!(entry.fields["export_id"], "exp_1");
        assert_eq!(entry.fields["span"]["name"], "request");
        assert!(!entry.fields.contains_key("level"));
        assert!(entry.is_at_least(LogLevel::Info));
        assert!(entry.is_at_least(LogLevel::Warn));
        assert!(!entry.is_at_least(LogLevel::Error));
    }

    #[test]
    fn what_is_not_a_log_line_is_none() {
        for line in [
            "",
            "{",
            "[]",
            r#"{"timestamp":"2026-12-07T12:00:00Z"}"#,
            r#"{"timestamp":"yesterday","level":"INFO"}"#,
            r#"{"timestamp":"2026-12-07T12:00:00Z","level":"LOUD"}"#,
            r#"{"timestamp":"2026-12-07T12:00:00Z","level":3}"#,
        ] {
            assert_eq!(LogEntry::parse(line), None, "{line}");
        }
    }
}
