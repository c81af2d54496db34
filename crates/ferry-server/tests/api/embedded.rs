//! Tests of the embedded (SQLite) store only: its file lock, its database
//! file and its master key file.

use ferry_testkit::SqliteWriteLock;
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::TestServer;

const SECRET_A: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SECRET_B: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

#[tokio::test]
async fn a_store_that_cannot_write_answers_503_keeps_nothing_and_is_not_ready() {
    let server = TestServer::start_with(|c| c.store_busy_timeout_ms = 200).await;
    // Another process takes the database's write lock, as a backup tool might.
    let db = server.dir.path().join("ferry.db");
    let lock = SqliteWriteLock::take(&db);
    let (status, v) = server
        .post(
            "/v1/events",
            json!({"type": "t", "data": {}, "id": "while-locked"}),
        )
        .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("unavailable")),
        "{v}"
    );
    // Readiness follows: a read would succeed, but the store cannot commit.
    let (status, v) = server
        .call(reqwest::Method::GET, "/readyz", None, None)
        .await;
    assert_eq!(
        (status, v["status"].as_str(), v["reason"].as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("storage_unavailable"),
            Some("storage is unavailable")
        ),
        "{v}"
    );
    drop(lock);
    // Ready again with no event sent: readiness tries a write itself.
    let (status, v) = server
        .call(reqwest::Method::GET, "/readyz", None, None)
        .await;
    assert_eq!(
        (status, v["status"].as_str()),
        (StatusCode::OK, Some("ready")),
        "{v}"
    );
    let metrics = server.metrics().await;
    assert!(
        metrics
            .contains(r#"ferry_store_write_errors_total{operation="ingest",reason="unavailable"}"#),
        "{metrics}"
    );
    let (status, v) = server
        .post(
            "/v1/events",
            json!({"type": "t", "data": {}, "id": "while-locked"}),
        )
        .await;
    assert_eq!(
        (status, v["duplicate"].as_bool()),
        (StatusCode::ACCEPTED, Some(false)),
        "the failed attempt must have stored nothing"
    );
}

#[tokio::test]
async fn source_settings_are_validated_and_secrets_stay_sealed() {
    let server = TestServer::start().await;
    let (status, v) = server
        .post("/v1/sources", json!({"name": "", "verification": {"scheme": "standard-webhooks", "secrets": ["plain"]},
                                     "type_from": "type", "required": ["x"], "destinations": ["dst_nope"]}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<_> = v["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap().to_owned())
        .collect();
    for f in [
        "name",
        "verification.secrets[0]",
        "type_from",
        "required[0]",
        "destinations[0]",
    ] {
        assert!(
            fields.contains(&f.to_owned()),
            "{f} missing from {fields:?}"
        );
    }
    let (status, _) = server
        .post(
            "/v1/sources",
            json!({"name": "x", "verification": {"scheme": "rot13", "secrets": ["a"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    crate::sources::source(&server, json!({"name": "sealed", "verification": {"scheme": "standard-webhooks", "secrets": [SECRET_A]}})).await;
    server.webhook("http://127.0.0.1:9/x", json!({"auth": {"type": "bearer", "token": "tok-plain-777"}, "signing": {"secret": SECRET_B}})).await;
    let dir = server.dir.path().to_path_buf();
    let server = server.restart().await;
    let mut raw = std::fs::read(dir.join("ferry.db")).unwrap();
    raw.extend(std::fs::read(dir.join("ferry.db-wal")).unwrap_or_default());
    for plain in [SECRET_A, SECRET_B, "tok-plain-777"] {
        assert!(
            !raw.windows(plain.len()).any(|w| w == plain.as_bytes()),
            "{plain} is stored in plaintext"
        );
    }
    let (_, list) = server.get("/v1/sources").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_master_key_rotates_without_downtime_and_secrets_keep_working() {
    let server = TestServer::start().await;
    let receiver = ferry_testkit::Receiver::start().await;
    let (dst, secret) = server
        .webhook(
            &receiver.url(),
            json!({"auth": {"type": "bearer", "token": "tok-rotate-1"}}),
        )
        .await;
    let (status, _) = server
        .post("/v1/sources", json!({"name": "s", "verification": {"scheme": "hmac-sha256", "header": "x-sig", "secrets": ["src-secret"]}}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let key_file = server.dir.path().join("master.key");
    let old_key = std::fs::read_to_string(&key_file).unwrap();

    let (status, v) = server.post("/v1/admin/rotate-master-key", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["resealed"], 2);
    let new_key = std::fs::read_to_string(&key_file).unwrap();
    assert_ne!(new_key, old_key);
    assert!(!server.dir.path().join("master.key.next").exists());
    let (_, audit) = server.get("/v1/audit?action=master_key.rotated").await;
    assert_eq!(audit["data"].as_array().unwrap().len(), 1);

    // Deliveries keep their secrets, now and after a restart on the new key.
    server
        .send(json!({"type": "t", "data": {"after": "rotation"}}))
        .await;
    receiver
        .wait_for(1, std::time::Duration::from_secs(10))
        .await
        .unwrap();
    let server = server.restart().await;
    server
        .post(&format!("/v1/destinations/{dst}/test"), json!({}))
        .await;
    receiver
        .wait_for(2, std::time::Duration::from_secs(10))
        .await
        .unwrap();
    for req in receiver.requests() {
        assert_eq!(req.header("authorization"), Some("Bearer tok-rotate-1"));
        standardwebhooks::Webhook::new(&secret)
            .unwrap()
            .verify(&req.body, &req.header_map())
            .unwrap();
    }
    let (status, _) = server
        .post("/v1/admin/rotate-master-key", json!({"new_key": "nothex"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // The old key opens nothing any more.
    let dir = server.stop_and_keep().await;
    let old = ferry_core::crypto::Cipher::new(&hex_decode(old_key.trim())).unwrap();
    let store = ferry_store::SqliteStore::open(&dir.path().join("ferry.db"), old)
        .await
        .unwrap();
    use ferry_core::ports::Store;
    let orgs = store
        .list_orgs(ferry_core::page::PageRequest::default())
        .await
        .unwrap();
    let org = &orgs.items[0].id;
    assert!(
        store.org_destinations(org).await.is_err(),
        "the old key must not open re-sealed secrets"
    );
}

#[tokio::test]
async fn an_interrupted_rotation_is_finished_at_the_next_start() {
    let server = TestServer::start().await;
    let receiver = ferry_testkit::Receiver::start().await;
    let (_, secret) = server.webhook(&receiver.url(), json!({})).await;
    let dir = server.stop_and_keep().await;
    // A crash right after the new key was written, before anything was re-sealed.
    let next = "ab".repeat(32);
    std::fs::write(dir.path().join("master.key.next"), &next).unwrap();
    let config = crate::harness::test_config(&dir);
    let server = TestServer::start_in(dir, config).await;
    assert_eq!(
        std::fs::read_to_string(server.dir.path().join("master.key")).unwrap(),
        next
    );
    assert!(!server.dir.path().join("master.key.next").exists());
    server.send(json!({"type": "t", "data": {}})).await;
    receiver
        .wait_for(1, std::time::Duration::from_secs(10))
        .await
        .unwrap();
    let req = &receiver.requests()[0];
    standardwebhooks::Webhook::new(&secret)
        .unwrap()
        .verify(&req.body, &req.header_map())
        .unwrap();
}

fn hex_decode(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}
