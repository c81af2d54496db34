//! Breaker alerts: each transition the dispatcher reports (a destination
//! paused after consecutive failures, or answering again) becomes an event
//! of type `ferry.destination.paused` / `ferry.destination.resumed` for the
//! organization's alert destinations, ingested like any other event. An
//! organization without alert destinations gets none; a destination never
//! alerts itself.

use ferry_core::EventId;
use ferry_core::delivery::Delivery;
use ferry_core::event::{Event, NewEvent};
use serde_json::json;
use tokio::sync::mpsc;
use tracing::warn;

use super::{App, Result};
use crate::dispatch::Alert;

impl App {
    /// Takes the dispatcher's reports until it stops sending.
    pub async fn raise_alerts(self, mut reports: mpsc::Receiver<Alert>) {
        while let Some(alert) = reports.recv().await {
            let destination_id = alert.destination.id.clone();
            if let Err(error) = self.raise_alert(alert).await {
                warn!(%error, %destination_id, "Could not store an alert.");
            }
        }
    }

    /// Stores one alert for the organization's alert destinations.
    pub async fn raise_alert(&self, alert: Alert) -> Result<Option<EventId>> {
        let dest = &alert.destination;
        let Some(org) = self.0.store.get_org(&dest.org_id).await? else {
            return Ok(None);
        };
        let targets: Vec<_> = org
            .alert_destinations
            .into_iter()
            .filter(|d| *d != dest.id)
            .collect();
        if targets.is_empty() {
            return Ok(None);
        }
        let event_type = alert.kind.event_type();
        let key = format!(
            "alert:{}:{event_type}:{}",
            dest.id,
            alert.at.timestamp_micros()
        );
        let health = &alert.health;
        let event = Event {
            id: EventId::from_caller_key(&org.id, &key),
            org_id: org.id,
            event_type: event_type.to_owned(),
            data: json!({
                "destination_id": dest.id,
                "name": dest.name,
                "kind": dest.kind,
                "consecutive_failures": health.consecutive_failures,
                "last_error": health.last_error,
                "last_success_at": health.last_success_at,
                "next_probe_at": health.next_probe_at,
            }),
            metadata: json!({"source": "ferry"}),
            idempotency_key: Some(key),
            created_at: alert.at,
        };
        let deliveries = targets
            .into_iter()
            .map(|d| Delivery::new(&event, d))
            .collect();
        let accepted = self.submit(NewEvent { event, deliveries }).await?;
        Ok(Some(accepted.event_id))
    }
}
