//! Metric names and the Prometheus recorder. Every name has the `ferry_`
//! prefix; labels come from closed sets (destination kind, outcome, status).

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const INGEST_EVENTS: &str = "ferry_ingest_events_total";
pub const INGEST_LATENCY: &str = "ferry_ingest_latency_seconds";
pub const DELIVERIES: &str = "ferry_deliveries_total";
pub const ATTEMPT_DURATION: &str = "ferry_attempt_duration_seconds";
pub const QUEUE_DEPTH: &str = "ferry_queue_depth";
pub const IN_FLIGHT: &str = "ferry_deliveries_in_flight";
pub const COMMIT_BATCH: &str = "ferry_ingest_commit_batch_size";
/// Seconds from an event's acceptance to its delivery, per delivered attempt.
pub const DELIVERY_LATENCY: &str = "ferry_delivery_latency_seconds";
/// Age of the oldest delivery that is due and not yet attempted: waiting in
/// the store, or leased by a worker and held behind its destination's busy
/// slots (destinations that are paused or disabled left out); 0 when none
/// waits.
pub const QUEUE_LAG: &str = "ferry_queue_lag_seconds";
/// Destinations by `kind` and `state` (`healthy`, `paused`, `disabled`).
pub const DESTINATIONS: &str = "ferry_destinations";
/// Alert events sent to organizations' alert destinations, by `type`.
pub const ALERTS: &str = "ferry_alerts_total";
/// Performance warnings in force: `type` `destination_slow` (how many
/// destinations' p99 attempt latency passes their threshold) or
/// `queue_lagging` (1 while the queue lags).
pub const WARNINGS: &str = "ferry_warnings";
/// Exports that ended, by `source` and `status` (`succeeded`, `failed`,
/// `cancelled`).
pub const EXPORTS: &str = "ferry_exports_total";
/// Store writes that failed for lack of storage, by `operation` (ingest,
/// claim, lease, complete, renew, release, reclaim, readiness_probe) and
/// `reason` (full, unavailable).
pub const STORE_WRITE_ERRORS: &str = "ferry_store_write_errors_total";

/// One destination's delivery series, registered once when the dispatcher
/// first meets it: an attempt then updates its handles without building a
/// key or looking the series up.
#[derive(Clone)]
pub struct DeliverySeries {
    pub attempt_duration: metrics::Histogram,
    pub delivery_latency: metrics::Histogram,
    pub delivered: metrics::Counter,
    pub retryable: metrics::Counter,
    pub permanent: metrics::Counter,
}

impl DeliverySeries {
    /// Labelled with `kind`, and with the destination's id when
    /// `per_destination` (`metrics.per_destination`).
    pub fn new(kind: &'static str, destination: &str, per_destination: bool) -> Self {
        let mut labels = vec![metrics::Label::new("kind", kind)];
        if per_destination {
            labels.push(metrics::Label::new("destination", destination.to_owned()));
        }
        let outcome = |o: &'static str| {
            let mut l = labels.clone();
            l.push(metrics::Label::new("outcome", o));
            metrics::counter!(DELIVERIES, l)
        };
        Self {
            attempt_duration: metrics::histogram!(ATTEMPT_DURATION, labels.clone()),
            delivery_latency: metrics::histogram!(DELIVERY_LATENCY, labels.clone()),
            delivered: outcome("delivered"),
            retryable: outcome("retryable"),
            permanent: outcome("permanent"),
        }
    }
}

/// Counters of rare things start at zero rather than appear with their
/// first increment, so that `rate()` and alert rules over them work from
/// the start (an absent series is not a zero one).
fn zero_series() {
    for outcome in ["accepted", "duplicate", "unavailable"] {
        metrics::counter!(INGEST_EVENTS, "outcome" => outcome).increment(0);
    }
    for operation in crate::store_health::Operation::ALL {
        for reason in ["full", "unavailable"] {
            metrics::counter!(STORE_WRITE_ERRORS, "operation" => operation.label(), "reason" => reason)
                .increment(0);
        }
    }
    let breaker = crate::dispatch::alerts::AlertKind::ALL.map(|k| k.event_type());
    for alert in breaker.into_iter().chain([
        crate::app::exports::EXPORT_FAILED,
        crate::dispatch::alerts::QUEUE_LAGGING,
    ]) {
        metrics::counter!(ALERTS, "type" => alert).increment(0);
    }
    for warning in ["destination_slow", "queue_lagging"] {
        metrics::gauge!(WARNINGS, "type" => warning).set(0.0);
    }
}

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0];

/// The process-wide Prometheus recorder (installed once, shared by every
/// server in the process).
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(COMMIT_BATCH.into()), BATCH_BUCKETS)
                });
            let recorder = match builder {
                Ok(b) => b.build_recorder(),
                // Invariant: the bucket lists above are non-empty.
                Err(_) => PrometheusBuilder::new().build_recorder(),
            };
            let handle = recorder.handle();
            // Another recorder may already be installed (an embedding
            // application's); our handle then renders only what we record
            // through it, which is acceptable.
            let _ = metrics::set_global_recorder(recorder);
            zero_series();
            handle
        })
        .clone()
}
