//! What is particular to the redis kind: list and pub/sub modes, and a key
//! of the wrong type named as such.

use std::time::Duration;

use ferry_core::destination::{Auth, DestinationKind};
use ferry_core::ports::{AttemptError, Delivered};
use futures::StreamExt;
use redis::AsyncCommands;
use serde_json::{Value, json};

use crate::compliance::redis::{URL, connection};
use crate::compliance::{deliverer, envelope, expected_payload, unique_name};

#[tokio::test]
async fn list_mode_pushes_the_payload_for_consumers_to_pop_in_order() {
    let key = unique_name("ferry-test-list");
    let config = json!({"url": URL, "mode": "list", "key": key});
    let deliverer = deliverer(DestinationKind::Redis, &config, &Auth::None);
    assert!(deliverer.check().await.ok);
    let events = [envelope(1, 1), envelope(2, 1)];
    for event in &events {
        let report = deliverer.deliver(event).await;
        assert!(report.result.is_ok(), "{report:?}");
    }
    let mut conn = connection().await;
    for event in &events {
        let popped: Option<String> = conn.rpop(&key, None).await.unwrap();
        let payload: Value = serde_json::from_str(&popped.unwrap()).unwrap();
        assert_eq!(payload, expected_payload(event));
    }
}

#[tokio::test]
async fn pubsub_mode_publishes_to_the_rendered_channel() {
    let prefix = unique_name("ferry-test-channel");
    let event = envelope(1, 1);
    let channel = format!("{prefix}.{}", event.event.event_type);
    let client = redis::Client::open(URL).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub.subscribe(&channel).await.unwrap();

    let config = json!({"url": URL, "mode": "pubsub", "key": format!("{prefix}.{{type}}")});
    let deliverer = deliverer(DestinationKind::Redis, &config, &Auth::None);
    let report = deliverer.deliver(&event).await;
    let Ok(Delivered { receipt }) = &report.result else {
        panic!("{report:?}");
    };
    assert_eq!(
        receipt.as_ref().and_then(|r| r.get("subscribers")),
        Some(&json!(1))
    );
    let message = tokio::time::timeout(Duration::from_secs(5), pubsub.on_message().next())
        .await
        .unwrap()
        .unwrap();
    let payload: Value = serde_json::from_str(&message.get_payload::<String>().unwrap()).unwrap();
    assert_eq!(payload, expected_payload(&event));
}

#[tokio::test]
async fn a_key_of_another_type_is_a_permanent_failure_that_says_so() {
    let key = unique_name("ferry-test-string");
    let mut conn = connection().await;
    let () = conn.set(&key, "not a stream").await.unwrap();
    let config = json!({"url": URL, "key": key});
    let deliverer = deliverer(DestinationKind::Redis, &config, &Auth::None);
    let report = deliverer.deliver(&envelope(1, 1)).await;
    let Err(AttemptError::Permanent { reason: error }) = &report.result else {
        panic!("{report:?}");
    };
    assert!(error.contains("another type"), "{error}");
    let check = deliverer.check().await;
    assert!(!check.ok);
    assert!(
        check.message.contains("holds a string, not a stream"),
        "{}",
        check.message
    );
    // The connection survives a command error: the next delivery uses it.
    let () = conn.del(&key).await.unwrap();
    let report = deliverer.deliver(&envelope(2, 1)).await;
    assert!(report.result.is_ok(), "{report:?}");
}
