//! A cell as one piece of text, for the formats without structure (CSV and
//! text): what both write for each kind of value, in one place. Rendering
//! reuses the caller's scratch buffer; a text cell is borrowed as it is.
//! Bytes rather than `str`, because the CSV writer takes bytes and JSON is
//! serialized straight into them; they are always UTF-8.

use std::io::Write as _;

use crate::export::value::Value;

/// A cell's text, and whether it came from text (which may hold anything,
/// including a spreadsheet formula) rather than from a number, a boolean or
/// a time (which never start with a formula's sign but for a minus).
pub(super) struct CellText<'a> {
    pub bytes: &'a [u8],
    pub from_text: bool,
}

impl CellText<'_> {
    /// The text as `str`: every source is UTF-8, so the lossy case never
    /// happens (and would only show replacement characters).
    pub fn as_str(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(self.bytes)
    }
}

/// The text of `value`: empty for null (and non-finite floats), `true` and
/// `false`, numbers as JSON writes them (`1.5`, `1e+300`), RFC 3339 for
/// times, compact JSON for JSON. A JSON number is a number: not `from_text`.
pub(super) fn cell_text<'a>(value: &'a Value, scratch: &'a mut Vec<u8>) -> CellText<'a> {
    scratch.clear();
    // Writes into a `Vec` cannot fail: their results are ignored.
    let from_text = match value {
        Value::Text(text) => {
            return CellText {
                bytes: text.as_bytes(),
                from_text: true,
            };
        }
        Value::Null => false,
        Value::Bool(b) => {
            scratch.extend_from_slice(if *b { b"true" } else { b"false" });
            false
        }
        Value::Int(i) => {
            let _ = write!(scratch, "{i}");
            false
        }
        Value::Float(f) => {
            // `Number` spells floats the way JSON does (shortest round trip,
            // an exponent for large ones: `1e+300`), not as Rust's `Display`
            // does (300 digits); `from_f64` is `None` exactly for non-finite
            // floats: null.
            if let Some(n) = serde_json::Number::from_f64(*f) {
                let _ = write!(scratch, "{n}");
            }
            false
        }
        Value::Time(at) => {
            Value::write_time_bytes(at, scratch);
            false
        }
        Value::Json(json) => {
            let _ = serde_json::to_writer(&mut *scratch, json);
            !json.is_number()
        }
    };
    CellText {
        bytes: scratch,
        from_text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    fn render(value: Value) -> (String, bool) {
        let mut scratch = b"left over".to_vec();
        let cell = cell_text(&value, &mut scratch);
        (cell.as_str().into_owned(), cell.from_text)
    }

    #[test]
    fn each_kind_of_cell_has_one_spelling() {
        let at = Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap();
        let cases = [
            (Value::Null, "", false),
            (Value::Bool(true), "true", false),
            (Value::Bool(false), "false", false),
            (Value::Int(-42), "-42", false),
            (Value::Int(i64::MIN), "-9223372036854775808", false),
            (Value::Float(1.0), "1.0", false),
            (Value::Float(-0.25), "-0.25", false),
            (Value::Float(1e300), "1e+300", false),
            (Value::Float(f64::NAN), "", false),
            (Value::Float(f64::NEG_INFINITY), "", false),
            (Value::Text("=1+1".into()), "=1+1", true),
            (Value::Time(at), "2026-05-01T12:00:00Z", false),
            (
                Value::Json(json!({"b": 1, "a": "x"})),
                r#"{"a":"x","b":1}"#,
                true,
            ),
            (Value::Json(json!(-3)), "-3", false),
            (Value::Json(json!("s")), r#""s""#, true),
        ];
        for (value, text, from_text) in cases {
            assert_eq!(
                render(value.clone()),
                (text.to_owned(), from_text),
                "{value:?}"
            );
        }
    }
}
