//! Scale-out on PostgreSQL: separate ingest and worker processes that meet
//! only in the database. Two ingest and two workers take 10,000 events; one
//! worker is killed with SIGKILL midway; every acknowledged event still
//! arrives, nothing is left waiting, and a duplicate sent to both ingest
//! processes at once is one event.

use std::time::{Duration, Instant};

use ferry_testkit::pg::{PgSchema, database_url};
use ferry_testkit::{Behavior, Receiver};
use serde_json::{Value, json};

use crate::process::{
    ADMIN_KEY, FerryProcess, Load, assert_nothing_waiting, create_webhook, start_roles,
    wait_for_progress, wait_until_received,
};

const EVENTS: usize = 10_000;
const CLIENTS: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_ingest_and_two_workers_lose_nothing_when_a_worker_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let schema = PgSchema::new("ferry_scale");
    let env = vec![
        ("FERRY_DATABASE_URL", database_url()),
        ("FERRY_DATABASE_SCHEMA", schema.name.clone()),
        ("FERRY_MASTER_KEY", "7e".repeat(32)),
        ("FERRY_DISPATCH__LEASE_SECS", "3".to_owned()),
        ("FERRY_DISPATCH__POLL_INTERVAL_MS", "200".to_owned()),
    ];
    let [ingest_a, ingest_b, worker_1, worker_2] = start_roles(
        dir.path(),
        &[
            ("ingest-a", "ingest"),
            ("ingest-b", "ingest"),
            ("worker-1", "worker"),
            ("worker-2", "worker"),
        ],
        &env,
    )
    .await
    .try_into()
    .unwrap_or_else(|_| unreachable!("four roles, four processes"));

    let receiver = Receiver::start().await;
    receiver.set_behavior(Behavior::Delay(Duration::from_millis(20)));
    let http = reqwest::Client::new();
    create_webhook(&ingest_a.base, &receiver.url(), "scale.*", 64).await;
    // Workers never accept events.
    let refused = http
        .post(format!("{}/v1/events", worker_1.base))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"type": "scale.x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 404);

    let load = Load::start(
        &[ingest_a.base.clone(), ingest_b.base.clone()],
        EVENTS,
        CLIENTS,
        "scale",
    );
    // Kill one worker while deliveries are under way.
    wait_for_progress(&receiver, 2_000, Duration::from_secs(120)).await;
    worker_1.kill_9();
    let acked = load.finish().await;
    assert_eq!(acked.len(), EVENTS);

    // The same new event sent to both ingest processes at once is one event.
    let mut pairs = Vec::new();
    for i in 0..20 {
        let body = json!({"type": "scale.dup", "id": format!("dup-{i}"), "data": {}});
        let (a, b) = (
            http.post(format!("{}/v1/events", ingest_a.base))
                .bearer_auth(ADMIN_KEY)
                .json(&body)
                .send(),
            http.post(format!("{}/v1/events", ingest_b.base))
                .bearer_auth(ADMIN_KEY)
                .json(&body)
                .send(),
        );
        pairs.push(async move { tokio::join!(a, b) });
    }
    for (a, b) in futures::future::join_all(pairs).await {
        let (a, b) = (a.unwrap(), b.unwrap());
        let (sa, sb) = (a.status().as_u16(), b.status().as_u16());
        let (va, vb): (Value, Value) = (a.json().await.unwrap(), b.json().await.unwrap());
        assert_eq!(va["id"], vb["id"]);
        assert_eq!(
            va["deliveries"][0]["id"], vb["deliveries"][0]["id"],
            "one set of deliveries"
        );
        let mut statuses = [sa, sb];
        statuses.sort();
        assert_eq!(statuses, [200, 202], "exactly one is new");
    }

    // Everything acknowledged arrives; nothing is left waiting.
    wait_until_received(&receiver, &acked, Duration::from_secs(120)).await;
    receiver
        .wait_for_distinct(EVENTS + 20, Duration::from_secs(60))
        .await
        .unwrap();
    assert_nothing_waiting(&http, &ingest_b.base, Duration::from_secs(30)).await;
    drop((ingest_a, ingest_b, worker_2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_wakes_at_once_when_another_process_commits_work() {
    let dir = tempfile::tempdir().unwrap();
    let schema = PgSchema::new("ferry_wake");
    let env = vec![
        ("FERRY_DATABASE_URL", database_url()),
        ("FERRY_DATABASE_SCHEMA", schema.name.clone()),
        ("FERRY_MASTER_KEY", "7e".repeat(32)),
        // Polling alone would take ten minutes.
        ("FERRY_DISPATCH__POLL_INTERVAL_MS", "600000".to_owned()),
    ];
    let ingest = FerryProcess::start_with(
        &dir.path().join("ingest"),
        "info",
        &["--role", "ingest"],
        &env,
    )
    .await;
    let worker = FerryProcess::start_with(
        &dir.path().join("worker"),
        "info",
        &["--role", "worker"],
        &env,
    )
    .await;
    let receiver = Receiver::start().await;
    let http = reqwest::Client::new();
    http.post(format!("{}/v1/destinations", ingest.base))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"name": "r", "kind": "webhook", "config": {"url": receiver.url()}, "filter": {"event_types": ["*"]}}))
        .send()
        .await
        .unwrap();
    // Let the worker finish its first poll, so only a wake-up can deliver.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = Instant::now();
    let r = http
        .post(format!("{}/v1/events", ingest.base))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"type": "wake.up", "data": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    // Without a wake-up the worker would find it at its next lease renewal
    // (a third of the 30 s lease) at the earliest.
    receiver.wait_for(1, Duration::from_secs(3)).await.unwrap();
    assert!(sent.elapsed() < Duration::from_secs(3));
    drop((ingest, worker));
}
