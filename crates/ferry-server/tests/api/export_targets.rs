//! Exports to `s3` and `sftp` destinations through the whole server, with
//! the destination's credentials: the output at its path (or the default
//! name) reads back with a standard parser and matches the job's checksum;
//! a kind that takes no exports and a bad path are refused by name.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::exports::{decompress, export, many_events, rows};
use crate::harness::TestServer;

/// A destination that receives no events (its filter matches none).
async fn destination(server: &TestServer, kind: &str, config: Value, auth: Value) -> String {
    let (status, d) = server
        .post(
            "/v1/destinations",
            json!({"name": format!("{kind} exports"), "kind": kind, "config": config, "auth": auth,
                   "filter": {"event_types": ["never.*"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{d}");
    d["id"].as_str().unwrap().to_owned()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[tokio::test]
async fn an_export_goes_to_an_s3_bucket_with_the_destinations_key() {
    let s3 = ferry_testkit::services::S3Server::start_with_iam();
    let bucket = format!("ferry-{}", ferry_core::ids::unique_token());
    s3.create_bucket(&bucket);
    let (key_id, secret) = s3.access_key().unwrap();
    let server = TestServer::start().await;
    let dst = destination(
        &server,
        "s3",
        json!({"endpoint": s3.endpoint(), "bucket": bucket}),
        json!({"type": "access_key", "access_key_id": key_id, "secret_access_key": secret}),
    )
    .await;
    many_events(&server, 500).await;

    let job = export(
        &server,
        json!({"source": "events", "format": "ndjson", "fields": ["id", "type", "data"],
               "target": {"destination_id": dst, "path": "exports/events.ndjson"}}),
    )
    .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(
        job["result"]["location"],
        format!("s3://{bucket}/exports/events.ndjson")
    );
    let objects = s3.objects(&bucket);
    assert_eq!(objects.len(), 1, "{objects:?}");
    assert_eq!(objects[0].sha256, job["result"]["sha256"].as_str().unwrap());
    assert_eq!(
        objects[0].content_type.as_deref(),
        Some("application/x-ndjson")
    );
    assert_eq!(objects[0].size, job["result"]["bytes"].as_u64().unwrap());
    assert!(s3.unfinished_uploads(&bucket).is_empty());
    let found = rows(objects[0].body.as_deref().unwrap(), "ndjson");
    assert_eq!(found.len(), 500);
    assert_eq!(found[499]["data"]["i"], 499);

    // It is not downloadable through Ferry: it lives in the bucket.
    let id = job["id"].as_str().unwrap();
    let (status, v) = server.get(&format!("/v1/exports/{id}/download")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert!(v["message"].as_str().unwrap().contains("s3://"), "{v}");

    let (hook, _) = server
        .webhook(
            "http://127.0.0.1:9/",
            json!({"filter": {"event_types": ["never.*"]}}),
        )
        .await;
    for (target, field, says) in [
        (
            json!({"destination_id": hook, "path": "x.csv"}),
            "target.destination_id",
            "not to a `webhook` one",
        ),
        (
            json!({"destination_id": dst, "path": "../x.csv"}),
            "target.path",
            "relative",
        ),
        (
            json!({"destination_id": dst, "path": "/abs.csv"}),
            "target.path",
            "relative",
        ),
    ] {
        let (status, v) = server
            .post("/v1/exports", json!({"source": "events", "target": target}))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["details"][0]["field"], field, "{v}");
        assert!(
            v["details"][0]["message"].as_str().unwrap().contains(says),
            "{v}"
        );
    }
}

#[tokio::test]
async fn an_export_goes_to_an_sftp_directory_under_its_default_name() {
    let sftp = ferry_testkit::services::SftpServer::start();
    let dir = sftp.directory();
    let server = TestServer::start().await;
    let dst = destination(
        &server,
        "sftp",
        json!({"host": "127.0.0.1", "port": sftp.port(), "directory": dir.path(),
               "host_key_fingerprint": sftp.host_key_fingerprint()}),
        json!({"type": "private_key", "username": ferry_testkit::services::SFTP_USER,
               "private_key": sftp.private_key()}),
    )
    .await;
    many_events(&server, 1_500).await;

    let job = export(
        &server,
        json!({"source": "events", "format": "csv", "compression": "gzip",
               "target": {"destination_id": dst}}),
    )
    .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let id = job["id"].as_str().unwrap();
    let name = format!("exports/events-{id}.csv.gz");
    let path = dir.path().join(&name);
    assert_eq!(
        job["result"]["location"],
        format!("sftp://127.0.0.1:{}{}", sftp.port(), path.display())
    );
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(
        sha256_hex(&bytes),
        job["result"]["sha256"].as_str().unwrap()
    );
    let found = rows(&decompress(&bytes, "gzip"), "csv");
    assert_eq!(found.len(), 1_500);
    assert_eq!(found[0]["type"], "bulk");
    let left: Vec<_> = std::fs::read_dir(dir.path().join("exports"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1, "no temporary file left: {left:?}");
}
