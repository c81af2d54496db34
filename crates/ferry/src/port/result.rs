//! `IntegrationResult` and `DeliveryStatus`: how an event stands at a
//! port's destination.

use std::fmt;

use chrono::{DateTime, Utc};
use ferry_core::EventId;
use ferry_core::delivery::AttemptOutcome;
use ferry_core::state::DeliveryStatus as Stored;
use ferry_server::views::EventDeliveryView;

/// Where an event is on its way to the port's destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// Durable, not delivered yet, no failed attempt so far (or sent again
    /// by an operator's replay).
    Pending,
    /// An attempt failed and another is scheduled (`next_attempt_at`).
    Retrying,
    /// The destination took it.
    Delivered,
    /// The destination refused it for good (e.g. an HTTP 4xx), or was
    /// deleted: no retries. The event is in the dead-letter queue and can
    /// be replayed once fixed.
    Failed,
    /// Every attempt the retry policy allows failed. The event is in the
    /// dead-letter queue (Ferry's manual intervention queue) until replayed.
    Exhausted,
}

impl DeliveryStatus {
    /// Whether nothing more happens without an operator: `Delivered`,
    /// `Failed` or `Exhausted`.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Delivered | Self::Failed | Self::Exhausted)
    }

    /// Its name in lower case (`pending`, `exhausted`), as `Display` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Retrying => "retrying",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Exhausted => "exhausted",
        }
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the latest attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryError {
    /// What went wrong, in words (`HTTP 503 Service Unavailable`,
    /// `connection refused`).
    pub message: String,
    /// The destination's own code when it gave one: the HTTP status for
    /// webhooks (`"503"`).
    pub code: Option<String>,
}

/// How one event stands at the port's destination.
#[derive(Debug, Clone, PartialEq)]
pub struct IntegrationResult {
    /// The event's id (receivers see it as `webhook-id`).
    pub event_id: EventId,
    /// Where it is.
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// Why the latest failed attempt failed.
    pub last_error: Option<DeliveryError>,
    /// When the destination took it.
    pub delivered_at: Option<DateTime<Utc>>,
    /// When the next attempt is due, while one is.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Attempts the retry policy still allows; `Some(0)` once final, `None`
    /// when not known yet (an event still in a remote client's spool).
    pub attempts_remaining: Option<u32>,
    /// When this result was read.
    pub at: DateTime<Utc>,
}

impl IntegrationResult {
    /// A new event, durable and not attempted yet.
    pub(crate) fn pending(event_id: EventId, attempts_remaining: Option<u32>) -> Self {
        Self {
            event_id,
            status: DeliveryStatus::Pending,
            attempts: 0,
            last_error: None,
            delivered_at: None,
            next_attempt_at: None,
            attempts_remaining,
            at: Utc::now(),
        }
    }

    /// The result a delivery's stored state gives.
    pub(crate) fn from_view(v: &EventDeliveryView) -> Self {
        let last_outcome = v.last_attempt.as_ref().map(|a| a.outcome);
        let failed_before = last_outcome.is_some_and(|o| o != AttemptOutcome::Delivered);
        let status = match v.status {
            Stored::Pending => DeliveryStatus::Pending,
            Stored::Delivering if failed_before => DeliveryStatus::Retrying,
            Stored::Delivering => DeliveryStatus::Pending,
            Stored::Retrying => DeliveryStatus::Retrying,
            Stored::Delivered => DeliveryStatus::Delivered,
            Stored::Failed => DeliveryStatus::Failed,
            Stored::Dead if last_outcome == Some(AttemptOutcome::Permanent) => {
                DeliveryStatus::Failed
            }
            Stored::Dead => DeliveryStatus::Exhausted,
        };
        let last_error = match (&v.last_error, status) {
            (_, DeliveryStatus::Delivered | DeliveryStatus::Pending) if !failed_before => None,
            (Some(message), _) => Some(DeliveryError {
                message: message.clone(),
                code: v
                    .last_attempt
                    .as_ref()
                    .and_then(|a| a.status_code)
                    .map(|c| c.to_string()),
            }),
            (None, _) => None,
        };
        let delivered_at = (status == DeliveryStatus::Delivered).then(|| {
            v.last_attempt.as_ref().map_or(v.updated_at, |a| {
                a.started_at
                    + chrono::Duration::milliseconds(i64::try_from(a.duration_ms).unwrap_or(0))
            })
        });
        let attempts_remaining = if status.is_final() {
            Some(0)
        } else {
            Some(
                v.max_attempts
                    .map_or(0, |max| max.saturating_sub(v.failures_counted)),
            )
        };
        Self {
            event_id: v.event_id.clone(),
            status,
            attempts: v.attempt_count,
            last_error,
            delivered_at,
            next_attempt_at: if status.is_final() {
                None
            } else {
                v.next_attempt_at
            },
            attempts_remaining,
            at: v.at,
        }
    }
}
