//! Events sent to one destination, and how each stands there: the use
//! cases under an integration port (the embedded library's, or a remote
//! client's through `POST /v1/destinations/{id}/events`). The event's id is
//! scoped by the destination (`EventId::for_destination`), so a client can
//! compute it before the event reaches Ferry, and the same key sent to two
//! destinations is two events.

use chrono::{DateTime, Utc};
use ferry_core::delivery::{Attempt, Delivery};
use ferry_core::{DestinationId, EventId};
use serde::Deserialize;
use serde_json::Value;

use super::ingest::{Accepted, Addressing, EventInput};
use super::{App, Error, Principal, Result};
use ferry_core::org::Scope;

/// One event for one destination: the body of `POST
/// /v1/destinations/{id}/events`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({
    "type": "evaluation.completed",
    "data": {"run": 42, "score": 0.93},
    "id": "eval-42",
    "metadata": {"suite": "nightly"}
})))]
pub struct DirectEventInput {
    /// The event type; required.
    #[serde(rename = "type")]
    #[schema(required = true, examples("evaluation.completed"))]
    pub event_type: Option<String>,
    /// Any JSON.
    #[serde(default)]
    pub data: Value,
    /// The caller's id; with the destination it decides the event's id.
    /// Without one the id comes from the content.
    pub id: Option<String>,
    pub metadata: Option<Value>,
}

/// A direct event, stored (or known already).
#[derive(Debug, Clone)]
pub struct Sent {
    pub accepted: Accepted,
    /// Attempts the destination's retry policy allows.
    pub max_attempts: u32,
}

/// An event's delivery to one destination, as it stands.
#[derive(Debug, Clone)]
pub struct EventDelivery {
    pub delivery: Delivery,
    /// The latest attempt, if any was made.
    pub last_attempt: Option<Attempt>,
    /// Attempts the destination's retry policy allows (`max_retries + 1`);
    /// `None` when the destination was deleted.
    pub max_attempts: Option<u32>,
    /// When the answer was read.
    pub at: DateTime<Utc>,
}

impl App {
    /// Stores one event for `destination` only; answers after the commit.
    /// A known id (the same key, or the same content without one) stores
    /// nothing and answers with the original delivery.
    pub async fn send_to(
        &self,
        principal: &Principal,
        destination: &DestinationId,
        input: DirectEventInput,
        idempotency_key: Option<String>,
    ) -> Result<Sent> {
        principal.require(Scope::Ingest)?;
        if self.is_shutting_down() {
            return Err(Error::ShuttingDown);
        }
        self.check_size(&input)?;
        if let Some(key) = principal.key_id() {
            self.0.limiter.check(key, 1)?;
        }
        let input = EventInput {
            event_type: input.event_type,
            data: input.data,
            id: input.id,
            destinations: None,
            metadata: input.metadata,
        };
        let (mut span, trace) = self.ingest_span("ferry.ingest", principal.org(), None);
        let prepared = self
            .prepare_for(
                principal.org(),
                input,
                idempotency_key,
                Addressing::Direct(destination.clone()),
                trace,
            )
            .await;
        let prepared = match prepared {
            Ok(p) => p,
            Err(error) => {
                span.fail(|| error.to_string());
                return Err(error);
            }
        };
        let accepted = self.submit(prepared.new).await;
        super::ingest::record_accepted(&mut span, &accepted);
        Ok(Sent {
            accepted: accepted?,
            max_attempts: prepared.max_attempts.unwrap_or(1),
        })
    }

    /// How an event stands at one destination: `None` when the event is
    /// unknown in the principal's organization or has no delivery there.
    pub async fn event_delivery(
        &self,
        principal: &Principal,
        event: &EventId,
        destination: &DestinationId,
    ) -> Result<Option<EventDelivery>> {
        principal.require(Scope::Read)?;
        let org = principal.org();
        let store = &self.0.store;
        let Some((_, deliveries)) = store.get_event(org, event).await? else {
            return Ok(None);
        };
        let Some(delivery) = deliveries
            .into_iter()
            .find(|d| &d.destination_id == destination)
        else {
            return Ok(None);
        };
        let last_attempt = if delivery.attempt_count > 0 {
            store
                .get_delivery(org, &delivery.id)
                .await?
                .and_then(|(_, attempts)| attempts.into_iter().max_by_key(|a| a.number))
        } else {
            None
        };
        // The retry policy from the cached routes, not one more read.
        let max_attempts = self
            .0
            .routes
            .routes_with(store.as_ref(), org, std::slice::from_ref(destination))
            .await?
            .iter()
            .find(|r| &r.id == destination)
            .map(|r| r.max_attempts);
        Ok(Some(EventDelivery {
            delivery,
            last_attempt,
            max_attempts,
            at: Utc::now(),
        }))
    }

    /// `TooLarge` when the event's data and metadata, as JSON, exceed the
    /// largest body the API accepts: an in-process caller gets the same
    /// limit as an HTTP one.
    fn check_size(&self, input: &DirectEventInput) -> Result<()> {
        let limit = self.0.max_event_bytes;
        let size = json_len(&input.data)
            + input.metadata.as_ref().map_or(0, json_len)
            + input.event_type.as_ref().map_or(0, String::len)
            + input.id.as_ref().map_or(0, String::len);
        if size > limit {
            return Err(Error::TooLarge { size, limit });
        }
        Ok(())
    }
}

/// The length of a value's compact JSON.
fn json_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a `Value` into a counter cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}
