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

use crate::process::{
    Load, assert_nothing_waiting, create_webhook, start_roles, wait_for_progress,
    wait_until_received,
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
