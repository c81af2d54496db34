//! Alerts: the dispatcher reports what it sees of a destination — paused by
//! the breaker and resumed, failing and recovered, to be disabled, and
//! deliveries exhausted (dead) — on a bounded channel; the use cases
//! (`app::alerts`) turn each report into an ordinary event for the
//! organization's alert destinations, through the same ingest as any other
//! event (the group-commit writer), so an alert is durable, retried and
//! audited like any other. The dispatcher debounces (`failing`, and the
//! exhausted deliveries it gathers into one report per window). Reporting
//! never blocks or fails a delivery: with the channel full (`BACKLOG`
//! reports not yet taken) the report is dropped and logged.

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
    Failing,
    Recovered,
    /// Failing for too long: the use cases disable it, then announce it.
    Disabled,
    /// Deliveries went to the dead-letter queue (how many: `exhausted`).
    Exhausted,
}

impl AlertKind {
    pub const ALL: [AlertKind; 6] = [
        AlertKind::Paused,
        AlertKind::Resumed,
        AlertKind::Failing,
        AlertKind::Recovered,
        AlertKind::Disabled,
        AlertKind::Exhausted,
    ];

    /// The type of the event that carries the alert.
    pub fn event_type(self) -> &'static str {
        match self {
            AlertKind::Paused => "ferry.destination.paused",
            AlertKind::Resumed => "ferry.destination.resumed",
            AlertKind::Failing => "ferry.destination.failing",
            AlertKind::Recovered => "ferry.destination.recovered",
            AlertKind::Disabled => "ferry.destination.disabled",
            AlertKind::Exhausted => "ferry.delivery.exhausted",
        }
    }
}

/// Deliveries of one destination that went to the dead-letter queue since
/// the last report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exhausted {
    pub count: u64,
    /// When the first of them went.
    pub since: DateTime<Utc>,
}

/// What the dispatcher saw of one destination.
#[derive(Debug, Clone)]
pub struct Alert {
    pub kind: AlertKind,
    pub destination: Arc<Destination>,
    /// The destination's health right after the transition.
    pub health: Health,
    pub at: DateTime<Utc>,
    /// For `Exhausted`: how many, since when.
    pub exhausted: Option<Exhausted>,
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
