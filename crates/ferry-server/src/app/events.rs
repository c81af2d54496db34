//! Reading events and replaying them: a replay sends an event again, with
//! the same id (`webhook-id`), to all or some of its destinations — a
//! listed destination that never had a delivery of the event gets one.

use ferry_core::delivery::Delivery;
use ferry_core::event::Event;
use ferry_core::org::Scope;
use ferry_core::{EventId, FieldError};
use serde::Deserialize;

use super::ingest::parse_destination_ids;
use super::{App, Error, Principal, Result};

/// The body of `POST /v1/events/{id}/replay`: which destinations (default:
/// every one the event had).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"destinations": ["dst_01jq3v2a4c6e8g0j2m4p6r8t0v"]})))]
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

    /// Replays an event; returns the deliveries now waiting. The requeue,
    /// the new deliveries and their audit records are one transaction.
    pub async fn replay_event(
        &self,
        principal: &Principal,
        id: &EventId,
        input: ReplayInput,
    ) -> Result<Vec<Delivery>> {
        principal.require(Scope::Manage)?;
        let org = principal.org();
        let store = &self.0.store;
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
        let requeued = store
            .replay_event(org, id, listed.as_deref(), principal.actor())
            .await?
            .ok_or(Error::NotFound("event"))?;
        self.made_waiting(&requeued).await;
        Ok(requeued)
    }
}
