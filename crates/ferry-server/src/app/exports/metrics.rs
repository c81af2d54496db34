//! What the `metrics` export reads, and the latency the `destinations`
//! export adds to each row: the delivery metrics rollups
//! (`ferry_core::metrics`), read in windows of time so that an export of
//! any range holds one window at a time. Coarser buckets are merged from
//! finer stored ones by the store, so recent minutes show up in hours and
//! days at once. Rollups reach the store every `metrics.flush_secs`.

use std::collections::HashMap;

use chrono::{Duration, Utc};
use ferry_core::destination::Destination;
use ferry_core::export::RecordFilter;
use ferry_core::ids::{DestinationId, OrgId};
use ferry_core::metrics::{Bucket, Histogram, MetricsQuery};
use tokio::sync::mpsc;

use super::rows::MetricRow;
use super::runner::Batch;
use crate::app::App;

/// The span of time one read covers, per bucket size.
fn window(bucket: Bucket) -> Duration {
    match bucket {
        Bucket::Minute => Duration::hours(6),
        Bucket::Hour => Duration::days(7),
        Bucket::Day => Duration::days(366),
    }
}

/// The bucket an export of metrics reads when its filter names none.
pub(super) const DEFAULT_BUCKET: Bucket = Bucket::Hour;

/// Sends the organization's metrics rows the filter takes, oldest first.
pub(super) async fn read(
    app: &App,
    org: &OrgId,
    filter: &RecordFilter,
    rows: &mpsc::Sender<Batch>,
) -> Result<(), String> {
    let failed = |e: ferry_core::StoreError| format!("reading the metrics failed: {e}");
    let bucket = filter.bucket.unwrap_or(DEFAULT_BUCKET);
    let since = match filter.since {
        Some(t) => t,
        None => match app.0.metrics.first_rollup_at(org).await.map_err(failed)? {
            Some(t) => t,
            None => return Ok(()),
        },
    };
    let now = Utc::now();
    let until = filter
        .until
        .unwrap_or_else(|| bucket.start_of(now) + bucket.duration());
    let destinations: HashMap<DestinationId, Destination> = app
        .0
        .store
        .org_destinations(org)
        .await
        .map_err(failed)?
        .into_iter()
        .map(|d| (d.id.clone(), d))
        .collect();
    let mut from = bucket.start_of(since);
    while from < until {
        let to = (from + window(bucket)).min(until);
        let query = MetricsQuery {
            bucket,
            since: from.max(since),
            until: to,
            destination_id: filter.destination_id.clone(),
        };
        let page: Vec<MetricRow> = app
            .0
            .metrics
            .rollups(org, &query)
            .await
            .map_err(failed)?
            .into_iter()
            .filter_map(|rollup| {
                let d = destinations.get(&rollup.destination_id);
                let kind = d.map(|d| d.kind.as_str());
                if let Some(wanted) = filter.kind.as_deref()
                    && kind != Some(wanted)
                {
                    return None;
                }
                Some(MetricRow {
                    name: d.map(|d| d.name.clone()),
                    kind,
                    rollup,
                })
            })
            .collect();
        if !page.is_empty() && rows.send(Batch::Metrics(page)).await.is_err() {
            return Ok(()); // the encoder stopped; the writer says why
        }
        from = to;
    }
    Ok(())
}

/// Each destination's attempt latency over the last 24 hours (in whole
/// hours: from the start of the hour 24 hours ago).
pub(super) async fn last_day_latency(
    app: &App,
    org: &OrgId,
) -> Result<HashMap<DestinationId, Histogram>, ferry_core::StoreError> {
    let now = Utc::now();
    let query = MetricsQuery {
        bucket: Bucket::Hour,
        since: now - Duration::hours(24),
        until: now + Duration::hours(1),
        destination_id: None,
    };
    let mut latency: HashMap<DestinationId, Histogram> = HashMap::new();
    for rollup in app.0.metrics.rollups(org, &query).await? {
        latency
            .entry(rollup.destination_id)
            .or_default()
            .merge(&rollup.attempt_latency);
    }
    Ok(latency)
}
