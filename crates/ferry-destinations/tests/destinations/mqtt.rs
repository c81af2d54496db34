//! What is particular to the mqtt kind: QoS 2 (delivered on PUBCOMP) and
//! many concurrent publishes each getting their own acknowledgement.

use std::time::{Duration, Instant};

use ferry_core::destination::{Auth, DestinationKind};
use ferry_core::ports::Delivered;
use serde_json::json;

use crate::compliance::mqtt::{URL, subscribe};
use crate::compliance::{WAIT, deliverer, envelope, unique_name};

#[tokio::test]
async fn qos_2_publishes_concurrently_are_each_acknowledged() {
    let prefix = unique_name("ferry_test_qos2");
    let (_client, received) = subscribe(&format!("{prefix}/#")).await;
    let config = json!({"url": URL, "topic": format!("{prefix}/{{id}}"), "qos": 2});
    let dest = deliverer(DestinationKind::Mqtt, &config, &Auth::None);
    let events: Vec<_> = (0..20).map(|n| envelope(n, 1)).collect();
    let reports = futures::future::join_all(events.iter().map(|e| dest.deliver(e))).await;
    for report in &reports {
        let Ok(Delivered { receipt }) = &report.result else {
            panic!("{report:?}")
        };
        let receipt = receipt.as_ref().unwrap();
        assert_eq!(receipt.get("ack"), Some(&json!("PUBCOMP")), "{receipt:?}");
        assert_eq!(receipt.get("qos"), Some(&json!(2)));
    }
    let deadline = Instant::now() + WAIT;
    while received.lock().unwrap().len() < events.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let arrived = received.lock().unwrap().clone();
    assert_eq!(arrived.len(), events.len());
    for event in &events {
        assert!(arrived.iter().any(|r| r.id == event.event.id.as_str()));
    }
}
