//! Alerts: each report of the dispatcher (a destination paused by its
//! breaker and resumed, failing and recovered, disabled after failing too
//! long, deliveries exhausted) becomes an event of type
//! `ferry.destination.*` / `ferry.delivery.exhausted` for the
//! organization's alert destinations, ingested like any other event; other
//! use cases send theirs the same way (`ferry.export.failed`). Disabling is
//! done here, as `system`, audited like an operator's. An organization
//! without alert destinations gets no alerts, and an alert destination
//! raises none about itself.

use chrono::{DateTime, Utc};
use ferry_core::delivery::Delivery;
use ferry_core::event::{Event, NewEvent};
use ferry_core::{DestinationId, EventId, OrgId};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tracing::warn;

use super::{App, Result};
use crate::dispatch::alerts::{AlertKind, QUEUE_LAGGING, QueueLagging};
use crate::dispatch::{Alert, Report};

impl App {
    /// Takes the dispatcher's reports until it stops sending. A lagging
    /// queue is the operator's concern: it goes to `operator_org` (the
    /// default organization).
    pub async fn raise_alerts(self, mut reports: mpsc::Receiver<Report>, operator_org: OrgId) {
        while let Some(report) = reports.recv().await {
            match report {
                Report::Destination(alert) => {
                    let destination_id = alert.destination.id.clone();
                    if let Err(error) = self.raise_alert(alert).await {
                        warn!(%error, %destination_id, "Could not store an alert.");
                    }
                }
                Report::QueueLagging(lagging) => {
                    if let Err(error) = self.raise_lagging(&operator_org, lagging).await {
                        warn!(%error, "Could not store an alert.");
                    }
                }
            }
        }
    }

    /// Stores a `ferry.queue.lagging` alert for `org`'s alert destinations.
    pub async fn raise_lagging(
        &self,
        org: &OrgId,
        lagging: QueueLagging,
    ) -> Result<Option<EventId>> {
        let key = format!(
            "alert:queue:{QUEUE_LAGGING}:{}",
            lagging.at.timestamp_micros()
        );
        let data = json!({"lag_s": lagging.lag_s, "threshold_s": lagging.threshold_s});
        self.send_alert(org, None, QUEUE_LAGGING, key, data, lagging.at)
            .await
    }

    /// Stores one alert the dispatcher reported for the organization's
    /// alert destinations; a destination to disable is disabled first (and
    /// announced only if it was still enabled).
    pub async fn raise_alert(&self, alert: Alert) -> Result<Option<EventId>> {
        let dest = &alert.destination;
        if alert.kind == AlertKind::Disabled
            && !self
                .disable_failing_destination(&dest.org_id, &dest.id)
                .await?
        {
            return Ok(None);
        }
        let event_type = alert.kind.event_type();
        let key = format!(
            "alert:{}:{event_type}:{}",
            dest.id,
            alert.at.timestamp_micros()
        );
        let health = &alert.health;
        let mut data = json!({
            "destination_id": dest.id,
            "name": dest.name,
            "kind": dest.kind,
            "consecutive_failures": health.consecutive_failures,
            "failed_in_a_row": health.failed_in_a_row,
            "failing_since": health.failing_since,
            "last_error": health.last_error,
            "last_success_at": health.last_success_at,
            "next_probe_at": health.next_probe_at,
            "links": self.links("destinations", dest.id.as_str()),
        });
        if let (Some(Value::Object(detail)), Value::Object(fields)) = (alert.detail, &mut data) {
            fields.extend(detail);
        }
        self.send_alert(
            &dest.org_id,
            Some(&dest.id),
            event_type,
            key,
            data,
            alert.at,
        )
        .await
    }

    /// Stores an alert event of `event_type` for `org`'s alert
    /// destinations: none when the organization has none, or when the
    /// alert is `about` one of them (an alert destination that fails would
    /// otherwise alert the others about itself, and they it, in a loop).
    /// `key` makes it idempotent.
    pub(crate) async fn send_alert(
        &self,
        org: &OrgId,
        about: Option<&DestinationId>,
        event_type: &str,
        key: String,
        data: Value,
        at: DateTime<Utc>,
    ) -> Result<Option<EventId>> {
        let Some(org) = self.0.store.get_org(org).await? else {
            return Ok(None);
        };
        if about.is_some_and(|d| org.alert_destinations.contains(d)) {
            return Ok(None);
        }
        let targets = org.alert_destinations;
        if targets.is_empty() {
            return Ok(None);
        }
        let event = Event {
            id: EventId::from_caller_key(&org.id, &key),
            org_id: org.id,
            event_type: event_type.to_owned(),
            data,
            metadata: json!({"source": "ferry"}),
            idempotency_key: Some(key),
            created_at: at,
            trace: None,
        };
        let deliveries = targets
            .into_iter()
            .map(|d| Delivery::new(&event, d))
            .collect();
        let accepted = self.submit(NewEvent { event, deliveries }).await?;
        if !accepted.duplicate {
            metrics::counter!(crate::metrics::ALERTS, "type" => event_type.to_owned()).increment(1);
        }
        Ok(Some(accepted.event_id))
    }
}
