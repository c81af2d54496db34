//! An event's delivery to one destination, as an integration port reads it.

use chrono::{DateTime, Utc};
use ferry_core::delivery::{Attempt, AttemptOutcome};
use ferry_core::state::DeliveryStatus;
use ferry_core::{DeliveryId, DestinationId, EventId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::integrations::EventDelivery;

/// How one event stands at one destination.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(examples(json!({
    "event_id": "evt_01jq3v8k2m4n6p8r0t2v4x6z8a", "destination_id": "dst_01jq3v2a4c6e8g0j2m4p6r8t0v",
    "delivery_id": "dlv_01jq3v8k3c5e7g9j1m3p5r7t9w", "status": "retrying",
    "attempt_count": 1, "failures_counted": 1, "max_attempts": 6,
    "next_attempt_at": "2026-03-14T09:26:55Z", "last_error": "HTTP 503 Service Unavailable",
    "last_attempt": {"number": 1, "started_at": "2026-03-14T09:26:53Z", "duration_ms": 12,
        "outcome": "retryable", "status_code": 503, "error": "HTTP 503 Service Unavailable"},
    "updated_at": "2026-03-14T09:26:54Z", "at": "2026-03-14T09:26:54Z"
})))]
pub struct EventDeliveryView {
    pub event_id: EventId,
    pub destination_id: DestinationId,
    pub delivery_id: DeliveryId,
    pub status: DeliveryStatus,
    /// Every attempt made, probes included.
    pub attempt_count: u32,
    /// Failed attempts that count against the retry budget.
    pub failures_counted: u32,
    /// What the destination's retry policy allows; `null` once the
    /// destination is deleted.
    pub max_attempts: Option<u32>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_attempt: Option<LastAttemptView>,
    pub updated_at: DateTime<Utc>,
    /// When this answer was read.
    pub at: DateTime<Utc>,
}

/// The latest attempt, without its captured request and response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LastAttemptView {
    pub number: u32,
    pub started_at: DateTime<Utc>,
    pub duration_ms: u64,
    pub outcome: AttemptOutcome,
    pub status_code: Option<u16>,
    pub error: Option<String>,
}

impl From<&Attempt> for LastAttemptView {
    fn from(a: &Attempt) -> Self {
        Self {
            number: a.number,
            started_at: a.started_at,
            duration_ms: a.duration_ms,
            outcome: a.outcome,
            status_code: a.status_code,
            error: a.error.clone(),
        }
    }
}

impl From<&EventDelivery> for EventDeliveryView {
    fn from(e: &EventDelivery) -> Self {
        let d = &e.delivery;
        Self {
            event_id: d.event_id.clone(),
            destination_id: d.destination_id.clone(),
            delivery_id: d.id.clone(),
            status: d.status,
            attempt_count: d.attempt_count,
            failures_counted: d.failures_counted,
            max_attempts: e.max_attempts,
            next_attempt_at: d.next_attempt_at,
            last_error: d.last_error.clone(),
            last_attempt: e.last_attempt.as_ref().map(LastAttemptView::from),
            updated_at: d.updated_at,
            at: e.at,
        }
    }
}
