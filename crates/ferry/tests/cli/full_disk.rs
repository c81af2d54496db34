//! A full disk, and a log that cannot be written.
//!
//! The data directory sits on a small private tmpfs that fills under load:
//! while it is full every request is answered (`503` with the reason, never
//! a false `202`, never a closed connection) and `/readyz` says why; once
//! the tmpfs is enlarged, ingest and delivery resume without a restart, and
//! every acknowledged event arrives. The same runs with the log on the full
//! tmpfs, and requests are answered with stdout and stderr on `/dev/full`.
//! Mounting needs root; without it these tests say so and pass, except
//! under CI (`CI=true`), where they fail.

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_testkit::{Receiver, SqliteWriteLock, Tmpfs};
use serde_json::{Value, json};

use crate::process::{
    ADMIN_KEY, FerryProcess, Output, api_get, assert_nothing_waiting, create_webhook,
    wait_until_received,
};

/// Small enough to fill in seconds, large enough to start on.
const SMALL_MIB: u32 = 30;
const LARGE_MIB: u32 = 200;
const CLIENTS: usize = 12;
/// Events per request of the clients that use the batch endpoint.
const BATCH: usize = 10;
/// Bigger events fill the disk sooner.
const PAD: usize = 2_000;
const WAIT: Duration = Duration::from_secs(60);

/// What the clients saw.
#[derive(Default)]
struct Tally {
    /// Set by the test while the disk is surely full: a 202 then is a lie.
    full: AtomicBool,
    stop: AtomicBool,
    next: AtomicUsize,
    acked: Mutex<HashSet<String>>,
    accepted_while_full: AtomicUsize,
    refused: AtomicUsize,
    /// Refusals that said the disk is full.
    refused_full: AtomicUsize,
    last_accepted: Mutex<Option<Instant>>,
}

impl Tally {
    fn accepted(&self, id: String) {
        if self.full.load(Ordering::SeqCst) {
            self.accepted_while_full.fetch_add(1, Ordering::SeqCst);
        }
        *self.last_accepted.lock().unwrap() = Some(Instant::now());
        self.acked.lock().unwrap().insert(id);
    }

    /// A 503 (the whole request's, or one batch item's): it must say why.
    fn refused(&self, body: &Value) {
        assert_eq!(body["error"], "unavailable", "{body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("storage is") && message.ends_with("retry later"),
            "{body}"
        );
        if message.starts_with("storage is full") {
            self.refused_full.fetch_add(1, Ordering::SeqCst);
        }
        self.refused.fetch_add(1, Ordering::SeqCst);
    }
}

fn event(i: usize) -> Value {
    json!({"type": "disk.test", "id": format!("disk-{i}"), "data": {"i": i, "pad": "x".repeat(PAD)}})
}

/// A careful producer: sends events, each until it is acknowledged (the
/// same id again after a 503), until told to stop. Every request must get
/// an answer: a closed connection fails the test.
async fn client(base: String, tally: Arc<Tally>, batch: bool) {
    let http = reqwest::Client::new();
    let per_request = if batch { BATCH } else { 1 };
    while !tally.stop.load(Ordering::SeqCst) {
        let first = tally.next.fetch_add(per_request, Ordering::SeqCst);
        let mut waiting: Vec<usize> = (first..first + per_request).collect();
        while !waiting.is_empty() {
            let request = if batch {
                let events: Vec<Value> = waiting.iter().map(|i| event(*i)).collect();
                http.post(format!("{base}/v1/events/batch"))
                    .json(&json!({"events": events}))
            } else {
                http.post(format!("{base}/v1/events"))
                    .json(&event(waiting[0]))
            };
            let response = request
                .bearer_auth(ADMIN_KEY)
                .send()
                .await
                .unwrap_or_else(|e| panic!("a request got no answer: {e}"));
            let status = response.status().as_u16();
            let body: Value = response
                .json()
                .await
                .unwrap_or_else(|e| panic!("an answer ({status}) without its body: {e}"));
            let items = match (batch, status) {
                (true, 200) => body["results"].as_array().unwrap().clone(),
                (false, 200 | 202 | 503) => vec![{
                    let mut item = body.clone();
                    item["status"] = json!(status);
                    item
                }],
                _ => panic!("unexpected {status}: {body}"),
            };
            assert_eq!(items.len(), waiting.len(), "{body}");
            let mut again = Vec::new();
            for (i, item) in waiting.iter().zip(&items) {
                match item["status"].as_u64() {
                    Some(200 | 202) => tally.accepted(item["id"].as_str().unwrap().to_owned()),
                    Some(503) => {
                        tally.refused(item);
                        again.push(*i);
                    }
                    _ => panic!("unexpected item: {item}"),
                }
            }
            if !again.is_empty() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            waiting = again;
        }
    }
}

async fn get_json(http: &reqwest::Client, url: &str) -> (u16, Value) {
    let response = http.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Polls `/readyz` until it answers `status`; its last answer.
async fn wait_readiness(http: &reqwest::Client, base: &str, status: u16) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let (got, body) = get_json(http, &format!("{base}/readyz")).await;
        if got == status {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz never answered {status}; last {got} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A counter's lines, one per label set.
async fn counter(http: &reqwest::Client, base: &str, name: &str) -> Vec<String> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .map(str::to_owned)
        .collect()
}

fn sum(lines: &[String]) -> f64 {
    lines
        .iter()
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Every delivery: how many there are, and how many attempts they recorded.
async fn deliveries_and_attempts(http: &reqwest::Client, base: &str) -> (usize, u64) {
    let (mut deliveries, mut attempts) = (0, 0);
    let mut cursor = String::new();
    loop {
        let page = api_get(
            http,
            &format!("{base}/v1/deliveries?limit=1000&cursor={cursor}"),
        )
        .await;
        for d in page["data"].as_array().unwrap() {
            deliveries += 1;
            attempts += d["attempt_count"].as_u64().unwrap();
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => return (deliveries, attempts),
        }
    }
}

async fn fill_the_disk_then_give_it_space(log_on_the_full_disk: bool) {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = Tmpfs::mount(&dir.path().join("disk"), SMALL_MIB) else {
        return;
    };
    let log = if log_on_the_full_disk {
        disk.path().join("ferry.log")
    } else {
        dir.path().join("ferry.log")
    };
    let receiver = Receiver::start().await;
    let env = [("FERRY_DISPATCH__POLL_INTERVAL_MS", "200".to_owned())];
    let mut ferry = FerryProcess::launch(
        &disk.path().join("data"),
        Output::File(&log),
        "info",
        &[],
        &env,
    )
    .await;
    let http = reqwest::Client::new();
    create_webhook(&ferry.base, &receiver.url(), "disk.*", 64).await;

    let tally = Arc::new(Tally::default());
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| tokio::spawn(client(ferry.base.clone(), tally.clone(), c % 3 == 0)))
        .collect();

    // Full: ingest refuses, saying why, and readiness follows.
    let deadline = Instant::now() + WAIT;
    while tally.refused_full.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the disk never filled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ready = wait_readiness(&http, &ferry.base, 503).await;
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some("storage_unavailable"), Some("storage is full")),
        "{ready}"
    );
    // A few commits may still fit after the first refusal (a smaller batch,
    // in space SQLite's files already hold); once nothing has been accepted
    // for a second, nothing more fits: from then on a 202 would be a lie.
    let deadline = Instant::now() + WAIT;
    loop {
        let quiet = tally
            .last_accepted
            .lock()
            .unwrap()
            .is_none_or(|at| at.elapsed() > Duration::from_secs(1));
        if quiet {
            break;
        }
        assert!(Instant::now() < deadline, "ingest never stopped accepting");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tally.full.store(true, Ordering::SeqCst);
    let refused_before = tally.refused.load(Ordering::SeqCst);
    let deadline = Instant::now() + WAIT;
    while tally.refused.load(Ordering::SeqCst) < refused_before + 200 {
        assert!(Instant::now() < deadline, "clients stopped getting answers");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, ready) = get_json(&http, &format!("{}/readyz", ferry.base)).await;
    assert_eq!(status, 503, "{ready}");
    tally.full.store(false, Ordering::SeqCst);
    assert_eq!(
        tally.accepted_while_full.load(Ordering::SeqCst),
        0,
        "accepted while the disk was full"
    );

    // Space again: ingest resumes within seconds, without a restart.
    let acked_before = tally.acked.lock().unwrap().len();
    disk.resize(LARGE_MIB);
    let resized = Instant::now();
    let deadline = resized + Duration::from_secs(10);
    while tally.acked.lock().unwrap().len() < acked_before + 100 {
        assert!(
            Instant::now() < deadline,
            "ingest did not resume within 10 s of the disk having space"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("ingest resumed {:?} after the resize", resized.elapsed());
    wait_readiness(&http, &ferry.base, 200).await;
    tally.stop.store(true, Ordering::SeqCst);
    for client in clients {
        tokio::time::timeout(WAIT, client)
            .await
            .expect("clients finish")
            .unwrap();
    }

    // Every acknowledged event arrives (once or more: `webhook-id` tells).
    let acked = tally.acked.lock().unwrap().clone();
    assert_eq!(
        acked.len(),
        tally.next.load(Ordering::SeqCst),
        "every event sent was acknowledged in the end"
    );
    wait_until_received(&receiver, &acked, WAIT).await;
    assert_nothing_waiting(&http, &ferry.base, Duration::from_secs(30)).await;
    // Attempts made while the disk was full were recorded once it had space
    // (or made again): each one the receiver answered is counted, once.
    let (deliveries, attempts) = deliveries_and_attempts(&http, &ferry.base).await;
    assert_eq!(deliveries, acked.len());
    assert_eq!(
        attempts,
        receiver.count() as u64,
        "attempts recorded vs made"
    );
    let errors = counter(&http, &ferry.base, "ferry_store_write_errors_total").await;
    assert!(
        sum(&errors) > 0.0,
        "the metric of write errors counted nothing"
    );
    assert!(
        ferry.child.try_wait().unwrap().is_none(),
        "Ferry kept running"
    );
    eprintln!(
        "{} events acknowledged, {} refusals ({} for a full disk), {attempts} attempts; {errors:#?}",
        acked.len(),
        tally.refused.load(Ordering::SeqCst),
        tally.refused_full.load(Ordering::SeqCst)
    );
    drop(ferry);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_events_and_ingest_resumes_once_it_has_space() {
    fill_the_disk_then_give_it_space(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_log_on_the_full_disk_every_request_is_still_answered() {
    fill_the_disk_then_give_it_space(true).await;
}

/// Whether every item of a batch answer has this status.
fn every_item_is(body: &Value, status: u16) -> bool {
    body["results"]
        .as_array()
        .is_some_and(|items| items.iter().all(|r| r["status"] == status))
}

async fn post(http: &reqwest::Client, url: String, body: Value) -> (u16, Value) {
    let response = http
        .post(url)
        .bearer_auth(ADMIN_KEY)
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("a request got no answer: {e}"));
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Every log line fails to be written (and `debug` logs on every request):
/// requests are answered all the same, accepted or refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_stdout_and_stderr_on_dev_full_every_request_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let env = [("FERRY_STORE_BUSY_TIMEOUT_MS", "300".to_owned())];
    let ferry = FerryProcess::launch(&data, Output::Full, "debug", &[], &env).await;
    let http = reqwest::Client::new();
    let (events, batch) = (
        format!("{}/v1/events", ferry.base),
        format!("{}/v1/events/batch", ferry.base),
    );
    let one = |i: usize| json!({"type": "t", "id": format!("full-log-{i}"), "data": {"i": i}});

    let (status, body) = post(&http, events.clone(), one(0)).await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = post(&http, batch.clone(), json!({"events": [one(1), one(2)]})).await;
    assert_eq!(status, 200, "{body}");
    assert!(every_item_is(&body, 202), "{body}");

    // Refusals log a warning each: they are answered too.
    let lock = SqliteWriteLock::take(&data.join("ferry.db"));
    let (status, body) = post(&http, events.clone(), one(3)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("unavailable")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("storage is unavailable"),
        "{body}"
    );
    let (status, body) = post(&http, batch.clone(), json!({"events": [one(4), one(5)]})).await;
    assert_eq!(status, 200, "{body}");
    assert!(every_item_is(&body, 503), "{body}");
    let ready = wait_readiness(&http, &ferry.base, 503).await;
    assert_eq!(ready["reason"], "storage is unavailable", "{ready}");
    drop(lock);

    // The ingest writer lived through it.
    wait_readiness(&http, &ferry.base, 200).await;
    let (status, body) = post(&http, events, one(3)).await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = post(&http, batch, json!({"events": [one(4), one(5)]})).await;
    assert!(status == 200 && every_item_is(&body, 202), "{body}");
    drop(ferry);
}

/// The admin key made on first start is shown only on stdout: if it cannot
/// be, the start fails and says how to get an admin key instead — which
/// then works.
#[tokio::test]
async fn an_admin_key_that_cannot_be_shown_fails_the_first_start_with_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let stderr = dir.path().join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["serve", "--data-dir"])
        .arg(&data)
        .args([
            "--listen",
            &format!("127.0.0.1:{}", ferry_testkit::free_port()),
        ])
        .env_remove("FERRY_BOOTSTRAP_ADMIN_KEY")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        )
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "ferry kept running without showing its admin key"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let said = std::fs::read_to_string(&stderr).unwrap();
    assert!(!status.success(), "{said}");
    assert!(
        said.contains("cannot show the generated admin API key"),
        "{said}"
    );
    assert!(said.contains("FERRY_BOOTSTRAP_ADMIN_KEY"), "{said}");

    let log = dir.path().join("ferry.log");
    let ferry = FerryProcess::launch(&data, Output::File(&log), "info", &[], &[]).await;
    let response = reqwest::Client::new()
        .get(format!("{}/v1/destinations", ferry.base))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}
