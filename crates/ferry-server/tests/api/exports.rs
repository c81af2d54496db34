//! Data exports through the whole server: every format and compression
//! read back with a standard parser, redaction checked by searching the
//! output for every secret, bad requests refused by name with nothing
//! created, cancel and failure leaving nothing at the target, and a job
//! interrupted by a restart failed with its file removed.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{ADMIN_KEY, TestServer};

/// Starts an export and waits for it to end; returns the job.
pub(super) async fn export(server: &TestServer, body: Value) -> Value {
    let (status, job) = server.post("/v1/exports", body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    wait_done(server, job["id"].as_str().unwrap()).await
}

async fn wait_done(server: &TestServer, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, job) = server.get(&format!("/v1/exports/{id}")).await;
        if !matches!(job["status"].as_str(), Some("queued" | "running")) {
            return job;
        }
        assert!(Instant::now() < deadline, "export {id} did not end: {job}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The bytes `GET /v1/exports/{id}/download` streams, checked against the
/// job's checksum.
async fn download(server: &TestServer, job: &Value) -> Vec<u8> {
    let id = job["id"].as_str().unwrap();
    let response = server
        .http
        .get(format!("{}/v1/exports/{id}/download", server.base))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let sha = response.headers()["x-ferry-sha256"]
        .to_str()
        .unwrap()
        .to_owned();
    let bytes = response.bytes().await.unwrap().to_vec();
    assert_eq!(sha, job["result"]["sha256"], "{job}");
    use sha2::Digest;
    assert_eq!(hex::encode(sha2::Sha256::digest(&bytes)), sha);
    let location = job["result"]["location"].as_str().unwrap();
    assert_eq!(
        std::fs::read(location).unwrap(),
        bytes,
        "the file is what downloads"
    );
    bytes
}

pub(super) fn decompress(bytes: &[u8], compression: &str) -> String {
    let mut text = String::new();
    match compression {
        "gzip" => {
            flate2::read::MultiGzDecoder::new(bytes)
                .read_to_string(&mut text)
                .unwrap();
        }
        "zip" => {
            let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
            assert_eq!(archive.len(), 1, "one entry");
            archive
                .by_index(0)
                .unwrap()
                .read_to_string(&mut text)
                .unwrap();
        }
        _ => text = String::from_utf8(bytes.to_vec()).unwrap(),
    }
    text
}

/// The rows of an output, as JSON objects (CSV cells as strings).
pub(super) fn rows(text: &str, format: &str) -> Vec<Value> {
    match format {
        "json" => serde_json::from_str::<Vec<Value>>(text).unwrap(),
        "ndjson" => text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect(),
        "yaml" => serde_saphyr::from_str::<Vec<Value>>(text).unwrap(),
        "csv" => {
            let mut reader = csv::Reader::from_reader(text.as_bytes());
            let headers = reader.headers().unwrap().clone();
            reader
                .records()
                .map(|r| {
                    let r = r.unwrap();
                    Value::Object(
                        headers
                            .iter()
                            .zip(r.iter())
                            .map(|(h, v)| (h.to_owned(), json!(v)))
                            .collect(),
                    )
                })
                .collect()
        }
        other => panic!("no parser for {other}"),
    }
}

/// Text that formats find hard to hold.
fn tricky(n: usize) -> Value {
    json!({
        "n": n,
        "quote": "say \"hi\", then, leave",
        "lines": "one\ntwo\r\nthree",
        "formula": "=HYPERLINK(\"http://x\")",
        "yaml": "yes",
        "colon": "key: value # not a comment",
        "unicode": "héllo → 世界 \u{2028} 🚀",
        "control": "tab\there \u{1} bell",
        "empty": "",
    })
}

#[tokio::test]
async fn every_format_and_compression_reads_back_with_a_standard_parser() {
    let server = TestServer::start().await;
    for n in 0..12 {
        server
            .send(json!({"type": "order.created", "data": tricky(n)}))
            .await;
    }
    for format in ["csv", "json", "ndjson", "yaml", "text"] {
        for compression in ["none", "gzip", "zip"] {
            let job = export(
                &server,
                json!({"source": "events", "format": format, "compression": compression,
                       "fields": ["id", "type", "data", "created_at"]}),
            )
            .await;
            assert_eq!(job["status"], "succeeded", "{format}/{compression}: {job}");
            assert_eq!(job["result"]["rows"], 12, "{job}");
            assert_eq!(job["progress"]["percent"], 100.0, "{job}");
            let bytes = download(&server, &job).await;
            let text = decompress(&bytes, compression);
            assert_eq!(
                job["result"]["uncompressed_bytes"].as_u64().unwrap(),
                text.len() as u64
            );
            if format == "text" {
                let lines: Vec<&str> = text.lines().collect();
                assert_eq!(lines.len(), 2 + 12, "header, rule, one line a row:\n{text}");
                assert!(lines[0].starts_with("id"), "{text}");
                continue;
            }
            let mut got = rows(&text, format);
            assert_eq!(got.len(), 12, "{format}/{compression}");
            got.sort_by_key(|r| {
                let data = &r["data"];
                let data = data
                    .as_str()
                    .map(|s| serde_json::from_str::<Value>(s).unwrap())
                    .unwrap_or_else(|| data.clone());
                data["n"].as_u64().unwrap()
            });
            for (n, row) in got.iter().enumerate() {
                let data = if format == "csv" {
                    serde_json::from_str::<Value>(row["data"].as_str().unwrap()).unwrap()
                } else {
                    row["data"].clone()
                };
                assert_eq!(data, tricky(n), "{format}/{compression}");
                assert_eq!(row["type"], "order.created");
            }
        }
    }
}

#[tokio::test]
async fn csv_cells_a_spreadsheet_would_run_are_escaped() {
    let server = TestServer::start().await;
    server
        .send(json!({"type": "=cmd|' /C calc'!A0", "data": {}}))
        .await;
    let job = export(&server, json!({"source": "events", "fields": ["type"]})).await;
    let text = decompress(&download(&server, &job).await, "none");
    let got = rows(&text, "csv");
    assert_eq!(got[0]["type"], "'=cmd|' /C calc'!A0", "{text}");
}

#[tokio::test]
async fn a_redacted_value_never_reaches_the_output() {
    let server = TestServer::start().await;
    let secrets = [
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "fk_live_3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c",
        "AKIAIOSFODNN7EXAMPLE",
        "4111111111111111",
        "hunter2-super-secret",
        "eyJhbGciOiJIUzI1NiJ9.payload.signature",
        "card-holder-name-Jane-Roe",
    ];
    server
        .send(json!({"type": "payment.failed", "data": {
            "signing": secrets[0],
            "note": format!("key {} was used", secrets[1]),
            "aws": secrets[2],
            "card": {"number": secrets[3], "holder": secrets[6]},
            "callback": format!("https://admin:{}@hooks.example.com/in", secrets[4]),
            "headers": {"Authorization": format!("Bearer {}", secrets[5])},
            "amount": 4200,
        }}))
        .await;
    for format in ["csv", "json", "ndjson", "yaml", "text"] {
        let job = export(
            &server,
            json!({"source": "events", "format": format,
                   "redact": ["/data/card/holder"], "redact_secrets": true}),
        )
        .await;
        assert_eq!(job["status"], "succeeded", "{job}");
        let text = decompress(&download(&server, &job).await, "none");
        for secret in secrets {
            for part in secret.as_bytes().windows(8) {
                let part = std::str::from_utf8(part).unwrap();
                assert!(
                    !text.contains(part),
                    "{format}: `{part}` of a secret is in the output:\n{text}"
                );
            }
        }
        assert!(text.contains("[REDACTED]"), "{text}");
        assert!(text.contains("4200"), "other data stays: {text}");
        assert!(text.contains("hooks.example.com"), "{text}");
    }
}

#[tokio::test]
async fn bad_requests_are_refused_by_name_and_create_nothing() {
    let server = TestServer::start().await;
    let cases = [
        (
            json!({"source": "orders"}),
            StatusCode::BAD_REQUEST,
            "source",
        ),
        (
            json!({"source": "deliveries", "format": "xml"}),
            StatusCode::BAD_REQUEST,
            "format",
        ),
        (
            json!({"source": "deliveries", "compression": "rar"}),
            StatusCode::BAD_REQUEST,
            "compression",
        ),
        (
            json!({"source": "deliveries", "fields": ["id", "password"]}),
            StatusCode::BAD_REQUEST,
            "fields[1]",
        ),
        (
            json!({"source": "audit", "filter": {"status": "dead"}}),
            StatusCode::BAD_REQUEST,
            "filter.status",
        ),
        (
            json!({"source": "deliveries", "filter": {"since": "yesterday"}}),
            StatusCode::BAD_REQUEST,
            "filter.since",
        ),
        (
            json!({"source": "events", "redact": ["/nope/x"]}),
            StatusCode::BAD_REQUEST,
            "redact[0]",
        ),
        (
            json!({"source": "events", "target": {"file": "/etc/cron.d/x"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "target.file",
        ),
        (
            json!({"source": "events", "target": {"file": "../../escape.csv"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "target.file",
        ),
    ];
    for (body, status, field) in cases {
        let (got, v) = server.post("/v1/exports", body.clone()).await;
        assert_eq!(got, status, "{body}: {v}");
        assert_eq!(v["details"][0]["field"], field, "{body}: {v}");
    }
    let (status, v) = server
        .post("/v1/exports", json!({"source": "events", "surprise": 1}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    let (_, list) = server.get("/v1/exports").await;
    assert_eq!(list["data"], json!([]), "nothing was created");
    let (status, _) = server.call(Method::GET, "/v1/exports", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_organization_runs_a_bounded_number_of_exports() {
    let server = TestServer::start_with(|c| c.exports.max_concurrent_per_org = 0).await;
    let response = server
        .http
        .post(format!("{}/v1/exports", server.base))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"source": "events"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    let v: Value = response.json().await.unwrap();
    assert_eq!(v["error"], "rate_limited", "{v}");
}

#[tokio::test]
async fn deliveries_export_filters_and_lists_history_and_audits() {
    let server = TestServer::start().await;
    let root = server.dir.path().join("files");
    let directory = root.join("archive");
    std::fs::create_dir(&directory).unwrap();
    let (status, d) = server
        .post(
            "/v1/destinations",
            json!({"name": "archive", "kind": "file", "config": {"directory": directory},
                   "filter": {"event_types": ["order.*"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{d}");
    let dst = d["id"].as_str().unwrap().to_owned();
    let mut last = None;
    for n in 0..5 {
        let a = server
            .send(json!({"type": if n % 2 == 0 { "order.created" } else { "order.paid" }, "data": {"n": n}}))
            .await;
        last = Some(a["deliveries"][0]["id"].as_str().unwrap().to_owned());
    }
    server
        .wait_status(&last.unwrap(), "delivered", Duration::from_secs(20))
        .await;
    let job = export(
        &server,
        json!({"source": "deliveries", "format": "ndjson", "compression": "gzip",
               "filter": {"event_type": "order.cr*", "destination_id": dst},
               "target": {"destination_id": dst, "path": "reports/created.ndjson.gz"}}),
    )
    .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let location = job["result"]["location"].as_str().unwrap();
    assert_eq!(
        PathBuf::from(location),
        directory.join("reports/created.ndjson.gz")
    );
    let got = rows(
        &decompress(&download(&server, &job).await, "gzip"),
        "ndjson",
    );
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(
        got.iter()
            .all(|r| r["event_type"] == "order.created" && r["status"] == "delivered")
    );

    let destinations = export(&server, json!({"source": "destinations", "format": "json"})).await;
    let got = rows(
        &decompress(&download(&server, &destinations).await, "none"),
        "json",
    );
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["id"], dst.as_str());
    assert_eq!(got[0]["state"], "enabled");
    assert_eq!(got[0]["delivered"], 5);

    let (_, list) = server.get("/v1/exports").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2, "{list}");
    assert_eq!(list["data"][0]["id"], destinations["id"], "newest first");
    let (_, audit) = server
        .get(&format!(
            "/v1/audit?entity_id={}",
            job["id"].as_str().unwrap()
        ))
        .await;
    let actions: Vec<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["export.succeeded", "export.created"], "{audit}");
}

/// Sends `n` events of about 1 KiB each, in batches.
pub(super) async fn many_events(server: &TestServer, n: usize) {
    let pad = "x".repeat(1000);
    for start in (0..n).step_by(1000) {
        let events: Vec<Value> = (start..(start + 1000).min(n))
            .map(|i| json!({"type": "bulk", "data": {"i": i, "pad": pad}}))
            .collect();
        let (status, v) = server
            .post("/v1/events/batch", json!({"events": events}))
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
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
async fn a_cancelled_export_leaves_nothing_at_its_target() {
    let server = TestServer::start().await;
    many_events(&server, 30_000).await;
    let (status, job) = server
        .post(
            "/v1/exports",
            json!({"source": "events", "format": "yaml", "target": {"file": "big/events.yaml"}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let id = job["id"].as_str().unwrap();
    let (status, cancelled) = server
        .post(&format!("/v1/exports/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    let big = server.dir.path().join("files/big");
    let deadline = Instant::now() + Duration::from_secs(20);
    while big.exists() && !files_under(&big).is_empty() {
        assert!(
            Instant::now() < deadline,
            "files remain: {:?}",
            files_under(&big)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let job = wait_done(&server, id).await;
    assert_eq!(job["status"], "cancelled", "{job}");
    let (status, v) = server
        .post(&format!("/v1/exports/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    let (status, v) = server.get(&format!("/v1/exports/{id}/download")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
}

#[tokio::test]
async fn an_export_cut_short_by_a_restart_is_failed_and_its_file_removed() {
    let server = TestServer::start().await;
    many_events(&server, 20_000).await;
    let (status, job) = server
        .post(
            "/v1/exports",
            json!({"source": "events", "format": "json", "target": {"file": "cut/events.json"}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    let server = server.restart().await;
    let job = wait_done(&server, &id).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert!(job["error"].as_str().unwrap().contains("stopped"), "{job}");
    let cut = server.dir.path().join("files/cut");
    assert!(
        !cut.exists() || files_under(&cut).is_empty(),
        "{:?}",
        files_under(&cut)
    );
}

#[tokio::test]
async fn a_target_without_space_fails_the_export_with_the_reason_and_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = ferry_testkit::Tmpfs::mount(&dir.path().join("small"), 4) else {
        return;
    };
    let root = disk.path().to_owned();
    let server = TestServer::start_with(|c| c.file_roots = vec![root.clone()]).await;
    many_events(&server, 10_000).await;
    let job = export(
        &server,
        json!({"source": "events", "format": "ndjson", "target": {"file": "full/events.ndjson"}}),
    )
    .await;
    assert_eq!(job["status"], "failed", "{job}");
    let error = job["error"].as_str().unwrap();
    assert!(error.contains("No space left"), "{job}");
    assert!(files_under(&root).is_empty(), "{:?}", files_under(&root));
    // With room again, the same export succeeds.
    disk.resize(64);
    let job = export(
        &server,
        json!({"source": "events", "format": "ndjson", "target": {"file": "full/events.ndjson"}}),
    )
    .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["result"]["rows"], 10_000);
}

#[tokio::test]
async fn an_admin_exports_another_organizations_records_and_only_an_admin() {
    let server = TestServer::start().await;
    let (_, org) = server.post("/v1/orgs", json!({"name": "tenant"})).await;
    let org_id = org["id"].as_str().unwrap().to_owned();
    let (_, key) = server
        .post(
            "/v1/api-keys",
            json!({"name": "k", "scopes": ["ingest", "manage", "read"], "org_id": org_id}),
        )
        .await;
    let tenant = key["key"].as_str().unwrap().to_owned();
    for n in 0..3 {
        let (status, v) = server
            .call(
                Method::POST,
                "/v1/events",
                Some(&tenant),
                Some(json!({"type": "tenant.thing", "data": {"n": n}})),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    }
    server.send(json!({"type": "own.thing", "data": {}})).await;

    let read = |job: &Value| {
        let text = std::fs::read_to_string(job["result"]["location"].as_str().unwrap()).unwrap();
        rows(&text, "ndjson")
    };
    let theirs = export(
        &server,
        json!({"source": "events", "format": "ndjson", "filter": {"org_id": org_id}}),
    )
    .await;
    let found = read(&theirs);
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(found.iter().all(|r| r["org_id"] == org_id.as_str()));
    let own = export(&server, json!({"source": "events", "format": "ndjson"})).await;
    let own = read(&own);
    assert_eq!(own.len(), 1, "{own:?}");
    assert_eq!(own[0]["type"], "own.thing");

    // The tenant's own key may not reach another organization.
    let admin_org = own[0]["org_id"].as_str().unwrap();
    let (status, v) = server
        .call(
            Method::POST,
            "/v1/exports",
            Some(&tenant),
            Some(json!({"source": "events", "filter": {"org_id": admin_org}})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    let (status, v) = server
        .post(
            "/v1/exports",
            json!({"source": "events", "filter": {"org_id": "org_01jq3v8k2m4n6p8r0t2v4x6z8a"}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["details"][0]["field"], "filter.org_id", "{v}");
}
