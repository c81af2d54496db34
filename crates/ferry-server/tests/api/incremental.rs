//! Incremental exports: each run takes what changed since the last
//! successful run of the same export — across three runs with inserts
//! between them, a failed run in the middle (which exports the same rows
//! again next time), and a schedule running while events keep coming
//! (every event in exactly one run's output).

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::export_schedules::{create, finished, patch, wait_runs};
use super::exports::{decompress, export, rows};
use crate::harness::TestServer;

/// Settled after a second: short for the tests, long enough that a write
/// still committing is never passed over.
async fn server() -> TestServer {
    TestServer::start_with(|c| c.exports.incremental_settle_s = 1).await
}

async fn send(server: &TestServer, n: usize, tag: &str) -> Vec<String> {
    let events: Vec<Value> = (0..n)
        .map(|i| json!({"type": "order.created", "data": {"tag": tag, "i": i}}))
        .collect();
    let (status, v) = server
        .post("/v1/events/batch", json!({"events": events}))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let mut ids: Vec<String> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// The event ids in a finished job's output file, sorted (the rows of
/// one batch may be stored in any order).
fn ids_in(job: &Value) -> Vec<String> {
    let location = job["result"]["location"].as_str().unwrap();
    let text = decompress(&std::fs::read(location).unwrap(), "none");
    let mut ids: Vec<String> = rows(&text, "ndjson")
        .into_iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// Waits until the writes just made are older than the settle time.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1_100)).await;
}

#[tokio::test]
async fn each_run_exports_what_came_since_the_last_successful_one() {
    let server = server().await;
    let body = json!({"source": "events", "format": "ndjson", "fields": ["id", "data"],
                      "incremental": true, "target": {"file": "inc/events.ndjson"}});
    let first = send(&server, 3, "first").await;
    settle().await;
    let job = export(&server, body.clone()).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(ids_in(&job), first);
    assert!(job["filter"]["changed_until"].is_string(), "{job}");
    assert!(job["filter"].get("changed_after").is_none(), "{job}");

    // A failed run (its directory is a file now) advances nothing.
    let second = send(&server, 2, "second").await;
    settle().await;
    let dir = server.dir.path().join("files/inc");
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::write(&dir, b"in the way").unwrap();
    let failed = export(&server, body.clone()).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    std::fs::remove_file(&dir).unwrap();
    let job = export(&server, body.clone()).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(ids_in(&job), second, "the failed run's rows come again");

    // Nothing new: an empty output.
    settle().await;
    let job = export(&server, body.clone()).await;
    assert_eq!(ids_in(&job), Vec::<String>::new());

    let third = send(&server, 4, "third").await;
    settle().await;
    let job = export(&server, body.clone()).await;
    assert_eq!(ids_in(&job), third);

    // Another export (other fields) is not "the same export": it starts
    // from the beginning.
    let mut other = body.clone();
    other["fields"] = json!(["id"]);
    let job = export(&server, other).await;
    assert_eq!(ids_in(&job).len(), 9);

    // Sources without a change time refuse it by name.
    let (status, v) = server
        .post(
            "/v1/exports",
            json!({"source": "destinations", "incremental": true}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["details"][0]["field"], "incremental", "{v}");
}

#[tokio::test]
async fn a_schedule_exports_every_event_once_while_events_keep_coming() {
    let server = server().await;
    let s = create(
        &server,
        json!({"name": "incremental", "cron": "*/2 * * * * *",
               "export": {"source": "events", "format": "ndjson", "fields": ["id"],
                          "incremental": true, "target": {"file": "inc/{id}.ndjson"}}}),
    )
    .await;
    let id = s["id"].as_str().unwrap();
    let mut sent = BTreeSet::new();
    for round in 0..12 {
        sent.extend(send(&server, 5, &format!("r{round}")).await);
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let last_sent = chrono::Utc::now();
    // Wait for a run whose window reaches past the last event.
    wait_runs(&server, id, "a run covers the last event", |runs| {
        runs.iter().any(|r| {
            r["status"] == "succeeded"
                && r["filter"]["changed_until"]
                    .as_str()
                    .and_then(|t| t.parse::<chrono::DateTime<chrono::Utc>>().ok())
                    .is_some_and(|t| t > last_sent)
        })
    })
    .await;
    let (status, v) = patch(&server, id, json!({"enabled": false})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let runs = wait_runs(&server, id, "runs end", finished).await;
    let mut seen = Vec::new();
    for run in runs.iter().filter(|r| r["status"] == "succeeded") {
        seen.extend(ids_in(run));
    }
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "an event was exported twice");
    assert_eq!(unique, sent, "every event, once");
    assert!(runs.len() >= 3, "{runs:#?}");
}
