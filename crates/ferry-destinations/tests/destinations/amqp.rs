//! What is particular to the amqp kind: the default exchange, an unknown
//! exchange, an unroutable message.

use ferry_core::destination::DestinationKind;
use ferry_core::ports::AttemptError;
use serde_json::json;

use crate::compliance::amqp::{URL, channel, drain, guest, queue};
use crate::compliance::{deliverer, envelope, expected_payload, unique_name};

#[tokio::test]
async fn the_default_exchange_routes_to_the_queue_named_by_the_key() {
    let (_connection, channel) = channel().await;
    let name = unique_name("ferry-test-q");
    queue(&channel, &name).await;
    let config = json!({"url": URL, "routing_key": name});
    let deliverer = deliverer(DestinationKind::Amqp, &config, &guest());
    let check = deliverer.check().await;
    assert!(check.ok, "{}", check.message);
    let event = envelope(1, 1);
    let report = deliverer.deliver(&event).await;
    assert!(report.result.is_ok(), "{report:?}");
    let received = drain(&channel, &name).await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].payload, expected_payload(&event));
}

#[tokio::test]
async fn an_unknown_exchange_is_permanent_and_named() {
    let exchange = unique_name("ferry-test-missing");
    let config = json!({"url": URL, "exchange": exchange});
    let deliverer = deliverer(DestinationKind::Amqp, &config, &guest());
    let check = deliverer.check().await;
    assert!(!check.ok);
    assert!(check.message.contains(&exchange), "{}", check.message);
    for attempt in 1..=2 {
        let report = deliverer.deliver(&envelope(1, attempt)).await;
        let Err(AttemptError::Permanent { reason: error }) = &report.result else {
            panic!("{report:?}");
        };
        assert!(
            error.contains("no exchange") && error.contains(&exchange),
            "{error}"
        );
    }
}

#[tokio::test]
async fn an_unroutable_message_is_retried_not_dropped() {
    let (_connection, channel) = channel().await;
    let name = unique_name("ferry-test-q");
    let config = json!({"url": URL, "routing_key": name});
    let deliverer = deliverer(DestinationKind::Amqp, &config, &guest());
    let event = envelope(1, 1);
    let report = deliverer.deliver(&event).await;
    let Err(AttemptError::Retryable { reason: error, .. }) = &report.result else {
        panic!("{report:?}");
    };
    assert!(error.contains("unroutable"), "{error}");
    // Once the queue exists, the retry lands, on the same connection.
    queue(&channel, &name).await;
    let report = deliverer.deliver(&event).await;
    assert!(report.result.is_ok(), "{report:?}");
    assert_eq!(drain(&channel, &name).await.len(), 1);
}
