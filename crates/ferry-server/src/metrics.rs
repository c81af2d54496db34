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
/// Store writes that failed for lack of storage, by `operation` (ingest,
/// claim, lease, complete, renew, release, reclaim, readiness_probe) and
/// `reason` (full, unavailable).
pub const STORE_WRITE_ERRORS: &str = "ferry_store_write_errors_total";

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
            handle
        })
        .clone()
}
