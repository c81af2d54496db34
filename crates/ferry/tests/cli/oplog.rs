//! The operational log a running `ferry serve` keeps in its data dir,
//! exported through the API as the `log` source with its filters, by an
//! admin only.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::process::{ADMIN_KEY, FerryProcess};

async fn call(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let request = match body {
        Some(body) => http.post(format!("{base}{path}")).json(&body),
        None => http.get(format!("{base}{path}")),
    };
    let response = request.bearer_auth(key).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Runs an export to its end; returns the rows of its NDJSON output.
async fn export(http: &reqwest::Client, base: &str, body: Value) -> Vec<Value> {
    let (status, job) = call(http, base, ADMIN_KEY, "/v1/exports", Some(body)).await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let job = loop {
        let (_, job) = call(http, base, ADMIN_KEY, &format!("/v1/exports/{id}"), None).await;
        if !matches!(job["status"].as_str(), Some("queued" | "running")) {
            break job;
        }
        assert!(Instant::now() < deadline, "{job}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(job["status"], "succeeded", "{job}");
    let text = std::fs::read_to_string(job["result"]["location"].as_str().unwrap()).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn the_kept_log_is_exported_with_its_filters_by_an_admin_only() {
    let dir = tempfile::tempdir().unwrap();
    let ferry_proc = FerryProcess::start(dir.path()).await;
    let base = ferry_proc.base.as_str();
    let http = reqwest::Client::new();
    // An export that fails logs a warning with its reason.
    std::fs::write(dir.path().join("data/files/blocker"), b"").unwrap();
    let (status, failing) = call(
        &http,
        base,
        ADMIN_KEY,
        "/v1/exports",
        Some(json!({"source": "events", "target": {"file": "blocker/out.csv"}})),
    )
    .await;
    assert_eq!(status, 202, "{failing}");
    let failing_id = failing["id"].as_str().unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    let warnings = loop {
        let rows = export(
            &http,
            base,
            json!({"source": "log", "format": "ndjson", "filter": {"level": "warn"}}),
        )
        .await;
        if rows.iter().any(|r| r["fields"]["export_id"] == failing_id) {
            break rows;
        }
        assert!(Instant::now() < deadline, "no warning logged: {rows:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        warnings
            .iter()
            .all(|r| matches!(r["level"].as_str(), Some("warn" | "error"))),
        "{warnings:?}"
    );
    let failed = warnings
        .iter()
        .find(|r| r["fields"]["export_id"] == failing_id)
        .unwrap();
    assert_eq!(failed["message"], "Export failed.");
    assert_eq!(failed["component"], "ferry_server::app::exports::runner");
    assert!(
        failed["fields"]["reason"]
            .as_str()
            .unwrap()
            .contains("cannot create the export file"),
        "{failed}"
    );

    let started = export(
        &http,
        base,
        json!({"source": "log", "format": "ndjson", "fields": ["timestamp", "level", "message"],
               "filter": {"component": "ferry_server::server", "until": "2999-01-01T00:00:00Z"}}),
    )
    .await;
    let listening = started
        .iter()
        .find(|r| r["message"] == "Ferry is listening.")
        .unwrap_or_else(|| panic!("{started:?}"));
    assert_eq!(listening["level"], "info");
    assert_eq!(
        listening.as_object().unwrap().len(),
        3,
        "only the fields asked"
    );
    let none = export(
        &http,
        base,
        json!({"source": "log", "format": "ndjson", "filter": {"until": "2000-01-01T00:00:00Z"}}),
    )
    .await;
    assert!(none.is_empty(), "{none:?}");

    // Across organizations: an organization's manager may not read it.
    let (_, key) = call(
        &http,
        base,
        ADMIN_KEY,
        "/v1/api-keys",
        Some(json!({"name": "manager", "scopes": ["manage", "read"]})),
    )
    .await;
    let manager = key["key"].as_str().unwrap_or_else(|| panic!("{key}"));
    let (status, refused) = call(
        &http,
        base,
        manager,
        "/v1/exports",
        Some(json!({"source": "log"})),
    )
    .await;
    assert_eq!(status, 403, "{refused}");
    let (status, refused) = call(
        &http,
        base,
        ADMIN_KEY,
        "/v1/exports",
        Some(json!({"source": "log", "filter": {"level": "loud"}})),
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["details"][0]["field"], "filter.level", "{refused}");
}
