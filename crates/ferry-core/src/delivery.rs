//! Deliveries (one event to one destination) and their attempts.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::Event;
use crate::ids::{DeliveryId, DestinationId, EventId, OrgId};
pub use crate::state::DeliveryStatus;

/// Largest request or response body kept in an attempt record.
pub const MAX_CAPTURED_BODY: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: DeliveryId,
    pub org_id: OrgId,
    pub event_id: EventId,
    pub destination_id: DestinationId,
    /// Its event's type, copied when the delivery is made (an event never
    /// changes), so that lists and exports of deliveries need no join.
    #[serde(default)]
    pub event_type: String,
    pub status: DeliveryStatus,
    /// Every attempt made, probes included.
    pub attempt_count: u32,
    /// Failed attempts that count against the retry budget (probes while a
    /// destination is paused do not).
    pub failures_counted: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Delivery {
    /// A new delivery, due now.
    pub fn new(event: &Event, destination_id: DestinationId) -> Self {
        Self {
            id: DeliveryId::generate(),
            org_id: event.org_id.clone(),
            event_id: event.id.clone(),
            destination_id,
            event_type: event.event_type.clone(),
            status: DeliveryStatus::Pending,
            attempt_count: 0,
            failures_counted: 0,
            next_attempt_at: Some(event.created_at),
            last_error: None,
            created_at: event.created_at,
            updated_at: event.created_at,
        }
    }
}

impl Delivery {
    /// A new delivery of an existing event, due now (replay to a
    /// destination that had none).
    pub fn new_now(event: &Event, destination_id: DestinationId) -> Self {
        let now = chrono::Utc::now();
        Self {
            next_attempt_at: Some(now),
            created_at: now,
            updated_at: now,
            ..Self::new(event, destination_id)
        }
    }
}

/// A delivery leased for an attempt, with its event.
#[derive(Debug, Clone)]
pub struct Leased {
    pub delivery: Delivery,
    pub event: Arc<Event>,
}

/// What a deliverer gets: the event, and which attempt this is.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub delivery_id: DeliveryId,
    pub event: Arc<Event>,
    /// 1-based attempt number of this try.
    pub attempt: u32,
    /// The trace context the receiver gets (`traceparent`): the attempt's
    /// own span when Ferry exports traces, else the event's stored trace.
    pub trace: Option<crate::trace::TraceContext>,
}

/// A captured request or response: headers and the first 64 KiB of the body.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Captured {
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl Captured {
    /// Keeps at most `MAX_CAPTURED_BODY` bytes of `body`, cut on a character
    /// boundary, with invalid UTF-8 replaced.
    pub fn body_from_bytes(bytes: &[u8]) -> String {
        let cut = &bytes[..bytes.len().min(MAX_CAPTURED_BODY)];
        let mut text = String::from_utf8_lossy(cut).into_owned();
        while text.len() > MAX_CAPTURED_BODY {
            text.pop();
        }
        text
    }
}

/// How an attempt ended, as recorded.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    Delivered,
    Retryable,
    Permanent,
}

/// One recorded try of a delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub delivery_id: DeliveryId,
    pub number: u32,
    pub started_at: DateTime<Utc>,
    pub duration_ms: u64,
    pub outcome: AttemptOutcome,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub request: Option<Captured>,
    pub response: Option<Captured>,
    /// The destination's own reference, when it delivered.
    pub receipt: Option<crate::attempt::Receipt>,
}

/// Filters of the delivery and DLQ lists.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub status: Option<DeliveryStatus>,
    pub destination_id: Option<DestinationId>,
    pub event_type: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}
