//! Export rows: whatever text and JSON the cells hold, redaction (secrets
//! on, pointers into the JSON) and every format encode them without a
//! panic; CSV, JSON, NDJSON and YAML read back, with their standard parsers,
//! to as many rows as went in, and text writes exactly one line per row.
//! Masking secrets twice changes nothing more.
#![no_main]

use ferry_core::export::Value;
use ferry_core::export::format::{Format, encoder};
use ferry_core::export::redact::{Redactor, mask_secrets};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let once = mask_secrets(&text).into_owned();
    assert_eq!(mask_secrets(&once), once, "masking twice");

    // Up to four rows, one per `\u{1e}`-separated piece; a piece that
    // parses as JSON is also the row's JSON cell.
    let columns: Vec<String> = ["id", "data", "note", "headers"].map(String::from).to_vec();
    let mut rows: Vec<Vec<Value>> = text
        .split('\u{1e}')
        .take(4)
        .map(|piece| {
            let data = serde_json::from_str(piece).unwrap_or_else(
                |_| json!({"card": {"number": piece}, "items": [piece, {"token": piece}]}),
            );
            vec![
                Value::Text(piece.to_owned()),
                Value::Json(data),
                Value::Text(piece.to_owned()),
                Value::Json(json!({"Authorization": piece, "x/y": [piece], "n": piece.len()})),
            ]
        })
        .collect();
    let redact = [
        "/data/card/number",
        "/data/items/0",
        "/headers/x~1y",
        "/data/~0",
        "note",
    ]
    .map(String::from);
    let redactor = Redactor::new(&columns, &redact, true).expect("the pointers name columns");
    for row in &mut rows {
        redactor.apply(row);
    }

    for format in Format::ALL {
        let mut encoder = encoder(format, columns.clone());
        let mut out = Vec::new();
        encoder.begin(&mut out);
        for row in &rows {
            encoder.row(row, &mut out);
        }
        encoder.finish(&mut out);
        let read_back = match format {
            Format::Csv => csv::Reader::from_reader(&out[..])
                .records()
                .map(|r| r.expect("CSV reads back"))
                .count(),
            Format::Json => serde_json::from_slice::<Vec<serde_json::Value>>(&out)
                .expect("JSON reads back")
                .len(),
            Format::Ndjson => std::str::from_utf8(&out)
                .expect("NDJSON is UTF-8")
                .split_terminator('\n')
                .map(|line| {
                    serde_json::from_str::<serde_json::Value>(line).expect("a line reads back")
                })
                .count(),
            Format::Yaml => {
                let text = std::str::from_utf8(&out).expect("YAML is UTF-8");
                serde_saphyr::from_str::<Vec<serde_json::Value>>(text)
                    .expect("YAML reads back")
                    .len()
            }
            Format::Text => out.iter().filter(|&&b| b == b'\n').count() - 2,
        };
        assert_eq!(read_back, rows.len(), "{format:?} rows");
    }
});
