//! `ExternalEvent`: what an application sends, immutable once built.

use ferry_core::event::canonical_json;
use ferry_core::{DestinationId, EventId};
use serde_json::{Map, Value};

/// An event to send through an [`IntegrationPort`](super::IntegrationPort):
/// a type, any JSON data, optionally the caller's id and metadata.
///
/// Its id at a destination comes from the caller's id
/// ([`with_id`](Self::with_id)) or, without one, from its content (type and
/// data): the same content sent again is the same event, a duplicate, not a
/// second delivery. [`id_at`](Self::id_at) computes it.
///
/// ```
/// use ferry::port::{DestinationId, ExternalEvent};
/// use serde_json::json;
///
/// let dst: DestinationId = "dst_01jq3v2a4c6e8g0j2m4p6r8t0v".parse().unwrap();
/// let a = ExternalEvent::new("evaluation.completed", json!({"run": 42, "score": 0.9}));
/// let b = ExternalEvent::new("evaluation.completed", json!({"score": 0.9, "run": 42}));
/// assert_eq!(a.id_at(&dst), b.id_at(&dst)); // same content, same id
///
/// let keyed = a.clone().with_id("eval-42").with_metadata("suite", "nightly");
/// assert_eq!(keyed.id(), Some("eval-42"));
/// assert_ne!(keyed.id_at(&dst), a.id_at(&dst));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalEvent {
    event_type: String,
    data: Value,
    id: Option<String>,
    metadata: Map<String, Value>,
}

impl ExternalEvent {
    /// An event of `event_type` (what routing and receivers see as its
    /// type, e.g. `evaluation.completed`) carrying `data`.
    pub fn new(event_type: impl Into<String>, data: Value) -> Self {
        Self {
            event_type: event_type.into(),
            data,
            id: None,
            metadata: Map::new(),
        }
    }

    /// The caller's id for this event (1 to 256 bytes): with the port's
    /// destination it decides the event's [`EventId`], which stays the same
    /// on every attempt and replay (receivers see it as `webhook-id`).
    /// Sending the same id again is a duplicate.
    #[must_use]
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Adds a metadata entry (kept with the event, not part of its
    /// content id).
    #[must_use]
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Its type.
    pub fn event_type(&self) -> &str {
        &self.event_type
    }

    /// Its data.
    pub fn data(&self) -> &Value {
        &self.data
    }

    /// The caller's id, if one was given.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// Its metadata.
    pub fn metadata(&self) -> &Map<String, Value> {
        &self.metadata
    }

    /// The id this event has when sent to `destination`.
    pub fn id_at(&self, destination: &DestinationId) -> EventId {
        match &self.id {
            Some(key) => EventId::for_destination(destination, key),
            None => EventId::for_destination_content(
                destination,
                &self.event_type,
                &canonical_json(&self.data),
            ),
        }
    }

    /// The parts, for a port implementation.
    pub(crate) fn into_parts(self) -> (String, Value, Option<String>, Map<String, Value>) {
        (self.event_type, self.data, self.id, self.metadata)
    }
}
