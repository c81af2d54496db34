//! `ferry loadtest --kind … --target … --baseline` against the machine's
//! real brokers and databases: a small run through a server the tool starts
//! itself, where every event must be delivered, counted from Ferry's side and
//! read back with the kind's own client, and the baseline must publish and
//! read back as many; half of the kinds in `--mode drain` (stored while the
//! destination is disabled, then delivered once it is enabled); and the
//! errors a user gets for bad options.

use std::process::{Command, Output};

use serde_json::Value;

const EVENTS: u64 = 200;

fn loadtest(args: &[&str]) -> Output {
    loadtest_in(&std::env::temp_dir(), args)
}

/// `loadtest` with its temporary files (the started server's data dir)
/// under `tmp`.
fn loadtest_in(tmp: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("loadtest")
        .args(args)
        .env("TMPDIR", tmp)
        .env_remove("FERRY_URL")
        .env_remove("FERRY_API_KEY")
        .output()
        .unwrap()
}

/// Runs the tool on `kind` at `target` in `mode` and checks that every
/// event went through, both through Ferry and through the client alone.
fn every_event_is_delivered_and_read_back(kind: &str, target: &str, mode: &str) {
    let events = EVENTS.to_string();
    let out = loadtest(&[
        "--kind",
        kind,
        "--target",
        target,
        "-n",
        &events,
        "-c",
        "10",
        "--mode",
        mode,
        "--baseline",
        "--timeout-s",
        "120",
        "--json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{stderr}", String::from_utf8_lossy(&out.stdout)));
    assert!(out.status.success(), "{summary:#}\n{stderr}");
    assert_eq!(summary["ok"], true, "{summary:#}");
    assert_eq!(summary["kind"], kind);
    assert_eq!(summary["mode"], mode);
    let e2e = &summary["e2e"];
    assert_eq!(e2e["expected"], EVENTS, "{summary:#}");
    assert_eq!(e2e["received"], EVENTS, "{summary:#}");
    assert!(e2e["deliveries_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(summary["read_back"]["count"], EVENTS, "{summary:#}");
    let baseline = &summary["baseline"];
    assert_eq!(baseline["acknowledged"], EVENTS, "{summary:#}");
    assert_eq!(baseline["errors"], 0, "{summary:#}");
    assert_eq!(baseline["read_back"]["count"], EVENTS, "{summary:#}");
    assert!(summary["ferry_to_client"].as_f64().unwrap() > 0.0);
}

#[test]
fn amqp_runs_deliver_and_read_back_every_event() {
    every_event_is_delivered_and_read_back(
        "amqp",
        "amqp://guest:guest@127.0.0.1:5672/%2f",
        "drain",
    );
}

#[test]
fn nats_runs_deliver_and_read_back_every_event() {
    every_event_is_delivered_and_read_back("nats", "nats://127.0.0.1:4222", "e2e");
}

#[test]
fn redis_runs_deliver_and_read_back_every_event() {
    let url = std::env::var("FERRY_TEST_REDIS_URL").unwrap_or("redis://127.0.0.1:6379".into());
    every_event_is_delivered_and_read_back("redis", &url, "drain");
}

#[test]
fn mqtt_runs_deliver_and_read_back_every_event() {
    every_event_is_delivered_and_read_back("mqtt", "mqtt://127.0.0.1:1883", "e2e");
}

#[test]
fn postgres_runs_deliver_and_read_back_every_event() {
    every_event_is_delivered_and_read_back("postgres", &ferry_testkit::pg::database_url(), "e2e");
}

#[test]
fn mysql_runs_deliver_and_read_back_every_event() {
    every_event_is_delivered_and_read_back("mysql", "mysql://root@127.0.0.1:3306/test", "drain");
}

#[test]
fn a_drain_run_delivers_every_stored_event_once_the_destination_is_enabled() {
    let events = EVENTS.to_string();
    let out = loadtest(&["-n", &events, "-c", "10", "--mode", "drain", "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{stderr}", String::from_utf8_lossy(&out.stdout)));
    assert!(out.status.success(), "{summary:#}\n{stderr}");
    assert_eq!(summary["ingest"]["accepted"], EVENTS, "{summary:#}");
    let drain = &summary["e2e"];
    assert_eq!(drain["received"], EVENTS, "{summary:#}");
    assert_eq!(drain["duplicates"], 0, "{summary:#}");
    assert_eq!(drain["without_webhook_id"], 0, "{summary:#}");
    assert_eq!(summary["mode"], "drain", "{summary:#}");
}

/// `--mode export --export-after-restart`: the stored events survive the
/// restart (a `kill -9`), and the export after it holds every one of them.
#[test]
fn an_export_after_a_restart_holds_every_stored_delivery() {
    let events = EVENTS.to_string();
    // The server's data dir is kept under a temporary dir of this test's
    // own, to read from its log that it did start twice.
    let tmp = tempfile::tempdir().unwrap();
    let out = loadtest_in(
        tmp.path(),
        &[
            "-n",
            &events,
            "-c",
            "10",
            "--batch",
            "20",
            "--mode",
            "export",
            "--export-after-restart",
            "--keep-data",
            "--json",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{stderr}", String::from_utf8_lossy(&out.stdout)));
    assert!(out.status.success(), "{summary:#}\n{stderr}");
    let export = &summary["export"];
    assert_eq!(export["status"], "succeeded", "{summary:#}");
    assert_eq!(export["rows"], EVENTS, "{summary:#}");
    assert!(
        summary["export_start_rss_mb"].as_f64().unwrap() > 0.0,
        "{summary:#}"
    );
    assert!(
        summary["export_peak_rss_mb"].as_f64().unwrap() > 0.0,
        "{summary:#}"
    );
    let kept = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("server.log").exists())
        .expect("the kept data dir");
    let log = std::fs::read_to_string(kept.join("server.log")).unwrap();
    assert_eq!(
        log.matches("Ferry is listening on").count(),
        2,
        "started, then started again: {log}"
    );
}

/// Against a running server (`--url`), the tool deletes its destination at
/// the end, while some attempt records may still be on their way (Ferry's
/// counters, which the tool waits for, run ahead of the records written in
/// batches): none of the deliveries it made may end up failed by that. The
/// store's conformance suite checks the deletion of a destination with
/// attempts in flight step by step; this is the whole run's end result.
#[tokio::test]
async fn a_run_against_a_running_server_leaves_its_deliveries_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let server = crate::process::FerryProcess::start(dir.path()).await;
    let events = 5_000;
    let redis = std::env::var("FERRY_TEST_REDIS_URL").unwrap_or("redis://127.0.0.1:6379".into());
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["loadtest", "--url", &server.base, "--api-key"])
        .arg(crate::process::ADMIN_KEY)
        .args(["-n", &events.to_string(), "-c", "50", "--mode", "drain"])
        .args(["--kind", "redis", "--target", &redis, "--json"])
        .output()
        .await
        .unwrap();
    let summary: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(summary["ok"], true, "{summary:#}");
    let http = reqwest::Client::new();
    let count = |status: &'static str| {
        let request = http
            .get(format!(
                "{}/v1/deliveries?status={status}&limit=1000",
                server.base
            ))
            .bearer_auth(crate::process::ADMIN_KEY);
        async move {
            let body: Value = request.send().await.unwrap().json().await.unwrap();
            body["data"].as_array().map(Vec::len).unwrap()
        }
    };
    assert_eq!(summary["e2e"]["received"], events, "{summary:#}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while count("delivering").await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "attempts still recorded as in flight"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The first page of each status (up to 1,000).
    assert_eq!(count("delivered").await, 1_000, "{summary:#}");
    for status in ["failed", "delivering", "pending", "retrying", "dead"] {
        assert_eq!(count(status).await, 0, "{status}");
    }
}

#[test]
fn bad_kind_options_are_refused_before_anything_starts() {
    for (args, says) in [
        (&["--kind", "amqp"][..], "--kind amqp needs --target"),
        (
            &["--kind", "nats", "--target", "redis://127.0.0.1:6379"],
            "must be a nats:// or tls:// URL",
        ),
        (
            &[
                "--kind",
                "postgres",
                "--target",
                "postgres://postgres@127.0.0.1",
            ],
            "must name a database",
        ),
        (
            &["--target", "redis://127.0.0.1:6379"],
            "--target is for the broker and database kinds",
        ),
        (&["--baseline"], "--baseline compares Ferry"),
        (
            &[
                "--kind",
                "redis",
                "--target",
                "redis://127.0.0.1",
                "--mode",
                "ingest",
            ],
            "--mode ingest delivers nothing",
        ),
        (
            &["--mode", "drain", "--export-after-restart"],
            "--export-after-restart needs --mode export",
        ),
    ] {
        let out = loadtest(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}
