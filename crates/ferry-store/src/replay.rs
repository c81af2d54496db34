//! What an event replay writes besides the requeue, the same on every
//! backend: a delivery for each listed destination that never had one, and
//! the audit records of the replay.

use ferry_core::audit::AuditRecord;
use ferry_core::delivery::Delivery;
use ferry_core::event::Event;
use ferry_core::ids::{DestinationId, EventId, OrgId};
use serde_json::json;

/// The deliveries a replay creates: one, due now, to each of `listed` that
/// no delivery in `existing` went to.
pub(crate) fn fresh_deliveries(
    event: &Event,
    existing: &[Delivery],
    listed: Option<&[DestinationId]>,
) -> Vec<Delivery> {
    listed
        .unwrap_or_default()
        .iter()
        .filter(|d| !existing.iter().any(|e| &e.destination_id == *d))
        .map(|d| Delivery::new_now(event, d.clone()))
        .collect()
}

/// The audit record of a delivery that a replay created.
pub(crate) fn created(org: &OrgId, actor: &str, d: &Delivery) -> AuditRecord {
    AuditRecord::new(
        org.clone(),
        actor,
        "delivery",
        d.id.to_string(),
        "delivery.created",
    )
    .after(json!({
        "status": d.status,
        "event_id": d.event_id,
        "destination_id": d.destination_id,
    }))
}

/// The audit record of the replay itself, naming the deliveries it left
/// waiting.
pub(crate) fn replayed(
    org: &OrgId,
    actor: &str,
    event_id: &EventId,
    waiting: &[Delivery],
) -> AuditRecord {
    let ids: Vec<&str> = waiting.iter().map(|d| d.id.as_str()).collect();
    AuditRecord::new(
        org.clone(),
        actor,
        "event",
        event_id.to_string(),
        "event.replayed",
    )
    .after(json!({ "deliveries": ids }))
}
