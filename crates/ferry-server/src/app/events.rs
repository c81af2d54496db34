//! Reading events and replaying them: a replay sends an event again, with
//! the same id (`webhook-id`), to all or some of its destinations — a
//! listed destination that never had a delivery of the event gets one.

use ferry_core::audit::AuditRecord;
use ferry_core::delivery::Delivery;
use ferry_core::event::Event;
use ferry_core::org::Scope;
use ferry_core::ports::RequeueSelector;
use ferry_core::{EventId, FieldError};
use serde::Deserialize;
use serde_json::json;

use super::ingest::parse_destination_ids;
use super::{App, Error, Principal, Result};

/// The body of `POST /v1/events/{id}/replay`: which destinations (default:
/// every one the event had).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayInput {
    pub destinations: Option<Vec<String>>,
}

impl App {
    /// An event of the principal's organization with its deliveries.
    pub async fn event(
        &self,
        principal: &Principal,
        id: &EventId,
    ) -> Result<(Event, Vec<Delivery>)> {
        principal.require(Scope::Read)?;
        self.0
            .store
            .get_event(principal.org(), id)
            .await?
            .ok_or(Error::NotFound("event"))
    }

    /// Replays an event; returns the deliveries now waiting.
    pub async fn replay_event(
        &self,
        principal: &Principal,
        id: &EventId,
        input: ReplayInput,
    ) -> Result<Vec<Delivery>> {
        principal.require(Scope::Manage)?;
        let org = principal.org();
        let store = &self.0.store;
        let (event, existing) = store
            .get_event(org, id)
            .await?
            .ok_or(Error::NotFound("event"))?;
        let listed = match input.destinations {
            None => None,
            Some(texts) => {
                let ids = parse_destination_ids("destinations", &texts)?;
                let mut errors = Vec::new();
                for (i, d) in ids.iter().enumerate() {
                    if store.get_destination(org, d).await?.is_none() {
                        errors.push(FieldError::new(
                            format!("destinations[{i}]"),
                            format!("unknown destination {d}"),
                        ));
                    }
                }
                Error::check(errors)?;
                Some(ids)
            }
        };
        let actor = principal.actor();
        let selector = RequeueSelector::Event {
            event_id: id.clone(),
            destinations: listed.clone(),
        };
        let mut requeued = store.requeue(org, &selector, actor).await?;
        // A listed destination that never had a delivery of this event gets one.
        let fresh: Vec<Delivery> = listed
            .unwrap_or_default()
            .into_iter()
            .filter(|d| !existing.iter().any(|e| &e.destination_id == d))
            .map(|d| Delivery::new_now(&event, d))
            .collect();
        if !fresh.is_empty() {
            let audits: Vec<AuditRecord> = fresh
                .iter()
                .map(|d| {
                    AuditRecord::new(org.clone(), actor, "delivery", d.id.to_string(), "delivery.created")
                        .after(json!({"status": d.status, "event_id": d.event_id, "destination_id": d.destination_id}))
                })
                .collect();
            store.insert_deliveries(&fresh, &audits).await?;
            requeued.extend(fresh);
        }
        let audit = AuditRecord::new(
            org.clone(),
            actor,
            "event",
            id.to_string(),
            "event.replayed",
        )
        .after(json!({"deliveries": requeued.iter().map(|d| &d.id).collect::<Vec<_>>()}));
        store.append_audit(&[audit]).await?;
        self.made_waiting(&requeued).await;
        Ok(requeued)
    }
}
