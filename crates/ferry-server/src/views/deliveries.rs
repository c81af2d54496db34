//! Events, deliveries and their attempts.

use ferry_core::attempt::Receipt;
use ferry_core::delivery::{Attempt, AttemptOutcome, Captured, Delivery};
use ferry_core::event::Event;
use ferry_core::state::DeliveryStatus;
use ferry_core::{DeliveryId, DestinationId, EventId};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use chrono::{DateTime, Utc};

use super::ErrorBody;

/// A delivery as ingest and replay answer it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(examples(json!({
    "id": "dlv_01jq3v8k3c5e7g9j1m3p5r7t9w", "destination_id": "dst_01jq3v2a4c6e8g0j2m4p6r8t0v", "status": "pending"
})))]
pub struct DeliveryBrief {
    pub id: DeliveryId,
    pub destination_id: DestinationId,
    pub status: DeliveryStatus,
}

impl From<&Delivery> for DeliveryBrief {
    fn from(d: &Delivery) -> Self {
        Self {
            id: d.id.clone(),
            destination_id: d.destination_id.clone(),
            status: d.status,
        }
    }
}

/// One event to one destination.
#[derive(Debug, Serialize, ToSchema)]
#[schema(examples(json!({
    "id": "dlv_01jq3v8k3c5e7g9j1m3p5r7t9w", "event_id": "evt_01jq3v8k2m4n6p8r0t2v4x6z8a", "event_type": "order.created",
    "destination_id": "dst_01jq3v2a4c6e8g0j2m4p6r8t0v", "status": "retrying", "attempt_count": 2,
    "next_attempt_at": "2026-03-14T09:27:05Z",
    "last_error": "HTTP 503 Service Unavailable",
    "created_at": "2026-03-14T09:26:53Z", "updated_at": "2026-03-14T09:27:01Z"
})))]
pub struct DeliveryView {
    pub id: DeliveryId,
    pub event_id: EventId,
    /// Its event's type.
    #[schema(examples("order.created"))]
    pub event_type: String,
    pub destination_id: DestinationId,
    pub status: DeliveryStatus,
    /// Every attempt made, probes included.
    pub attempt_count: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    #[schema(examples("HTTP 503 Service Unavailable"))]
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Delivery> for DeliveryView {
    fn from(d: &Delivery) -> Self {
        Self {
            id: d.id.clone(),
            event_id: d.event_id.clone(),
            event_type: d.event_type.clone(),
            destination_id: d.destination_id.clone(),
            status: d.status,
            attempt_count: d.attempt_count,
            next_attempt_at: d.next_attempt_at,
            last_error: d.last_error.clone(),
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

/// A delivery with its attempts and a link to it in the console.
#[derive(Debug, Serialize, ToSchema)]
#[schema(examples(json!({
    "id": "dlv_01jq3v8k3c5e7g9j1m3p5r7t9w", "event_id": "evt_01jq3v8k2m4n6p8r0t2v4x6z8a", "event_type": "order.created",
    "destination_id": "dst_01jq3v2a4c6e8g0j2m4p6r8t0v", "status": "retrying", "attempt_count": 1,
    "next_attempt_at": "2026-03-14T09:26:55Z",
    "last_error": "HTTP 503 Service Unavailable",
    "created_at": "2026-03-14T09:26:53Z", "updated_at": "2026-03-14T09:26:54Z",
    "attempts": [{
        "number": 1, "started_at": "2026-03-14T09:26:53Z", "duration_ms": 12,
        "outcome": "retryable", "status_code": 503, "error": "HTTP 503 Service Unavailable",
        "request": {
            "headers": {"content-type": "application/json", "webhook-id": "evt_01jq3v8k2m4n6p8r0t2v4x6z8a"},
            "body": "{\"order_id\":\"o_42\",\"total\":99.5}"
        },
        "response": {"headers": {"retry-after": "2"}, "body": "upstream busy"},
        "receipt": null
    }],
    "links": {"self": "https://ferry.example.com/v1/deliveries/dlv_01jq3v8k3c5e7g9j1m3p5r7t9w",
              "ui": "https://ferry.example.com/ui/deliveries/dlv_01jq3v8k3c5e7g9j1m3p5r7t9w"}
})))]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: DeliveryView,
    pub attempts: Vec<AttemptView>,
    pub links: DeliveryLinks,
}

/// The delivery's API URL and its page in the web console.
pub type DeliveryLinks = super::Links;

impl DeliveryDetail {
    pub fn new(d: &Delivery, attempts: &[Attempt], public_url: &str) -> Self {
        Self {
            delivery: d.into(),
            attempts: attempts.iter().map(AttemptView::from).collect(),
            links: super::Links::new(public_url, "deliveries", d.id.as_str()),
        }
    }
}

/// One recorded try; request and response as captured (bodies up to 64 KiB).
#[derive(Debug, Serialize, ToSchema)]
#[schema(examples(json!({
    "number": 1, "started_at": "2026-03-14T09:26:53Z", "duration_ms": 12,
    "outcome": "retryable", "status_code": 503, "error": "HTTP 503 Service Unavailable",
    "request": {"headers": {"content-type": "application/json"}, "body": "{\"order_id\":\"o_42\"}"},
    "response": {"headers": {"retry-after": "2"}, "body": "upstream busy"}, "receipt": null
})))]
pub struct AttemptView {
    pub number: u32,
    pub started_at: DateTime<Utc>,
    pub duration_ms: u64,
    pub outcome: AttemptOutcome,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub request: Option<Captured>,
    pub response: Option<Captured>,
    /// When it delivered: the destination's own reference to it (a
    /// webhook's status and request id, an S3 ETag, a mail's queue id, a
    /// stream entry id …), to find it on the other side.
    #[schema(value_type = Option<Object>)]
    pub receipt: Option<Receipt>,
}

impl From<&Attempt> for AttemptView {
    fn from(a: &Attempt) -> Self {
        Self {
            number: a.number,
            started_at: a.started_at,
            duration_ms: a.duration_ms,
            outcome: a.outcome,
            status_code: a.status_code,
            error: a.error.clone(),
            request: a.request.clone(),
            response: a.response.clone(),
            receipt: a.receipt.clone(),
        }
    }
}

/// An event with its deliveries.
#[derive(Debug, Serialize, ToSchema)]
#[schema(examples(json!({
    "id": "evt_01jq3v8k2m4n6p8r0t2v4x6z8a", "type": "order.created",
    "data": {"order_id": "o_42", "total": 99.5},
    "metadata": {"tenant": "eu-1"},
    "idempotency_key": "order-o_42-created",
    "created_at": "2026-03-14T09:26:53Z",
    "trace": {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"},
    "deliveries": [{
        "id": "dlv_01jq3v8k3c5e7g9j1m3p5r7t9w", "event_id": "evt_01jq3v8k2m4n6p8r0t2v4x6z8a", "event_type": "order.created",
        "destination_id": "dst_01jq3v2a4c6e8g0j2m4p6r8t0v", "status": "delivered", "attempt_count": 1, "next_attempt_at": null, "last_error": null,
        "created_at": "2026-03-14T09:26:53Z", "updated_at": "2026-03-14T09:26:54Z"
    }]
})))]
pub struct EventView {
    pub id: EventId,
    #[serde(rename = "type")]
    #[schema(examples("order.created"))]
    pub event_type: String,
    pub data: Value,
    pub metadata: Value,
    pub idempotency_key: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The trace the event belongs to, when it has one: every attempt of
    /// its deliveries is a span in it.
    pub trace: Option<TraceView>,
    pub deliveries: Vec<DeliveryView>,
    /// The object's API URL and console page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub links: Option<super::Links>,
}

impl EventView {
    /// The view with its links, as the API answers it.
    pub fn linked(self, public_url: &str) -> Self {
        let links = super::Links::new(public_url, "events", self.id.as_str());
        Self {
            links: Some(links),
            ..self
        }
    }
}

/// An event's W3C trace context, and its trace id to search for.
#[derive(Debug, Serialize, ToSchema)]
#[schema(examples(json!({"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "tracestate": "vendor=opaque", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"})))]
pub struct TraceView {
    pub traceparent: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
    pub trace_id: String,
}

impl EventView {
    pub fn new(e: &Event, deliveries: &[Delivery]) -> Self {
        Self {
            id: e.id.clone(),
            event_type: e.event_type.clone(),
            data: e.data.clone(),
            metadata: e.metadata.clone(),
            idempotency_key: e.idempotency_key.clone(),
            created_at: e.created_at,
            trace: e.trace.as_ref().map(|t| TraceView {
                traceparent: t.traceparent(),
                tracestate: t.tracestate().map(str::to_owned),
                trace_id: t.trace_id_hex(),
            }),
            deliveries: deliveries.iter().map(DeliveryView::from).collect(),
            links: None,
        }
    }
}

/// The answer to an accepted event: `202` when new, `200` with
/// `duplicate: true` for a known id (nothing enqueued again).
#[derive(Debug, Serialize, ToSchema)]
#[schema(examples(json!({
    "id": "evt_01jq3v8k2m4n6p8r0t2v4x6z8a", "duplicate": false,
    "deliveries": [{"id": "dlv_01jq3v8k3c5e7g9j1m3p5r7t9w", "destination_id": "dst_01jq3v2a4c6e8g0j2m4p6r8t0v", "status": "pending"}]
})))]
pub struct Accepted {
    pub id: EventId,
    pub duplicate: bool,
    pub deliveries: Vec<DeliveryBrief>,
}

/// `POST /v1/events/batch`: a result per item, in order.
#[derive(Debug, Serialize, ToSchema)]
#[schema(examples(json!({"results": [
    {"status": 202, "id": "evt_01jq3v8k2m4n6p8r0t2v4x6z8a", "duplicate": false,
        "deliveries": [{"id": "dlv_01jq3v8k3c5e7g9j1m3p5r7t9w", "destination_id": "dst_01jq3v2a4c6e8g0j2m4p6r8t0v", "status": "pending"}]},
    {"status": 400, "error": "invalid_request", "message": "type: missing field `type`",
        "details": [{"field": "type", "message": "missing field `type`"}]}
]})))]
pub struct BatchResults {
    pub results: Vec<BatchItem>,
}

/// One item's result: the accepted event or its error, with the status it
/// would have had alone.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum BatchItem {
    Accepted {
        #[serde(flatten)]
        accepted: Accepted,
        status: u16,
    },
    Refused {
        #[serde(flatten)]
        error: ErrorBody,
        status: u16,
    },
}

/// The deliveries a replay made waiting.
#[derive(Debug, Serialize, ToSchema)]
#[schema(examples(json!({
    "event_id": "evt_01jq3v8k2m4n6p8r0t2v4x6z8a", "requeued": 1,
    "deliveries": [{"id": "dlv_01jq3v8k3c5e7g9j1m3p5r7t9w", "destination_id": "dst_01jq3v2a4c6e8g0j2m4p6r8t0v", "status": "pending"}]
})))]
pub struct Replayed {
    pub event_id: EventId,
    pub requeued: usize,
    pub deliveries: Vec<DeliveryBrief>,
}

/// How many dead deliveries a DLQ replay requeued.
#[derive(Debug, Serialize, ToSchema)]
#[schema(examples(json!({"requeued": 12})))]
pub struct Requeued {
    pub requeued: usize,
}
