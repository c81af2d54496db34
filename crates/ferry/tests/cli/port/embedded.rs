//! What only the embedded Ferry does: the whole engine in this process,
//! stopping and starting again on the same directory, and the optional
//! HTTP API.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ferry::port::{DeliveryStatus, ExternalEvent, IntegrationPort, PortError};
use ferry::{Ferry, NewDestination};
use ferry_testkit::{Behavior, Receiver};
use serde_json::json;

use super::{percentile, run_event, wait_for};

/// An embedded Ferry on `dir` that may deliver to loopback receivers.
async fn open(dir: &std::path::Path) -> Ferry {
    Ferry::builder(dir)
        .allow_private_networks(true)
        .open()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_destination_that_is_down_never_slows_send_and_gets_everything_later() {
    // A port nobody listens on: connections are refused.
    let addr: SocketAddr = format!("127.0.0.1:{}", ferry_testkit::free_port())
        .parse()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ferry = open(dir.path()).await;
    let dst = ferry
        .destinations()
        .create(
            NewDestination::webhook(format!("http://{addr}/hook"))
                .max_retries(50)
                .backoff(Duration::from_millis(100), Duration::from_millis(500)),
        )
        .await
        .unwrap();
    let port = ferry.port(&dst.id).unwrap();
    let mut latencies = Vec::new();
    let mut ids = HashSet::new();
    for i in 0..500 {
        let clock = Instant::now();
        let r = port.send(run_event(i)).await.unwrap();
        latencies.push(clock.elapsed());
        assert_eq!(r.status, DeliveryStatus::Pending);
        ids.insert(r.event_id.to_string());
    }
    let p99 = percentile(&mut latencies, 99);
    assert!(
        p99 < Duration::from_secs(1),
        "send p99 {p99:?} while the destination is down"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let receiver = Receiver::start_at(addr).await;
    receiver
        .wait_for_distinct(500, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(receiver.distinct_ids().len(), 500);
    let got: HashSet<String> = receiver.distinct_ids().into_iter().collect();
    assert_eq!(got, ids);
    ferry.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn a_slow_destination_never_blocks_send_or_status() {
    let receiver = Receiver::start().await;
    receiver.set_behavior(Behavior::Delay(Duration::from_secs(5)));
    let dir = tempfile::tempdir().unwrap();
    let ferry = open(dir.path()).await;
    let dst = ferry
        .destinations()
        .create(NewDestination::webhook(receiver.url()).max_in_flight(1000))
        .await
        .unwrap();
    let port = ferry.port(&dst.id).unwrap();
    // 1,000 sends at once, from 1,000 tasks.
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let port = port.clone();
            tokio::spawn(async move {
                let clock = Instant::now();
                let r = port.send(run_event(i)).await.unwrap();
                (clock.elapsed(), r.event_id)
            })
        })
        .collect();
    let mut sends = Vec::new();
    let mut ids = Vec::new();
    for t in tasks {
        let (took, id) = t.await.unwrap();
        sends.push(took);
        ids.push(id);
    }
    // While the 1,000 deliveries are in flight to the slow receiver.
    receiver
        .wait_for(900, Duration::from_secs(30))
        .await
        .unwrap();
    let mut reads = Vec::new();
    for id in ids.iter().take(200) {
        let clock = Instant::now();
        let r = port.status(id).await.unwrap().unwrap();
        reads.push(clock.elapsed());
        assert_eq!(r.status, DeliveryStatus::Pending);
    }
    let status_p99 = percentile(&mut reads, 99);
    assert!(
        status_p99 < Duration::from_millis(100),
        "status p99 {status_p99:?}"
    );
    let send_p99 = percentile(&mut sends, 99);
    assert!(send_p99 < Duration::from_secs(2), "send p99 {send_p99:?}");
    // A full queue: a destination taking two at a time, 500 waiting behind.
    let narrow = ferry
        .destinations()
        .create(NewDestination::webhook(receiver.url()).max_in_flight(2))
        .await
        .unwrap();
    let narrow = ferry.port(&narrow.id).unwrap();
    let mut queued = Vec::new();
    for i in 0..500 {
        let clock = Instant::now();
        let event = ExternalEvent::new("evaluation.queued", json!({ "run": i }));
        assert_eq!(
            narrow.send(event).await.unwrap().status,
            DeliveryStatus::Pending
        );
        queued.push(clock.elapsed());
    }
    let queued_p99 = percentile(&mut queued, 99);
    assert!(
        queued_p99 < Duration::from_secs(1),
        "send p99 {queued_p99:?} behind a full queue"
    );
    for id in &ids[..10] {
        wait_for(&port, id, DeliveryStatus::Delivered).await;
    }
    ferry.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn shutdown_keeps_what_is_not_delivered_for_the_next_start() {
    let receiver = Receiver::start().await;
    receiver.set_behavior(Behavior::Hang);
    let dir = tempfile::tempdir().unwrap();
    let open = || async {
        Ferry::builder(dir.path())
            .allow_private_networks(true)
            .actor("evaluation-export")
            .open()
            .await
            .unwrap()
    };
    let ferry = open().await;
    let dst = ferry
        .destinations()
        .create(NewDestination::webhook(receiver.url()))
        .await
        .unwrap();
    let port = ferry.port(&dst.id).unwrap();
    let mut ids = Vec::new();
    for i in 0..50 {
        let event = run_event(i);
        ids.push(port.send(event).await.unwrap().event_id);
    }
    receiver.wait_for(1, Duration::from_secs(10)).await.unwrap();
    ferry.shutdown(Duration::from_millis(300)).await.unwrap();
    ferry.shutdown(Duration::from_millis(300)).await.unwrap();
    assert_eq!(
        port.send(ExternalEvent::new("late", json!({})))
            .await
            .unwrap_err(),
        PortError::Closed
    );
    assert!(matches!(ferry.port(&dst.id), Err(PortError::Closed)));

    receiver.set_behavior(Behavior::Ok);
    let ferry = open().await;
    let port = ferry.port(&dst.id).unwrap();
    for id in &ids {
        wait_for(&port, id, DeliveryStatus::Delivered).await;
    }
    let audit = ferry.audit().await.unwrap();
    assert!(
        audit
            .iter()
            .any(|a| a.actor == "evaluation-export" && a.action == "destination.created"),
        "{audit:?}"
    );
    ferry.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn two_ferries_cannot_share_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let first = Ferry::embedded(dir.path()).await.unwrap();
    let second = Ferry::embedded(dir.path()).await.unwrap_err();
    assert!(
        second.to_string().contains("another Ferry process"),
        "{second}"
    );
    first.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn the_embedded_ferry_can_serve_the_http_api() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let ferry = Ferry::builder(dir.path())
        .allow_private_networks(true)
        .serve_http("127.0.0.1:0".parse().unwrap())
        .open()
        .await
        .unwrap();
    let addr = ferry.http_addr().expect("served");
    let key = ferry
        .generated_admin_key()
        .expect("an admin key on first start");
    let dst = ferry
        .destinations()
        .create(NewDestination::webhook(receiver.url()).name("evals"))
        .await
        .unwrap();
    assert!(dst.signing_secret.as_deref().unwrap().starts_with("whsec_"));
    let port = ferry.port(&dst.id).unwrap();
    let sent = port.send(run_event(9)).await.unwrap();
    wait_for(&port, &sent.event_id, DeliveryStatus::Delivered).await;
    // The same event, seen through the API the application serves.
    let http = reqwest::Client::new();
    let url = format!(
        "http://{addr}/v1/destinations/{}/events/{}",
        dst.id, sent.event_id
    );
    let view: serde_json::Value = http
        .get(url)
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["status"], "delivered", "{view}");
    assert_eq!(ferry.destinations().list().await.unwrap().len(), 1);
    ferry.shutdown(Duration::from_secs(5)).await.unwrap();
    assert!(
        http.get(format!("http://{addr}/healthz"))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_ferry_dropped_without_shutdown_stops_and_its_directory_opens_again() {
    let receiver = Receiver::start().await;
    receiver.set_behavior(Behavior::Hang);
    let dir = tempfile::tempdir().unwrap();
    let ferry = open(dir.path()).await;
    let dst = ferry
        .destinations()
        .create(NewDestination::webhook(receiver.url()))
        .await
        .unwrap();
    let port = ferry.port(&dst.id).unwrap();
    let sent = port.send(run_event(1)).await.unwrap();
    receiver.wait_for(1, Duration::from_secs(10)).await.unwrap();
    drop(ferry);
    // The port outlives its Ferry, which no longer takes events.
    assert_eq!(
        port.send(ExternalEvent::new("late", json!({})))
            .await
            .unwrap_err(),
        PortError::Closed
    );
    drop(port);
    receiver.set_behavior(Behavior::Ok);
    let deadline = Instant::now() + Duration::from_secs(20);
    let ferry = loop {
        match Ferry::builder(dir.path())
            .allow_private_networks(true)
            .open()
            .await
        {
            Ok(ferry) => break ferry,
            Err(error) => {
                assert!(Instant::now() < deadline, "{error}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let port = ferry.port(&dst.id).unwrap();
    wait_for(&port, &sent.event_id, DeliveryStatus::Delivered).await;
    ferry.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn a_port_sends_to_any_kind_a_file_and_a_redis_stream() {
    let dir = tempfile::tempdir().unwrap();
    let ferry = open(dir.path()).await;
    let files = dir.path().join("files").join("evals");
    std::fs::create_dir_all(&files).unwrap();
    let file = ferry
        .destinations()
        .create(NewDestination::new("file", json!({ "directory": files })))
        .await
        .unwrap();
    let redis_url = std::env::var("FERRY_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let key = format!("ferry-port-test:{}", ferry_core::ids::unique_token());
    let stream = ferry
        .destinations()
        .create(NewDestination::new(
            "redis",
            json!({ "url": redis_url, "mode": "stream", "key": key }),
        ))
        .await
        .unwrap();
    let event = run_event(5).with_id("e-5");
    for dst in [&file, &stream] {
        let port = ferry.port(&dst.id).unwrap();
        let sent = port.send(event.clone()).await.unwrap();
        wait_for(&port, &sent.event_id, DeliveryStatus::Delivered).await;
    }
    let written = files.join(format!("{}.json", event.id_at(&file.id)));
    let body: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&written).unwrap()).unwrap();
    assert_eq!(body["data"], json!({"run": 5}));
    let mut redis = redis::Client::open(redis_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let len: u64 = redis::cmd("XLEN")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(len, 1);
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .unwrap();
    ferry.shutdown(Duration::from_secs(5)).await.unwrap();
}
