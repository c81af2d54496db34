//! What every kind carries for one event, so that a consumer sees the same
//! thing whatever the transport: the Standard Webhooks body
//! `{"id","type","timestamp","data"}` and metadata naming the event (the
//! idempotency key receivers de-duplicate on) and the attempt.

use chrono::{DateTime, Utc};
use ferry_core::delivery::Envelope;
use ferry_core::event::Event;
use serde::Serialize;
use serde_json::Value;

/// The Standard Webhooks body of an event.
#[derive(Debug, Serialize)]
pub struct Payload<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub event_type: &'a str,
    pub timestamp: &'a DateTime<Utc>,
    pub data: &'a Value,
}

impl<'a> Payload<'a> {
    pub fn of(event: &'a Event) -> Self {
        Self {
            id: event.id.as_str(),
            event_type: &event.event_type,
            timestamp: &event.created_at,
            data: &event.data,
        }
    }

    /// The body as JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        // A `Value` and plain strings always serialize.
        serde_json::to_vec(self).expect("a payload serializes")
    }
}

/// Metadata every non-HTTP kind attaches where its protocol has headers or
/// properties: `webhook-id` and `idempotency-key` (both the event id, the
/// same on every attempt and replay), `ferry-event-type`,
/// `ferry-delivery-id` and `ferry-attempt`; and the W3C `traceparent`
/// (with its `tracestate`) when the event belongs to a trace, so that the
/// consumer's spans join it.
pub fn metadata(envelope: &Envelope) -> Vec<(&'static str, String)> {
    let id = envelope.event.id.to_string();
    let mut out = vec![
        ("webhook-id", id.clone()),
        ("idempotency-key", id),
        ("ferry-event-type", envelope.event.event_type.clone()),
        ("ferry-delivery-id", envelope.delivery_id.to_string()),
        ("ferry-attempt", envelope.attempt.to_string()),
    ];
    out.extend(trace_headers(envelope));
    out
}

/// `traceparent` and `tracestate` for the attempt's trace, if any.
pub fn trace_headers(envelope: &Envelope) -> Vec<(&'static str, String)> {
    let Some(trace) = &envelope.trace else {
        return Vec::new();
    };
    let mut out = vec![("traceparent", trace.traceparent())];
    if let Some(state) = trace.tracestate() {
        out.push(("tracestate", state.to_owned()));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ferry_core::trace::TraceContext;
    use ferry_core::{DeliveryId, EventId, OrgId};
    use serde_json::json;

    use super::*;

    fn envelope(trace: Option<TraceContext>) -> Envelope {
        Envelope {
            delivery_id: DeliveryId::generate(),
            event: Arc::new(Event {
                id: EventId::generate(),
                org_id: OrgId::generate(),
                event_type: "order.created".into(),
                data: json!({}),
                metadata: json!({}),
                idempotency_key: None,
                created_at: Utc::now(),
                trace: None,
            }),
            attempt: 2,
            trace,
        }
    }

    #[test]
    fn every_kind_carries_the_attempts_trace_when_there_is_one() {
        let names = |e: &Envelope| -> Vec<&'static str> {
            metadata(e).into_iter().map(|(name, _)| name).collect()
        };
        let plain = envelope(None);
        assert_eq!(
            names(&plain),
            [
                "webhook-id",
                "idempotency-key",
                "ferry-event-type",
                "ferry-delivery-id",
                "ferry-attempt"
            ]
        );
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let traced = envelope(TraceContext::parse(parent, Some("vendor=1")));
        let all = metadata(&traced);
        assert_eq!(all.len(), 7);
        assert!(all.contains(&("traceparent", parent.to_owned())));
        assert!(all.contains(&("tracestate", "vendor=1".to_owned())));
        let without_state = envelope(TraceContext::parse(parent, None));
        assert_eq!(
            trace_headers(&without_state),
            [("traceparent", parent.to_owned())]
        );
    }
}
