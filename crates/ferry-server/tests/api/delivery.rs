//! Delivery behaviour seen from the receiver: signatures, retries, the
//! dead-letter queue, replay.

use std::time::Duration;

use ferry_testkit::{Behavior, Receiver};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{TestServer, fast_retry};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn deliveries_are_signed_and_verify_with_the_reference_library() {
    let server = TestServer::start().await;
    let receiver = Receiver::start().await;
    let (dst, secret) = server.webhook(&receiver.url(), json!({})).await;
    let accepted = server
        .send(json!({"type": "order.created", "data": {"n": 1}, "id": "order-1"}))
        .await;
    assert_eq!(accepted["duplicate"], false);
    assert_eq!(accepted["deliveries"][0]["destination_id"], dst.as_str());
    receiver.wait_for(1, WAIT).await.unwrap();
    let req = &receiver.requests()[0];
    let wh = standardwebhooks::Webhook::new(&secret).unwrap();
    wh.verify(&req.body, &req.header_map())
        .expect("signature verifies");
    let id = accepted["id"].as_str().unwrap();
    assert_eq!(req.header("webhook-id"), Some(id));
    assert_eq!(req.header("idempotency-key"), Some(id));
    assert_eq!(req.header("ferry-attempt"), Some("1"));
    // The same instant as `webhook-timestamp`, readable.
    let readable = chrono::DateTime::parse_from_rfc3339(req.header("ferry-timestamp").unwrap())
        .expect("ferry-timestamp is RFC 3339");
    assert_eq!(
        readable.timestamp().to_string(),
        req.header("webhook-timestamp").unwrap()
    );
    assert_eq!(readable.offset().local_minus_utc(), 0, "in UTC");
    let body = req.json();
    assert_eq!(
        (body["id"].as_str(), body["type"].as_str()),
        (Some(id), Some("order.created"))
    );
    assert_eq!(body["data"], json!({"n": 1}));
    let dlv = accepted["deliveries"][0]["id"].as_str().unwrap();
    let detail = server.wait_status(dlv, "delivered", WAIT).await;
    assert_eq!(detail["attempts"][0]["status_code"], 200);
    // The receiver's own reference, kept with the attempt.
    assert_eq!(detail["attempts"][0]["receipt"], json!({"status": 200}));
    assert!(
        detail["attempts"][0]["request"]["body"]
            .as_str()
            .unwrap()
            .contains("order.created")
    );
}

#[tokio::test]
async fn a_failing_receiver_is_retried_with_the_same_webhook_id_until_it_succeeds() {
    let server = TestServer::start().await;
    let receiver = Receiver::start().await;
    receiver.set_behavior(Behavior::FailTimes {
        times: 2,
        status: 503,
    });
    server.webhook(&receiver.url(), fast_retry(5)).await;
    let accepted = server.send(json!({"type": "t", "data": {}})).await;
    let dlv = accepted["deliveries"][0]["id"].as_str().unwrap();
    let detail = server.wait_status(dlv, "delivered", WAIT).await;
    assert_eq!(detail["attempt_count"], 3);
    let attempts = detail["attempts"].as_array().unwrap();
    assert_eq!(attempts[0]["outcome"], "retryable");
    assert_eq!(attempts[0]["status_code"], 503);
    assert_eq!(attempts[2]["outcome"], "delivered");
    let ids = receiver.distinct_ids();
    assert_eq!((receiver.count(), ids.len()), (3, 1));
    let attempts: Vec<_> = receiver
        .requests()
        .iter()
        .map(|r| r.header("ferry-attempt").unwrap().to_owned())
        .collect();
    assert_eq!(attempts, ["1", "2", "3"]);
}

#[tokio::test]
async fn a_client_error_is_permanent_and_goes_straight_to_the_dlq() {
    let server = TestServer::start().await;
    let receiver = Receiver::start().await;
    receiver.set_behavior(Behavior::Status(400));
    server.webhook(&receiver.url(), fast_retry(5)).await;
    let accepted = server.send(json!({"type": "t", "data": {"x": 1}})).await;
    let dlv = accepted["deliveries"][0]["id"].as_str().unwrap();
    let detail = server.wait_status(dlv, "dead", WAIT).await;
    assert_eq!(detail["attempt_count"], 1);
    assert_eq!(detail["attempts"][0]["outcome"], "permanent");
    assert_eq!(detail["attempts"][0]["receipt"], Value::Null);
    assert!(detail["last_error"].as_str().unwrap().contains("400"));
    assert_eq!(receiver.count(), 1);
}

#[tokio::test]
async fn exhausted_retries_die_and_dlq_replay_delivers_with_the_same_webhook_id() {
    let server = TestServer::start().await;
    let receiver = Receiver::start().await;
    receiver.set_behavior(Behavior::Status(500));
    let (dst, _) = server.webhook(&receiver.url(), fast_retry(2)).await;
    let accepted = server.send(json!({"type": "t", "data": {"y": 2}})).await;
    let dlv = accepted["deliveries"][0]["id"].as_str().unwrap();
    server.wait_status(dlv, "dead", WAIT).await;
    assert_eq!(receiver.count(), 3);
    let (_, dlq) = server.get("/v1/dlq").await;
    assert_eq!(dlq["data"][0]["id"], dlv);

    receiver.set_behavior(Behavior::Ok);
    let (status, replay) = server
        .post("/v1/dlq/replay", json!({"destination_id": dst}))
        .await;
    assert_eq!(
        (status, replay["requeued"].as_u64()),
        (StatusCode::ACCEPTED, Some(1))
    );
    let detail = server.wait_status(dlv, "delivered", WAIT).await;
    assert_eq!(detail["attempt_count"], 4);
    assert_eq!(receiver.distinct_ids().len(), 1);
    let (_, dlq) = server.get("/v1/dlq").await;
    assert!(dlq["data"].as_array().unwrap().is_empty());
    let (_, audit) = server
        .get(&format!(
            "/v1/audit?entity_id={dlv}&action=delivery.requeued"
        ))
        .await;
    assert_eq!(audit["data"].as_array().unwrap().len(), 1, "{audit}");
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let server = TestServer::start().await;
    let receiver = Receiver::start().await;
    receiver.set_behavior(Behavior::RetryAfter {
        status: 429,
        seconds: 1,
        times: 1,
    });
    let retry =
        json!({"retry": {"max_retries": 3, "initial_backoff_ms": 20, "max_backoff_ms": 5000}});
    server.webhook(&receiver.url(), retry).await;
    let accepted = server.send(json!({"type": "t", "data": {"ra": 1}})).await;
    let dlv = accepted["deliveries"][0]["id"].as_str().unwrap();
    server.wait_status(dlv, "delivered", WAIT).await;
    let reqs = receiver.requests();
    let gap = reqs[1].received_at - reqs[0].received_at;
    assert!(
        gap >= Duration::from_millis(900),
        "retried after {gap:?}, before Retry-After"
    );
}

#[tokio::test]
async fn event_replay_and_manual_retry_send_again_with_the_same_webhook_id() {
    let server = TestServer::start().await;
    let receiver = Receiver::start().await;
    server.webhook(&receiver.url(), json!({})).await;
    let accepted = server.send(json!({"type": "t", "data": {"r": 1}})).await;
    let id = accepted["id"].as_str().unwrap();
    let dlv = accepted["deliveries"][0]["id"].as_str().unwrap();
    server.wait_status(dlv, "delivered", WAIT).await;
    let (status, v) = server
        .post(&format!("/v1/events/{id}/replay"), json!({}))
        .await;
    assert_eq!(
        (status, v["requeued"].as_u64()),
        (StatusCode::ACCEPTED, Some(1))
    );
    receiver.wait_for(2, WAIT).await.unwrap();
    server.wait_status(dlv, "delivered", WAIT).await;
    let (status, _) = server
        .post(&format!("/v1/deliveries/{dlv}/retry"), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    receiver.wait_for(3, WAIT).await.unwrap();
    assert_eq!(
        receiver.distinct_ids().into_iter().collect::<Vec<_>>(),
        [id.to_owned()]
    );
    let (_, audit) = server
        .get(&format!("/v1/audit?entity_id={id}&action=event.replayed"))
        .await;
    assert!(
        audit["data"][0]["actor"]
            .as_str()
            .unwrap()
            .starts_with("key_"),
        "{audit}"
    );
}

#[tokio::test]
async fn rotated_secrets_both_verify_during_the_grace_period() {
    let server = TestServer::start().await;
    let receiver = Receiver::start().await;
    let (dst, old) = server.webhook(&receiver.url(), json!({})).await;
    let (status, v) = server
        .post(
            &format!("/v1/destinations/{dst}/rotate-secret"),
            json!({"grace_period_s": 3600}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let new = v["signing_secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    server.send(json!({"type": "t", "data": {"rot": 1}})).await;
    receiver.wait_for(1, WAIT).await.unwrap();
    let req = &receiver.requests()[0];
    assert_eq!(
        req.header("webhook-signature").unwrap().split(' ').count(),
        2
    );
    for secret in [&old, &new] {
        standardwebhooks::Webhook::new(secret)
            .unwrap()
            .verify(&req.body, &req.header_map())
            .unwrap();
    }
}

/// Verifies an Ed25519 signature with the `openssl` command, an independent
/// implementation.
fn openssl_ed25519_verify(public_key: &str, message: &[u8], signature_b64: &str) -> bool {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let dir = tempfile::tempdir().unwrap();
    let mut der = vec![
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    der.extend(b64.decode(public_key.trim_start_matches("whpk_")).unwrap());
    std::fs::write(dir.path().join("pub.der"), der).unwrap();
    std::fs::write(dir.path().join("msg"), message).unwrap();
    std::fs::write(dir.path().join("sig"), b64.decode(signature_b64).unwrap()).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-rawin"])
        .arg("-inkey")
        .arg(dir.path().join("pub.der"))
        .arg("-in")
        .arg(dir.path().join("msg"))
        .arg("-sigfile")
        .arg(dir.path().join("sig"))
        .output()
        .unwrap();
    out.status.success()
}

#[tokio::test]
async fn ed25519_destinations_sign_v1a_verifiable_with_the_public_key() {
    let server = TestServer::start().await;
    let receiver = Receiver::start().await;
    let (status, created) = server
        .post("/v1/destinations", json!({"name": "asym", "kind": "webhook", "config": {"url": receiver.url()},
                                          "filter": {"event_types": ["*"]}, "signing": {"scheme": "ed25519"}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(
        created.get("signing_secret").is_none(),
        "the private key stays in Ferry"
    );
    let public = created["signing_public_key"].as_str().unwrap().to_owned();
    assert!(public.starts_with("whpk_"));
    let dst = created["id"].as_str().unwrap();
    let (_, shown) = server.get(&format!("/v1/destinations/{dst}")).await;
    assert_eq!(shown["signing"]["public_key"], public.as_str());
    assert!(!shown.to_string().contains("whsk_"));

    server.send(json!({"type": "t", "data": {"asym": 1}})).await;
    receiver.wait_for(1, WAIT).await.unwrap();
    let req = &receiver.requests()[0];
    let signed = format!(
        "{}.{}.{}",
        req.header("webhook-id").unwrap(),
        req.header("webhook-timestamp").unwrap(),
        String::from_utf8_lossy(&req.body)
    );
    let sig = req
        .header("webhook-signature")
        .unwrap()
        .strip_prefix("v1a,")
        .unwrap();
    assert!(openssl_ed25519_verify(&public, signed.as_bytes(), sig));
    assert!(!openssl_ed25519_verify(
        &public,
        format!("{signed} ").as_bytes(),
        sig
    ));

    // Rotation keeps the scheme; both keys sign during the grace period.
    let (_, rotated) = server
        .post(&format!("/v1/destinations/{dst}/rotate-secret"), json!({}))
        .await;
    let new_public = rotated["signing_public_key"].as_str().unwrap().to_owned();
    assert_ne!(new_public, public);
    server.send(json!({"type": "t", "data": {"asym": 2}})).await;
    receiver.wait_for(2, WAIT).await.unwrap();
    let req = &receiver.requests()[1];
    let signed = format!(
        "{}.{}.{}",
        req.header("webhook-id").unwrap(),
        req.header("webhook-timestamp").unwrap(),
        String::from_utf8_lossy(&req.body)
    );
    let sigs: Vec<&str> = req
        .header("webhook-signature")
        .unwrap()
        .split(' ')
        .collect();
    assert_eq!(sigs.len(), 2);
    assert!(openssl_ed25519_verify(
        &new_public,
        signed.as_bytes(),
        sigs[0].strip_prefix("v1a,").unwrap()
    ));
    assert!(openssl_ed25519_verify(
        &public,
        signed.as_bytes(),
        sigs[1].strip_prefix("v1a,").unwrap()
    ));
}
