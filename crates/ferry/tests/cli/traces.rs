//! Traces across a `kill -9`: events ingested with their producers'
//! `traceparent` by one `ferry serve` process (configured only by the
//! standard `OTEL_*` variables), killed before its deliveries succeed, are
//! delivered after the restart in the same traces — each attempt a child
//! of its event's ingest span, each receiver request naming its attempt.

use std::collections::HashMap;
use std::time::Duration;

use ferry_testkit::otlp::OtlpReceiver;
use ferry_testkit::{Behavior, Receiver};
use serde_json::json;

use crate::process::{ADMIN_KEY, FerryProcess};

const EVENTS: usize = 20;
const WAIT: Duration = Duration::from_secs(60);

fn trace_of(i: usize) -> String {
    format!(
        "{:032x}",
        0xfe11_0000_0000_0000_0000_0000_0000_0000_u128 + i as u128
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_after_a_kill_9_join_the_traces_stored_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let otlp = OtlpReceiver::start().await;
    let receiver = Receiver::start().await;
    receiver.set_behavior(Behavior::Status(503));
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.endpoint()),
        ("OTEL_SERVICE_NAME", "ferry-crash".to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
    ];
    let ferry = FerryProcess::start_with(dir.path(), "info", &[], &env).await;
    let http = reqwest::Client::new();
    let created: serde_json::Value = http
        .post(format!("{}/v1/destinations", ferry.base))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"name": "receiver", "kind": "webhook", "config": {"url": receiver.url()},
            "filter": {"event_types": ["traced.*"]},
            "retry": {"max_retries": 50, "initial_backoff_ms": 100, "multiplier": 1.0, "max_backoff_ms": 100}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(created["id"].is_string(), "{created}");
    for i in 0..EVENTS {
        let response = http
            .post(format!("{}/v1/events", ferry.base))
            .bearer_auth(ADMIN_KEY)
            .header(
                "traceparent",
                format!("00-{}-00000000000000aa-01", trace_of(i)),
            )
            .json(&json!({"type": "traced.event", "id": format!("traced-{i}"), "data": {"i": i}}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 202);
    }
    // Every ingest span is exported, and the first attempts failed.
    let before = otlp
        .wait_for("every ingest span", WAIT, |s| {
            s.iter().filter(|s| s.name == "ferry.ingest").count() == EVENTS
        })
        .await;
    let ingest: HashMap<String, String> = before
        .iter()
        .filter(|s| s.name == "ferry.ingest")
        .map(|s| (s.trace_id.clone(), s.span_id.clone()))
        .collect();
    assert_eq!(ingest.len(), EVENTS, "one trace per event");
    assert!(receiver.count() > 0, "no attempt failed before the kill");
    ferry.kill_9();

    receiver.set_behavior(Behavior::Ok);
    let restarted = FerryProcess::start_with(dir.path(), "info", &[], &env).await;
    let delivered = otlp
        .wait_for("a delivered attempt in every trace", WAIT, |s| {
            let done: std::collections::HashSet<&str> = s
                .iter()
                .filter(|s| s.attribute("ferry.outcome") == Some("delivered"))
                .map(|s| s.trace_id.as_str())
                .collect();
            done.len() == EVENTS
        })
        .await;
    for i in 0..EVENTS {
        let trace = trace_of(i);
        let attempt = delivered
            .iter()
            .find(|s| s.trace_id == trace && s.attribute("ferry.outcome") == Some("delivered"))
            .unwrap();
        assert_eq!(attempt.service_name, "ferry-crash");
        assert_eq!(
            Some(&attempt.parent_span_id),
            ingest.get(&trace),
            "the attempt after the restart is a child of the ingest before it"
        );
        let expected = format!("00-{trace}-{}-01", attempt.span_id);
        let sent = receiver
            .requests()
            .iter()
            .any(|r| r.status_sent == 200 && r.header("traceparent") == Some(expected.as_str()));
        assert!(sent, "the receiver got no traceparent {expected}");
    }
    drop(restarted);
}
