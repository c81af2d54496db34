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
use serde_json::Value;
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
    /// Deliveries went to the dead-letter queue (how many: `detail`).
    Exhausted,
    /// Its p99 attempt latency passed its threshold.
    Slow,
}

/// The type of the event that says the queue lags behind.
pub const QUEUE_LAGGING: &str = "ferry.queue.lagging";

impl AlertKind {
    pub const ALL: [AlertKind; 7] = [
        AlertKind::Paused,
        AlertKind::Resumed,
        AlertKind::Failing,
        AlertKind::Recovered,
        AlertKind::Disabled,
        AlertKind::Exhausted,
        AlertKind::Slow,
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
            AlertKind::Slow => "ferry.destination.slow",
        }
    }
}

/// What the dispatcher saw of one destination.
#[derive(Debug, Clone)]
pub struct Alert {
    pub kind: AlertKind,
    pub destination: Arc<Destination>,
    /// The destination's health right after the transition.
    pub health: Health,
    pub at: DateTime<Utc>,
    /// Fields of its own (an object): for `Exhausted` how many and since
    /// when, for `Slow` the latency against the threshold.
    pub detail: Option<Value>,
}

impl Alert {
    pub fn new(kind: AlertKind, destination: Arc<Destination>, health: Health) -> Self {
        Self {
            kind,
            destination,
            health,
            at: Utc::now(),
            detail: None,
        }
    }

    pub fn at(self, at: DateTime<Utc>) -> Self {
        Self { at, ..self }
    }

    pub fn detail(self, detail: Value) -> Self {
        Self {
            detail: Some(detail),
            ..self
        }
    }
}

/// The oldest due delivery has waited longer than the threshold (an
/// operator's concern: it goes to the default organization's alert
/// destinations).
#[derive(Debug, Clone)]
pub struct QueueLagging {
    pub lag_s: f64,
    pub threshold_s: u64,
    pub at: DateTime<Utc>,
}

/// One report of the dispatcher.
#[derive(Debug, Clone)]
pub enum Report {
    Destination(Alert),
    QueueLagging(QueueLagging),
}

/// Where the dispatcher reports what it sees.
#[derive(Debug, Clone)]
pub struct AlertSender(mpsc::Sender<Report>);

/// A channel for alert reports: the dispatcher sends, the use cases take.
pub fn channel() -> (AlertSender, mpsc::Receiver<Report>) {
    let (tx, rx) = mpsc::channel(BACKLOG);
    (AlertSender(tx), rx)
}

impl AlertSender {
    /// Reports what a destination did, without waiting.
    pub(crate) fn raise(&self, alert: Alert) {
        self.send(Report::Destination(alert));
    }

    /// Reports that the queue lags, without waiting.
    pub(crate) fn raise_lagging(&self, lagging: QueueLagging) {
        self.send(Report::QueueLagging(lagging));
    }

    fn send(&self, report: Report) {
        if let Err(e) = self.0.try_send(report) {
            let (mpsc::error::TrySendError::Full(report)
            | mpsc::error::TrySendError::Closed(report)) = &e;
            let event_type = match report {
                Report::Destination(a) => a.kind.event_type(),
                Report::QueueLagging(_) => QUEUE_LAGGING,
            };
            error!(
                event_type,
                "An alert could not be raised: too many alerts are waiting, or alerts are not taken."
            );
        }
    }
}
