//! Traces seen from a real OTLP collector and a real receiver: the
//! producer's `traceparent` joins the ingest span, every attempt is a span
//! in the same trace, and the receiver gets a `traceparent` naming the
//! attempt.

use std::time::Duration;

use ferry_testkit::otlp::{OtlpReceiver, ReceivedSpan};
use ferry_testkit::{Behavior, Receiver};
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{ADMIN_KEY, TestServer, fast_retry};

const WAIT: Duration = Duration::from_secs(20);
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PRODUCER_SPAN: &str = "00f067aa0ba902b7";

fn traced(otlp: &OtlpReceiver) -> impl FnOnce(&mut ferry_server::Config) + '_ {
    |config| {
        config.telemetry.otlp_endpoint = Some(otlp.endpoint());
        config.telemetry.otlp_headers = [("x-tenant".to_owned(), "eu-1".to_owned())].into();
    }
}

/// Sends a new event with the given trace headers; answers its id.
async fn send_traced(server: &TestServer, traceparent: Option<&str>) -> String {
    let mut request = server
        .http
        .post(format!("{}/v1/events", server.base))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"type": "order.created", "data": {"n": ferry_core::ids::unique_token()}}));
    if let Some(parent) = traceparent {
        request = request
            .header("traceparent", parent)
            .header("tracestate", "vendor=opaque");
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let body: serde_json::Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

fn named<'a>(spans: &'a [ReceivedSpan], name: &str) -> Vec<&'a ReceivedSpan> {
    spans.iter().filter(|s| s.name == name).collect()
}

/// `(trace id, parent id)` of a `traceparent` value.
fn parts(traceparent: &str) -> (String, String) {
    let fields: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(fields.len(), 4, "{traceparent}");
    (fields[1].to_owned(), fields[2].to_owned())
}

#[tokio::test]
async fn a_producer_trace_holds_the_ingest_and_every_attempt() {
    let otlp = OtlpReceiver::start().await;
    let server = TestServer::start_with(traced(&otlp)).await;
    let receiver = Receiver::start().await;
    receiver.set_behavior(Behavior::FailTimes {
        times: 1,
        status: 503,
    });
    let (dst, _) = server.webhook(&receiver.url(), fast_retry(3)).await;
    let producer = format!("00-{TRACE}-{PRODUCER_SPAN}-01");
    let event = send_traced(&server, Some(&producer)).await;
    let (_, shown) = server.get(&format!("/v1/events/{event}")).await;
    assert_eq!(shown["trace"]["trace_id"], TRACE, "{shown}");
    assert_eq!(shown["trace"]["tracestate"], "vendor=opaque");

    let spans = otlp
        .wait_for("an ingest span and two attempt spans", WAIT, |s| {
            named(s, "ferry.ingest").len() == 1 && named(s, "ferry.attempt").len() == 2
        })
        .await;
    let ingest = named(&spans, "ferry.ingest")[0];
    assert_eq!(ingest.trace_id, TRACE);
    assert_eq!(
        ingest.parent_span_id, PRODUCER_SPAN,
        "a child of the producer"
    );
    assert_eq!(ingest.service_name, "ferry");
    assert_eq!(ingest.attribute("ferry.event.id"), Some(event.as_str()));
    assert_eq!(ingest.attribute("ferry.deliveries"), Some("1"));

    let mut attempts = named(&spans, "ferry.attempt");
    attempts.sort_by_key(|s| s.attribute("ferry.attempt").map(str::to_owned));
    for (n, span) in attempts.iter().enumerate() {
        assert_eq!(span.trace_id, TRACE);
        assert_eq!(span.parent_span_id, ingest.span_id, "a child of the ingest");
        assert_eq!(span.kind, 3, "a client span");
        assert_eq!(span.attribute("ferry.destination.kind"), Some("webhook"));
        assert_eq!(span.attribute("ferry.destination.id"), Some(dst.as_str()));
        assert_eq!(span.attribute("ferry.event.id"), Some(event.as_str()));
        assert_eq!(
            span.attribute("ferry.attempt"),
            Some((n + 1).to_string().as_str())
        );
    }
    let (failed, delivered) = (attempts[0], attempts[1]);
    assert_eq!(failed.attribute("ferry.outcome"), Some("retryable"));
    assert_eq!(failed.attribute("http.response.status_code"), Some("503"));
    assert_eq!(failed.attribute("error.type"), Some("503"));
    assert_eq!(failed.status_code, 2, "an error status");
    assert_eq!(delivered.attribute("ferry.outcome"), Some("delivered"));
    assert_eq!(
        delivered.attribute("http.response.status_code"),
        Some("200")
    );
    assert_ne!(delivered.status_code, 2);

    // The receiver's traceparent names the attempt that sent it, in the
    // producer's trace, with the producer's tracestate.
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    for (request, attempt) in requests.iter().zip([failed, delivered]) {
        let (trace, parent) = parts(request.header("traceparent").unwrap());
        assert_eq!(trace, TRACE);
        assert_eq!(parent, attempt.span_id);
        assert_eq!(request.header("tracestate"), Some("vendor=opaque"));
    }

    // The group commit that stored the event links to its request, and
    // so does the poll that leased its retry.
    let links_to_ingest = |s: &ReceivedSpan| {
        s.links.iter().any(|(trace, span)| {
            (trace.as_str(), span.as_str()) == (TRACE, ingest.span_id.as_str())
        })
    };
    otlp.wait_for("the commit's and the lease's spans", WAIT, |s| {
        named(s, "ferry.commit").into_iter().any(links_to_ingest)
            && named(s, "ferry.lease").into_iter().any(links_to_ingest)
    })
    .await;
    assert_eq!(otlp.undecodable(), 0);
    assert_eq!(otlp.last_header("x-tenant").as_deref(), Some("eu-1"));
}

#[tokio::test]
async fn an_event_without_a_trace_starts_its_own() {
    let otlp = OtlpReceiver::start().await;
    let server = TestServer::start_with(traced(&otlp)).await;
    let receiver = Receiver::start().await;
    server.webhook(&receiver.url(), json!({})).await;
    // A traceparent that does not parse is ignored, not refused.
    send_traced(&server, Some("00-not-a-trace-01")).await;
    let spans = otlp
        .wait_for("the ingest and the attempt", WAIT, |s| {
            !named(s, "ferry.ingest").is_empty() && !named(s, "ferry.attempt").is_empty()
        })
        .await;
    let ingest = named(&spans, "ferry.ingest")[0];
    assert_eq!(ingest.parent_span_id, "", "the root of a new trace");
    assert_ne!(ingest.trace_id, TRACE);
    let attempt = named(&spans, "ferry.attempt")[0];
    assert_eq!(attempt.trace_id, ingest.trace_id);
    assert_eq!(attempt.parent_span_id, ingest.span_id);
    let request = &receiver.requests()[0];
    let (trace, parent) = parts(request.header("traceparent").unwrap());
    assert_eq!(
        (trace, parent),
        (attempt.trace_id.clone(), attempt.span_id.clone())
    );
    assert_eq!(request.header("tracestate"), None);
}

#[tokio::test]
async fn with_traces_off_the_producer_trace_still_reaches_the_receiver() {
    let server = TestServer::start().await;
    let receiver = Receiver::start().await;
    server.webhook(&receiver.url(), json!({})).await;
    let producer = format!("00-{TRACE}-{PRODUCER_SPAN}-01");
    send_traced(&server, Some(&producer)).await;
    receiver.wait_for(1, WAIT).await.unwrap();
    let request = &receiver.requests()[0];
    assert_eq!(request.header("traceparent"), Some(producer.as_str()));
    assert_eq!(request.header("tracestate"), Some("vendor=opaque"));

    // Without one, nothing is invented.
    send_traced(&server, None).await;
    receiver.wait_for(2, WAIT).await.unwrap();
    assert_eq!(receiver.requests()[1].header("traceparent"), None);
}

#[tokio::test]
async fn a_source_request_joins_its_partner_trace() {
    let otlp = OtlpReceiver::start().await;
    let server = TestServer::start_with(traced(&otlp)).await;
    let receiver = Receiver::start().await;
    server.webhook(&receiver.url(), json!({})).await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let (status, source) = server
        .post(
            "/v1/sources",
            json!({"name": "partner", "verification": {"scheme": "standard-webhooks", "secrets": [secret]}, "type_from": "/type"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{source}");
    let body = br#"{"type":"shipment.sent","id":"s1"}"#;
    let now = chrono::Utc::now().timestamp();
    let signature = standardwebhooks::Webhook::new(secret)
        .unwrap()
        .sign("msg_1", now, body)
        .unwrap();
    let response = server
        .http
        .post(format!(
            "{}{}",
            server.base,
            source["url"].as_str().unwrap()
        ))
        .header("webhook-id", "msg_1")
        .header("webhook-timestamp", now.to_string())
        .header("webhook-signature", signature)
        .header("traceparent", format!("00-{TRACE}-{PRODUCER_SPAN}-01"))
        .body(&body[..])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::ACCEPTED,
        "{}",
        response.text().await.unwrap()
    );
    let spans = otlp
        .wait_for("the source span and the attempt", WAIT, |s| {
            !named(s, "ferry.source.receive").is_empty() && !named(s, "ferry.attempt").is_empty()
        })
        .await;
    let received = named(&spans, "ferry.source.receive")[0];
    assert_eq!(
        (received.trace_id.as_str(), received.parent_span_id.as_str()),
        (TRACE, PRODUCER_SPAN)
    );
    assert_eq!(received.attribute("ferry.source.id"), source["id"].as_str());
    let attempt = named(&spans, "ferry.attempt")[0];
    assert_eq!(attempt.trace_id, TRACE);
    assert_eq!(attempt.parent_span_id, received.span_id);
}

#[tokio::test]
async fn traces_go_to_a_grpc_collector_too() {
    let otlp = OtlpReceiver::start_grpc().await;
    let server = TestServer::start_with(|config| {
        config.telemetry.otlp_endpoint = Some(otlp.endpoint());
        config.telemetry.otlp_protocol = Some("grpc".into());
        config.telemetry.otlp_headers = [("x-tenant".to_owned(), "eu-1".to_owned())].into();
    })
    .await;
    let receiver = Receiver::start().await;
    server.webhook(&receiver.url(), json!({})).await;
    let producer = format!("00-{TRACE}-{PRODUCER_SPAN}-01");
    send_traced(&server, Some(&producer)).await;
    let spans = otlp
        .wait_for("the ingest and the attempt over gRPC", WAIT, |s| {
            !named(s, "ferry.ingest").is_empty() && !named(s, "ferry.attempt").is_empty()
        })
        .await;
    let attempt = named(&spans, "ferry.attempt")[0];
    assert_eq!(attempt.trace_id, TRACE);
    assert_eq!(
        attempt.parent_span_id,
        named(&spans, "ferry.ingest")[0].span_id
    );
    assert_eq!(otlp.last_header("x-tenant").as_deref(), Some("eu-1"));
}

#[tokio::test]
async fn an_export_run_is_a_span() {
    let otlp = OtlpReceiver::start().await;
    let server = TestServer::start_with(traced(&otlp)).await;
    send_traced(&server, None).await;
    let job = crate::exports::export(&server, json!({"source": "events", "format": "json"})).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let spans = otlp
        .wait_for("the export's span", WAIT, |s| {
            !named(s, "ferry.export").is_empty()
        })
        .await;
    let export = named(&spans, "ferry.export")[0];
    assert_eq!(export.attribute("ferry.export.id"), job["id"].as_str());
    assert_eq!(export.attribute("ferry.export.source"), Some("events"));
    assert_eq!(export.attribute("ferry.export.rows"), Some("1"));
    assert_ne!(export.status_code, 2);
}
