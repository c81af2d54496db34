//! A broker kind through the whole server: created and validated by the API,
//! tested for real, and delivered to by the dispatcher (Redis streams on the
//! local Redis; the kinds themselves are tested in ferry-destinations).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::TestServer;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_redis_destination_is_validated_tested_and_delivered_to() {
    let server = TestServer::start().await;
    let (status, v) = server
        .post(
            "/v1/destinations",
            json!({"name": "stream", "kind": "redis", "config": {"url": "http://127.0.0.1", "key": "", "mode": "queue"}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let mut fields: Vec<_> = v["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["config.key", "config.mode", "config.url"], "{v}");

    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let prefix = format!("ferry-api-test:{}:{nanos}", std::process::id());
    let (status, v) = server
        .post(
            "/v1/destinations",
            json!({"name": "stream", "kind": "redis", "filter": {"event_types": ["*"]},
                   "config": {"url": "redis://127.0.0.1:6379", "key": format!("{prefix}:{{type}}")}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["config"]["mode"], "stream", "{v}");
    let dst = v["id"].as_str().unwrap().to_owned();
    let (_, v) = server
        .post(&format!("/v1/destinations/{dst}/test"), json!({}))
        .await;
    assert_eq!(v["ok"], true, "{v}");

    let accepted = server
        .send(json!({"type": "order.created", "data": {"n": 1}}))
        .await;
    let id = accepted["id"].as_str().unwrap();
    let dlv = accepted["deliveries"][0]["id"].as_str().unwrap();
    let detail = server.wait_status(dlv, "delivered", WAIT).await;
    let attempt = &detail["attempts"][0];
    let request = &attempt["request"]["headers"];
    assert_eq!(
        request["key"],
        format!("{prefix}:order.created"),
        "{attempt}"
    );
    assert_eq!(request["webhook-id"], id, "{attempt}");
    // The stream entry's id, to find the message in Redis.
    let entry = attempt["receipt"]["entry_id"].as_str().unwrap();
    let (millis, seq) = entry.split_once('-').unwrap();
    assert!(
        millis.parse::<u64>().is_ok() && seq.parse::<u64>().is_ok(),
        "{attempt}"
    );
    assert_eq!(attempt["response"]["body"], format!("entry_id={entry}"));
}
