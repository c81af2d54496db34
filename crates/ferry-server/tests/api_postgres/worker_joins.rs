//! A worker process joining a deployment on PostgreSQL (with the queue in
//! the deliveries table, or on Redis Streams) finds the backlog that waited
//! for it, and drains it without waiting for polls.

use std::time::Instant;

use ferry_server::Config;
use ferry_server::config::Role;
use ferry_testkit::Receiver;
use serde_json::json;

use crate::backlog::{BACKLOG, assert_drains, first_answered, send_backlog, slow_polls};
use crate::harness::TestServer;

#[tokio::test]
async fn a_worker_joining_drains_the_stored_backlog_without_waiting_for_polls() {
    worker_joins(|_| {}).await;
}

#[tokio::test]
async fn a_worker_joining_drains_the_backlog_of_the_redis_queue_without_waiting_for_polls() {
    let url =
        std::env::var("FERRY_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    worker_joins(|c| {
        c.queue_url = Some(url);
        c.queue_prefix = format!("ferry_join_{}", ferry_core::ids::unique_token());
    })
    .await;
}

async fn worker_joins(queue: impl FnOnce(&mut Config)) {
    // The API alone: events are stored, nobody delivers them yet.
    let api = TestServer::start_with(|c| {
        slow_polls(c);
        queue(c);
        c.role = Role::Ingest;
    })
    .await;
    let receiver = Receiver::start().await;
    let (dst, _) = api.webhook(&receiver.url(), json!({})).await;
    send_backlog(&api, &dst, "join", BACKLOG).await;
    assert_eq!(receiver.count(), 0, "an ingest-only process delivered");

    let joined_at = Instant::now();
    let worker = api.join(|c| c.role = Role::Worker).await;
    let first = first_answered(&receiver, joined_at).await;
    assert_drains(&receiver, first, "worker joining").await;
    drop(worker);
}

/// A destination made through one process takes events sent to it through
/// another at once, though that one's route cache predates it.
#[tokio::test]
async fn a_destination_made_elsewhere_takes_events_sent_to_it_at_once() {
    let first = TestServer::start().await;
    let second = first.join(|_| {}).await;
    let receiver = ferry_testkit::Receiver::start().await;
    // Both processes have read (and cached) the destinations before.
    first.webhook(&receiver.url(), json!({})).await;
    for (i, server) in [&first, &second].into_iter().enumerate() {
        server.send(json!({"type": "warm", "data": {"i": i}})).await;
    }
    let (dst, _) = first.webhook(&receiver.url(), json!({})).await;
    let (status, body) = second
        .post(
            &format!("/v1/destinations/{dst}/events"),
            json!({"type": "t", "data": {"n": 1}}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{body}");
    // Named in an event's `destinations`, the same.
    let (late, _) = first.webhook(&receiver.url(), json!({})).await;
    let (status, body) = second
        .post(
            "/v1/events",
            json!({"type": "t", "data": {"n": 2}, "destinations": [late]}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{body}");
}
