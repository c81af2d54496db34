//! An integration port over HTTP: events sent to one destination, ids
//! scoped by it, and how each stands there.

use std::time::Duration;

use ferry_core::{DestinationId, EventId};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::{ADMIN_KEY, TestServer};

#[tokio::test]
async fn an_event_for_one_destination_goes_there_only_with_an_id_scoped_by_it() {
    let server = TestServer::start().await;
    let (a, b) = (
        ferry_testkit::Receiver::start().await,
        ferry_testkit::Receiver::start().await,
    );
    // Both match every type; only the named one gets the event.
    let (dst_a, _) = server.webhook(&a.url(), json!({})).await;
    server.webhook(&b.url(), json!({"default": true})).await;
    let path = format!("/v1/destinations/{dst_a}/events");
    let (status, sent) = server
        .post(
            &path,
            json!({"type": "evaluation.completed", "data": {"run": 1}, "id": "eval-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    let dst = DestinationId::parse(&dst_a).unwrap();
    assert_eq!(
        sent["id"],
        EventId::for_destination(&dst, "eval-1").as_str()
    );
    assert_eq!(sent["deliveries"].as_array().unwrap().len(), 1);
    assert_eq!(sent["deliveries"][0]["destination_id"], dst_a.as_str());
    // The same id again (the header wins over the body) is a duplicate.
    let again = server
        .http
        .post(format!("{}{path}", server.base))
        .bearer_auth(ADMIN_KEY)
        .header("Idempotency-Key", "eval-1")
        .json(&json!({"type": "evaluation.completed", "data": {"run": 2}, "id": "other"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    let again: serde_json::Value = again.json().await.unwrap();
    assert_eq!(
        (&again["id"], &again["duplicate"]),
        (&sent["id"], &json!(true))
    );
    // Without an id, the content decides it.
    let (_, by_content) = server
        .post(&path, json!({"type": "t", "data": {"x": 1, "y": [2]}}))
        .await;
    let canonical = ferry_core::event::canonical_json(&json!({"y": [2], "x": 1}));
    assert_eq!(
        by_content["id"],
        EventId::for_destination_content(&dst, "t", &canonical).as_str()
    );

    let evt = sent["id"].as_str().unwrap();
    a.wait_for(2, Duration::from_secs(10)).await.unwrap();
    let state = format!("/v1/destinations/{dst_a}/events/{evt}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let view = loop {
        let (status, view) = server.get(&state).await;
        assert_eq!(status, StatusCode::OK, "{view}");
        if view["status"] == "delivered" {
            break view;
        }
        assert!(std::time::Instant::now() < deadline, "{view}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(view["attempt_count"], 1);
    assert_eq!(view["max_attempts"], 6);
    assert_eq!(view["last_attempt"]["outcome"], "delivered");
    assert_eq!(view["last_attempt"]["status_code"], 200);
    assert_eq!(view["event_id"], evt);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(b.count(), 0, "routing was not bypassed");
    assert_eq!(a.count(), 2, "a duplicate was delivered");
}

#[tokio::test]
async fn unknown_or_foreign_destinations_and_events_are_not_found() {
    let server = TestServer::start().await;
    let (dst, _) = server
        .webhook("http://127.0.0.1:9/x", json!({"enabled": false}))
        .await;
    let event = json!({"type": "t", "data": {}});
    for path in [
        "/v1/destinations/dst_01jq3v2a4c6e8g0j2m4p6r8t0v/events".to_owned(),
        "/v1/destinations/not-an-id/events".to_owned(),
    ] {
        let (status, body) = server.post(&path, event.clone()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    let (_, sent) = server
        .post(&format!("/v1/destinations/{dst}/events"), event.clone())
        .await;
    let evt = sent["id"].as_str().unwrap();
    // Known event, another destination; unknown event; malformed id.
    let (other, _) = server
        .webhook("http://127.0.0.1:9/y", json!({"enabled": false}))
        .await;
    for path in [
        format!("/v1/destinations/{other}/events/{evt}"),
        format!("/v1/destinations/{dst}/events/evt_01jq3v8k2m4n6p8r0t2v4x6z8a"),
        format!("/v1/destinations/{dst}/events/nope"),
    ] {
        let (status, body) = server.get(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    // Another organization's key finds neither.
    let (_, org) = server.post("/v1/orgs", json!({"name": "other"})).await;
    let (_, key) = server
        .post(
            "/v1/api-keys",
            json!({"name": "k", "scopes": ["ingest", "read"], "org_id": org["id"]}),
        )
        .await;
    let key = key["key"].as_str().unwrap();
    let (status, _) = server
        .call(
            Method::POST,
            &format!("/v1/destinations/{dst}/events"),
            Some(key),
            Some(event),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server
        .call(
            Method::GET,
            &format!("/v1/destinations/{dst}/events/{evt}"),
            Some(key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Bad input stores nothing.
    let (status, body) = server
        .post(
            &format!("/v1/destinations/{dst}/events"),
            json!({"type": "", "data": {}, "destinations": ["x"]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}
