//! What every format shares: any row goes through each without a panic,
//! and the throughput figures of the biggest cases (CSV, gzipped or not, NDJSON).

use std::time::Instant;

use chrono::{TimeZone, Utc};
use serde_json::json;

use super::*;
use crate::export::compress::{Compression, Compressor};

fn encode(format: Format, columns: &[String], rows: &[Vec<Value>]) -> Vec<u8> {
    let mut encoder = encoder(format, columns.to_vec());
    let mut out = Vec::new();
    encoder.begin(&mut out);
    for row in rows {
        encoder.row(row, &mut out);
    }
    encoder.finish(&mut out);
    out
}

/// A row like the deliveries export's: ten columns of every kind.
fn delivery_row(i: i64) -> Vec<Value> {
    let at = Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap()
        + chrono::Duration::microseconds(i * 1_337);
    vec![
        Value::Text(format!("dlv_01jq3ta2b4d6f8h0k2m4{i:06}")),
        Value::Text(format!("evt_01jq3ta2b4d6f8h0k2m4{:06}", i / 3)),
        Value::Text("dst_orders_webhook".into()),
        Value::Text(if i % 10 == 0 { "failed" } else { "delivered" }.into()),
        Value::Int(i % 7),
        Value::Time(at),
        Value::Time(at + chrono::Duration::milliseconds(250)),
        Value::Float(0.125 * (i % 100) as f64),
        if i % 10 == 0 {
            Value::Text("HTTP 503: upstream unavailable, retrying".into())
        } else {
            Value::Null
        },
        Value::Json(
            json!({"type": "order.created", "id": i, "amount": {"value": 1999, "currency": "EUR"}}),
        ),
    ]
}

fn delivery_columns() -> Vec<String> {
    [
        "id",
        "event_id",
        "destination",
        "status",
        "attempts",
        "created_at",
        "updated_at",
        "latency",
        "last_error",
        "data",
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn every_format_takes_every_kind_of_cell() {
    let columns = delivery_columns();
    let rows: Vec<Vec<Value>> = (0..25).map(delivery_row).collect();
    for format in Format::ALL {
        let out = encode(format, &columns, &rows);
        let text =
            String::from_utf8(out).unwrap_or_else(|_| panic!("{format:?} wrote invalid UTF-8"));
        assert!(
            text.contains("dlv_01jq3ta2b4d6f8h0k2m4000024"),
            "{format:?}"
        );
    }
}

#[test]
fn every_format_takes_no_columns_and_no_rows() {
    for format in Format::ALL {
        encode(format, &[], &[]);
        encode(format, &[], &[vec![], vec![]]);
        encode(format, &delivery_columns(), &[]);
    }
}

/// CSV (plain and gzipped) and NDJSON of a million delivery rows, in
/// release mode:
/// `cargo test --release -p ferry-core -- --ignored --nocapture throughput`.
/// Prints the figures (encoding alone, then with gzip); asserts nothing
/// about time. The rows cycle through a thousand distinct ones, made
/// beforehand as a store read would hand them over.
#[test]
#[ignore = "a measurement, run by hand in release mode"]
fn throughput_of_a_million_rows() {
    const ROWS: usize = 1_000_000;
    let rows: Vec<Vec<Value>> = (0..1000).map(|i| delivery_row(i * 7919)).collect();
    let cases = [
        (Format::Csv, Compression::None),
        (Format::Csv, Compression::Gzip),
        (Format::Ndjson, Compression::None),
    ];
    for (format, compression) in cases {
        let mut encoder = encoder(format, delivery_columns());
        let mut compressor = Compressor::new(compression, "deliveries.csv");
        let (mut out, mut raw, mut written) = (Vec::with_capacity(1 << 17), 0, 0);
        let started = Instant::now();
        encoder.begin(&mut out);
        for i in 0..ROWS {
            encoder.row(&rows[i % rows.len()], &mut out);
            if out.len() >= 1 << 16 {
                raw += out.len();
                compressor.write(&out).unwrap();
                out.clear();
                written += compressor.take().len();
            }
        }
        encoder.finish(&mut out);
        raw += out.len();
        compressor.write(&out).unwrap();
        written += compressor.finish().unwrap().len();
        let elapsed = started.elapsed();
        println!(
            "{ROWS} rows x 10 columns, {format:?} + {compression:?}: {raw} bytes encoded, \
             {written} written, in {elapsed:.2?} ({:.0} rows/s, {:.0} MB/s encoded)",
            ROWS as f64 / elapsed.as_secs_f64(),
            raw as f64 / elapsed.as_secs_f64() / 1e6
        );
    }
}
