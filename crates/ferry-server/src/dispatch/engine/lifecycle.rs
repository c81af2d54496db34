//! Keeping state visible and stopping well: health flushes, queue-depth
//! gauges, and the graceful stop that finishes or releases in-flight work.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::Utc;
use ferry_core::delivery::DeliveryStatus;
use ferry_core::destination::Health;
use ferry_core::{DeliveryId, DestinationId};
use serde_json::json;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::super::alerts::{Alert, AlertKind, QueueLagging};
use super::super::failing::may_announce;
use super::Engine;
use crate::metrics as m;

impl Engine {
    pub(super) async fn flush_health(&mut self) {
        if self.health_dirty.is_empty() {
            return;
        }
        let updates: Vec<(DestinationId, Health)> = self
            .health_dirty
            .drain()
            .filter_map(|id| self.dests.get(&id).map(|d| (id, d.health.clone())))
            .collect();
        {
            let mut view = self.health_view.write().unwrap_or_else(|e| e.into_inner());
            for (id, h) in &updates {
                view.insert(id.clone(), h.clone());
            }
        }
        // Release deliveries waiting behind a destination that became blocked.
        let mut release = Vec::new();
        for d in self.dests.values_mut() {
            if d.blocked() && !d.waiting.is_empty() {
                release.extend(d.waiting.drain(..).map(|(l, _)| l.delivery.id));
            }
        }
        if !release.is_empty() {
            self.leased = self.leased.saturating_sub(release.len());
            if let Err(error) = self.queue.release(&release, &self.owner).await {
                warn!(%error, "Releasing waiting deliveries failed; their leases will expire.");
            }
        }
        if let Err(error) = self.store.save_health(&updates).await {
            warn!(%error, "Saving destination health failed; will retry.");
            self.health_dirty
                .extend(updates.into_iter().map(|(id, _)| id));
        }
    }

    /// Reports the deliveries that went to the dead-letter queue: one
    /// report per destination per debounce window, with how many.
    pub(super) fn report_exhausted(&mut self) {
        let now = Utc::now();
        for d in self.dests.values_mut() {
            let Some((count, since)) = d.exhausted else {
                continue;
            };
            if !may_announce(d.exhausted_reported_at, now, d.policy.debounce_s) {
                continue;
            }
            d.exhausted = None;
            d.exhausted_reported_at = Some(now);
            let alert = Alert::new(AlertKind::Exhausted, d.dest.clone(), d.health.clone())
                .at(now)
                .detail(json!({"count": count, "since": since}));
            self.alerts.raise(alert);
        }
    }

    /// Performance warnings: destinations whose p99 attempt latency passes
    /// their threshold, and a queue lag past `lagging_after_s`.
    fn warn_of_slowness(&mut self, lag_s: Option<f64>) {
        let now = Utc::now();
        let clock = Instant::now();
        let mut slow = 0;
        for d in self.dests.values_mut() {
            let p99 = d.latency.p99(clock);
            let threshold = d.policy.slow_after_ms;
            let holds = p99.is_some_and(|ms| ms > threshold) && d.dest.enabled;
            if d.slow.update(holds, now, d.policy.debounce_s) {
                warn!(destination_id = %d.dest.id, p99_ms = p99, threshold_ms = threshold, "Destination is slow.");
                let alert = Alert::new(AlertKind::Slow, d.dest.clone(), d.health.clone())
                    .at(now)
                    .detail(json!({"p99_ms": p99, "threshold_ms": threshold}));
                self.alerts.raise(alert);
            }
            slow += usize::from(d.slow.active());
        }
        metrics::gauge!(m::WARNINGS, "type" => "destination_slow").set(slow as f64);
        let Some(lag_s) = lag_s else {
            return;
        };
        let threshold_s = self.cfg.lagging_after_s;
        // The queue is shared: a debounce of the default hour.
        if self.lagging.update(
            lag_s > threshold_s as f64,
            now,
            ferry_core::alerting::DEFAULT_DEBOUNCE_S,
        ) {
            warn!(
                lag_s,
                threshold_s, "The queue lags: the oldest due delivery has waited too long."
            );
            self.alerts.raise_lagging(QueueLagging {
                lag_s,
                threshold_s,
                at: now,
            });
        }
        let lagging = f64::from(u8::from(self.lagging.active()));
        metrics::gauge!(m::WARNINGS, "type" => "queue_lagging").set(lagging);
    }

    /// The gauges read from the store and the dispatcher's view: queue
    /// depth by status, queue lag, destinations by state.
    pub(super) async fn record_depth(&mut self) {
        if let Ok(counts) = self.store.delivery_counts().await {
            for status in DeliveryStatus::ALL {
                let n = counts
                    .iter()
                    .find(|(s, _)| *s == status)
                    .map_or(0, |(_, n)| *n);
                metrics::gauge!(m::QUEUE_DEPTH, "status" => status.as_str()).set(n as f64);
            }
        }
        // Deliveries of a paused or disabled destination wait on purpose:
        // they are not lag.
        let blocked: Vec<DestinationId> = self
            .dests
            .iter()
            .filter(|(_, d)| d.blocked())
            .map(|(id, _)| id.clone())
            .collect();
        // Deliveries this worker leased but holds behind a destination's
        // busy slots are due and waiting too.
        let held = self
            .dests
            .values()
            .filter(|d| !d.blocked())
            .filter_map(|d| d.waiting.front())
            .filter_map(|(l, _)| l.delivery.next_attempt_at)
            .min();
        let lag = match self.queue.next_due_at(&blocked).await {
            Ok(due) => {
                let oldest = due.into_iter().chain(held).min();
                let lag = oldest.map_or(0.0, |at| {
                    (Utc::now() - at).num_milliseconds().max(0) as f64 / 1000.0
                });
                metrics::gauge!(m::QUEUE_LAG).set(lag);
                Some(lag)
            }
            Err(_) => None,
        };
        self.warn_of_slowness(lag);
        let mut states: BTreeMap<(&'static str, &'static str), usize> = BTreeMap::new();
        for d in self.dests.values() {
            let state = if !d.dest.enabled {
                "disabled"
            } else if d.paused() {
                "paused"
            } else {
                "healthy"
            };
            for s in ["healthy", "paused", "disabled"] {
                states.entry((d.dest.kind.as_str(), s)).or_default();
            }
            *states.entry((d.dest.kind.as_str(), state)).or_default() += 1;
        }
        for ((kind, state), n) in states {
            metrics::gauge!(m::DESTINATIONS, "kind" => kind, "state" => state).set(n as f64);
        }
    }

    /// Graceful stop: no new leases; in-flight attempts get the grace
    /// period; whatever is left is released for the next run.
    pub(super) async fn stop(mut self, writer: JoinHandle<()>) {
        let grace = Duration::from_millis(self.grace_ms.load(Ordering::SeqCst));
        let deadline = tokio::time::Instant::now() + grace;
        let mut release: Vec<DeliveryId> = Vec::new();
        for d in self.dests.values_mut() {
            release.extend(d.waiting.drain(..).map(|(l, _)| l.delivery.id));
        }
        match tokio::time::timeout_at(deadline, self.finish_poll()).await {
            Ok(leased) => release.extend(leased.into_iter().map(|l| l.delivery.id)),
            // Its leases, if it takes any, expire.
            Err(_) => self.polls.abort_all(),
        }
        info!(
            in_flight = self.tasks.len(),
            "Dispatcher stopping; waiting for in-flight deliveries."
        );
        while !self.tasks.is_empty() {
            tokio::select! {
                Some(joined) = self.tasks.join_next_with_id() => self.joined(joined).await,
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        self.tasks.abort_all();
        release.extend(self.task_ids.drain().map(|(_, (id, _))| id));
        if !release.is_empty() {
            match self.queue.release(&release, &self.owner).await {
                Ok(n) => info!(
                    deliveries = n,
                    "Released unfinished deliveries for the next run."
                ),
                Err(error) => {
                    warn!(%error, "Releasing deliveries failed; they are taken back at the next start.")
                }
            }
        }
        self.completions = None;
        if tokio::time::timeout(grace, writer).await.is_err() {
            warn!(
                "Attempt records were not all written; those deliveries will be attempted again."
            );
        }
        self.flush_health().await;
        info!("Dispatcher stopped.");
    }
}
