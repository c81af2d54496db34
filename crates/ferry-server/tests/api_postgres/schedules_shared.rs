//! Two Ferry processes sharing PostgreSQL both run the scheduler: every
//! tick of a schedule runs exactly once between them.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::export_schedules::{create, finished, patch, time, wait_runs};
use crate::harness::TestServer;

#[tokio::test]
async fn each_tick_runs_once_across_two_processes() {
    let first = TestServer::start().await;
    let second = first.join(|_| {}).await;
    let s = create(
        &first,
        json!({"name": "shared", "cron": "* * * * * *",
               "export": {"source": "audit", "format": "ndjson"}}),
    )
    .await;
    let id = s["id"].as_str().unwrap();
    wait_runs(&second, id, "eight runs succeed", |r| {
        r.iter().filter(|r| r["status"] == "succeeded").count() >= 8
    })
    .await;
    let (status, v) = patch(&second, id, json!({"enabled": false})).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{v}");
    let all = wait_runs(&first, id, "runs end", finished).await;
    let mut ticks: Vec<DateTime<Utc>> = all.iter().map(|r| time(&r["scheduled_for"])).collect();
    ticks.sort();
    ticks.dedup();
    assert_eq!(ticks.len(), all.len(), "a tick ran twice: {all:#?}");
    assert!(
        all.iter()
            .all(|r| r["status"] == "succeeded" && r["attempt"] == 1),
        "{all:#?}"
    );
}
