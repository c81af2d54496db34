//! The cells of an exported row. A row is a `Vec<Value>` in the order of its
//! export's columns (the field names), so that every format writes the same
//! columns in the same order.
//!
//! The serde formats (JSON, NDJSON, YAML) see a row through [`RowRef`], which
//! serializes as a map whose keys come in column order: `serde_json::Map`
//! would sort them (its `preserve_order` feature is off in this workspace).
//! A float that is not finite (NaN, ±∞) has no JSON spelling, so every format
//! writes it as null (an empty cell in CSV and text), rather than a string
//! that a reader would take for text.

use std::fmt;

use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};
use serde::ser::{Serialize, SerializeMap, Serializer};

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

    /// Appends the RFC 3339 text of a time cell to `out`: the same text as
    /// [`Value::time_text`], without an allocation per cell.
    pub fn write_time(at: &DateTime<Utc>, out: &mut String) {
        match TimeBuf::new(at) {
            Some(text) => out.push_str(text.as_str()),
            None => out.push_str(&Value::time_text(at)),
        }
    }

    /// [`Value::write_time`] into bytes.
    pub(crate) fn write_time_bytes(at: &DateTime<Utc>, out: &mut Vec<u8>) {
        match TimeBuf::new(at) {
            Some(text) => out.extend_from_slice(text.as_str().as_bytes()),
            None => out.extend_from_slice(Value::time_text(at).as_bytes()),
        }
    }

    /// A float that a format can write as a number: finite ones.
    pub fn finite(f: f64) -> Option<f64> {
        f.is_finite().then_some(f)
    }
}

/// The RFC 3339 text of a time, built on the stack:
/// `YYYY-MM-DDTHH:MM:SS.fffffffffZ` at most.
struct TimeBuf {
    bytes: [u8; 30],
    len: usize,
}

impl TimeBuf {
    /// `None` for what chrono spells its own way: years outside 0..=9999
    /// (signed) and leap seconds (`:60`), rare enough to take its path.
    fn new(at: &DateTime<Utc>) -> Option<Self> {
        let at = at.naive_utc();
        let (year, nanos) = (at.year(), at.nanosecond());
        if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
            return None;
        }
        let mut buf = TimeBuf {
            bytes: [0; 30],
            len: 0,
        };
        buf.digits(year as u32, 4);
        for (sep, n) in [
            (b'-', at.month()),
            (b'-', at.day()),
            (b'T', at.hour()),
            (b':', at.minute()),
            (b':', at.second()),
        ] {
            buf.push(sep);
            buf.digits(n, 2);
        }
        // AutoSi: as many fractional digits as the value needs, by threes.
        if nanos != 0 {
            buf.push(b'.');
            if nanos % 1_000_000 == 0 {
                buf.digits(nanos / 1_000_000, 3);
            } else if nanos % 1_000 == 0 {
                buf.digits(nanos / 1_000, 6);
            } else {
                buf.digits(nanos, 9);
            }
        }
        buf.push(b'Z');
        Some(buf)
    }

    fn push(&mut self, b: u8) {
        self.bytes[self.len] = b;
        self.len += 1;
    }

    /// The last `width` decimal digits of `n`, zero-padded.
    fn digits(&mut self, mut n: u32, width: usize) {
        for slot in self.bytes[self.len..self.len + width].iter_mut().rev() {
            *slot = b'0' + (n % 10) as u8;
            n /= 10;
        }
        self.len += width;
    }

    fn as_str(&self) -> &str {
        // ASCII digits and separators only: always UTF-8.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

/// A time cell shown with `Display`, for serializers' `collect_str`.
pub struct TimeText<'a>(pub &'a DateTime<Utc>);

impl fmt::Display for TimeText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match TimeBuf::new(self.0) {
            Some(text) => f.write_str(text.as_str()),
            None => f.write_str(&Value::time_text(self.0)),
        }
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => serializer.serialize_none(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Int(i) => serializer.serialize_i64(*i),
            Value::Float(f) => match Value::finite(*f) {
                Some(f) => serializer.serialize_f64(f),
                None => serializer.serialize_none(),
            },
            Value::Text(text) => serializer.serialize_str(text),
            Value::Time(at) => serializer.collect_str(&TimeText(at)),
            Value::Json(json) => json.serialize(serializer),
        }
    }
}

/// One row seen as a map from column name to cell, in column order: what the
/// serde formats write for a row. A row shorter than its columns reads as
/// nulls for the missing cells.
#[derive(Debug, Clone, Copy)]
pub struct RowRef<'a> {
    pub columns: &'a [String],
    pub values: &'a [Value],
}

impl Serialize for RowRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        debug_assert!(
            self.values.len() <= self.columns.len(),
            "a row has more cells than columns"
        );
        let mut map = serializer.serialize_map(Some(self.columns.len()))?;
        for (i, column) in self.columns.iter().enumerate() {
            map.serialize_entry(column, self.values.get(i).unwrap_or(&Value::Null))?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    #[test]
    fn times_are_rfc3339_utc_to_the_precision_they_have() {
        let at = Utc.with_ymd_and_hms(2026, 3, 7, 9, 5, 2).unwrap();
        let cases = [
            (at, "2026-03-07T09:05:02Z"),
            (
                at + chrono::Duration::milliseconds(120),
                "2026-03-07T09:05:02.120Z",
            ),
            (
                at + chrono::Duration::microseconds(123_456),
                "2026-03-07T09:05:02.123456Z",
            ),
            (
                at + chrono::Duration::nanoseconds(7),
                "2026-03-07T09:05:02.000000007Z",
            ),
        ];
        for (at, want) in cases {
            let mut out = String::new();
            Value::write_time(&at, &mut out);
            assert_eq!(out, want);
            assert_eq!(Value::time_text(&at), want);
        }
    }

    proptest! {
        #[test]
        fn write_time_matches_chrono(secs in -70_000_000_000i64..300_000_000_000, nanos in 0u32..2_000_000_000) {
            if let Some(at) = DateTime::<Utc>::from_timestamp(secs, nanos) {
                let mut out = String::from("x");
                Value::write_time(&at, &mut out);
                prop_assert_eq!(&out[1..], Value::time_text(&at));
            }
        }
    }

    #[test]
    fn a_row_serializes_in_column_order_with_structure() {
        let columns = ["zeta", "alpha", "when", "data", "nan", "missing"].map(String::from);
        let at = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let values = [
            Value::Int(1),
            Value::Text("a\"b".into()),
            Value::Time(at),
            Value::Json(serde_json::json!({"b": [1, null], "a": true})),
            Value::Float(f64::NAN),
        ];
        let text = serde_json::to_string(&RowRef {
            columns: &columns,
            values: &values,
        })
        .unwrap();
        assert_eq!(
            text,
            r#"{"zeta":1,"alpha":"a\"b","when":"2026-01-02T03:04:05Z","data":{"a":true,"b":[1,null]},"nan":null,"missing":null}"#
        );
    }
}
