//! Deliveries and the dead-letter queue: lists with filters, a delivery
//! with its attempts, an operator's retry of one delivery, and the replay
//! of dead deliveries in bulk. Every requeue is audited (by the store, in
//! the same transaction) and wakes the dispatcher.

use chrono::{DateTime, Utc};
use ferry_core::delivery::{Attempt, Delivery, DeliveryFilter, DeliveryStatus};
use ferry_core::org::Scope;
use ferry_core::page::{Page, PageRequest};
use ferry_core::ports::RequeueSelector;
use ferry_core::{DeliveryId, DestinationId};
use serde::Deserialize;

use super::{App, Error, Principal, Result};

/// Which deliveries a list or a DLQ replay selects; every field optional,
/// as text the way a query string or a form gives it.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
#[schema(examples(json!({
    "destination_id": "dst_01jq3v2a4c6e8g0j2m4p6r8t0v", "event_type": "order.created",
    "since": "2026-03-14T00:00:00Z", "until": "2026-03-15T00:00:00Z"
})))]
pub struct DeliveryQuery {
    /// `pending`, `delivering`, `retrying`, `delivered`, `failed` or `dead`.
    pub status: Option<String>,
    pub destination_id: Option<String>,
    pub event_type: Option<String>,
    /// RFC 3339; created at or after.
    pub since: Option<String>,
    /// RFC 3339; created before.
    pub until: Option<String>,
}

impl DeliveryQuery {
    fn filter(&self) -> Result<DeliveryFilter> {
        let status = self
            .status
            .as_deref()
            .map(|s| {
                s.parse::<DeliveryStatus>()
                    .map_err(|e| Error::malformed("status", e))
            })
            .transpose()?;
        let destination_id = self
            .destination_id
            .as_deref()
            .map(|s| {
                DestinationId::parse(s)
                    .map_err(|_| Error::malformed("destination_id", "is not a destination id"))
            })
            .transpose()?;
        Ok(DeliveryFilter {
            status,
            destination_id,
            event_type: self.event_type.clone(),
            since: parse_time("since", self.since.as_deref())?,
            until: parse_time("until", self.until.as_deref())?,
        })
    }
}

/// Parses an optional RFC 3339 time of a filter.
pub(super) fn parse_time(field: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    Error::malformed(field, "must be an RFC 3339 time, e.g. 2026-01-31T12:00:00Z")
                })
        })
        .transpose()
}

impl App {
    /// Deliveries of the principal's organization, newest first.
    pub async fn deliveries(
        &self,
        principal: &Principal,
        query: &DeliveryQuery,
        page: PageRequest,
    ) -> Result<Page<Delivery>> {
        principal.require(Scope::Read)?;
        let filter = query.filter()?;
        Ok(self
            .0
            .store
            .list_deliveries(principal.org(), &filter, page)
            .await?)
    }

    /// The dead-letter queue: dead deliveries, newest first.
    pub async fn dead_letters(
        &self,
        principal: &Principal,
        query: &DeliveryQuery,
        page: PageRequest,
    ) -> Result<Page<Delivery>> {
        principal.require(Scope::Read)?;
        let filter = dead(query)?;
        Ok(self
            .0
            .store
            .list_deliveries(principal.org(), &filter, page)
            .await?)
    }

    /// A delivery with its attempts.
    pub async fn delivery(
        &self,
        principal: &Principal,
        id: &DeliveryId,
    ) -> Result<(Delivery, Vec<Attempt>)> {
        principal.require(Scope::Read)?;
        self.0
            .store
            .get_delivery(principal.org(), id)
            .await?
            .ok_or(Error::NotFound("delivery"))
    }

    /// Sends a delivery back to `pending`, due now, with a fresh retry
    /// budget. A delivery still on its way (`pending`, `delivering`) is a
    /// conflict.
    pub async fn retry_delivery(&self, principal: &Principal, id: &DeliveryId) -> Result<Delivery> {
        principal.require(Scope::Manage)?;
        let org = principal.org();
        let requeued = self
            .0
            .store
            .requeue(
                org,
                &RequeueSelector::Delivery(id.clone()),
                principal.actor(),
            )
            .await?;
        if let Some(d) = requeued.first() {
            self.made_waiting(&requeued).await;
            return Ok(d.clone());
        }
        let (d, _) = self
            .0
            .store
            .get_delivery(org, id)
            .await?
            .ok_or(Error::NotFound("delivery"))?;
        Err(Error::Conflict(format!(
            "delivery is {}; only retrying, delivered, failed or dead deliveries can be retried",
            d.status
        )))
    }

    /// Sends every dead delivery the query selects back to `pending`;
    /// returns how many.
    pub async fn replay_dead_letters(
        &self,
        principal: &Principal,
        query: &DeliveryQuery,
    ) -> Result<usize> {
        principal.require(Scope::Manage)?;
        let filter = dead(query)?;
        let requeued = self
            .0
            .store
            .requeue(
                principal.org(),
                &RequeueSelector::Dead(filter),
                principal.actor(),
            )
            .await?;
        self.made_waiting(&requeued).await;
        Ok(requeued.len())
    }
}

/// The query's filter, restricted to dead deliveries.
fn dead(query: &DeliveryQuery) -> Result<DeliveryFilter> {
    let mut filter = query.filter()?;
    if filter.status.is_some_and(|s| s != DeliveryStatus::Dead) {
        return Err(Error::malformed(
            "status",
            "the dead-letter queue only holds dead deliveries",
        ));
    }
    filter.status = Some(DeliveryStatus::Dead);
    Ok(filter)
}
