//! A log that cannot be written: with stdout and stderr on `/dev/full`,
//! every request is still answered, accepted or refused.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::process::{ADMIN_KEY, FerryProcess, Output};

const WAIT: Duration = Duration::from_secs(60);

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

/// Another process holding the database's write lock (as a backup tool
/// might): writes fail after the busy timeout. Released when dropped.
struct WriteLock {
    holder: std::process::Child,
}

impl WriteLock {
    fn take(db: &Path) -> Self {
        let mut holder = Command::new("python3")
            .arg("-c")
            .arg("import sqlite3,sys\nc=sqlite3.connect(sys.argv[1],isolation_level=None)\nc.execute('BEGIN EXCLUSIVE')\nprint('locked',flush=True)\nsys.stdin.read()")
            .arg(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "locked");
        Self { holder }
    }
}

impl Drop for WriteLock {
    fn drop(&mut self) {
        drop(self.holder.stdin.take());
        let _ = self.holder.wait();
    }
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
    assert!(
        body["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == 202),
        "{body}"
    );

    // Refusals log a warning each: they are answered too.
    let lock = WriteLock::take(&data.join("ferry.db"));
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
    assert!(
        body["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == 503),
        "{body}"
    );
    let ready = wait_readiness(&http, &ferry.base, 503).await;
    assert_eq!(ready["reason"], "storage is unavailable", "{ready}");
    drop(lock);

    // The ingest writer lived through it.
    wait_readiness(&http, &ferry.base, 200).await;
    let (status, body) = post(&http, events, one(3)).await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = post(&http, batch, json!({"events": [one(4), one(5)]})).await;
    assert!(
        status == 200
            && body["results"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["status"] == 202),
        "{body}"
    );
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
