//! YAML through `serde-saphyr`: each row is serialized as a sequence of one
//! mapping (`- a: 1\n  b: x\n`), and those pieces, written one after the
//! other, make one block sequence, so the document streams like the others.
//! No rows is the empty flow sequence `[]`.
//!
//! Strings must come back as the same strings from any reader: the
//! serializer quotes those a YAML 1.1 or 1.2 reader would take for something
//! else (`yes`, `null`, `1.0`, `- x`, `#c`, `a: b`, leading or trailing
//! spaces), and block scalars (`|`, `>`) are turned off, since they are
//! where trailing spaces, tabs and unusual line ends get lost: a string with
//! a line break or a control character is written double-quoted, escaped.

use serde_saphyr::{SerializerOptions, ser_options};

use super::Encoder;
use crate::export::value::{RowRef, Value};

pub(super) struct YamlEncoder {
    columns: Vec<String>,
    rows: u64,
}

impl YamlEncoder {
    pub(super) fn new(columns: Vec<String>) -> Self {
        Self { columns, rows: 0 }
    }
}

fn options() -> SerializerOptions {
    ser_options! {
        prefer_block_scalars: false,
    }
}

impl Encoder for YamlEncoder {
    fn begin(&mut self, _out: &mut Vec<u8>) {}

    fn row(&mut self, row: &[Value], out: &mut Vec<u8>) {
        let row = [RowRef {
            columns: &self.columns,
            values: row,
        }];
        // Invariant: a row's keys are strings and its values plain data
        // (non-finite floats are null), and a `Vec` never fails a write, so
        // serializing cannot fail.
        serde_saphyr::to_io_writer_with_options(out, &row, options())
            .expect("a row serializes to YAML in memory");
        self.rows += 1;
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if self.rows == 0 {
            out.extend_from_slice(b"[]\n");
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

    fn encode(columns: &[&str], rows: &[Vec<Value>]) -> String {
        let mut encoder = encoder(
            Format::Yaml,
            columns.iter().map(|c| c.to_string()).collect(),
        );
        let mut out = Vec::new();
        encoder.begin(&mut out);
        for row in rows {
            encoder.row(row, &mut out);
        }
        encoder.finish(&mut out);
        String::from_utf8(out).unwrap()
    }

    /// The document read back, as JSON values (YAML's data model here).
    fn parse(text: &str) -> Vec<serde_json::Value> {
        serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{e}\n---\n{text}"))
    }

    /// A row of text cells, and what it reads back as.
    fn text_row(cells: &[String]) -> (Vec<String>, Vec<Value>, serde_json::Value) {
        let columns: Vec<String> = (0..cells.len()).map(|i| format!("c{i}")).collect();
        let row = cells.iter().map(|c| Value::Text(c.clone())).collect();
        let want = columns
            .iter()
            .zip(cells)
            .map(|(c, v)| (c.clone(), json!(v)))
            .collect();
        (columns, row, serde_json::Value::Object(want))
    }

    #[test]
    fn a_sequence_of_mappings() {
        let at = Utc.with_ymd_and_hms(2026, 2, 3, 4, 5, 6).unwrap();
        let rows = vec![
            vec![
                Value::Int(1),
                Value::Time(at),
                Value::Json(json!({"k": [1, "x"], "e": {}})),
            ],
            vec![Value::Null, Value::Float(f64::NAN), Value::Bool(true)],
        ];
        let text = encode(&["n", "at", "data"], &rows);
        // `n` is a boolean to a YAML 1.1 reader: quoted.
        assert!(text.starts_with("- \"n\": 1\n"), "{text}");
        assert_eq!(
            parse(&text),
            [
                json!({"n": 1, "at": "2026-02-03T04:05:06Z", "data": {"k": [1, "x"], "e": {}}}),
                json!({"n": null, "at": null, "data": true}),
            ]
        );
    }

    #[test]
    fn no_rows_is_an_empty_sequence() {
        let text = encode(&["a"], &[]);
        assert_eq!(text, "[]\n");
        assert!(parse(&text).is_empty());
    }

    #[test]
    fn strings_that_look_like_other_things_stay_strings() {
        let tricky = [
            "yes",
            "no",
            "Yes",
            "NO",
            "on",
            "off",
            "y",
            "n",
            "true",
            "False",
            "null",
            "Null",
            "~",
            "",
            "1.0",
            "1",
            "-1",
            "0x1f",
            "0o17",
            "1e3",
            ".inf",
            "-.inf",
            ".nan",
            "1_000",
            "12:30:00",
            "2026-01-02",
            "2026-01-02T03:04:05Z",
            "- x",
            "-",
            "#comment",
            "a #b",
            "key: value",
            "key:value",
            ": x",
            "? q",
            "[a]",
            "{a: 1}",
            "&anchor",
            "*alias",
            "!tag",
            "!!str x",
            "%YAML",
            "---",
            "...",
            "@x",
            "`x",
            "|",
            ">",
            "'quoted'",
            "\"dq\"",
            " lead",
            "trail ",
            "  ",
            "multi\nline",
            "trailing\n",
            "\n",
            "\n\nx\n\n",
            "cr\rlf",
            "crlf\r\n",
            "tab\there",
            "\ttab",
            "nul\0x",
            "bell\u{7}",
            "del\u{7f}",
            "c1\u{85}x",
            "ls\u{2028}ps\u{2029}",
            "bom\u{feff}",
            "é ü 日本 🦀",
            "back\\slash",
            "=1+1",
        ];
        let cells: Vec<String> = tricky.iter().map(|s| s.to_string()).collect();
        let (columns, row, want) = text_row(&cells);
        let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
        let text = encode(&columns, &[row.clone(), row]);
        assert_eq!(parse(&text), [want.clone(), want], "{text}");
    }

    #[test]
    fn column_names_are_quoted_like_any_string() {
        let text = encode(&["yes", "- x", "a: b", ""], &[vec![Value::Int(1); 4]]);
        assert_eq!(
            parse(&text),
            [json!({"yes": 1, "- x": 1, "a: b": 1, "": 1})],
            "{text}"
        );
    }

    proptest! {
        #[test]
        fn any_strings_read_back_the_same(cells in proptest::collection::vec(any::<String>(), 1..5), rows in 1usize..3) {
            let (columns, row, want) = text_row(&cells);
            let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
            let text = encode(&columns, &vec![row; rows]);
            prop_assert_eq!(parse(&text), vec![want; rows], "{}", text);
        }

        #[test]
        fn yaml_looking_strings_read_back_the_same(cells in proptest::collection::vec("[-:#?!&*|>'\" \t\n\r.a-z0-9~{}\\[\\],%@`]{0,10}", 1..4)) {
            let (columns, row, want) = text_row(&cells);
            let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
            let text = encode(&columns, &[row]);
            prop_assert_eq!(parse(&text), vec![want], "{}", text);
        }
    }
}
