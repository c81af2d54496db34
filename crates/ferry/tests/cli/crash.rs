//! The crash test: `kill -9` in the middle of a load with a slow receiver,
//! restart on the same data dir, and every acknowledged event arrives.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_testkit::{Behavior, Receiver};
use serde_json::{Value, json};

use crate::process::{
    ADMIN_KEY, FerryProcess, assert_nothing_waiting, create_webhook, wait_until_received,
};

const EVENTS: usize = 2_000;
const CLIENTS: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_event_is_delivered_after_a_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start().await;
    receiver.set_behavior(Behavior::Delay(Duration::from_millis(50)));
    let ferry = FerryProcess::start(dir.path()).await;
    let http = reqwest::Client::new();
    create_webhook(&ferry.base, &receiver.url(), "crash.*", 32).await;

    // Many clients send; the process is killed once half are acknowledged.
    let acked = Arc::new(Mutex::new(HashSet::new()));
    let next = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (http, base, acked, next) = (
            http.clone(),
            ferry.base.clone(),
            acked.clone(),
            next.clone(),
        );
        clients.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= EVENTS {
                    break;
                }
                let resp = http
                    .post(format!("{base}/v1/events"))
                    .bearer_auth(ADMIN_KEY)
                    .json(&json!({"type": "crash.test", "id": format!("crash-{i}"), "data": {"i": i}}))
                    .send()
                    .await;
                match resp {
                    Ok(r) if r.status().as_u16() == 202 => {
                        let body: Value = r.json().await.unwrap();
                        acked.lock().unwrap().insert(body["id"].as_str().unwrap().to_owned());
                    }
                    // The server died under us: this event was never acknowledged.
                    _ => break,
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < EVENTS / 2 {
        assert!(Instant::now() < deadline, "ingest too slow");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let in_flight_before_kill = receiver.count();
    ferry.kill_9();
    for c in clients {
        c.await.unwrap();
    }
    let acked: HashSet<String> = acked.lock().unwrap().clone();
    assert!(acked.len() >= EVENTS / 2);
    assert!(
        in_flight_before_kill < acked.len(),
        "the kill must land while deliveries are outstanding"
    );

    // Restart on the same data dir: everything acknowledged arrives.
    receiver.set_behavior(Behavior::Ok);
    let ferry = FerryProcess::start(dir.path()).await;
    wait_until_received(&receiver, &acked, Duration::from_secs(120)).await;
    assert_nothing_waiting(&http, &ferry.base, Duration::from_secs(30)).await;
    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    assert!(
        log.contains("Took back deliveries leased by a previous run"),
        "restart should reclaim the killed run's leases"
    );
}

#[tokio::test]
async fn sigterm_stops_gracefully_and_nothing_is_left_leased() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start().await;
    receiver.set_behavior(Behavior::Delay(Duration::from_millis(300)));
    let ferry = FerryProcess::start(dir.path()).await;
    let http = reqwest::Client::new();
    http.post(format!("{}/v1/destinations", ferry.base))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"name": "d", "kind": "webhook", "config": {"url": receiver.url()}, "filter": {"event_types": ["*"]}}))
        .send()
        .await
        .unwrap();
    for i in 0..20 {
        let r = http
            .post(format!("{}/v1/events", ferry.base))
            .bearer_auth(ADMIN_KEY)
            .json(&json!({"type": "t", "data": {"i": i}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 202);
    }
    receiver.wait_for(1, Duration::from_secs(10)).await.unwrap();
    let status = ferry.terminate();
    assert!(status.success(), "graceful stop exits 0, got {status}");
    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    assert!(log.contains("Dispatcher stopped"), "{log}");
    // In-flight deliveries finished within the grace period.
    let ferry = FerryProcess::start(dir.path()).await;
    receiver.set_behavior(Behavior::Ok);
    receiver
        .wait_for_distinct(20, Duration::from_secs(30))
        .await
        .unwrap();
    drop(ferry);
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test]
async fn an_export_killed_midway_is_failed_at_restart_and_its_partial_file_removed() {
    let dir = tempfile::tempdir().unwrap();
    let ferry = FerryProcess::start(dir.path()).await;
    let http = reqwest::Client::new();
    store_bulk_events(&http, &ferry.base).await;
    let job: Value = http
        .post(format!("{}/v1/exports", ferry.base))
        .bearer_auth(ADMIN_KEY)
        .json(
            &json!({"source": "events", "format": "yaml", "target": {"file": "crash/events.yaml"}}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = job["id"].as_str().unwrap().to_owned();
    // Killed once the export has written part of its file.
    let exports = dir.path().join("data/files/crash");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let partial: u64 = files_under(&exports)
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        if partial > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the export wrote nothing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ferry.kill_9();
    let left = files_under(&exports);
    assert!(
        left.iter()
            .all(|p| p.to_string_lossy().ends_with(".partial")),
        "only a partial file can be there after the kill: {left:?}"
    );

    let ferry = FerryProcess::start(dir.path()).await;
    let url = format!("{}/v1/exports/{id}", ferry.base);
    let deadline = Instant::now() + Duration::from_secs(30);
    let job = loop {
        let job: Value = http
            .get(&url)
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if job["status"] != "running" && job["status"] != "queued" {
            break job;
        }
        assert!(Instant::now() < deadline, "still active: {job}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(job["status"], "failed", "{job}");
    assert!(job["error"].as_str().unwrap().contains("stopped"), "{job}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !files_under(&exports).is_empty() {
        assert!(
            Instant::now() < deadline,
            "left behind: {:?}",
            files_under(&exports)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_scheduled_export_killed_midway_runs_again_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("FERRY_EXPORTS__SCHEDULE_RETRY_S", "1".to_owned())];
    let ferry = FerryProcess::start_with(dir.path(), "info", &[], &env).await;
    let http = reqwest::Client::new();
    store_bulk_events(&http, &ferry.base).await;
    // Fires once, two seconds from now.
    let at = chrono::Utc::now() + chrono::Duration::seconds(2);
    let cron = at.format("%-S %-M %-H %-d %-m *").to_string();
    let schedule: Value = http
        .post(format!("{}/v1/export-schedules", ferry.base))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"name": "crash", "cron": cron,
                      "export": {"source": "events", "format": "yaml", "target": {"file": "crash/{id}.yaml"}}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = schedule["id"].as_str().expect("a schedule").to_owned();
    let exports = dir.path().join("data/files/crash");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !files_under_or_none(&exports)
        .iter()
        .any(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
    {
        assert!(
            Instant::now() < deadline,
            "the scheduled export wrote nothing"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ferry.kill_9();

    let ferry = FerryProcess::start_with(dir.path(), "info", &[], &env).await;
    let url = format!("{}/v1/export-schedules/{id}/runs", ferry.base);
    let deadline = Instant::now() + Duration::from_secs(90);
    let runs = loop {
        let page: Value = http
            .get(&url)
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let runs = page["data"].as_array().cloned().unwrap_or_default();
        if runs.iter().any(|r| r["status"] == "succeeded") {
            break runs;
        }
        assert!(Instant::now() < deadline, "no run succeeded: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(runs.len(), 2, "{runs:#?}");
    let (retry, killed) = (&runs[0], &runs[1]);
    assert_eq!(
        (killed["attempt"].clone(), killed["status"].clone()),
        (json!(1), json!("failed"))
    );
    assert!(
        killed["error"].as_str().unwrap().contains("stopped"),
        "{killed}"
    );
    assert_eq!(
        (retry["attempt"].clone(), retry["status"].clone()),
        (json!(2), json!("succeeded"))
    );
    assert_eq!(retry["scheduled_for"], killed["scheduled_for"]);
    assert_eq!(retry["result"]["rows"], 30_000, "{retry}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = files_under_or_none(&exports);
        let location = std::path::PathBuf::from(retry["result"]["location"].as_str().unwrap());
        if left == [location.clone()] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "left behind: {left:?}, want only {location:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Stores 30,000 events of about 1 KiB each: an export of them takes long
/// enough to be killed midway.
async fn store_bulk_events(http: &reqwest::Client, base: &str) {
    let pad = "x".repeat(1000);
    for start in (0..30_000).step_by(1000) {
        let events: Vec<Value> = (start..start + 1000)
            .map(|i| json!({"type": "bulk", "data": {"i": i, "pad": pad}}))
            .collect();
        let r = http
            .post(format!("{base}/v1/events/batch"))
            .bearer_auth(ADMIN_KEY)
            .json(&json!({"events": events}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
}

fn files_under_or_none(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    if dir.exists() {
        files_under(dir)
    } else {
        Vec::new()
    }
}
