//! Delivery metrics through the whole server: attempts to a slow receiver
//! and to a failing one are counted per destination and minute (written
//! off the delivery path, every `metrics.flush_secs`), exported as the
//! `metrics` source by minute and by hour with their latency quantiles,
//! and the `destinations` export carries each one's p50/p99 latency.

use std::time::{Duration, Instant};

use ferry_testkit::{Behavior, Receiver};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::exports::{decompress, export, rows};
use crate::harness::{TestServer, fast_retry, merge};

/// How long the slow receiver takes to answer.
const DELAY_MS: u64 = 50;

async fn webhook(server: &TestServer, url: &str, name: &str, types: &str) -> String {
    let mut extra = json!({"name": name, "filter": {"event_types": [types]}});
    merge(&mut extra, fast_retry(2));
    server.webhook(url, extra).await.0
}

/// The rows of an ndjson export of `source` with `filter`.
async fn exported(server: &TestServer, source: &str, filter: Value) -> Vec<Value> {
    let job = export(
        server,
        json!({"source": source, "format": "ndjson", "filter": filter}),
    )
    .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let location = job["result"]["location"].as_str().unwrap();
    rows(
        &decompress(&std::fs::read(location).unwrap(), "none"),
        "ndjson",
    )
}

fn int(row: &Value, column: &str) -> u64 {
    row[column]
        .as_u64()
        .unwrap_or_else(|| panic!("{column}: {row}"))
}

/// A destination's rows summed: (deliveries, delivered, retried, dead).
fn totals(rows: &[Value], destination: &str) -> (u64, u64, u64, u64) {
    rows.iter()
        .filter(|r| r["destination_id"] == destination)
        .fold((0, 0, 0, 0), |t, r| {
            (
                t.0 + int(r, "deliveries"),
                t.1 + int(r, "delivered"),
                t.2 + int(r, "retried"),
                t.3 + int(r, "dead"),
            )
        })
}

/// Exports metrics by `bucket` until `done` holds for the rows (the
/// rollups reach the store with the next flush).
async fn metrics_until(
    server: &TestServer,
    bucket: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = exported(server, "metrics", json!({"bucket": bucket})).await;
        if done(&rows) {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "metrics never added up: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn metrics_count_attempts_and_latency_per_destination() {
    let server = TestServer::start_with(|c| {
        c.metrics.flush_secs = 1;
        // Every failure spends the retry budget (no breaker pause).
        c.dispatch.breaker_threshold = 1_000;
    })
    .await;
    let slow = Receiver::start().await;
    slow.set_behavior(Behavior::Delay(Duration::from_millis(DELAY_MS)));
    let failing = Receiver::start().await;
    failing.set_behavior(Behavior::Status(503));
    let slow_id = webhook(&server, &slow.url(), "slow", "slow.*").await;
    let failing_id = webhook(&server, &failing.url(), "failing", "fail.*").await;

    let mut waiting = Vec::new();
    for n in 0..10 {
        let accepted = server
            .send(json!({"type": "slow.done", "data": {"n": n}}))
            .await;
        waiting.push((accepted["deliveries"][0]["id"].clone(), "delivered"));
    }
    for n in 0..3 {
        let accepted = server
            .send(json!({"type": "fail.done", "data": {"n": n}}))
            .await;
        waiting.push((accepted["deliveries"][0]["id"].clone(), "dead"));
    }
    for (id, status) in &waiting {
        server
            .wait_status(id.as_str().unwrap(), status, Duration::from_secs(30))
            .await;
    }

    // By minute: every attempt counted once, by how it ended (two retries
    // then dead for each failing delivery).
    let minutes = metrics_until(&server, "minute", |rows| {
        totals(rows, &slow_id).0 == 10 && totals(rows, &failing_id).0 == 9
    })
    .await;
    assert_eq!(totals(&minutes, &slow_id), (10, 10, 0, 0));
    assert_eq!(totals(&minutes, &failing_id), (9, 0, 6, 3));
    for row in minutes.iter().filter(|r| r["destination_id"] == slow_id) {
        assert_eq!(row["bucket"], "minute");
        assert_eq!(row["destination_name"], "slow");
        assert_eq!(row["kind"], "webhook");
        assert_eq!(row["success_rate"], 1.0);
        let (p50, p99) = (int(row, "p50_attempt_ms"), int(row, "p99_attempt_ms"));
        assert!(p50 >= DELAY_MS && p50 <= p99, "{row}");
        assert!(p99 < 5_000, "implausible: {row}");
        assert!(int(row, "p99_end_to_end_ms") >= DELAY_MS, "{row}");
    }
    for row in minutes.iter().filter(|r| r["destination_id"] == failing_id) {
        assert_eq!(row["success_rate"], 0.0);
        assert!(
            row["p99_end_to_end_ms"].is_null(),
            "nothing delivered: {row}"
        );
    }

    // By hour: the same minutes merged on the fly (none is an hour old).
    let hours = exported(&server, "metrics", json!({"bucket": "hour"})).await;
    assert!(hours.iter().all(|r| r["bucket"] == "hour"), "{hours:?}");
    assert_eq!(totals(&hours, &slow_id), (10, 10, 0, 0));
    assert_eq!(totals(&hours, &failing_id), (9, 0, 6, 3));
    // Filters: one destination; a kind no destination has.
    let one = exported(
        &server,
        "metrics",
        json!({"bucket": "day", "destination_id": failing_id}),
    )
    .await;
    assert_eq!(one.len(), 1, "{one:?}");
    assert_eq!(totals(&one, &failing_id), (9, 0, 6, 3));
    let none = exported(&server, "metrics", json!({"kind": "s3"})).await;
    assert!(none.is_empty(), "{none:?}");

    // The destinations export: latency over the last day.
    let destinations = exported(&server, "destinations", json!({})).await;
    let slow_row = destinations.iter().find(|r| r["id"] == slow_id).unwrap();
    let (p50, p99) = (
        int(slow_row, "p50_latency_ms"),
        int(slow_row, "p99_latency_ms"),
    );
    assert!(p50 >= DELAY_MS && p50 <= p99 && p99 < 5_000, "{slow_row}");
    let failing_row = destinations.iter().find(|r| r["id"] == failing_id).unwrap();
    assert!(failing_row["p50_latency_ms"].is_u64(), "{failing_row}");
}

#[tokio::test]
async fn a_bad_bucket_is_refused_by_name() {
    let server = TestServer::start().await;
    let (status, body) = server
        .post(
            "/v1/exports",
            json!({"source": "metrics", "filter": {"bucket": "week"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.to_string().contains("filter.bucket"), "{body}");
    let (status, body) = server
        .post(
            "/v1/exports",
            json!({"source": "metrics", "incremental": true}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.to_string().contains("incremental"), "{body}");
}
