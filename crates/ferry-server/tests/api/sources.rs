//! Inbound sources: partners' signed requests, verified by independent
//! signers (the `standardwebhooks` crate, the `openssl` command).

use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::TestServer;

const SECRET_A: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SECRET_B: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

pub(crate) async fn source(server: &TestServer, body: Value) -> String {
    let (status, v) = server.post("/v1/sources", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert!(
        !v.to_string().contains("whsec_"),
        "secrets must not be shown: {v}"
    );
    v["url"].as_str().unwrap().to_owned()
}

async fn post_in(
    server: &TestServer,
    url: &str,
    headers: &[(&str, String)],
    body: &str,
) -> (StatusCode, Value) {
    let mut req = server
        .http
        .post(format!("{}{url}", server.base))
        .body(body.to_owned());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn standard(secret: &str, id: &str, ts: i64, body: &str) -> Vec<(&'static str, String)> {
    let sig = standardwebhooks::Webhook::new(secret)
        .unwrap()
        .sign(id, ts, body.as_bytes())
        .unwrap();
    vec![
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", sig),
    ]
}

fn openssl_hmac(digest: &str, key: &str, data: &str) -> String {
    let out = Command::new("openssl")
        .args(["dgst", &format!("-{digest}"), "-hmac", key, "-r"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(data.as_bytes())?;
            child.wait_with_output()
        })
        .expect("openssl runs");
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_standard_webhooks_partner_is_verified_delivered_and_deduplicated() {
    let server = TestServer::start().await;
    let receiver = ferry_testkit::Receiver::start().await;
    let (dst, _) = server
        .webhook(&receiver.url(), json!({"filter": {"event_types": []}}))
        .await;
    let url = source(
        &server,
        json!({"name": "courier", "verification": {"scheme": "standard-webhooks", "secrets": [SECRET_A, SECRET_B]},
               "id_from": "header:webhook-id", "type_from": "/type", "required": ["/type", "/shipment/id"],
               "destinations": [dst]}),
    )
    .await;
    let body = r#"{"type":"shipment.sent","shipment":{"id":"s-1"}}"#;
    let now = chrono::Utc::now().timestamp();
    let (status, v) = post_in(&server, &url, &standard(SECRET_B, "msg_1", now, body), body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["deliveries"][0]["destination_id"], dst.as_str());
    receiver.wait_for(1, Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        receiver.requests()[0].json()["data"]["shipment"]["id"],
        "s-1"
    );
    // The partner's retry of the same message is a duplicate.
    let (status, again) =
        post_in(&server, &url, &standard(SECRET_A, "msg_1", now, body), body).await;
    assert_eq!(
        (status, &again["id"], again["duplicate"].as_bool()),
        (StatusCode::OK, &v["id"], Some(true))
    );
    let (_, event) = server
        .get(&format!("/v1/events/{}", v["id"].as_str().unwrap()))
        .await;
    assert_eq!(event["type"], "shipment.sent");
    assert_eq!(
        event["metadata"]["source_id"],
        url.trim_start_matches("/in/")
    );
}

#[tokio::test]
async fn bad_requests_are_rejected_with_the_reason_and_store_nothing() {
    let server = TestServer::start().await;
    let url = source(
        &server,
        json!({"name": "p", "verification": {"scheme": "standard-webhooks", "secrets": [SECRET_A], "tolerance_s": 300},
               "required": ["/shipment/id"]}),
    )
    .await;
    let body = r#"{"type":"shipment.sent","shipment":{"id":"s-1"}}"#;
    let now = chrono::Utc::now().timestamp();
    // (headers, body sent, expected status, words of the reason)
    type Case<'a> = (Vec<(&'a str, String)>, &'a str, StatusCode, &'a str);
    let cases: Vec<Case> = vec![
        (
            standard(SECRET_A, "m1", now, body),
            r#"{"type":"shipment.sent","shipment":{"id":"s-2"}}"#,
            StatusCode::UNAUTHORIZED,
            "no signature matches",
        ),
        (
            standard(SECRET_B, "m2", now, body),
            body,
            StatusCode::UNAUTHORIZED,
            "no signature matches",
        ),
        (
            standard(SECRET_A, "m3", now - 400, body),
            body,
            StatusCode::UNAUTHORIZED,
            "tolerance",
        ),
        (
            standard(SECRET_A, "m4", now + 400, body),
            body,
            StatusCode::UNAUTHORIZED,
            "tolerance",
        ),
        (
            vec![],
            body,
            StatusCode::UNAUTHORIZED,
            "missing the webhook-id header",
        ),
        (
            standard(SECRET_A, "m5", now, "{nope"),
            "{nope",
            StatusCode::BAD_REQUEST,
            "invalid JSON",
        ),
        (
            standard(SECRET_A, "m6", now, r#"{"type":"x"}"#),
            r#"{"type":"x"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "/shipment/id",
        ),
        (
            standard(SECRET_A, "m7", now, r#"{"shipment":{"id":1}}"#),
            r#"{"shipment":{"id":1}}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "/type",
        ),
    ];
    for (headers, sent, expected, reason) in cases {
        let (status, v) = post_in(&server, &url, &headers, sent).await;
        assert_eq!(status, expected, "{v}");
        assert!(v.to_string().contains(reason), "expected `{reason}` in {v}");
    }
    let (status, _) = post_in(
        &server,
        "/in/src_unknown",
        &standard(SECRET_A, "m", now, body),
        body,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, audit) = server.get("/v1/audit?limit=1000").await;
    let (_, events) = server.get("/v1/deliveries").await;
    assert!(events["data"].as_array().unwrap().is_empty());
    assert!(!audit.to_string().contains("shipment.sent"));
}

#[tokio::test]
async fn generic_hmac_schemes_verify_openssl_signatures() {
    let server = TestServer::start().await;
    let body = r#"{"kind":"invoice.paid","n":1}"#;
    let hex_url = source(
        &server,
        json!({"name": "gh", "verification": {"scheme": "hmac-sha256", "header": "X-Hub-Signature-256", "prefix": "sha256=",
               "encoding": "hex", "secrets": ["old-secret", "k-256"]}, "type_from": "/kind"}),
    )
    .await;
    let sig = openssl_hmac("sha256", "k-256", body);
    let (status, v) = post_in(
        &server,
        &hex_url,
        &[("X-Hub-Signature-256", format!("sha256={sig}"))],
        body,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    let (status, _) = post_in(
        &server,
        &hex_url,
        &[("X-Hub-Signature-256", format!("sha256={sig}"))],
        r#"{"kind":"invoice.paid","n":2}"#,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let url512 = source(
        &server,
        json!({"name": "512", "verification": {"scheme": "hmac-sha512", "header": "X-Signature", "encoding": "hex", "secrets": ["k-512"]},
               "type_from": "/kind"}),
    )
    .await;
    // Another content: the same content would be the same event.
    let body = r#"{"kind":"invoice.paid","n":512}"#;
    let sig = openssl_hmac("sha512", "k-512", body);
    let (status, v) = post_in(&server, &url512, &[("X-Signature", sig)], body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");

    let stamped = source(
        &server,
        json!({"name": "ts", "verification": {"scheme": "timestamped-hmac", "header": "X-Signature", "secrets": ["k-ts"]},
               "type_from": "/kind", "id_from": "/n"}),
    )
    .await;
    let body = r#"{"kind":"invoice.paid","n":3}"#;
    let t = chrono::Utc::now().timestamp();
    let sig = openssl_hmac("sha256", "k-ts", &format!("{t}.{body}"));
    let (status, v) = post_in(
        &server,
        &stamped,
        &[("X-Signature", format!("t={t},v1={sig}"))],
        body,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    let old = t - 1000;
    let sig = openssl_hmac("sha256", "k-ts", &format!("{old}.{body}"));
    let (status, v) = post_in(
        &server,
        &stamped,
        &[("X-Signature", format!("t={old},v1={sig}"))],
        body,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{v}");
}
