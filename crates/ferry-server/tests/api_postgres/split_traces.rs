//! One trace across processes that share only PostgreSQL (and Redis
//! Streams): the ingest process stores the event's trace context, a worker
//! process started later makes the attempt in the same trace.

use std::time::Duration;

use ferry_server::config::Role;
use ferry_testkit::Receiver;
use ferry_testkit::otlp::OtlpReceiver;
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{ADMIN_KEY, TestServer};

const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

#[tokio::test]
async fn a_worker_process_attempts_in_the_trace_the_ingest_process_stored() {
    let otlp = OtlpReceiver::start().await;
    let redis =
        std::env::var("FERRY_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let api = TestServer::start_with(|c| {
        c.role = Role::Ingest;
        c.queue_url = Some(redis);
        c.queue_prefix = format!("ferry_trace_{}", ferry_core::ids::unique_token());
        c.telemetry.otlp_endpoint = Some(otlp.endpoint());
        c.telemetry.service_name = Some("ferry-api".into());
    })
    .await;
    let receiver = Receiver::start().await;
    api.webhook(&receiver.url(), json!({})).await;
    let response = api
        .http
        .post(format!("{}/v1/events", api.base))
        .bearer_auth(ADMIN_KEY)
        .header("traceparent", format!("00-{TRACE}-b7ad6b7169203331-01"))
        .json(&json!({"type": "order.created", "data": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(receiver.count(), 0, "an ingest-only process delivered");

    let worker = api
        .join(|c| {
            c.role = Role::Worker;
            c.telemetry.service_name = Some("ferry-worker".into());
        })
        .await;
    receiver.wait_for(1, Duration::from_secs(20)).await.unwrap();
    let spans = otlp
        .wait_for("the ingest and the attempt", Duration::from_secs(20), |s| {
            s.iter().any(|s| s.name == "ferry.ingest")
                && s.iter().any(|s| s.name == "ferry.attempt")
        })
        .await;
    let ingest = spans.iter().find(|s| s.name == "ferry.ingest").unwrap();
    let attempt = spans.iter().find(|s| s.name == "ferry.attempt").unwrap();
    assert_eq!(ingest.service_name, "ferry-api");
    assert_eq!(attempt.service_name, "ferry-worker");
    assert_eq!(
        (ingest.trace_id.as_str(), attempt.trace_id.as_str()),
        (TRACE, TRACE)
    );
    assert_eq!(attempt.parent_span_id, ingest.span_id);
    let traceparent = receiver.requests()[0]
        .header("traceparent")
        .unwrap()
        .to_owned();
    assert_eq!(traceparent, format!("00-{TRACE}-{}-01", attempt.span_id));
    drop(worker);
}
