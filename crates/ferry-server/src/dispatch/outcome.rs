//! Turning an attempt report into a `Completion`: the next status, when the
//! next attempt is due, whether the retry budget is spent, and the audit
//! record. Pure, apart from the jitter sample passed in.

use chrono::{DateTime, Utc};
use ferry_core::audit::{AuditRecord, SYSTEM_ACTOR};
use ferry_core::delivery::{Attempt, AttemptOutcome, DeliveryStatus, Leased};
use ferry_core::ports::{AttemptError, AttemptReport, Completion, Settled};
use ferry_core::retry::{NextStep, RetryPolicy};
use serde_json::json;

pub struct Attempted<'a> {
    pub leased: &'a Leased,
    pub report: AttemptReport,
    pub started_at: DateTime<Utc>,
    pub duration_ms: u64,
    pub owner: &'a str,
    /// The destination is paused: a retryable failure waits for the probe
    /// instead of spending the retry budget.
    pub paused_until: Option<DateTime<Utc>>,
}

pub fn complete(
    a: Attempted<'_>,
    policy: &RetryPolicy,
    now: DateTime<Utc>,
    jitter: f64,
) -> Completion {
    let delivery = &a.leased.delivery;
    let number = delivery.attempt_count + 1;
    let (outcome, settled) = match &a.report.result {
        Ok(_) => (AttemptOutcome::Delivered, Settled::Delivered),
        Err(AttemptError::Permanent { reason }) => (
            AttemptOutcome::Permanent,
            Settled::Dead {
                error: reason.clone(),
            },
        ),
        Err(AttemptError::Retryable {
            reason,
            retry_after,
        }) => {
            let error = reason.clone();
            let settled = match a.paused_until {
                // The probe decides: no budget spent.
                Some(at) => Settled::Retry {
                    at,
                    counted: false,
                    error,
                },
                None => match policy.next_step(delivery.failures_counted + 1, *retry_after, jitter)
                {
                    NextStep::RetryAfter(delay) => Settled::Retry {
                        at: now
                            + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX),
                        counted: true,
                        error,
                    },
                    NextStep::GiveUp => Settled::Dead { error },
                },
            };
            (AttemptOutcome::Retryable, settled)
        }
    };
    let status = settled.status();
    let error = settled.error().map(str::to_owned);
    let action = match settled {
        Settled::Delivered => "delivery.delivered",
        Settled::Retry { .. } => "delivery.retrying",
        Settled::Dead { .. } => "delivery.dead",
    };
    let audit = AuditRecord::new(
        delivery.org_id.clone(),
        SYSTEM_ACTOR,
        "delivery",
        delivery.id.to_string(),
        action,
    )
    .before(json!({"status": DeliveryStatus::Delivering}))
    .after(json!({
        "status": status,
        "attempt": number,
        "status_code": a.report.status_code,
        "error": error,
        "next_attempt_at": settled.next_attempt_at(),
    }));
    Completion {
        delivery_id: delivery.id.clone(),
        org_id: delivery.org_id.clone(),
        destination_id: delivery.destination_id.clone(),
        owner: a.owner.to_owned(),
        accepted_at: a.leased.event.created_at,
        attempt: Attempt {
            delivery_id: delivery.id.clone(),
            number,
            started_at: a.started_at,
            duration_ms: a.duration_ms,
            outcome,
            status_code: a.report.status_code,
            error,
            request: a.report.request,
            response: a.report.response,
            receipt: a.report.result.ok().and_then(|d| d.receipt),
        },
        settled,
        audit,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use ferry_core::delivery::Delivery;
    use ferry_core::event::Event;
    use ferry_core::ports::Outcome;
    use ferry_core::{DestinationId, EventId, OrgId};

    use super::*;

    fn leased(failures: u32) -> Leased {
        let event = Event {
            id: EventId::generate(),
            org_id: OrgId::generate(),
            event_type: "t".into(),
            data: json!({}),
            metadata: json!({}),
            idempotency_key: None,
            created_at: Utc::now(),
            trace: None,
        };
        let mut delivery = Delivery::new(&event, DestinationId::generate());
        delivery.failures_counted = failures;
        delivery.attempt_count = failures;
        Leased {
            delivery,
            event: Arc::new(event),
        }
    }

    fn attempt(l: &Leased, result: Outcome, paused_until: Option<DateTime<Utc>>) -> Completion {
        let report = AttemptReport {
            result,
            status_code: Some(503),
            request: None,
            response: None,
        };
        let a = Attempted {
            leased: l,
            report,
            started_at: Utc::now(),
            duration_ms: 1,
            owner: "w",
            paused_until,
        };
        complete(a, &RetryPolicy::default(), Utc::now(), 0.0)
    }

    fn retryable() -> Outcome {
        Err(AttemptError::Retryable {
            reason: "HTTP 503".into(),
            retry_after: None,
        })
    }

    #[test]
    fn retryable_failures_retry_until_the_budget_is_spent() {
        let c = attempt(&leased(0), retryable(), None);
        assert_eq!(
            (c.settled.status(), c.settled.counted(), c.attempt.number),
            (DeliveryStatus::Retrying, true, 1)
        );
        let c = attempt(&leased(5), retryable(), None);
        assert_eq!(
            c.settled,
            Settled::Dead {
                error: "HTTP 503".into()
            }
        );
    }

    #[test]
    fn permanent_failures_die_at_once_and_probes_spend_nothing() {
        let c = attempt(
            &leased(0),
            Err(AttemptError::Permanent {
                reason: "HTTP 400".into(),
            }),
            None,
        );
        assert_eq!(c.settled.status(), DeliveryStatus::Dead);
        let until = Utc::now() + chrono::Duration::seconds(5);
        let c = attempt(&leased(5), retryable(), Some(until));
        assert_eq!(
            c.settled,
            Settled::Retry {
                at: until,
                counted: false,
                error: "HTTP 503".into()
            }
        );
    }

    #[test]
    fn retry_after_sets_the_next_attempt() {
        let outcome = Err(AttemptError::Retryable {
            reason: "429".into(),
            retry_after: Some(Duration::from_secs(7)),
        });
        let before = Utc::now();
        let c = attempt(&leased(0), outcome, None);
        let at = c.settled.next_attempt_at().unwrap();
        assert!(
            at >= before + chrono::Duration::seconds(7)
                && at <= Utc::now() + chrono::Duration::seconds(7)
        );
    }
}
