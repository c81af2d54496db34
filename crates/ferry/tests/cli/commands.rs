//! The CLI against a running server, as a user types it.

use std::process::{Command, Output};

use ferry_testkit::Receiver;
use serde_json::Value;

use crate::process::{ADMIN_KEY, FerryProcess};

fn ferry(base: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .env("FERRY_URL", base)
        .env("FERRY_API_KEY", ADMIN_KEY)
        .output()
        .unwrap()
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

// The CLI runs as a blocking child process: a second worker thread keeps
// the receiver answering meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_can_create_a_destination_send_and_follow_an_event() {
    let dir = tempfile::tempdir().unwrap();
    let ferry_proc = FerryProcess::start(dir.path()).await;
    let base = ferry_proc.base.clone();
    let receiver = Receiver::start().await;
    let url = receiver.url();

    let created = json(&ferry(
        &base,
        &[
            "--json",
            "destinations",
            "create",
            "--name",
            "cli",
            "--webhook-url",
            &url,
            "--event-type",
            "cli.*",
        ],
    ));
    let dst = created["id"].as_str().unwrap().to_owned();
    assert!(
        created["signing_secret"]
            .as_str()
            .unwrap()
            .starts_with("whsec_")
    );
    let out = ferry(&base, &["destinations", "list"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&dst));
    let tested = json(&ferry(&base, &["--json", "destinations", "test", &dst]));
    assert_eq!(tested["ok"], true);

    let sent = json(&ferry(
        &base,
        &[
            "--json",
            "send",
            "cli.hello",
            "--data",
            r#"{"hello":"world"}"#,
        ],
    ));
    let id = sent["id"].as_str().unwrap().to_owned();
    receiver
        .wait_for_distinct(2, std::time::Duration::from_secs(10))
        .await
        .unwrap(); // the test ping and the event
    assert!(receiver.distinct_ids().contains(&id));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let status = ferry(&base, &["status", &id]);
        let text = String::from_utf8_lossy(&status.stdout).to_string();
        if text.contains("delivered") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "status never showed delivered: {text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let listed = json(&ferry(
        &base,
        &["--json", "deliveries", "list", "--status", "delivered"],
    ));
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    let dlq = json(&ferry(&base, &["--json", "dlq", "list"]));
    assert!(dlq["data"].as_array().unwrap().is_empty());
    let rotated = ferry(&base, &["admin", "rotate-master-key"]);
    assert!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    assert!(String::from_utf8_lossy(&rotated.stdout).contains("Re-sealed 1 secrets"));
    let replayed = json(&ferry(&base, &["--json", "replay", &id]));
    assert_eq!(replayed["requeued"], 1);
    receiver
        .wait_for(3, std::time::Duration::from_secs(10))
        .await
        .unwrap();
}

#[tokio::test]
async fn errors_are_clear_and_exit_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let ferry_proc = FerryProcess::start(dir.path()).await;
    let out = ferry(
        &ferry_proc.base,
        &[
            "destinations",
            "create",
            "--name",
            "bad",
            "--webhook-url",
            "ftp://nope",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("validation_failed") && err.contains("config.url"),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["status", "evt_x"])
        .env("FERRY_URL", &ferry_proc.base)
        .env_remove("FERRY_API_KEY")
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("FERRY_API_KEY"));
    let out = ferry("http://127.0.0.1:9", &["status", "evt_x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach Ferry"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_log_or_the_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let ferry_proc = FerryProcess::start_logging(dir.path(), "debug").await;
    let base = ferry_proc.base.clone();
    let receiver = Receiver::start().await;
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        http.post(format!("{base}{path}"))
            .bearer_auth(ADMIN_KEY)
            .json(&body)
            .send()
    };
    let token = "tok-never-logged-4242";
    let created: Value = post(
        "/v1/destinations",
        serde_json::json!({"name": "d", "kind": "webhook", "config": {"url": receiver.url()}, "filter": {"event_types": ["*"]},
                           "auth": {"type": "basic", "username": "u", "password": token}}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let signing = created["signing_secret"].as_str().unwrap().to_owned();
    let source_secret = "src-secret-never-logged-77";
    post("/v1/sources", serde_json::json!({"name": "s", "verification": {"scheme": "hmac-sha256", "header": "x-sig", "secrets": [source_secret]}}))
        .await
        .unwrap();
    post("/v1/events", serde_json::json!({"type": "t", "data": {}}))
        .await
        .unwrap();
    receiver
        .wait_for(1, std::time::Duration::from_secs(10))
        .await
        .unwrap();
    // A failing check logs its error too.
    post(
        &format!("/v1/destinations/{}/test", created["id"].as_str().unwrap()),
        serde_json::json!({}),
    )
    .await
    .unwrap();
    drop(ferry_proc);
    let mut everything = std::fs::read(dir.path().join("server.log")).unwrap();
    for file in ["ferry.db", "ferry.db-wal"] {
        everything.extend(std::fs::read(dir.path().join("data").join(file)).unwrap_or_default());
    }
    for secret in [token, signing.as_str(), source_secret, ADMIN_KEY] {
        assert!(
            !everything
                .windows(secret.len())
                .any(|w| w == secret.as_bytes()),
            "{secret} leaked"
        );
    }
}
