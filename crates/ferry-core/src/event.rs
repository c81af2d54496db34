//! Events: immutable facts, and what ingest needs to store one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::delivery::Delivery;
use crate::ids::{EventId, OrgId};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: EventId,
    pub org_id: OrgId,
    #[serde(rename = "type")]
    pub event_type: String,
    pub data: Value,
    pub metadata: Value,
    /// The caller's `Idempotency-Key` or `id`, when it gave one.
    pub idempotency_key: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Longest accepted event type and caller key.
pub const MAX_TYPE_LEN: usize = 256;
pub const MAX_KEY_LEN: usize = 256;

/// An event and the deliveries decided for it at ingest, committed together.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event: Event,
    pub deliveries: Vec<Delivery>,
}

/// What storing a `NewEvent` did.
#[derive(Debug, Clone)]
pub enum InsertOutcome {
    /// Stored now, with its deliveries.
    Inserted,
    /// The id was already known: nothing new was stored; these are the
    /// original event's deliveries.
    Duplicate(Vec<Delivery>),
}
