//! Outages and stops: the breaker, storage failures, graceful shutdown.

use std::time::Duration;

use ferry_testkit::{Behavior, Receiver};
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::TestServer;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_down_destination_pauses_without_spending_retries_and_drains_when_back() {
    let server = TestServer::start_with(|c| {
        c.dispatch.breaker_threshold = 3;
        c.dispatch.probe_initial_ms = 100;
        c.dispatch.probe_max_ms = 400;
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.set_behavior(Behavior::Status(503));
    let (dst, _) = server
        .webhook(&receiver.url(), json!({"retry": {"max_retries": 3, "initial_backoff_ms": 50, "max_backoff_ms": 100}, "max_in_flight": 1}))
        .await;
    let mut deliveries = Vec::new();
    for i in 0..20 {
        let v = server.send(json!({"type": "t", "data": {"i": i}})).await;
        deliveries.push(v["deliveries"][0]["id"].as_str().unwrap().to_owned());
    }
    // Paused: probes keep going, but nothing exhausts its retries.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (_, h) = server.get(&format!("/v1/destinations/{dst}/health")).await;
        if h["state"] == "paused" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never paused: {h}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        server.count("dead").await,
        0,
        "a paused destination must not fill the DLQ"
    );
    let attempts_while_down = receiver.count();
    assert!(
        attempts_while_down < 20,
        "deliveries kept being attempted while paused: {attempts_while_down}"
    );

    receiver.set_behavior(Behavior::Ok);
    receiver.wait_for_distinct(20, WAIT).await.unwrap();
    for d in &deliveries {
        server.wait_status(d, "delivered", WAIT).await;
    }
    let (_, h) = server.get(&format!("/v1/destinations/{dst}/health")).await;
    assert_eq!(h["state"], "healthy");
}

#[tokio::test]
async fn graceful_shutdown_finishes_or_releases_in_flight_work_and_a_restart_delivers_the_rest() {
    let server = TestServer::start_with(|c| c.dispatch.shutdown_grace_ms = 300).await;
    let receiver = Receiver::start().await;
    receiver.set_behavior(Behavior::Delay(Duration::from_millis(1_000)));
    server.webhook(&receiver.url(), json!({})).await;
    let mut ids = Vec::new();
    for i in 0..30 {
        ids.push(
            server.send(json!({"type": "t", "data": {"i": i}})).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    receiver.wait_for(1, WAIT).await.unwrap();
    let server = server.restart().await;
    // Intake closed during the stop; after the restart nothing is stuck.
    receiver.set_behavior(Behavior::Ok);
    receiver.wait_for_distinct(30, WAIT).await.unwrap();
    let received = receiver.distinct_ids();
    assert!(ids.iter().all(|id| received.contains(id)));
    let deadline = std::time::Instant::now() + WAIT;
    while server.count("delivered").await < 30 {
        assert!(
            std::time::Instant::now() < deadline,
            "not all delivered after restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn while_stopping_intake_answers_503_and_in_flight_deliveries_finish() {
    let server = TestServer::start_with(|c| c.dispatch.shutdown_grace_ms = 5_000).await;
    let receiver = Receiver::start().await;
    receiver.set_behavior(Behavior::Delay(Duration::from_millis(1_500)));
    server.webhook(&receiver.url(), json!({})).await;
    let v = server.send(json!({"type": "t", "data": {"slow": 1}})).await;
    let dlv = v["deliveries"][0]["id"].as_str().unwrap().to_owned();
    receiver.wait_for(1, WAIT).await.unwrap();
    server.running.as_ref().unwrap().shutdown();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (status, v) = server
            .post("/v1/events", json!({"type": "t", "data": {"late": 1}}))
            .await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(v["error"], "unavailable");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "intake kept accepting while stopping: {status}"
        );
    }
    let (status, _) = server
        .call(reqwest::Method::GET, "/readyz", None, None)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    // The in-flight delivery finished within the grace period: after a
    // restart it is delivered, not attempted again.
    let server = server.restart().await;
    let detail = server.wait_status(&dlv, "delivered", WAIT).await;
    assert_eq!(detail["attempt_count"], 1);
    assert_eq!(receiver.count(), 1);
}

#[tokio::test]
async fn a_delivery_longer_than_its_lease_is_attempted_once() {
    let server = TestServer::start_with(|c| c.dispatch.lease_secs = 3).await;
    let receiver = Receiver::start().await;
    receiver.set_behavior(Behavior::Delay(Duration::from_millis(4_500)));
    server
        .webhook(
            &receiver.url(),
            json!({"config": {"url": receiver.url(), "timeout_ms": 20_000}}),
        )
        .await;
    let v = server
        .send(json!({"type": "t", "data": {"slow": true}}))
        .await;
    let dlv = v["deliveries"][0]["id"].as_str().unwrap();
    let detail = server.wait_status(dlv, "delivered", WAIT).await;
    // The lease was renewed while the receiver took its time: no second try.
    assert_eq!(
        (detail["attempt_count"].as_u64(), receiver.count()),
        (Some(1), 1)
    );
}

#[tokio::test]
async fn the_organizations_alert_channel_hears_of_a_pause_and_the_resume() {
    let server = TestServer::start_with(|c| {
        c.dispatch.breaker_threshold = 2;
        c.dispatch.probe_initial_ms = 100;
        c.dispatch.probe_max_ms = 200;
    })
    .await;
    let failing = Receiver::start().await;
    failing.set_behavior(Behavior::Status(503));
    let alerts = Receiver::start().await;
    let (dst, _) = server
        .webhook(&failing.url(), json!({"filter": {"event_types": []}, "retry": {"max_retries": 10, "initial_backoff_ms": 50, "max_backoff_ms": 100}}))
        .await;
    let (alert_dst, _) = server
        .webhook(&alerts.url(), json!({"filter": {"event_types": []}}))
        .await;
    let (_, orgs) = server.get("/v1/orgs").await;
    let org = orgs["data"][0]["id"].as_str().unwrap().to_owned();
    let (status, v) = server
        .call(
            reqwest::Method::PATCH,
            &format!("/v1/orgs/{org}"),
            Some(crate::harness::ADMIN_KEY),
            Some(json!({"alert_destinations": [alert_dst]})),
        )
        .await;
    assert_eq!(
        (status, v["alert_destinations"][0].as_str()),
        (StatusCode::OK, Some(alert_dst.as_str())),
        "{v}"
    );
    let (status, _) = server
        .call(
            reqwest::Method::PATCH,
            &format!("/v1/orgs/{org}"),
            Some(crate::harness::ADMIN_KEY),
            Some(json!({"alert_destinations": ["dst_nope"]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    for i in 0..3 {
        server
            .send(json!({"type": "t", "data": {"i": i}, "destinations": [dst]}))
            .await;
    }
    alerts.wait_for(1, WAIT).await.unwrap();
    let paused = alerts.requests()[0].json();
    assert_eq!(paused["type"], "ferry.destination.paused");
    assert_eq!(paused["data"]["destination_id"], dst.as_str());
    // From the notification to the destination in one click.
    assert_eq!(
        paused["data"]["links"]["self"],
        format!("{}/v1/destinations/{dst}", server.base)
    );
    assert_eq!(
        paused["data"]["links"]["ui"],
        format!("{}/ui/destinations/{dst}", server.base)
    );
    assert!(
        paused["data"]["last_error"]
            .as_str()
            .unwrap()
            .contains("503")
    );

    failing.set_behavior(Behavior::Ok);
    alerts.wait_for(2, WAIT).await.unwrap();
    let resumed = alerts.requests()[1].json();
    assert_eq!(resumed["type"], "ferry.destination.resumed");
    failing.wait_for_distinct(3, WAIT).await.unwrap();
    // One alert per transition, not one per failed attempt.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(alerts.count(), 2);
}
