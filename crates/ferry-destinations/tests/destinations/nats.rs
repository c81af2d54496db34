//! What is particular to the nats kind: core publishes (no stream), and a
//! subject that no stream, or another stream, captures.

use std::time::Duration;

use ferry_core::destination::{Auth, DestinationKind};
use ferry_core::ports::AttemptError;
use futures::StreamExt;
use serde_json::{Value, json};

use crate::compliance::nats::{SERVER, context, create_stream};
use crate::compliance::{deliverer, envelope, expected_payload, unique_name};

#[tokio::test]
async fn without_a_stream_it_is_a_core_publish_to_subscribers() {
    let prefix = unique_name("ferry_test_core");
    let client = async_nats::connect(SERVER).await.unwrap();
    let mut subscriber = client.subscribe(format!("{prefix}.>")).await.unwrap();
    client.flush().await.unwrap();
    let config = json!({"servers": [SERVER], "subject": format!("{prefix}.{{type}}")});
    let dest = deliverer(DestinationKind::Nats, &config, &Auth::None);
    assert!(dest.check().await.ok);
    let event = envelope(1, 1);
    let report = dest.deliver(&event).await;
    assert!(report.result.is_ok(), "{report:?}");
    let message = tokio::time::timeout(Duration::from_secs(5), subscriber.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        message.subject.as_str(),
        format!("{prefix}.{}", event.event.event_type)
    );
    let headers = message.headers.unwrap();
    assert_eq!(
        headers.get("Nats-Msg-Id").unwrap().as_str(),
        event.event.id.as_str()
    );
    let payload: Value = serde_json::from_slice(&message.payload).unwrap();
    assert_eq!(payload, expected_payload(&event));
}

#[tokio::test]
async fn a_subject_no_stream_captures_is_permanent_and_named() {
    let prefix = unique_name("ferry_test_lost");
    let config =
        json!({"servers": [SERVER], "subject": format!("{prefix}.x"), "stream": "FERRY_NONE"});
    let dest = deliverer(DestinationKind::Nats, &config, &Auth::None);
    let check = dest.check().await;
    assert!(
        !check.ok && check.message.contains("FERRY_NONE"),
        "{}",
        check.message
    );
    let report = dest.deliver(&envelope(1, 1)).await;
    let Err(AttemptError::Permanent { reason: error }) = &report.result else {
        panic!("{report:?}")
    };
    assert!(error.contains("no JetStream stream captures"), "{error}");

    let name = unique_name("FERRY_TEST");
    create_stream(&context().await, &name, &prefix).await;
    let config =
        json!({"servers": [SERVER], "subject": format!("{prefix}.x"), "stream": "FERRY_OTHER"});
    let report = deliverer(DestinationKind::Nats, &config, &Auth::None)
        .deliver(&envelope(1, 1))
        .await;
    let Err(AttemptError::Permanent { reason: error }) = &report.result else {
        panic!("{report:?}")
    };
    assert!(
        error.contains(&name) && error.contains("FERRY_OTHER"),
        "{error}"
    );
}
