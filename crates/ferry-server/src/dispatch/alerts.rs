//! Alerts: when the breaker pauses a destination, and when it resumes, an
//! event (`ferry.destination.paused` / `ferry.destination.resumed`) goes to
//! the organization's alert destinations. One alert per transition (the
//! breaker debounces: a paused destination stays paused until it answers).
//! An alert is an ordinary event, so it is durable, retried and audited like
//! any other; raising it never blocks or fails a delivery.

use std::sync::Arc;

use chrono::Utc;
use ferry_core::EventId;
use ferry_core::delivery::Delivery;
use ferry_core::destination::{Destination, Health};
use ferry_core::event::{Event, NewEvent};
use ferry_core::ports::{Queue, Store};
use serde_json::json;
use tokio::sync::Notify;
use tracing::warn;

/// Which transition an alert reports.
#[derive(Debug, Clone, Copy)]
pub enum AlertKind {
    Paused,
    Resumed,
}

impl AlertKind {
    fn event_type(self) -> &'static str {
        match self {
            AlertKind::Paused => "ferry.destination.paused",
            AlertKind::Resumed => "ferry.destination.resumed",
        }
    }
}

/// Raises an alert in the background.
pub fn raise(
    store: Arc<dyn Store>,
    queue: Arc<dyn Queue>,
    wake: Arc<Notify>,
    dest: &Destination,
    health: &Health,
    kind: AlertKind,
) {
    let now = Utc::now();
    let data = json!({
        "destination_id": dest.id,
        "name": dest.name,
        "kind": dest.kind,
        "consecutive_failures": health.consecutive_failures,
        "last_error": health.last_error,
        "last_success_at": health.last_success_at,
        "next_probe_at": health.next_probe_at,
    });
    let (org, subject) = (dest.org_id.clone(), dest.id.clone());
    tokio::spawn(async move {
        let targets = match store.get_org(&org).await {
            Ok(Some(o)) => o
                .alert_destinations
                .into_iter()
                .filter(|d| *d != subject)
                .collect::<Vec<_>>(),
            Ok(None) => return,
            Err(error) => {
                warn!(%error, destination_id = %subject, "Could not read the alert channels.");
                return;
            }
        };
        if targets.is_empty() {
            return;
        }
        let key = format!(
            "alert:{subject}:{}:{}",
            kind.event_type(),
            now.timestamp_micros()
        );
        let event = Event {
            id: EventId::from_caller_key(&org, &key),
            org_id: org,
            event_type: kind.event_type().to_owned(),
            data,
            metadata: json!({"source": "ferry"}),
            idempotency_key: Some(key),
            created_at: now,
        };
        let deliveries: Vec<Delivery> = targets
            .into_iter()
            .map(|d| Delivery::new(&event, d))
            .collect();
        let new = NewEvent {
            event,
            deliveries: deliveries.clone(),
        };
        if let Err(error) = store.insert_events(&[new]).await {
            warn!(%error, destination_id = %subject, "Could not store an alert.");
            return;
        }
        if let Err(error) = queue.enqueue(&deliveries).await {
            warn!(%error, destination_id = %subject, "Could not queue an alert; it is delivered once the queue reconciles.");
        }
        wake.notify_one();
    });
}
