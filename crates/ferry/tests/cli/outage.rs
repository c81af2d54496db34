//! PostgreSQL crashes under load (stopped in `immediate` mode, as a power
//! cut would): while it is down, ingest answers 503 and never 202; clients
//! retry with the same event ids; once PostgreSQL is back, everything
//! acknowledged is delivered and nothing is left waiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use ferry_testkit::pg::PrivateCluster;
use ferry_testkit::{Behavior, Receiver};
use serde_json::{Value, json};

use crate::process::{
    ADMIN_KEY, FerryProcess, assert_nothing_waiting, create_webhook, wait_for_progress,
    wait_until_received,
};

const CLIENTS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_crashing_under_load_gives_503s_and_loses_nothing() {
    let pg = PrivateCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let env = vec![
        ("FERRY_DATABASE_URL", pg.url()),
        ("FERRY_MASTER_KEY", "5a".repeat(32)),
        ("FERRY_DISPATCH__LEASE_SECS", "3".to_owned()),
        ("FERRY_DISPATCH__POLL_INTERVAL_MS", "200".to_owned()),
        // Requests wait this long for a connection, then get 503.
        ("FERRY_STORE_BUSY_TIMEOUT_MS", "1000".to_owned()),
    ];
    let mut ferry = FerryProcess::start_with(&dir.path().join("ferry"), "info", &[], &env).await;
    let receiver = Receiver::start().await;
    receiver.set_behavior(Behavior::Delay(Duration::from_millis(10)));
    let http = reqwest::Client::new();
    create_webhook(&ferry.base, &receiver.url(), "outage.*", 64).await;

    // Set while PostgreSQL is surely down: a 202 then would be a lie.
    let down = Arc::new(AtomicBool::new(false));
    let unavailable = Arc::new(AtomicUsize::new(0));
    let next = Arc::new(AtomicUsize::new(0));
    // Clients send until told to stop, so that some requests meet the outage.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (http, base) = (http.clone(), ferry.base.clone());
            let (down, unavailable, next, acked, stop) = (
                down.clone(),
                unavailable.clone(),
                next.clone(),
                acked.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                loop {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    // Like a careful producer: retry the same id until it
                    // is acknowledged.
                    loop {
                        let r = http
                            .post(format!("{base}/v1/events"))
                            .bearer_auth(ADMIN_KEY)
                            .json(&json!({"type": "outage.test", "id": format!("out-{i}"), "data": {"i": i}}))
                            .send()
                            .await
                            .unwrap();
                        match r.status().as_u16() {
                            200 | 202 => {
                                assert!(
                                    !down.load(Ordering::SeqCst),
                                    "acknowledged while PostgreSQL was down"
                                );
                                let body: Value = r.json().await.unwrap();
                                let id = body["id"].as_str().unwrap().to_owned();
                                acked.lock().unwrap().insert(id);
                                break;
                            }
                            503 => {
                                unavailable.fetch_add(1, Ordering::SeqCst);
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                            other => panic!("unexpected {other}: {}", r.text().await.unwrap_or_default()),
                        }
                    }
                }
            })
        })
        .collect();

    wait_for_progress(&receiver, 300, Duration::from_secs(120)).await;
    pg.crash();
    tokio::time::sleep(Duration::from_millis(500)).await;
    down.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(4)).await;
    down.store(false, Ordering::SeqCst);
    let refused = unavailable.load(Ordering::SeqCst);
    assert!(
        refused > 0,
        "no 503 while PostgreSQL was down (requests waited longer than the busy timeout)"
    );
    pg.start_server();
    // Back to acknowledging: wait for a few hundred more, then stop.
    let before = acked.lock().unwrap().len();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < before + 300 {
        assert!(
            std::time::Instant::now() < deadline,
            "ingest did not recover"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert_eq!(
        acked.len(),
        next.load(Ordering::SeqCst),
        "every event sent was acknowledged in the end"
    );
    wait_until_received(&receiver, &acked, Duration::from_secs(120)).await;
    assert_nothing_waiting(&http, &ferry.base, Duration::from_secs(30)).await;
    assert!(
        ferry.child.try_wait().unwrap().is_none(),
        "Ferry kept running through the outage"
    );
}
