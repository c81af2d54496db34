//! What every `IntegrationPort` promises, run against each flavor.

use std::time::Duration;

use ferry::port::{DeliveryStatus, ExternalEvent, IntegrationPort, PortError};
use ferry_testkit::{Behavior, Receiver};
use serde_json::json;

use super::{FLAVORS, Flavor, Harness, run_event, wait_for, wait_status};

#[tokio::test]
async fn send_answers_pending_then_the_event_is_delivered_once() {
    for flavor in FLAVORS {
        let receiver = Receiver::start().await;
        let h = Harness::open(flavor).await;
        let dst = h.webhook(&receiver.url(), 3).await;
        let port = h.ferry.port(&dst.id).unwrap();
        let event = ExternalEvent::new("evaluation.completed", json!({"run": 1, "score": 0.5}))
            .with_metadata("suite", "nightly");
        let sent = port.send(event.clone()).await.unwrap();
        assert_eq!(sent.status, DeliveryStatus::Pending, "{flavor:?}");
        assert_eq!(sent.attempts, 0);
        assert_eq!(sent.event_id, event.id_at(&dst.id), "{flavor:?}");
        let done = wait_for(&port, &sent.event_id, DeliveryStatus::Delivered).await;
        assert_eq!(done.attempts, 1);
        assert!(done.delivered_at.is_some() && done.last_error.is_none());
        assert_eq!(done.attempts_remaining, Some(0));
        assert_eq!(done.next_attempt_at, None);
        let request = &receiver.requests()[0];
        assert_eq!(request.header("webhook-id"), Some(sent.event_id.as_str()));
        assert_eq!(request.json()["data"], json!({"run": 1, "score": 0.5}));

        // The same content again is the same event: a duplicate.
        let again = port.send(event).await.unwrap();
        assert_eq!(again.event_id, sent.event_id);
        // The embedded Ferry knows at once; a remote one answers from its spool.
        let expected = match flavor {
            Flavor::Embedded => DeliveryStatus::Delivered,
            Flavor::Remote => DeliveryStatus::Pending,
        };
        assert_eq!(again.status, expected, "{flavor:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(receiver.count(), 1, "{flavor:?}: delivered twice");
        h.close().await;
    }
}

#[tokio::test]
async fn a_callers_id_decides_the_event_id_per_destination() {
    for flavor in FLAVORS {
        let (a, b) = (Receiver::start().await, Receiver::start().await);
        let h = Harness::open(flavor).await;
        let (da, db) = (h.webhook(&a.url(), 1).await, h.webhook(&b.url(), 1).await);
        let (pa, pb) = (h.ferry.port(&da.id).unwrap(), h.ferry.port(&db.id).unwrap());
        let first = run_event(7).with_id("eval-7");
        let changed =
            ExternalEvent::new("evaluation.completed", json!({"run": 7, "v": 2})).with_id("eval-7");
        let ra = pa.send(first.clone()).await.unwrap();
        // Another content with the same id is the same event.
        assert_eq!(pa.send(changed).await.unwrap().event_id, ra.event_id);
        // The same id through another port is another event.
        let rb = pb.send(first).await.unwrap();
        assert_ne!(ra.event_id, rb.event_id, "{flavor:?}");
        wait_for(&pa, &ra.event_id, DeliveryStatus::Delivered).await;
        wait_for(&pb, &rb.event_id, DeliveryStatus::Delivered).await;
        assert_eq!((a.count(), b.count()), (1, 1), "{flavor:?}");
        assert_eq!(a.requests()[0].json()["data"], json!({"run": 7}));
        // A port knows only its own destination's events.
        assert!(pa.status(&rb.event_id).await.unwrap().is_none());
        h.close().await;
    }
}

#[tokio::test]
async fn a_content_id_is_the_same_wherever_it_is_computed() {
    for flavor in FLAVORS {
        let receiver = Receiver::start().await;
        let h = Harness::open(flavor).await;
        let dst = h.webhook(&receiver.url(), 1).await;
        let port = h.ferry.port(&dst.id).unwrap();
        let data = json!({
            "z": 0.1, "a": [1e300, -0.0, 5e-324, "é\u{1F600}\"\\"],
            "n": {"b": 1, "a": {"y": null, "x": true}},
            "big": 12_345_678_901_234_567_890_u64, "neg": -9_007_199_254_740_993_i64
        });
        let event = ExternalEvent::new("evaluation.completed", data);
        let sent = port.send(event.clone()).await.unwrap();
        assert_eq!(sent.event_id, event.id_at(&dst.id));
        // Found under the id the caller computed: the server derived the same.
        wait_for(&port, &sent.event_id, DeliveryStatus::Delivered).await;
        let got = &receiver.requests()[0];
        assert_eq!(
            got.header("webhook-id"),
            Some(sent.event_id.as_str()),
            "{flavor:?}"
        );
        h.close().await;
    }
}

#[tokio::test]
async fn a_permanent_refusal_fails_at_once_without_retries() {
    for flavor in FLAVORS {
        let receiver = Receiver::start().await;
        receiver.set_behavior(Behavior::Status(400));
        let h = Harness::open(flavor).await;
        let dst = h.webhook(&receiver.url(), 5).await;
        let port = h.ferry.port(&dst.id).unwrap();
        let sent = port
            .send(ExternalEvent::new(
                "evaluation.completed",
                json!({"bad": true}),
            ))
            .await
            .unwrap();
        let failed = wait_for(&port, &sent.event_id, DeliveryStatus::Failed).await;
        assert_eq!(failed.attempts, 1, "{flavor:?}");
        let error = failed.last_error.expect("the refusal's reason");
        assert_eq!(error.code.as_deref(), Some("400"), "{error:?}");
        assert_eq!(failed.attempts_remaining, Some(0));
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(receiver.count(), 1, "{flavor:?}: a 400 was retried");
        let dead = h.ferry.dead_letters().await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].event_id, sent.event_id);
        h.close().await;
    }
}

#[tokio::test]
async fn retries_show_as_retrying_then_delivered() {
    for flavor in FLAVORS {
        let receiver = Receiver::start().await;
        receiver.set_behavior(Behavior::FailTimes {
            times: 2,
            status: 503,
        });
        let h = Harness::open(flavor).await;
        let dst = h.webhook(&receiver.url(), 5).await;
        let port = h.ferry.port(&dst.id).unwrap();
        let sent = port.send(run_event(3)).await.unwrap();
        let retrying = wait_status(&port, &sent.event_id, Duration::from_secs(20), |r| {
            r.status == DeliveryStatus::Retrying && r.next_attempt_at.is_some()
        })
        .await;
        let error = retrying.last_error.clone().expect("why it is retrying");
        assert_eq!(error.code.as_deref(), Some("503"));
        assert!(retrying.attempts_remaining.unwrap() >= 4, "{retrying:?}");
        let done = wait_for(&port, &sent.event_id, DeliveryStatus::Delivered).await;
        assert_eq!(done.attempts, 3, "{flavor:?}");
        assert_eq!(receiver.distinct_count(), 1);
        h.close().await;
    }
}

#[tokio::test]
async fn spent_retries_exhaust_into_the_dead_letter_queue_and_replay_redelivers() {
    for flavor in FLAVORS {
        let receiver = Receiver::start().await;
        receiver.set_behavior(Behavior::Status(503));
        let h = Harness::open(flavor).await;
        let dst = h.webhook(&receiver.url(), 1).await;
        let port = h.ferry.port(&dst.id).unwrap();
        let sent = port.send(run_event(4).with_id("e-4")).await.unwrap();
        let exhausted = wait_for(&port, &sent.event_id, DeliveryStatus::Exhausted).await;
        assert_eq!(exhausted.attempts, 2, "{flavor:?}");
        assert_eq!(exhausted.attempts_remaining, Some(0));
        assert!(
            h.ferry
                .dead_letters()
                .await
                .unwrap()
                .iter()
                .any(|d| d.event_id == sent.event_id)
        );
        receiver.set_behavior(Behavior::Ok);
        assert_eq!(h.ferry.replay(&sent.event_id).await.unwrap(), 1);
        wait_for(&port, &sent.event_id, DeliveryStatus::Delivered).await;
        let ids: Vec<_> = receiver
            .requests()
            .iter()
            .map(|r| r.header("webhook-id").unwrap().to_owned())
            .collect();
        assert_eq!(ids.len(), 3);
        assert!(ids.iter().all(|id| id == sent.event_id.as_str()), "{ids:?}");
        let audit = h.ferry.audit().await.unwrap();
        assert!(
            audit
                .iter()
                .any(|a| a.action.starts_with("event.replay")
                    || a.entity_id == sent.event_id.as_str()),
            "{audit:?}"
        );
        h.close().await;
    }
}

#[tokio::test]
async fn what_the_caller_can_fix_is_refused_and_nothing_is_stored() {
    for flavor in FLAVORS {
        let h = Harness::open(flavor).await;
        let missing: ferry::port::DestinationId = "dst_01jq3v2a4c6e8g0j2m4p6r8t0v".parse().unwrap();
        let port = h.ferry.port(&missing).unwrap();
        let event = ExternalEvent::new("evaluation.completed", json!({}));
        assert_eq!(
            port.send(event.clone()).await.unwrap_err(),
            PortError::UnknownDestination(missing.clone())
        );
        assert!(port.status(&event.id_at(&missing)).await.unwrap().is_none());
        let receiver = Receiver::start().await;
        let dst = h.webhook(&receiver.url(), 1).await;
        let port = h.ferry.port(&dst.id).unwrap();
        match port
            .send(ExternalEvent::new("", json!({})))
            .await
            .unwrap_err()
        {
            PortError::Invalid(message) => assert!(message.contains("type"), "{message}"),
            other => panic!("{other:?}"),
        }
        let big = "x".repeat(2 * 1024 * 1024);
        let too_large = ExternalEvent::new("evaluation.completed", json!({ "blob": big }));
        match port.send(too_large.clone()).await.unwrap_err() {
            PortError::TooLarge { size, limit } => {
                assert_eq!(limit, 1024 * 1024);
                assert!(size > limit);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            port.status(&too_large.id_at(&dst.id))
                .await
                .unwrap()
                .is_none()
        );
        h.close().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(receiver.count(), 0);
    }
}
