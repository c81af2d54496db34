//! Leasing due deliveries from the store. A poll runs as a task of its own
//! while the loop goes on finishing attempts: the lease waits its turn on
//! the store's writer and the events are then read, and meanwhile finished
//! attempts keep flowing to the completion writer instead of waiting behind
//! the poll. At most one poll runs; the slots it may fill are reserved.

use std::collections::HashSet;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use ferry_core::DestinationId;
use ferry_core::delivery::Leased;
use ferry_core::error::StoreResult;
use opentelemetry::KeyValue;
use tokio::task::JoinError;
use tracing::{debug, warn};

use super::Engine;
use crate::dispatch::breaker::Breaker;

/// Most deliveries leased by one poll.
const LEASE_CHUNK: usize = 512;

/// What a poll brings back.
pub(super) struct Polled {
    /// The slots reserved for it.
    limit: usize,
    leased: StoreResult<Vec<Leased>>,
    /// When the next waiting delivery is due, asked only when the poll
    /// found fewer than it could take.
    next_due: Option<DateTime<Utc>>,
    /// The destinations it left out.
    exclude: Vec<DestinationId>,
}

impl Engine {
    /// Polling for a single free slot at a time would query the store once
    /// per completion under load; wait for a useful number of free slots.
    /// A quarter of the limit, up to 256: each lease and each completion
    /// batch is one transaction on the store's writer, whose fixed cost a
    /// larger batch shares (draining a backlog to Redis went from about
    /// 8,700 to 10,200 deliveries/s against batches of 64).
    pub(super) fn worth_polling(&self) -> bool {
        if !self.polls.is_empty() {
            return false;
        }
        let min_batch = (self.cfg.max_in_flight / 4).clamp(1, 256);
        let now = Utc::now();
        let probe_ready = self
            .dests
            .values()
            .any(|d| d.probe_candidate() && Breaker::probe_due(&d.health, now));
        self.backlog && (self.free() >= min_batch || self.tasks.is_empty() || probe_ready)
    }

    /// Starts due probes, then a poll for as many due deliveries as there
    /// are free slots, skipping blocked and saturated destinations.
    pub(super) async fn start_poll(&mut self) {
        self.backlog = false;
        self.start_probes().await;
        let free = self.free();
        if free == 0 {
            self.backlog = true;
            return;
        }
        let limit = free.min(LEASE_CHUNK);
        let mut exclude: Vec<DestinationId> = Vec::new();
        for (id, d) in &mut self.dests {
            if d.blocked() || d.saturated() {
                d.more = true;
                exclude.push(id.clone());
            }
        }
        let queue = self.queue.clone();
        let lease = self.lease();
        self.reserved = limit;
        // Retries scheduled from now on are folded into the poll's answer.
        self.wake_at = None;
        let traces = self.traces.clone();
        self.polls.spawn(async move {
            let started = traces.enabled().then(SystemTime::now);
            let leased = queue.lease_due(limit as u32, &lease, &exclude).await;
            if let Ok(l) = &leased
                && !l.is_empty()
            {
                // Linked to the traces of the events it leased.
                traces.batch_span_from(
                    "ferry.lease",
                    started,
                    l.iter().filter_map(|l| l.event.trace.as_ref()),
                    || {
                        [
                            KeyValue::new("ferry.lease.limit", limit as i64),
                            KeyValue::new("ferry.deliveries", l.len() as i64),
                        ]
                    },
                );
            }
            let next_due = match &leased {
                Ok(leased) if leased.len() < limit => {
                    // On an error the regular poll interval applies.
                    queue.next_due_at(&exclude).await.unwrap_or_default()
                }
                _ => None,
            };
            Polled {
                limit,
                leased,
                next_due,
                exclude,
            }
        });
    }

    /// Takes a poll's deliveries: starts those whose destination can take
    /// them and gives the others back.
    pub(super) async fn polled(&mut self, polled: Result<Polled, JoinError>) {
        self.reserved = 0;
        let polled = match polled {
            Ok(polled) => polled,
            Err(error) => {
                // Whatever it leased comes back when the leases expire.
                warn!(%error, "Polling for due deliveries failed; will poll again.");
                return;
            }
        };
        let leased = match polled.leased {
            Ok(leased) => leased,
            Err(error) => {
                warn!(%error, "Leasing due deliveries failed; will poll again.");
                return;
            }
        };
        let full = leased.len() >= polled.limit;
        if !full {
            // It took every due delivery of the destinations it looked at.
            let left_out: HashSet<&DestinationId> = polled.exclude.iter().collect();
            for (id, d) in &mut self.dests {
                if !left_out.contains(id) {
                    d.more = false;
                }
            }
        }
        let mut release = Vec::new();
        for l in leased {
            let id = l.delivery.destination_id.clone();
            if !self.ensure_dest(&id).await {
                release.push(l.delivery.id);
                continue;
            }
            if let Some(d) = self.dests.get_mut(&id)
                && d.blocked()
            {
                d.more = true;
                release.push(l.delivery.id);
                continue;
            }
            self.start(l, false);
        }
        if !release.is_empty()
            && let Err(error) = self.queue.release(&release, &self.owner).await
        {
            warn!(%error, "Releasing deliveries of a blocked destination failed; their leases will expire.");
        }
        if full {
            self.backlog = true;
            self.wake_at = None;
        } else if let Some(due) = polled.next_due {
            self.wake_at = Some(self.wake_at.map_or(due, |w| w.min(due)));
        }
    }

    /// Waits for the poll in progress, if any, and returns what it leased
    /// (the graceful stop gives it back).
    pub(super) async fn finish_poll(&mut self) -> Vec<Leased> {
        self.reserved = 0;
        match self.polls.join_next().await {
            Some(Ok(Polled {
                leased: Ok(leased), ..
            })) => leased,
            _ => Vec::new(),
        }
    }

    async fn start_probes(&mut self) {
        let now = Utc::now();
        let due: Vec<DestinationId> = self
            .dests
            .iter()
            .filter(|(_, d)| d.probe_candidate() && Breaker::probe_due(&d.health, now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            match self.queue.lease_destination(&id, 1, &self.lease()).await {
                Ok(mut leased) if !leased.is_empty() => {
                    if let Some(d) = self.dests.get_mut(&id) {
                        d.probing = true;
                    }
                    debug!(destination_id = %id, "Probing paused destination.");
                    self.start(leased.remove(0), true);
                }
                Ok(_) => {
                    // Nothing waits for it: resume, the next delivery tells.
                    if let Some(d) = self.dests.get_mut(&id) {
                        d.health.next_probe_at = None;
                        d.health.probe_backoff_ms = 0;
                        d.health.consecutive_failures = 0;
                        self.health_dirty.insert(id);
                    }
                }
                Err(error) => {
                    warn!(destination_id = %id, %error, "Leasing a probe failed; trying later.");
                    if let Some(d) = self.dests.get_mut(&id) {
                        d.health.next_probe_at = Some(
                            now + chrono::Duration::milliseconds(
                                self.breaker.probe_initial_ms as i64,
                            ),
                        );
                    }
                }
            }
        }
    }
}
