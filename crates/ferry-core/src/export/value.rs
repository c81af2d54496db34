//! The cells of an exported row. A row is a `Vec<Value>` in the order of its
//! export's columns (the field names), so that every format writes the same
//! columns in the same order.

use chrono::{DateTime, SecondsFormat, Utc};

/// One cell of an exported row.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    /// Written as RFC 3339 UTC (`…Z`), to the microsecond where it has one.
    Time(DateTime<Utc>),
    /// Any JSON (an event's `data`, a captured request). Formats that hold
    /// structure (JSON, NDJSON, YAML) write it as structure; CSV and text
    /// write its compact JSON text.
    Json(serde_json::Value),
}

impl Value {
    /// The RFC 3339 text of a time cell.
    pub fn time_text(at: &DateTime<Utc>) -> String {
        at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }
}
