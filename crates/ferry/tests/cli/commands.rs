//! The CLI against a running server, as a user types it.

use std::process::{Command, Output};

use ferry_testkit::Receiver;
use serde_json::Value;

use crate::process::{ADMIN_KEY, FerryProcess};

pub(crate) fn ferry(base: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .env("FERRY_URL", base)
        .env("FERRY_API_KEY", ADMIN_KEY)
        .output()
        .unwrap()
}

/// An id of the right shape that names nothing.
const UNKNOWN: &str = "01jq3v8k2m4n6p8r0t2v4x6z8a";

pub(crate) fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts that the API refused (exit 1) and that stderr has `says`.
pub(crate) fn refused(out: &Output, says: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for s in says {
        assert!(err.contains(s), "{s:?} not in {err}");
    }
}

pub(crate) fn json(out: &Output) -> Value {
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
async fn secrets_never_reach_the_logs_or_the_database_file() {
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
    // The operational log kept in the data dir: one JSON object per line.
    let kept = std::fs::read_to_string(dir.path().join("data/logs/ferry.log")).unwrap();
    let lines: Vec<Value> = kept
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let listening = lines
        .iter()
        .find(|l| l["message"] == "Ferry is listening.")
        .unwrap_or_else(|| panic!("no start line in {kept}"));
    assert_eq!(listening["level"], "INFO");
    assert_eq!(listening["target"], "ferry_server::server");
    assert!(listening["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(
        lines.iter().any(|l| l["level"] == "DEBUG"),
        "RUST_LOG applies"
    );
    let mut everything = std::fs::read(dir.path().join("server.log")).unwrap();
    everything.extend(kept.as_bytes());
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

#[tokio::test]
async fn orgs_and_api_keys_are_managed_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let ferry_proc = FerryProcess::start(dir.path()).await;
    let base = ferry_proc.base.as_str();

    let org = json(&ferry(
        base,
        &["--json", "orgs", "create", "--name", "acme"],
    ));
    let org_id = org["id"].as_str().unwrap().to_owned();
    assert!(org_id.starts_with("org_"), "{org}");
    let listed = stdout(&ferry(base, &["orgs", "list"]));
    assert!(
        listed.contains(&org_id) && listed.contains("acme"),
        "{listed}"
    );
    let shown = stdout(&ferry(base, &["orgs", "get", &org_id]));
    assert!(shown.contains("name            acme\n"), "{shown}");
    assert!(shown.contains("alert settings  defaults\n"), "{shown}");
    let updated = json(&ferry(
        base,
        &["--json", "orgs", "update", &org_id, "--name", "acme-eu"],
    ));
    assert_eq!(updated["name"], "acme-eu");
    let unknown_org = format!("org_{UNKNOWN}");
    refused(&ferry(base, &["orgs", "get", &unknown_org]), &["not_found"]);
    refused(
        &ferry(base, &["orgs", "update", &org_id, "--name", ""]),
        &["validation_failed", "name"],
    );

    // Alert settings: the flags change the parts they name.
    let alerting = json(&ferry(
        base,
        &[
            "--json",
            "orgs",
            "update",
            &org_id,
            "--alert-after-failures",
            "5",
            "--never-disable",
        ],
    ));
    assert_eq!(
        alerting["alerts"],
        serde_json::json!({"alert_after": {"consecutive_failures": 5}, "disable_after": {}})
    );
    let shown = stdout(&ferry(
        base,
        &["orgs", "update", &org_id, "--alert-debounce", "30m"],
    ));
    assert!(
        shown.contains("failing after 5 in a row; never disabled; debounce 1800s"),
        "{shown}"
    );
    refused(
        &ferry(
            base,
            &["orgs", "update", &org_id, "--alert-after-rate", "150:20:5m"],
        ),
        &[
            "validation_failed",
            "alerts.alert_after.failure_rate.percent",
        ],
    );
    let created = json(&ferry(
        base,
        &[
            "--json",
            "destinations",
            "create",
            "--name",
            "hook",
            "--webhook-url",
            "http://127.0.0.1:9/hook",
        ],
    ));
    let dst = created["destination"]["id"]
        .as_str()
        .or(created["id"].as_str())
        .unwrap()
        .to_owned();
    let set = stdout(&ferry(
        base,
        &["destinations", "alerts", &dst, "--disable-after", "2d"],
    ));
    assert_eq!(set, format!("{dst}: disabled after 172800s failing\n"));
    let shown = stdout(&ferry(base, &["destinations", "alerts", &dst]));
    assert_eq!(shown, set);
    let cleared = stdout(&ferry(
        base,
        &["destinations", "alerts", &dst, "--default-alerts"],
    ));
    assert_eq!(cleared, format!("{dst}: the organization's settings\n"));

    // The key is printed once, with the warning; it works with its scope only.
    let other = json(&ferry(
        base,
        &[
            "--json", "api-keys", "create", "--name", "acme-ci", "--scope", "ingest", "--org",
            &org_id,
        ],
    ));
    assert_eq!(other["org_id"], org_id.as_str(), "{other}");
    assert!(other["key"].as_str().unwrap().starts_with("fk_"), "{other}");
    // An admin lists and revokes another organization's keys.
    let theirs = json(&ferry(
        base,
        &["--json", "api-keys", "list", "--org", &org_id],
    ));
    assert_eq!(theirs["data"][0]["id"], other["id"], "{theirs}");
    let other_id = other["id"].as_str().unwrap();
    ferry(base, &["api-keys", "delete", other_id]);
    let theirs = json(&ferry(
        base,
        &["--json", "api-keys", "list", "--org", &org_id],
    ));
    assert_eq!(theirs["data"], serde_json::json!([]), "{theirs}");
    let created = stdout(&ferry(
        base,
        &["api-keys", "create", "--name", "ci", "--scope", "read"],
    ));
    assert!(created.contains("It is shown only this once"), "{created}");
    let key_id = created
        .strip_prefix("Created API key ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    let key = created
        .lines()
        .find_map(|l| l.strip_prefix("API key: "))
        .unwrap()
        .to_owned();
    assert!(key.starts_with("fk_"), "{created}");
    let keys = json(&ferry(base, &["--json", "api-keys", "list"]));
    let listed = keys["data"].as_array().unwrap();
    assert!(listed.iter().any(|k| k["id"] == key_id.as_str()), "{keys}");
    assert!(
        !keys.to_string().contains(&key),
        "the key is listed: {keys}"
    );
    let as_ci = ["--api-key", key.as_str()];
    let empty = stdout(&ferry(base, &[&as_ci[..], &["sources", "list"]].concat()));
    assert!(empty.starts_with("No sources yet"), "{empty}");
    refused(
        &ferry(
            base,
            &[&as_ci[..], &["orgs", "create", "--name", "x"]].concat(),
        ),
        &["forbidden"],
    );

    let revoked = stdout(&ferry(base, &["api-keys", "delete", &key_id]));
    assert_eq!(revoked, format!("Revoked API key {key_id}.\n"));
    refused(
        &ferry(base, &[&as_ci[..], &["sources", "list"]].concat()),
        &["unauthorized"],
    );
    let unknown_key = format!("key_{UNKNOWN}");
    let out = ferry(base, &["--json", "api-keys", "delete", &unknown_key]);
    refused(&out, &["not_found"]);
    // Scripts get the API's error document on stdout.
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["error"], "not_found");
}

// The CLI runs as a blocking child process: a second worker thread keeps
// the receiver answering meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_events_and_the_audit_log_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let ferry_proc = FerryProcess::start(dir.path()).await;
    let base = ferry_proc.base.as_str();

    let source = json(&ferry(
        base,
        &[
            "--json",
            "sources",
            "create",
            "--name",
            "courier",
            "--scheme",
            "hmac-sha256",
            "--secret",
            "src-secret-1",
            "--signature-header",
            "X-Signature",
            "--required",
            "/shipment/id",
        ],
    ));
    let src = source["id"].as_str().unwrap().to_owned();
    assert_eq!(source["url"], format!("/in/{src}"));
    let listed = stdout(&ferry(base, &["sources", "list"]));
    assert!(
        listed.contains(&src) && listed.contains("courier"),
        "{listed}"
    );
    let shown = stdout(&ferry(base, &["sources", "get", &src]));
    assert!(
        shown.contains("hmac-sha256") && shown.contains("/shipment/id"),
        "{shown}"
    );
    assert!(!shown.contains("src-secret-1"), "{shown}");
    refused(
        &ferry(
            base,
            &[
                "sources",
                "create",
                "--scheme",
                "hmac-sha256",
                "--secret",
                "s",
            ],
        ),
        &["validation_failed", "verification"],
    );
    let deleted = stdout(&ferry(base, &["sources", "delete", &src]));
    assert_eq!(deleted, format!("Deleted source {src}.\n"));
    refused(&ferry(base, &["sources", "get", &src]), &["not_found"]);

    // The audit log has the source's creation and deletion, page by page.
    let audit = json(&ferry(base, &["--json", "audit", "--entity-id", &src]));
    let records = audit["data"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{audit}");
    assert!(
        records.iter().all(|r| r["entity_id"] == src.as_str()),
        "{audit}"
    );
    let page = stdout(&ferry(
        base,
        &["audit", "--entity-id", &src, "--limit", "1"],
    ));
    assert!(
        page.contains(&src) && page.contains("More: add --cursor "),
        "{page}"
    );
    let cursor = page.rsplit("--cursor ").next().unwrap().trim();
    let next = stdout(&ferry(
        base,
        &[
            "audit",
            "--entity-id",
            &src,
            "--limit",
            "1",
            "--cursor",
            cursor,
        ],
    ));
    assert!(
        next.contains(&src) && next.contains("1 record.\n"),
        "{next}"
    );
    assert!(!next.contains("More:"), "{next}");
    refused(
        &ferry(base, &["audit", "--cursor", "not-a-cursor"]),
        &["invalid_request", "cursor"],
    );

    // An event shown with its delivery, then replayed to its destination.
    let receiver = Receiver::start().await;
    let url = receiver.url();
    let dst = json(&ferry(
        base,
        &[
            "--json",
            "destinations",
            "create",
            "--name",
            "d",
            "--webhook-url",
            &url,
            "--event-type",
            "ev.*",
        ],
    ))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sent = json(&ferry(base, &["--json", "send", "ev.one"]));
    let evt = sent["id"].as_str().unwrap().to_owned();
    receiver
        .wait_for(1, std::time::Duration::from_secs(10))
        .await
        .unwrap();
    let shown = stdout(&ferry(base, &["events", "get", &evt]));
    assert!(
        shown.contains("type     ev.one\n")
            && shown.contains("Deliveries (1):")
            && shown.contains(&dst),
        "{shown}"
    );
    let unknown_event = format!("evt_{UNKNOWN}");
    refused(
        &ferry(base, &["events", "get", &unknown_event]),
        &["not_found"],
    );
    let replayed = json(&ferry(
        base,
        &["--json", "events", "replay", &evt, "--destination", &dst],
    ));
    assert_eq!(replayed["requeued"], 1, "{replayed}");
    receiver
        .wait_for(2, std::time::Duration::from_secs(10))
        .await
        .unwrap();
    refused(
        &ferry(base, &["events", "replay", &unknown_event]),
        &["not_found"],
    );
}

/// `ferry export …` run in `dir` (where a download without `-o` lands).
fn ferry_in(dir: &std::path::Path, base: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .current_dir(dir)
        .env("FERRY_URL", base)
        .env("FERRY_API_KEY", ADMIN_KEY)
        .output()
        .unwrap()
}

fn gunzip(bytes: &[u8]) -> String {
    use std::io::Read as _;
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut text)
        .unwrap();
    text
}

// The CLI runs as a blocking child process: a second worker thread keeps
// the receiver answering meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_is_followed_to_the_end_and_downloaded_intact() {
    let dir = tempfile::tempdir().unwrap();
    let ferry_proc = FerryProcess::start(&dir.path().join("server")).await;
    let base = ferry_proc.base.as_str();
    let receiver = Receiver::start().await;
    let url = receiver.url();
    stdout(&ferry(
        base,
        &[
            "destinations",
            "create",
            "--name",
            "hook",
            "--webhook-url",
            &url,
            "--event-type",
            "exp.*",
        ],
    ));
    for n in 1..=3 {
        let data = format!(r#"{{"n": {n}}}"#);
        stdout(&ferry(base, &["send", "exp.made", "--data", &data]));
    }
    receiver
        .wait_for_distinct(3, std::time::Duration::from_secs(10))
        .await
        .unwrap();

    // Followed to the end (no terminal here: no bar), then the summary.
    let done = stdout(&ferry(
        base,
        &[
            "export",
            "create",
            "--source",
            "deliveries",
            "--format",
            "csv",
            "--compression",
            "gzip",
            "--wait",
        ],
    ));
    let id = done
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("Export "))
        .and_then(|rest| rest.strip_suffix(" succeeded."))
        .unwrap_or_else(|| panic!("{done}"))
        .to_owned();
    assert!(id.starts_with("exp_"), "{done}");
    assert!(done.contains("rows          3\n"), "{done}");
    assert!(done.contains("compression   gzip, ratio "), "{done}");

    // Saved where asked, checked, and read back as the CSV it is.
    let saved = dir.path().join("dlv.csv.gz");
    let out = stdout(&ferry(
        base,
        &["export", "download", &id, "-o", saved.to_str().unwrap()],
    ));
    assert!(out.contains("its SHA-256 matches"), "{out}");
    let bytes = std::fs::read(&saved).unwrap();
    let csv = gunzip(&bytes);
    let mut lines = csv.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("id,") && header.contains(",status"),
        "{csv}"
    );
    assert_eq!(lines.filter(|l| l.starts_with("dlv_")).count(), 3, "{csv}");
    let out = ferry(
        base,
        &["export", "download", &id, "-o", saved.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2), "an existing file was replaced");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    stdout(&ferry(
        base,
        &[
            "export",
            "download",
            &id,
            "-o",
            saved.to_str().unwrap(),
            "--force",
        ],
    ));
    // Without -o: the server's name, in the current directory; with -o -: stdout.
    stdout(&ferry_in(dir.path(), base, &["export", "download", &id]));
    let named = dir.path().join(format!("deliveries-{id}.csv.gz"));
    assert_eq!(std::fs::read(&named).unwrap(), bytes);
    let piped = ferry(base, &["export", "download", &id, "-o", "-"]);
    assert_eq!(piped.stdout, bytes);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // In the history and shown whole.
    let listed = stdout(&ferry(base, &["export", "list"]));
    assert!(
        listed.contains(&id) && listed.contains("succeeded") && listed.contains("gzip"),
        "{listed}"
    );
    let shown = stdout(&ferry(base, &["export", "get", &id]));
    assert!(
        shown.contains("status          succeeded\n") && shown.contains("\nResult:\n"),
        "{shown}"
    );
    let job = json(&ferry(base, &["--json", "export", "get", &id]));
    assert_eq!(job["result"]["rows"], 3, "{job}");

    // The server's refusals, named.
    refused(
        &ferry(base, &["export", "create", "--source", "orders"]),
        &["invalid_request", "orders"],
    );
    refused(&ferry(base, &["export", "cancel", &id]), &["conflict"]);
    let unknown = format!("exp_{UNKNOWN}");
    refused(
        &ferry(base, &["export", "download", &unknown]),
        &["not_found"],
    );
}
