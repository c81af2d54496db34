//! Backlogs drain at the pace of the destination, never of a timer: a
//! destination enabled again, resumed by its breaker, a restart with work
//! waiting, a dead-letter replay, and (on PostgreSQL) a worker joining.
//!
//! Each test makes the safety-net poll slow (30 s; leases renewed every
//! 20 s), stores 10,000 deliveries that the dispatcher has not been handed
//! in memory, lets them go, and asserts the mechanism: the receiver never
//! waits more than `MAX_GAP` for the next delivery while work is due, and
//! gets every delivery. A drain that waited for polls would stall for
//! seconds after each lease chunk.

use std::time::{Duration, Instant};

use ferry_server::Config;
use ferry_testkit::{Behavior, Receiver, Recorded};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::TestServer;

pub const BACKLOG: usize = 10_000;
/// Longest quiet spell allowed while deliveries are due: a tenth of the
/// poll interval below, and far above any pause a busy 2-core machine makes.
const MAX_GAP: Duration = Duration::from_secs(3);
const WAIT: Duration = Duration::from_secs(180);

/// A slow safety net, so that only the hand-off and refill mechanisms can
/// keep a drain going.
pub fn slow_polls(c: &mut Config) {
    c.dispatch.poll_interval_ms = 30_000;
    c.dispatch.lease_secs = 60;
}

/// Sends `n` events routed to `dst`, in batches of 1,000.
pub async fn send_backlog(server: &TestServer, dst: &str, tag: &str, n: usize) {
    let mut sent = 0;
    while sent < n {
        let batch = (n - sent).min(1_000);
        let events: Vec<Value> = (sent..sent + batch)
            .map(|i| json!({"type": "backlog.item", "id": format!("{tag}-{i}"), "data": {"i": i}, "destinations": [dst]}))
            .collect();
        let (status, v) = server
            .post("/v1/events/batch", json!({"events": events}))
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        let results = v["results"].as_array().unwrap();
        assert!(
            results.iter().all(|r| r["status"] == 202),
            "not all accepted: {v}"
        );
        sent += batch;
    }
}

/// The longest wait between `from` and the first answered request, and
/// between consecutive answered requests (those the receiver answered 200).
pub fn longest_gap(requests: &[Recorded], from: Instant) -> Duration {
    let mut at: Vec<Instant> = requests
        .iter()
        .filter(|r| r.status_sent == 200 && r.received_at >= from)
        .map(|r| r.received_at)
        .collect();
    at.sort();
    let mut longest = Duration::ZERO;
    let mut last = from;
    for t in at {
        longest = longest.max(t - last);
        last = t;
    }
    longest
}

/// When the receiver first answered 200 at or after `since`; waits for it.
pub async fn first_answered(receiver: &Receiver, since: Instant) -> Instant {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(at) = receiver
            .requests()
            .iter()
            .filter(|r| r.status_sent == 200 && r.received_at >= since)
            .map(|r| r.received_at)
            .min()
        {
            return at;
        }
        assert!(Instant::now() < deadline, "nothing was delivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits for every delivery of the backlog, then checks the gaps since `from`.
pub async fn assert_drains(receiver: &Receiver, from: Instant, what: &str) {
    receiver
        .wait_for_distinct(BACKLOG, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let took = from.elapsed();
    let gap = longest_gap(&receiver.requests(), from);
    assert!(
        gap < MAX_GAP,
        "{what}: the drain stalled for {gap:?} while deliveries were due (drained {BACKLOG} in {took:?})"
    );
}

async fn health_state(server: &TestServer, dst: &str) -> String {
    let (_, h) = server.get(&format!("/v1/destinations/{dst}/health")).await;
    h["state"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_destination_enabled_again_drains_its_backlog_without_waiting_for_polls() {
    let server = TestServer::start_with(slow_polls).await;
    let receiver = Receiver::start().await;
    let (dst, _) = server
        .webhook(&receiver.url(), json!({"enabled": false}))
        .await;
    send_backlog(&server, &dst, "enable", BACKLOG).await;
    assert_eq!(receiver.count(), 0, "a disabled destination got deliveries");

    let from = Instant::now();
    let (status, v) = server
        .post(&format!("/v1/destinations/{dst}/enable"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_drains(&receiver, from, "enable").await;
}

#[tokio::test]
async fn a_destination_resumed_by_its_breaker_drains_its_backlog_without_waiting_for_polls() {
    let server = TestServer::start_with(|c| {
        slow_polls(c);
        c.dispatch.probe_initial_ms = 200;
        c.dispatch.probe_max_ms = 500;
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.set_behavior(Behavior::Status(503));
    let (dst, _) = server.webhook(&receiver.url(), json!({})).await;
    send_backlog(&server, &dst, "trip", 10).await;
    let deadline = Instant::now() + WAIT;
    while health_state(&server, &dst).await != "paused" {
        assert!(Instant::now() < deadline, "the destination never paused");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    send_backlog(&server, &dst, "resume", BACKLOG - 10).await;

    // The next probe succeeds and resumes the destination; the drain is
    // timed from its first delivery.
    receiver.set_behavior(Behavior::Ok);
    let first = first_answered(&receiver, Instant::now()).await;
    assert_drains(&receiver, first, "breaker resume").await;
    assert_eq!(health_state(&server, &dst).await, "healthy");
}

#[tokio::test]
async fn a_restart_with_a_backlog_drains_it_without_waiting_for_polls() {
    let server = TestServer::start_with(slow_polls).await;
    let receiver = Receiver::start().await;
    // Deliveries stall at a receiver that never answers; the stop gives
    // them back, and the next run finds all of them waiting in the store.
    receiver.set_behavior(Behavior::Hang);
    let (dst, _) = server.webhook(&receiver.url(), json!({})).await;
    send_backlog(&server, &dst, "restart", BACKLOG).await;
    receiver.wait_for(1, WAIT).await.unwrap();
    receiver.set_behavior(Behavior::Ok);

    // Timed from the new run's first delivery (the stop waits out its grace).
    let stopped_at = Instant::now();
    let server = server.restart().await;
    let first = first_answered(&receiver, stopped_at).await;
    assert_drains(&receiver, first, "restart").await;
    drop(server);
}

#[tokio::test]
async fn a_dead_letter_replay_of_ten_thousand_drains_without_waiting_for_polls() {
    let server = TestServer::start_with(slow_polls).await;
    let receiver = Receiver::start().await;
    // A permanent refusal sends each delivery straight to the dead-letter queue.
    receiver.set_behavior(Behavior::Status(400));
    let (dst, _) = server.webhook(&receiver.url(), json!({})).await;
    send_backlog(&server, &dst, "dlq", BACKLOG).await;
    let deadline = Instant::now() + WAIT;
    while count_dead(&server, &dst).await < BACKLOG {
        assert!(Instant::now() < deadline, "the backlog never died");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    receiver.clear();
    receiver.set_behavior(Behavior::Ok);

    let from = Instant::now();
    let (status, v) = server
        .post("/v1/dlq/replay", json!({"destination_id": dst}))
        .await;
    assert_eq!(
        (status, v["requeued"].as_u64()),
        (StatusCode::ACCEPTED, Some(BACKLOG as u64)),
        "{v}"
    );
    assert_drains(&receiver, from, "dead-letter replay").await;
}

/// Dead deliveries of `dst`, counted page by page.
async fn count_dead(server: &TestServer, dst: &str) -> usize {
    let mut n = 0;
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/dlq?destination_id={dst}&limit=1000");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, v) = server.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        n += v["data"].as_array().unwrap().len();
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return n,
        }
    }
}

#[tokio::test]
async fn one_large_backlog_does_not_starve_another_destination() {
    let server = TestServer::start_with(slow_polls).await;
    let (big, small) = (Receiver::start().await, Receiver::start().await);
    let (big_dst, _) = server.webhook(&big.url(), json!({"enabled": false})).await;
    let (small_dst, _) = server
        .webhook(&small.url(), json!({"enabled": false}))
        .await;
    // The large backlog is older, so it comes first in due order.
    send_backlog(&server, &big_dst, "big", BACKLOG).await;
    send_backlog(&server, &small_dst, "small", 500).await;
    for dst in [&big_dst, &small_dst] {
        let (status, v) = server
            .post(&format!("/v1/destinations/{dst}/enable"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    small.wait_for_distinct(500, WAIT).await.unwrap();
    let big_done_meanwhile = big.distinct_count();
    assert!(
        big_done_meanwhile < BACKLOG / 2,
        "the small destination waited for the large backlog: {big_done_meanwhile} of {BACKLOG} went first"
    );
    big.wait_for_distinct(BACKLOG, WAIT).await.unwrap();
}
