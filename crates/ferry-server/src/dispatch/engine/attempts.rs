//! Running attempts: starting leased deliveries within the global and
//! per-destination limits, and turning each result into a completion, a
//! breaker update and metrics.

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use ferry_core::DestinationId;
use ferry_core::delivery::{Envelope, Leased};
use ferry_core::ports::{AttemptError, AttemptReport, Settled};
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;
use tracing::{debug, info, warn};

use super::super::alerts::{Alert, AlertKind};
use super::super::breaker::Change;
use super::super::failing::{self, Signal};
use super::super::outcome::{Attempted, complete};
use super::{Engine, Finished};
use crate::metrics as m;
use crate::traces::Traced;

/// The outcome of an attempt on its span: `ferry.outcome`, the receiver's
/// status code, and for a failure the error class and reason.
fn record_attempt(span: &mut Traced, report: &AttemptReport) {
    let outcome = match &report.result {
        Ok(_) => "delivered",
        Err(AttemptError::Retryable { .. }) => "retryable",
        Err(AttemptError::Permanent { .. }) => "permanent",
    };
    span.record(|| {
        let mut attributes = vec![KeyValue::new("ferry.outcome", outcome)];
        if let Some(code) = report.status_code {
            attributes.push(KeyValue::new("http.response.status_code", i64::from(code)));
        }
        if report.result.is_err() {
            let class = report
                .status_code
                .map_or_else(|| outcome.to_owned(), |c| c.to_string());
            attributes.push(KeyValue::new("error.type", class));
        }
        attributes
    });
    if let Err(error) = &report.result {
        span.fail(|| error.reason().to_owned());
    }
}

impl Engine {
    /// Takes a leased delivery: starts it, or queues it behind the
    /// destination's concurrency limit.
    pub(super) fn start(&mut self, leased: Leased, probe: bool) {
        self.leased += 1;
        let id = leased.delivery.destination_id.clone();
        let Some(d) = self.dests.get_mut(&id) else {
            return;
        };
        if d.active >= d.dest.max_in_flight && !probe {
            d.waiting.push_back((leased, probe));
            return;
        }
        self.spawn_attempt(&id, leased, probe);
    }

    pub(super) fn spawn_attempt(&mut self, id: &DestinationId, leased: Leased, probe: bool) {
        let Some(d) = self.dests.get_mut(id) else {
            return;
        };
        d.active += 1;
        let deliverer = d.deliverer.clone();
        let delivery_id = leased.delivery.id.clone();
        let kind = d.dest.kind.as_str();
        let series = d.series.clone();
        let traces = self.traces.clone();
        let task = self.tasks.spawn(async move {
            let attempt = leased.delivery.attempt_count + 1;
            // A child of the event's stored context: the same trace after a
            // restart or on another worker.
            let mut span = traces.span(
                "ferry.attempt",
                SpanKind::Client,
                leased.event.trace.as_ref(),
                || {
                    [
                        KeyValue::new("ferry.destination.kind", kind),
                        KeyValue::new(
                            "ferry.destination.id",
                            leased.delivery.destination_id.to_string(),
                        ),
                        KeyValue::new("ferry.delivery.id", leased.delivery.id.to_string()),
                        KeyValue::new("ferry.event.id", leased.event.id.to_string()),
                        KeyValue::new("ferry.attempt", i64::from(attempt)),
                    ]
                },
            );
            let envelope = Envelope {
                delivery_id: leased.delivery.id.clone(),
                event: leased.event.clone(),
                attempt,
                trace: span.context().or_else(|| leased.event.trace.clone()),
            };
            let started_at = Utc::now();
            let clock = Instant::now();
            let report = match deliverer {
                Ok(deliverer) => deliverer.deliver(&envelope).await,
                Err(error) => AttemptReport {
                    result: Err(AttemptError::permanent(format!(
                        "destination configuration cannot be used: {error}"
                    ))),
                    status_code: None,
                    request: None,
                    response: None,
                },
            };
            let elapsed = clock.elapsed();
            series.attempt_duration.record(elapsed.as_secs_f64());
            if report.result.is_ok() {
                let waited = Utc::now() - leased.event.created_at;
                series
                    .delivery_latency
                    .record(waited.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6);
            }
            record_attempt(&mut span, &report);
            drop(span);
            Finished {
                leased,
                report,
                started_at,
                duration_ms: elapsed.as_millis() as u64,
                probe,
            }
        });
        self.task_ids.insert(task.id(), (delivery_id, id.clone()));
        metrics::gauge!(m::IN_FLIGHT).set(self.task_ids.len() as f64);
    }

    pub(super) async fn joined(
        &mut self,
        joined: Result<(tokio::task::Id, Finished), tokio::task::JoinError>,
    ) {
        match joined {
            Ok((task, finished)) => {
                self.task_ids.remove(&task);
                self.finish(finished).await;
            }
            Err(error) => {
                // A deliverer panicked: the lease expires and another attempt follows.
                if let Some((delivery_id, dest_id)) = self.task_ids.remove(&error.id()) {
                    warn!(%delivery_id, "Delivery attempt panicked; its lease will expire.");
                    self.slot_freed(&dest_id, false);
                }
            }
        }
        metrics::gauge!(m::IN_FLIGHT).set(self.task_ids.len() as f64);
    }

    pub(super) async fn finish(&mut self, f: Finished) {
        let dest_id = f.leased.delivery.destination_id.clone();
        let now = Utc::now();
        let Some(d) = self.dests.get_mut(&dest_id) else {
            return;
        };
        let change = match &f.report.result {
            Ok(_) => self.breaker.on_success(&mut d.health, now),
            Err(AttemptError::Permanent { reason: error }) => {
                self.breaker.on_permanent(&mut d.health, now, error)
            }
            Err(AttemptError::Retryable { reason: error, .. }) => {
                self.breaker
                    .on_retryable(&mut d.health, now, error, f.probe)
            }
        };
        match f.report.result {
            Ok(_) => &d.series.delivered,
            Err(AttemptError::Retryable { .. }) => &d.series.retryable,
            Err(AttemptError::Permanent { .. }) => &d.series.permanent,
        }
        .increment(1);
        match change {
            Change::Paused => {
                warn!(destination_id = %dest_id, failures = d.health.consecutive_failures, "Destination paused after consecutive failures; probing.");
                self.alerts
                    .raise(Alert::new(AlertKind::Paused, d.dest.clone(), d.health.clone()).at(now));
            }
            Change::Resumed => {
                info!(destination_id = %dest_id, "Destination answered again; resuming its deliveries.");
                self.alerts.raise(
                    Alert::new(AlertKind::Resumed, d.dest.clone(), d.health.clone()).at(now),
                );
                self.backlog = true;
            }
            Change::None => {}
        }
        d.latency.record(Instant::now(), f.duration_ms);
        let delivered = f.report.result.is_ok();
        for signal in failing::on_attempt(&d.policy, &mut d.health, &mut d.recent, now, delivered) {
            let kind = match signal {
                Signal::Failing => {
                    warn!(destination_id = %dest_id, failed_in_a_row = d.health.failed_in_a_row, "Destination is failing.");
                    AlertKind::Failing
                }
                Signal::Recovered => {
                    info!(destination_id = %dest_id, "Destination recovered.");
                    AlertKind::Recovered
                }
                // Once: attempts already in flight may finish after it.
                Signal::Disable if d.dest.enabled => {
                    warn!(destination_id = %dest_id, failing_since = ?d.health.failing_since, failed_in_a_row = d.health.failed_in_a_row, "Destination failed for too long; disabling it. Its deliveries wait until it is enabled.");
                    // Stop attempting now; the use case stores the change.
                    let mut disabled = (*d.dest).clone();
                    disabled.enabled = false;
                    d.dest = Arc::new(disabled);
                    AlertKind::Disabled
                }
                Signal::Disable => continue,
            };
            self.alerts
                .raise(Alert::new(kind, d.dest.clone(), d.health.clone()).at(now));
        }
        let paused_until = d.health.next_probe_at;
        let retry = d.dest.retry.clone();
        self.health_dirty.insert(dest_id.clone());
        self.publish_health(&dest_id);
        let completion = complete(
            Attempted {
                leased: &f.leased,
                report: f.report,
                started_at: f.started_at,
                duration_ms: f.duration_ms,
                owner: &self.owner,
                paused_until,
            },
            &retry,
            now,
            rand::random::<f64>(),
        );
        // The ids an operator follows from a log line: to the delivery in
        // the API, to the event's trace in the tracing backend.
        let event_id = &f.leased.event.id;
        let trace_id = f.leased.event.trace.as_ref().map(|t| t.trace_id_hex());
        let trace_id = trace_id.as_deref();
        match &completion.settled {
            Settled::Retry { at, error, .. } if paused_until.is_none() => {
                self.wake_at = Some(self.wake_at.map_or(*at, |w| w.min(*at)));
                debug!(delivery_id = %completion.delivery_id, %event_id, destination_id = %dest_id, trace_id, %error, "Delivery failed; will retry.");
            }
            Settled::Dead { error } => {
                if let Some(d) = self.dests.get_mut(&dest_id) {
                    d.exhausted.get_or_insert((0, now)).0 += 1;
                }
                warn!(delivery_id = %completion.delivery_id, %event_id, destination_id = %dest_id, trace_id, %error, "Delivery is dead; it waits in the dead-letter queue.");
            }
            _ => {}
        }
        if let Some(tx) = &self.completions
            && tx.send(completion).await.is_err()
        {
            warn!(
                "Completion writer stopped; the lease will expire and the delivery will be retried."
            );
        }
        self.slot_freed(&dest_id, f.probe);
    }

    pub(super) fn slot_freed(&mut self, dest_id: &DestinationId, probe: bool) {
        self.leased = self.leased.saturating_sub(1);
        let next = self.dests.get_mut(dest_id).and_then(|d| {
            d.active = d.active.saturating_sub(1);
            if probe {
                d.probing = false;
            }
            let next = if !d.blocked() && d.active < d.dest.max_in_flight {
                d.waiting.pop_front()
            } else {
                None
            };
            if d.runs_low() {
                self.backlog = true;
            }
            next
        });
        if let Some((next, next_probe)) = next {
            // `start` counts it again.
            self.leased = self.leased.saturating_sub(1);
            self.start(next, next_probe);
        }
    }
}
