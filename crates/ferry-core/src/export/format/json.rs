//! JSON and NDJSON: each row serialized by `serde_json` straight into the
//! caller's buffer, as an object whose keys come in column order. JSON wraps
//! the objects in one array (one per line, for readers that diff or grep
//! it); NDJSON ends each with `\n`. `serde_json` escapes quotes, backslashes
//! and every control character, so a string can never break a line or the
//! document; it leaves U+2028/U+2029 as they are, which JSON allows.

use super::Encoder;
use crate::export::value::{RowRef, Value};

/// How the objects are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Layout {
    /// `[` … `]`, objects separated by `,\n`.
    Array,
    /// One object per line.
    Lines,
}

pub(super) struct JsonEncoder {
    columns: Vec<String>,
    layout: Layout,
    rows: u64,
}

impl JsonEncoder {
    pub(super) fn new(columns: Vec<String>, layout: Layout) -> Self {
        Self {
            columns,
            layout,
            rows: 0,
        }
    }
}

impl Encoder for JsonEncoder {
    fn begin(&mut self, out: &mut Vec<u8>) {
        if self.layout == Layout::Array {
            out.push(b'[');
        }
    }

    fn row(&mut self, row: &[Value], out: &mut Vec<u8>) {
        if self.layout == Layout::Array {
            out.extend_from_slice(if self.rows == 0 { b"\n" } else { b",\n" });
        }
        let row = RowRef {
            columns: &self.columns,
            values: row,
        };
        // Invariant: a row's keys are strings and its values plain data, and
        // a `Vec` never fails a write, so serializing cannot fail.
        serde_json::to_writer(&mut *out, &row).expect("a row serializes to JSON in memory");
        if self.layout == Layout::Lines {
            out.push(b'\n');
        }
        self.rows += 1;
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if self.layout == Layout::Array {
            out.extend_from_slice(if self.rows == 0 { b"]" } else { b"\n]" });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::format::{Format, encoder};
    use chrono::{TimeZone, Utc};
    use proptest::prelude::*;
    use serde_json::json;

    fn encode(format: Format, columns: &[&str], rows: &[Vec<Value>]) -> String {
        let mut encoder = encoder(format, columns.iter().map(|c| c.to_string()).collect());
        let mut out = Vec::new();
        encoder.begin(&mut out);
        for row in rows {
            encoder.row(row, &mut out);
        }
        encoder.finish(&mut out);
        String::from_utf8(out).unwrap()
    }

    fn sample() -> Vec<Vec<Value>> {
        let at = Utc.with_ymd_and_hms(2026, 2, 3, 4, 5, 6).unwrap();
        vec![
            vec![
                Value::Text("evt_1".into()),
                Value::Time(at),
                Value::Json(json!({"k": [1, "x"]})),
            ],
            vec![Value::Null, Value::Float(f64::INFINITY), Value::Bool(false)],
        ]
    }

    #[test]
    fn json_is_one_array_of_objects_in_column_order() {
        let text = encode(Format::Json, &["z", "at", "data"], &sample());
        assert_eq!(
            text,
            "[\n{\"z\":\"evt_1\",\"at\":\"2026-02-03T04:05:06Z\",\"data\":{\"k\":[1,\"x\"]}},\n\
             {\"z\":null,\"at\":null,\"data\":false}\n]"
        );
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed.as_array().unwrap().len(), 2);
    }

    #[test]
    fn no_rows_is_an_empty_array_or_nothing() {
        assert_eq!(encode(Format::Json, &["a"], &[]), "[]");
        assert_eq!(encode(Format::Ndjson, &["a"], &[]), "");
    }

    #[test]
    fn ndjson_is_one_object_per_line() {
        let text = encode(Format::Ndjson, &["z", "at", "data"], &sample());
        let lines: Vec<&str> = text.split_terminator('\n').collect();
        assert_eq!(lines.len(), 2);
        assert!(text.ends_with('\n'));
        for line in lines {
            serde_json::from_str::<serde_json::Value>(line).unwrap();
        }
    }

    proptest! {
        #[test]
        fn any_strings_read_back_the_same(cells in proptest::collection::vec(any::<String>(), 1..5), rows in 0usize..4) {
            let columns: Vec<String> = (0..cells.len()).map(|i| format!("c{i}")).collect();
            let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
            let row: Vec<Value> = cells.iter().map(|c| Value::Text(c.clone())).collect();
            let want: serde_json::Map<String, serde_json::Value> =
                columns.iter().zip(&cells).map(|(c, v)| (c.to_string(), json!(v))).collect();
            let rows = vec![row; rows];

            let parsed: Vec<serde_json::Value> = serde_json::from_str(&encode(Format::Json, &columns, &rows)).unwrap();
            prop_assert_eq!(parsed.len(), rows.len());
            for object in &parsed {
                prop_assert_eq!(object.as_object().unwrap(), &want);
            }

            let text = encode(Format::Ndjson, &columns, &rows);
            let lines: Vec<&str> = text.split_terminator('\n').collect();
            prop_assert_eq!(lines.len(), rows.len());
            for line in lines {
                let object: serde_json::Value = serde_json::from_str(line).unwrap();
                prop_assert_eq!(object.as_object().unwrap(), &want);
            }
        }
    }
}
