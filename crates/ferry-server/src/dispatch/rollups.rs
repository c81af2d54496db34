//! Delivery metrics off the hot path: the completion writer hands each
//! batch it recorded to a [`Recorder`], which only adds it to per-minute
//! rollups in memory (a short lock, no I/O); a flush task writes them to
//! the store every `metrics.flush_secs` and once more at shutdown. A flush
//! that fails keeps its rollups for the next one (merged with what came
//! meanwhile), so deliveries never wait for metrics. Memory is bounded: at
//! most `MAX_PENDING` (destination, minute) rollups wait; while the store
//! stays down beyond that, the oldest minutes are dropped (with a warning)
//! — metrics are bookkeeping, and the deliveries themselves are safe in
//! the store. A crash loses at most the unflushed interval.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ferry_core::DestinationId;
use ferry_core::metrics::{AttemptEnd, Bucket, MetricsRetention, Rollup};
use ferry_core::ports::{Completion, MetricsStore, Settled};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Most (destination, minute) rollups held while the store cannot take
/// them: a day of minutes for about 70 destinations.
const MAX_PENDING: usize = 100_000;

/// How often rollups past their retention are folded and deleted.
const COMPACT_EVERY: Duration = Duration::from_secs(300);

type Key = (DateTime<Utc>, DestinationId);

/// Gathers completions into per-minute rollups. Cheap to clone.
#[derive(Clone, Default)]
pub struct Recorder {
    pending: Arc<Mutex<BTreeMap<Key, Rollup>>>,
}

impl Recorder {
    /// Counts attempts the store has recorded.
    pub fn record(&self, batch: &[Completion]) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        for c in batch {
            let ended = c.attempt.started_at
                + chrono::Duration::milliseconds(
                    i64::try_from(c.attempt.duration_ms).unwrap_or(i64::MAX),
                );
            let end = match &c.settled {
                Settled::Delivered => AttemptEnd::Delivered {
                    end_to_end_ms: u64::try_from((ended - c.accepted_at).num_milliseconds())
                        .unwrap_or(0),
                },
                Settled::Retry { .. } => AttemptEnd::Retried,
                Settled::Dead { .. } => AttemptEnd::Dead,
            };
            let start = Bucket::Minute.start_of(c.attempt.started_at);
            pending
                .entry((start, c.destination_id.clone()))
                .or_insert_with(|| {
                    Rollup::empty(
                        c.org_id.clone(),
                        c.destination_id.clone(),
                        Bucket::Minute,
                        start,
                    )
                })
                .record(c.attempt.duration_ms, end);
        }
        bound(&mut pending);
    }

    fn take(&self) -> Vec<Rollup> {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut *pending).into_values().collect()
    }

    /// Puts back rollups a flush could not write.
    fn restore(&self, rows: Vec<Rollup>) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        for row in rows {
            let key = (row.start, row.destination_id.clone());
            match pending.get_mut(&key) {
                Some(newer) => newer.merge(&row),
                None => {
                    pending.insert(key, row);
                }
            }
        }
        bound(&mut pending);
    }

    /// Writes what was gathered; on failure keeps it for the next time.
    pub async fn flush(&self, store: &dyn MetricsStore) {
        let rows = self.take();
        if rows.is_empty() {
            return;
        }
        if let Err(error) = store.add_rollups(&rows).await {
            warn!(%error, rollups = rows.len(), "Writing delivery metrics failed; retrying with the next flush.");
            self.restore(rows);
        }
    }
}

/// Drops the oldest minutes beyond `MAX_PENDING`.
fn bound(pending: &mut BTreeMap<Key, Rollup>) {
    let mut dropped = 0u64;
    while pending.len() > MAX_PENDING {
        if let Some((_, row)) = pending.pop_first() {
            dropped += row.attempts;
        }
    }
    if dropped > 0 {
        warn!(
            attempts = dropped,
            "Delivery metrics waited too long for the store; the oldest minutes were dropped."
        );
    }
}

/// Flushes `recorder` every `every` until `stop`, then once more.
pub fn spawn_flush(
    recorder: Recorder,
    store: Arc<dyn MetricsStore>,
    every: Duration,
    stop: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let stopping = tokio::select! {
                () = stop.cancelled() => true,
                () = tokio::time::sleep(every) => false,
            };
            recorder.flush(store.as_ref()).await;
            if stopping {
                break;
            }
        }
    })
}

/// Folds and deletes rollups past their retention, at start and every few
/// minutes (every process may: each row is folded once).
pub fn spawn_compaction(
    store: Arc<dyn MetricsStore>,
    retention: MetricsRetention,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        loop {
            match store.compact_rollups(Utc::now(), &retention).await {
                Ok(0) => {}
                Ok(n) => info!(rollups = n, "Compacted delivery metrics."),
                Err(error) => warn!(%error, "Compacting delivery metrics failed."),
            }
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(COMPACT_EVERY) => {}
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use ferry_core::audit::AuditRecord;
    use ferry_core::delivery::{Attempt, AttemptOutcome};
    use ferry_core::ids::{DeliveryId, DestinationId, OrgId};

    use super::*;

    fn completion(
        org: &OrgId,
        destination: &DestinationId,
        started_at: DateTime<Utc>,
        duration_ms: u64,
        settled: Settled,
    ) -> Completion {
        let delivery_id = DeliveryId::generate();
        Completion {
            delivery_id: delivery_id.clone(),
            org_id: org.clone(),
            destination_id: destination.clone(),
            owner: "w".into(),
            accepted_at: started_at - chrono::Duration::milliseconds(500),
            attempt: Attempt {
                delivery_id,
                number: 1,
                started_at,
                duration_ms,
                outcome: AttemptOutcome::Delivered,
                status_code: Some(200),
                error: None,
                request: None,
                response: None,
                receipt: None,
            },
            settled,
            audit: AuditRecord::new(org.clone(), "system", "delivery", "dlv", "x"),
        }
    }

    #[test]
    fn completions_count_per_destination_and_minute_and_survive_a_failed_flush() {
        let org = OrgId::generate();
        let (a, b) = (DestinationId::generate(), DestinationId::generate());
        let t = Bucket::Minute.start_of(Utc::now()) + chrono::Duration::seconds(5);
        let recorder = Recorder::default();
        let dead = Settled::Dead {
            error: "HTTP 400".into(),
        };
        recorder.record(&[
            completion(&org, &a, t, 40, Settled::Delivered),
            completion(&org, &a, t, 60, dead.clone()),
            completion(&org, &b, t, 5, Settled::Delivered),
            completion(&org, &a, t + chrono::Duration::minutes(1), 5, dead),
        ]);
        let rows = recorder.take();
        assert_eq!(rows.len(), 3);
        let first_a = rows
            .iter()
            .find(|r| r.destination_id == a && r.start == Bucket::Minute.start_of(t))
            .unwrap();
        assert_eq!(
            (first_a.attempts, first_a.delivered, first_a.dead),
            (2, 1, 1)
        );
        // Accepted 500 ms before the attempt started, which took 40 ms.
        assert!((540..=650).contains(&first_a.end_to_end.quantile(0.5).unwrap()));
        // A failed flush puts its rows back, merged with what came meanwhile.
        recorder.record(&[completion(&org, &b, t, 5, Settled::Delivered)]);
        recorder.restore(rows);
        let again = recorder.take();
        assert_eq!(again.len(), 3);
        assert_eq!(again.iter().map(|r| r.attempts).sum::<u64>(), 5);
        assert!(recorder.take().is_empty());
    }

    #[test]
    fn the_oldest_minutes_go_first_when_too_many_wait() {
        let org = OrgId::generate();
        let d = DestinationId::generate();
        let mut pending = BTreeMap::new();
        let t = Bucket::Minute.start_of(Utc::now());
        for i in 0..=MAX_PENDING as i64 {
            let start = t + chrono::Duration::minutes(i);
            let row = Rollup::empty(org.clone(), d.clone(), Bucket::Minute, start);
            pending.insert((start, d.clone()), row);
        }
        bound(&mut pending);
        assert_eq!(pending.len(), MAX_PENDING);
        assert_eq!(
            pending.keys().next().unwrap().0,
            t + chrono::Duration::minutes(1)
        );
    }
}
