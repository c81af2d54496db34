//! The dispatcher's event loop. One task owns all dispatch state (no locks):
//! it takes handoffs, polls for due deliveries, starts attempts as tasks,
//! and turns their results into completions for the batch writer.
//! Attempts (starting, finishing, per-destination slots) live in
//! `attempts`; leasing due deliveries in `poll`; health flushing and the
//! graceful stop in `lifecycle`.

mod attempts;
mod lifecycle;
mod poll;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ferry_core::alerting::{AlertPolicy, AlertSettings};
use ferry_core::delivery::{DeliveryStatus, Leased};
use ferry_core::destination::{Destination, Health};
use ferry_core::ports::{AttemptReport, Deliverer, Lease, Queue, Reclaim, Store};
use ferry_core::{DeliveryId, DestinationId, OrgId};
use ferry_destinations::Catalog;
use tokio::sync::{Notify, mpsc};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::alerts::AlertSender;
use super::breaker::Breaker;
use super::failing::RecentOutcomes;
use super::warnings::{RecentLatency, Warning};
use super::{Control, DispatchHandle, HANDOFF_CAPACITY, Handoff, completions};
use crate::config::DispatchConfig;
use crate::traces::Traces;

const HEALTH_FLUSH: Duration = Duration::from_secs(1);
const RECLAIM_EVERY: Duration = Duration::from_secs(30);
const DEPTH_EVERY: Duration = Duration::from_secs(5);
/// How often destinations are read again: changes made through another
/// process (scale-out) reach this dispatcher within this time.
const DEST_REFRESH: Duration = Duration::from_secs(5);

pub struct DispatcherParts {
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn Queue>,
    pub catalog: Arc<Catalog>,
    pub config: DispatchConfig,
    /// This process is the only one using the store (embedded SQLite): at
    /// start every lease not ours is taken back at once.
    pub exclusive: bool,
    /// Where breaker transitions are reported.
    pub alerts: AlertSender,
    /// Where recorded attempts are counted (delivery metrics).
    pub metrics: crate::dispatch::rollups::Recorder,
    /// Spans of attempts, leases and completion batches.
    pub traces: Traces,
    /// Label delivery metrics with the destination's id too.
    pub per_destination_metrics: bool,
}

pub struct Dispatcher;

impl Dispatcher {
    /// Starts the dispatcher; it stops gracefully when `shutdown` fires.
    pub fn spawn(
        parts: DispatcherParts,
        shutdown: CancellationToken,
    ) -> (DispatchHandle, JoinHandle<()>) {
        let (handoff_tx, handoff_rx) = mpsc::channel(HANDOFF_CAPACITY);
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        let wake = Arc::new(Notify::new());
        let health = Arc::new(RwLock::new(HashMap::new()));
        let grace_ms = Arc::new(AtomicU64::new(parts.config.shutdown_grace_ms));
        let handle = DispatchHandle {
            handoff: Some(handoff_tx),
            control: Some(control_tx),
            wake: wake.clone(),
            health: health.clone(),
            grace_ms: grace_ms.clone(),
        };
        let (completions, writer) = completions::spawn(
            parts.queue.clone(),
            parts.config.completion_batch,
            parts.metrics.clone(),
            parts.traces.clone(),
        );
        // A lease owner unique to this dispatcher run.
        let owner = format!("w_{}", ferry_core::ids::unique_token());
        let engine = Engine {
            breaker: Breaker {
                threshold: parts.config.breaker_threshold,
                probe_initial_ms: parts.config.probe_initial_ms,
                probe_max_ms: parts.config.probe_max_ms,
            },
            store: parts.store,
            queue: parts.queue,
            catalog: parts.catalog,
            cfg: parts.config,
            exclusive: parts.exclusive,
            owner,
            dests: HashMap::new(),
            tasks: JoinSet::new(),
            task_ids: HashMap::new(),
            polls: JoinSet::new(),
            leased: 0,
            reserved: 0,
            completions: Some(completions),
            wake_at: None,
            backlog: true,
            health_dirty: HashSet::new(),
            health_view: health,
            grace_ms,
            alerts: parts.alerts,
            orgs: HashMap::new(),
            lagging: Warning::default(),
            traces: parts.traces,
            per_destination_metrics: parts.per_destination_metrics,
        };
        let task = tokio::spawn(engine.run(handoff_rx, control_rx, wake, shutdown, writer));
        (handle, task)
    }
}

struct Dest {
    dest: Arc<Destination>,
    /// Its delivery metrics' handles.
    series: crate::metrics::DeliverySeries,
    deliverer: Result<Arc<dyn Deliverer>, String>,
    active: u32,
    waiting: VecDeque<(Leased, bool)>,
    probing: bool,
    health: Health,
    stale: bool,
    /// The alert policy in force: its own settings over its organization's.
    policy: AlertPolicy,
    /// Outcomes of its recent attempts, for the failure rate.
    recent: RecentOutcomes,
    /// Dead deliveries not yet reported (how many, since when), and when
    /// the last report went.
    exhausted: Option<(u64, DateTime<Utc>)>,
    exhausted_reported_at: Option<DateTime<Utc>>,
    /// Durations of its recent attempts, and whether that is slow.
    latency: RecentLatency,
    slow: Warning,
    /// The store may hold due deliveries of this destination that no poll
    /// has looked for: it was left out of a poll (blocked, or with a full
    /// queue behind its slots). A destination in this state asks for a poll
    /// as soon as its queue runs low, so a backlog drains at the pace of its
    /// own slots instead of one lease chunk per poll interval.
    more: bool,
}

impl Dest {
    fn paused(&self) -> bool {
        Breaker::is_paused(&self.health)
    }

    fn blocked(&self) -> bool {
        !self.dest.enabled || self.paused()
    }

    fn probe_candidate(&self) -> bool {
        self.dest.enabled && !self.probing && self.active == 0 && self.paused()
    }

    /// Enough is leased to keep every slot busy while a poll for more
    /// runs: a full window of deliveries waits behind the busy slots.
    fn saturated(&self) -> bool {
        self.waiting.len() >= self.dest.max_in_flight as usize
    }

    /// Left out of a poll, and now short of work: its queue is below a
    /// full window, so its slots would soon idle.
    fn runs_low(&self) -> bool {
        self.more && !self.blocked() && !self.saturated()
    }
}

struct Finished {
    leased: Leased,
    report: AttemptReport,
    started_at: DateTime<Utc>,
    duration_ms: u64,
    probe: bool,
}

struct Engine {
    store: Arc<dyn Store>,
    queue: Arc<dyn Queue>,
    catalog: Arc<Catalog>,
    cfg: DispatchConfig,
    breaker: Breaker,
    exclusive: bool,
    owner: String,
    dests: HashMap<DestinationId, Dest>,
    tasks: JoinSet<Finished>,
    task_ids: HashMap<tokio::task::Id, (DeliveryId, DestinationId)>,
    /// The poll in progress, if any (at most one).
    polls: JoinSet<poll::Polled>,
    /// Deliveries leased by us: in flight or waiting for a destination slot.
    leased: usize,
    /// Slots kept for the poll in progress.
    reserved: usize,
    completions: Option<mpsc::Sender<ferry_core::ports::Completion>>,
    /// The earliest retry we know of.
    wake_at: Option<DateTime<Utc>>,
    /// More due work may be waiting in the store than we took.
    backlog: bool,
    health_dirty: HashSet<DestinationId>,
    health_view: Arc<RwLock<HashMap<DestinationId, Health>>>,
    /// The stop's grace in ms: `shutdown_grace_ms`, or what the handle set.
    grace_ms: Arc<AtomicU64>,
    alerts: AlertSender,
    /// Whether the queue lags (`lagging_after_s`).
    lagging: Warning,
    /// Organizations' alert settings (stale ones are read again).
    orgs: HashMap<OrgId, (AlertSettings, bool)>,
    traces: Traces,
    per_destination_metrics: bool,
}

impl Engine {
    async fn run(
        mut self,
        mut handoffs: mpsc::Receiver<Vec<Handoff>>,
        mut control: mpsc::UnboundedReceiver<Control>,
        wake: Arc<Notify>,
        shutdown: CancellationToken,
        writer: JoinHandle<()>,
    ) {
        let which = if self.exclusive {
            Reclaim::NotOwnedBy(self.owner.clone())
        } else {
            Reclaim::ExpiredBefore(Utc::now())
        };
        match self.queue.reclaim(&which).await {
            Ok(0) => {}
            Ok(n) => info!(
                deliveries = n,
                "Took back deliveries leased by a previous run."
            ),
            Err(error) => warn!(%error, "Could not take back earlier leases; they will expire."),
        }
        let poll_every = Duration::from_millis(self.cfg.poll_interval_ms);
        let mut last_poll = Instant::now() - poll_every;
        let (mut last_flush, mut last_reclaim, mut last_depth) =
            (Instant::now(), Instant::now(), Instant::now() - DEPTH_EVERY);
        // Leases are short and renewed while held: a third of the lease
        // between renewals, and expired ones are looked for twice a lease.
        let lease = Duration::from_secs(self.cfg.lease_secs);
        let renew_every = lease / 3;
        let reclaim_every = (lease / 2).min(RECLAIM_EVERY);
        let mut last_renew = Instant::now();
        let mut last_refresh = Instant::now();
        loop {
            let deadline = self
                .next_deadline(last_poll + poll_every)
                .min(last_renew + renew_every);
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                Some(joined) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                    self.joined(joined).await;
                }
                Some(polled) = self.polls.join_next(), if !self.polls.is_empty() => {
                    self.polled(polled).await;
                }
                // A destination change applies before deliveries that were
                // committed after it (the order matters in a biased select).
                Some(msg) = control.recv() => self.control(msg).await,
                Some(batch) = handoffs.recv() => self.take_handoffs(batch).await,
                () = wake.notified() => self.backlog = true,
                () = tokio::time::sleep_until(deadline.into()) => {
                    last_poll = Instant::now();
                    self.backlog = true;
                    self.wake_at = None;
                }
            }
            if self.worth_polling() {
                self.start_poll().await;
            }
            if last_flush.elapsed() >= HEALTH_FLUSH {
                last_flush = Instant::now();
                self.report_exhausted();
                self.flush_health().await;
            }
            if last_renew.elapsed() >= renew_every {
                last_renew = Instant::now();
                self.renew_leases().await;
            }
            if last_reclaim.elapsed() >= reclaim_every {
                last_reclaim = Instant::now();
                if let Err(error) = self
                    .queue
                    .reclaim(&Reclaim::ExpiredBefore(Utc::now()))
                    .await
                {
                    warn!(%error, "Reclaiming expired leases failed.");
                }
            }
            if last_refresh.elapsed() >= DEST_REFRESH {
                last_refresh = Instant::now();
                for d in self.dests.values_mut() {
                    d.stale = true;
                }
                for org in self.orgs.values_mut() {
                    org.1 = true;
                }
            }
            if last_depth.elapsed() >= DEPTH_EVERY {
                last_depth = Instant::now();
                self.record_depth().await;
            }
        }
        self.stop(writer).await;
    }

    fn next_deadline(&self, poll_at: Instant) -> Instant {
        let retry_at = self.wake_at.map(|at| {
            let ms = (at - Utc::now()).num_milliseconds().max(0) as u64;
            Instant::now() + Duration::from_millis(ms)
        });
        let probe_at = self
            .dests
            .values()
            .filter(|d| d.probe_candidate())
            .filter_map(|d| d.health.next_probe_at)
            .min()
            .map(|at| {
                Instant::now()
                    + Duration::from_millis((at - Utc::now()).num_milliseconds().max(0) as u64)
            });
        [Some(poll_at), retry_at, probe_at]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(poll_at)
    }

    /// Extends the leases of everything this worker holds (in flight or
    /// waiting for a destination slot).
    async fn renew_leases(&mut self) {
        let mut held: Vec<DeliveryId> = self.task_ids.values().map(|(id, _)| id.clone()).collect();
        for d in self.dests.values() {
            held.extend(d.waiting.iter().map(|(l, _)| l.delivery.id.clone()));
        }
        if held.is_empty() {
            return;
        }
        if let Err(error) = self.queue.extend_leases(&held, &self.lease()).await {
            warn!(%error, held = held.len(), "Renewing leases failed; another worker may attempt them too.");
        }
    }

    fn lease(&self) -> Lease {
        let now = Utc::now();
        Lease {
            owner: self.owner.clone(),
            now,
            until: now + chrono::Duration::seconds(self.cfg.lease_secs as i64),
        }
    }

    fn free(&self) -> usize {
        self.cfg
            .max_in_flight
            .saturating_sub(self.leased + self.reserved)
    }

    /// Makes sure the destination is loaded and fresh; false if it is gone.
    async fn ensure_dest(&mut self, id: &DestinationId) -> bool {
        if self.dests.get(id).is_some_and(|d| !d.stale) {
            return true;
        }
        let loaded = match self.store.destination_by_id(id).await {
            Ok(found) => found,
            Err(error) => {
                warn!(destination_id = %id, %error, "Could not load destination.");
                return self.dests.contains_key(id);
            }
        };
        let Some(dest) = loaded else {
            if let Some(old) = self.dests.get_mut(id) {
                // Deleted: keep the entry until its attempts finish, blocked.
                let mut gone = (*old.dest).clone();
                gone.enabled = false;
                old.dest = Arc::new(gone);
                old.stale = false;
                return true;
            }
            return false;
        };
        let policy = dest
            .alerts
            .over(&self.org_alerts(&dest.org_id).await)
            .resolve();
        let deliverer = self.catalog.build(&dest);
        if let Err(error) = &deliverer {
            warn!(destination_id = %id, %error, "Destination cannot be built; its deliveries fail permanently.");
        }
        match self.dests.get_mut(id) {
            Some(existing) => {
                existing.dest = Arc::new(dest);
                existing.deliverer = deliverer;
                existing.policy = policy;
                existing.stale = false;
            }
            None => {
                let health = dest.health.clone();
                let series = crate::metrics::DeliverySeries::new(
                    dest.kind.as_str(),
                    id.as_str(),
                    self.per_destination_metrics,
                );
                self.dests.insert(
                    id.clone(),
                    Dest {
                        series,
                        dest: Arc::new(dest),
                        deliverer,
                        active: 0,
                        waiting: VecDeque::new(),
                        probing: false,
                        health,
                        stale: false,
                        policy,
                        recent: RecentOutcomes::default(),
                        exhausted: None,
                        exhausted_reported_at: None,
                        latency: RecentLatency::default(),
                        slow: Warning::default(),
                        more: true,
                    },
                );
            }
        }
        true
    }

    async fn control(&mut self, msg: Control) {
        match msg {
            Control::Reload { id, reset_health } => {
                if let Some(d) = self.dests.get_mut(&id) {
                    d.stale = true;
                    if reset_health {
                        d.health.reset_on_enable();
                        d.recent.clear();
                        self.health_dirty.insert(id.clone());
                    }
                    // Reload now: the next poll's exclusions depend on it.
                    self.ensure_dest(&id).await;
                    self.publish_health(&id);
                }
                self.backlog = true;
            }
        }
    }

    /// An organization's alert settings, read again once stale; the last
    /// known (or the defaults) while the store cannot be read.
    async fn org_alerts(&mut self, org: &OrgId) -> AlertSettings {
        if let Some((settings, false)) = self.orgs.get(org) {
            return settings.clone();
        }
        match self.store.get_org(org).await {
            Ok(found) => {
                let settings = found.map(|o| o.alerts).unwrap_or_default();
                self.orgs.insert(org.clone(), (settings.clone(), false));
                settings
            }
            Err(error) => {
                warn!(org_id = %org, %error, "Could not read the organization's alert settings.");
                self.orgs
                    .get(org)
                    .map(|(s, _)| s.clone())
                    .unwrap_or_default()
            }
        }
    }

    /// Makes the API's live view of a destination's health current.
    fn publish_health(&self, id: &DestinationId) {
        if let Some(d) = self.dests.get(id) {
            let mut view = self.health_view.write().unwrap_or_else(|e| e.into_inner());
            view.insert(id.clone(), d.health.clone());
        }
    }

    async fn take_handoffs(&mut self, batch: Vec<Handoff>) {
        let mut take: Vec<Handoff> = Vec::with_capacity(batch.len());
        for h in batch {
            if take.len() >= self.free() {
                self.backlog = true;
                continue;
            }
            if !self.ensure_dest(&h.delivery.destination_id).await {
                continue;
            }
            if self
                .dests
                .get(&h.delivery.destination_id)
                .is_some_and(Dest::blocked)
            {
                continue;
            }
            take.push(h);
        }
        if take.is_empty() {
            return;
        }
        let ids: Vec<DeliveryId> = take.iter().map(|h| h.delivery.id.clone()).collect();
        let claimed: HashSet<DeliveryId> = match self.queue.claim(&ids, &self.lease()).await {
            Ok(claimed) => claimed.into_iter().collect(),
            Err(error) => {
                warn!(%error, "Claiming handed-over deliveries failed; the poll will find them.");
                self.backlog = true;
                return;
            }
        };
        for h in take {
            if claimed.contains(&h.delivery.id) {
                let mut delivery = h.delivery;
                delivery.status = DeliveryStatus::Delivering;
                self.start(
                    Leased {
                        delivery,
                        event: h.event,
                    },
                    false,
                );
            }
        }
    }
}
