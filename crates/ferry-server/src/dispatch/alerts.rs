//! Alerts: when the breaker pauses a destination, and when it resumes, the
//! dispatcher reports the transition on a bounded channel; the use cases
//! (`app::alerts`) turn each report into an ordinary event for the
//! organization's alert destinations, through the same ingest as any other
//! event (the group-commit writer), so an alert is durable, retried and
//! audited like any other. One alert per transition (the breaker debounces:
//! a paused destination stays paused until it answers). Reporting never
//! blocks or fails a delivery: with the channel full (`BACKLOG` reports not
//! yet taken) the report is dropped and logged.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use ferry_core::destination::{Destination, Health};
use tokio::sync::mpsc;
use tracing::error;

/// Reports waiting for the use cases to take them.
const BACKLOG: usize = 1_024;

/// Which transition an alert reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    Paused,
    Resumed,
}

impl AlertKind {
    pub const ALL: [AlertKind; 2] = [AlertKind::Paused, AlertKind::Resumed];

    /// The type of the event that carries the alert.
    pub fn event_type(self) -> &'static str {
        match self {
            AlertKind::Paused => "ferry.destination.paused",
            AlertKind::Resumed => "ferry.destination.resumed",
        }
    }
}

/// A breaker transition of one destination.
#[derive(Debug, Clone)]
pub struct Alert {
    pub kind: AlertKind,
    pub destination: Arc<Destination>,
    /// The destination's health right after the transition.
    pub health: Health,
    pub at: DateTime<Utc>,
}

/// Where the dispatcher reports transitions.
#[derive(Debug, Clone)]
pub struct AlertSender(mpsc::Sender<Alert>);

/// A channel for alert reports: the dispatcher sends, the use cases take.
pub fn channel() -> (AlertSender, mpsc::Receiver<Alert>) {
    let (tx, rx) = mpsc::channel(BACKLOG);
    (AlertSender(tx), rx)
}

impl AlertSender {
    /// Reports a transition without waiting.
    pub(crate) fn raise(&self, alert: Alert) {
        if let Err(e) = self.0.try_send(alert) {
            let alert = match &e {
                mpsc::error::TrySendError::Full(a) | mpsc::error::TrySendError::Closed(a) => a,
            };
            error!(destination_id = %alert.destination.id, event_type = alert.kind.event_type(), "An alert could not be raised: too many alerts are waiting, or alerts are not taken.");
        }
    }
}
