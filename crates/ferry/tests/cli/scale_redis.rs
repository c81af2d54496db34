//! Scale-out with the queue on Redis Streams: two ingest processes and two
//! workers on PostgreSQL and a Redis of the test's own. Under load Redis
//! loses all its data (`FLUSHALL`), a worker is killed with SIGKILL, and the
//! consumer group is deleted; every acknowledged event still arrives and
//! nothing is left waiting, with no operator step.

use std::time::Duration;

use ferry_store::RedisQueue;
use ferry_testkit::pg::{PgSchema, database_url};
use ferry_testkit::redis::PrivateRedis;
use ferry_testkit::{Behavior, Receiver};
use serde_json::{Value, json};

use crate::process::{
    ADMIN_KEY, FerryProcess, Load, assert_nothing_waiting, wait_for_progress, wait_until_received,
};

const EVENTS: usize = 6_000;
const CLIENTS: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_losing_its_data_and_its_group_under_load_loses_nothing() {
    let redis = PrivateRedis::start();
    let dir = tempfile::tempdir().unwrap();
    let schema = PgSchema::new("ferry_redis");
    let env = vec![
        ("FERRY_DATABASE_URL", database_url()),
        ("FERRY_DATABASE_SCHEMA", schema.name.clone()),
        ("FERRY_MASTER_KEY", "7e".repeat(32)),
        ("FERRY_QUEUE_URL", redis.url()),
        ("FERRY_DISPATCH__LEASE_SECS", "3".to_owned()),
        ("FERRY_DISPATCH__POLL_INTERVAL_MS", "200".to_owned()),
    ];
    let start = |name: &str, role: &str| {
        let (dir, env) = (dir.path().join(name), env.clone());
        let role = role.to_owned();
        async move { FerryProcess::start_with(&dir, "info", &["--role", &role], &env).await }
    };
    let ingest_a = start("ingest-a", "ingest").await;
    let ingest_b = start("ingest-b", "ingest").await;
    let worker_1 = start("worker-1", "worker").await;
    let worker_2 = start("worker-2", "worker").await;

    let receiver = Receiver::start().await;
    receiver.set_behavior(Behavior::Delay(Duration::from_millis(20)));
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{}/v1/destinations", ingest_a.base))
        .bearer_auth(ADMIN_KEY)
        .json(
            &json!({"name": "r", "kind": "webhook", "config": {"url": receiver.url()},
                      "filter": {"event_types": ["scale.*"]}, "max_in_flight": 64}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(created["id"].is_string(), "{created}");

    let load = Load::start(
        &[ingest_a.base.clone(), ingest_b.base.clone()],
        EVENTS,
        CLIENTS,
        "redis",
    );
    let stream = RedisQueue::stream_key("ferry");
    wait_for_progress(&receiver, 1_000, Duration::from_secs(120)).await;
    assert_eq!(redis.cli(&["FLUSHALL"]).as_deref(), Some("OK"));
    wait_for_progress(&receiver, 2_500, Duration::from_secs(120)).await;
    worker_1.kill_9();
    wait_for_progress(&receiver, 4_000, Duration::from_secs(120)).await;
    assert_eq!(
        redis
            .cli(&["XGROUP", "DESTROY", &stream, RedisQueue::GROUP])
            .as_deref(),
        Some("1"),
        "the group existed again after FLUSHALL"
    );
    let acked = load.finish().await;
    assert_eq!(acked.len(), EVENTS);

    wait_until_received(&receiver, &acked, Duration::from_secs(180)).await;
    assert_nothing_waiting(&http, &ingest_b.base, Duration::from_secs(30)).await;
    let groups = redis.cli(&["XINFO", "GROUPS", &stream]).unwrap_or_default();
    assert!(
        groups.contains(RedisQueue::GROUP),
        "the queue runs on Redis again: {groups}"
    );
    drop((ingest_a, ingest_b, worker_2));
}
