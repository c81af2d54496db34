//! The Redis Streams queue: deliveries due now are entries of one stream
//! read by every worker through one consumer group, delayed retries wait in
//! a sorted set until due, and dead deliveries are also written to a
//! dead-letter stream for operators to watch. PostgreSQL ([`PgStore`]) stays
//! the source of truth for every delivery's state; Redis only says who
//! works on what next.
//!
//! - A worker reads new entries with `XREADGROUP`, then leases their
//!   deliveries in PostgreSQL by id. An entry whose delivery cannot be
//!   leased (already delivered, leased by a live worker, not due) is
//!   acknowledged and dropped, so duplicate entries are harmless.
//! - Entries a crashed worker read but never acknowledged are taken over
//!   with `XAUTOCLAIM` once idle for longer than `claim_idle`, which must
//!   exceed the longest delivery timeout. A live worker renews its entries'
//!   idle time whenever it renews its leases.
//! - Entries of a destination that is paused or disabled are dropped (the
//!   reconciliation below gives its deliveries back once it can take them);
//!   those of a destination at its concurrency limit go back to the end of
//!   the stream, so that they never hold a worker's slots.
//! - Reconciliation (every lease reclaim): a missing consumer group is
//!   created again; a missing marker key (Redis lost its data: a restart
//!   without persistence, `FLUSHALL`) makes one worker enqueue every waiting
//!   delivery again; and whenever the stream has nothing left to read, due
//!   deliveries that nobody leased are enqueued again. Losing Redis data
//!   thus loses nothing and needs no operator.

mod streams;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ferry_core::StoreError;
use ferry_core::delivery::{Delivery, DeliveryStatus, Leased};
use ferry_core::error::StoreResult;
use ferry_core::ids::{DeliveryId, DestinationId};
use ferry_core::ports::{Completion, Lease, Queue, Reclaim, Settled};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tracing::{info, warn};

use self::streams::{Entry, Keys, Streams, is_no_group};
use crate::failure::Failure;
use crate::postgres::PgStore;
use crate::sql::queue::Waiting;

/// Most reads of the stream per lease, when entries of excluded
/// destinations take the place of others.
const READ_ROUNDS: usize = 8;
/// Most delayed retries moved to the stream per poll.
const MOVE_CHUNK: usize = 1_000;
/// Rows read per page when enqueuing waiting deliveries again.
const SWEEP_PAGE: u32 = 2_000;
/// Most stranded deliveries enqueued again per reconciliation.
const SWEEP_MAX: usize = 20_000;
/// Timeouts of every Redis command and connection attempt.
const REDIS_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings of a [`RedisQueue`].
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// Prefix of every key (several deployments can share one Redis).
    pub prefix: String,
    /// How long an entry read by a worker stays unacknowledged before
    /// another worker takes it over: must exceed the longest delivery
    /// timeout (the server refuses to start otherwise).
    pub claim_idle: Duration,
    /// Due deliveries nobody leased for this long, while the stream has
    /// nothing left to read, have lost their entries and are enqueued
    /// again. Longer than the time between a commit and its enqueue.
    pub stranded_after: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            prefix: "ferry".to_owned(),
            claim_idle: Duration::from_secs(330),
            stranded_after: Duration::from_secs(10),
        }
    }
}

/// The queue on Redis Streams, with its state in PostgreSQL. Cheap to clone.
#[derive(Clone)]
pub struct RedisQueue {
    inner: Arc<Inner>,
}

struct Inner {
    pg: PgStore,
    streams: Streams,
    claim_idle: Duration,
    stranded_after: chrono::Duration,
    /// Entries this process read and still works on, by delivery.
    held: Mutex<HashMap<DeliveryId, Vec<String>>>,
    /// Whether the last read found nothing left unread in the stream.
    drained: Mutex<bool>,
    /// When idle entries were last looked for.
    last_takeover: Mutex<Option<Instant>>,
}

/// A Redis failure in Ferry's words (`crate::failure`); Redis's text goes
/// to the log.
fn unavailable(error: redis::RedisError) -> StoreError {
    Failure::QueueUnavailable.into_error(&error)
}

/// `lease`, starting now unless it starts later.
fn started_by_now(lease: &Lease) -> Lease {
    let shift = (Utc::now() - lease.now).max(chrono::Duration::zero());
    Lease {
        owner: lease.owner.clone(),
        now: lease.now + shift,
        until: lease.until + shift,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RedisQueue {
    /// The consumer group every worker reads the stream through.
    pub const GROUP: &str = streams::GROUP;

    /// The stream of deliveries due now, under `prefix`.
    pub fn stream_key(prefix: &str) -> String {
        Keys::new(prefix).stream
    }

    /// Connects to Redis at `url` (`redis://` or `rediss://`) and creates
    /// the consumer group unless it exists. The connection reconnects by
    /// itself with backoff.
    pub async fn connect(url: &str, pg: PgStore, options: &RedisOptions) -> StoreResult<Self> {
        let client = redis::Client::open(url)
            .map_err(|e| StoreError::Unavailable(format!("redis: invalid queue URL: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_max_delay(Duration::from_secs(2))
            .set_number_of_retries(3);
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(unavailable)?;
        let streams = Streams::new(conn, Keys::new(&options.prefix));
        streams.ensure_group().await.map_err(unavailable)?;
        Ok(Self {
            inner: Arc::new(Inner {
                pg,
                streams,
                claim_idle: options.claim_idle,
                stranded_after: chrono::Duration::from_std(options.stranded_after)
                    .unwrap_or(chrono::Duration::MAX),
                held: Mutex::new(HashMap::new()),
                drained: Mutex::new(false),
                last_takeover: Mutex::new(None),
            }),
        })
    }

    /// Brings Redis in line with PostgreSQL (see the module doc); returns
    /// how many deliveries were enqueued again.
    pub async fn reconcile(&self) -> StoreResult<usize> {
        let streams = &self.inner.streams;
        if streams.ensure_group().await.map_err(unavailable)? {
            warn!("The Redis consumer group was missing; created it again.");
            streams.drop_marker().await.map_err(unavailable)?;
        }
        if streams.take_marker().await.map_err(unavailable)? {
            let n = self.enqueue_waiting(None, usize::MAX).await?;
            if n > 0 {
                info!(
                    deliveries = n,
                    "Redis held no queue data; enqueued every waiting delivery from PostgreSQL."
                );
            }
            return Ok(n);
        }
        let drained = std::mem::take(&mut *lock(&self.inner.drained));
        if !drained {
            return Ok(0);
        }
        let n = self
            .enqueue_waiting(Some(Utc::now() - self.inner.stranded_after), SWEEP_MAX)
            .await?;
        if n > 0 {
            warn!(
                deliveries = n,
                "Due deliveries had no Redis queue entry; enqueued them again."
            );
        }
        Ok(n)
    }

    /// Enqueues waiting deliveries (only those due before `due_before` when
    /// given), up to `max`: due ones to the stream, later ones to the
    /// delayed set.
    async fn enqueue_waiting(
        &self,
        due_before: Option<DateTime<Utc>>,
        max: usize,
    ) -> StoreResult<usize> {
        let mut after = 0;
        let mut total = 0;
        while total < max {
            let page = self.inner.pg.waiting(due_before, after, SWEEP_PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            total += page.len();
            self.add_waiting(&page).await?;
            if page.len() < SWEEP_PAGE as usize {
                break;
            }
        }
        Ok(total)
    }

    async fn add_waiting(&self, waiting: &[Waiting]) -> StoreResult<()> {
        let now = Utc::now();
        let (due, later): (Vec<&Waiting>, Vec<&Waiting>) =
            waiting.iter().partition(|w| w.due_at <= now);
        let streams = &self.inner.streams;
        let due: Vec<_> = due.iter().map(|w| (&w.id, &w.destination_id)).collect();
        streams.add(&due).await.map_err(unavailable)?;
        let later: Vec<_> = later
            .iter()
            .map(|w| (&w.id, &w.destination_id, w.due_at))
            .collect();
        streams.delay(&later).await.map_err(unavailable)
    }

    /// New entries for `consumer`, creating the consumer group again if it
    /// was deleted (and dropping the marker: the entries its pending list
    /// held are enqueued again by the next reconciliation).
    async fn read_new(&self, consumer: &str, count: usize) -> StoreResult<Vec<Entry>> {
        let streams = &self.inner.streams;
        let read = match streams.read_new(consumer, count).await {
            Err(error) if is_no_group(&error) => {
                warn!("The Redis consumer group is gone; creating it again.");
                streams.ensure_group().await.map_err(unavailable)?;
                streams.drop_marker().await.map_err(unavailable)?;
                streams.read_new(consumer, count).await
            }
            other => other,
        };
        let entries = read.map_err(unavailable)?;
        *lock(&self.inner.drained) = entries.len() < count;
        Ok(entries)
    }

    /// Entries idle for longer than `claim_idle`, looked for at most every
    /// tenth of that time.
    async fn take_over(&self, consumer: &str, count: usize) -> StoreResult<Vec<Entry>> {
        let every = self.inner.claim_idle / 10;
        {
            let mut last = lock(&self.inner.last_takeover);
            if last.is_some_and(|at| at.elapsed() < every) {
                return Ok(Vec::new());
            }
            *last = Some(Instant::now());
        }
        let idle_ms = u64::try_from(self.inner.claim_idle.as_millis()).unwrap_or(u64::MAX);
        let taken = self
            .inner
            .streams
            .claim_idle(consumer, idle_ms, count)
            .await;
        match taken {
            Err(error) if is_no_group(&error) => Ok(Vec::new()),
            other => other.map_err(unavailable),
        }
    }

    /// Sets aside the entries of excluded destinations: those of blocked
    /// destinations are dropped, the others go back to the end of the
    /// stream.
    async fn set_aside(&self, skipped: Vec<Entry>) -> StoreResult<()> {
        if skipped.is_empty() {
            return Ok(());
        }
        let mut destinations: Vec<DestinationId> =
            skipped.iter().map(|e| e.destination_id.clone()).collect();
        destinations.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        destinations.dedup();
        let blocked = self.inner.pg.blocked_destinations(&destinations).await?;
        let again: Vec<_> = skipped
            .iter()
            .filter(|e| !blocked.contains(&e.destination_id))
            .map(|e| (&e.delivery_id, &e.destination_id))
            .collect();
        let streams = &self.inner.streams;
        streams.add(&again).await.map_err(unavailable)?;
        let ids: Vec<&str> = skipped.iter().map(|e| e.entry_id.as_str()).collect();
        streams.ack(&ids).await.map_err(unavailable)
    }

    /// Leases the deliveries of `entries` in PostgreSQL; acknowledges the
    /// entries of deliveries that cannot be attempted now, after moving
    /// those not due yet to the delayed set.
    async fn lease_entries(&self, entries: Vec<Entry>, lease: &Lease) -> StoreResult<Vec<Leased>> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let mut by_delivery: HashMap<DeliveryId, Vec<String>> = HashMap::new();
        for e in entries {
            by_delivery
                .entry(e.delivery_id)
                .or_default()
                .push(e.entry_id);
        }
        // The entries may have been added after the caller took the time:
        // the lease starts when they were read, so that a delivery committed
        // in between counts as due.
        let lease = &started_by_now(lease);
        let ids: Vec<DeliveryId> = by_delivery.keys().cloned().collect();
        let leased = self.inner.pg.lease_named(&ids, lease).await?;
        let mut done_with: Vec<String> = Vec::new();
        {
            let mut held = lock(&self.inner.held);
            for l in &leased {
                if let Some(mut entry_ids) = by_delivery.remove(&l.delivery.id) {
                    // One entry is enough to renew; the others are spares.
                    done_with.extend(entry_ids.drain(1..));
                    held.entry(l.delivery.id.clone())
                        .or_default()
                        .extend(entry_ids);
                }
            }
        }
        // Deliveries due later than this host's clock says (an entry added
        // by a host whose clock runs ahead, or a stale duplicate of a retry)
        // wait in the delayed set; dropping their entries would strand them.
        let unleased: Vec<DeliveryId> = by_delivery.keys().cloned().collect();
        let later = self.inner.pg.not_due(&unleased, lease.now).await?;
        let later: Vec<_> = later
            .iter()
            .map(|w| (&w.id, &w.destination_id, w.due_at))
            .collect();
        self.inner
            .streams
            .delay(&later)
            .await
            .map_err(unavailable)?;
        done_with.extend(by_delivery.into_values().flatten());
        self.inner
            .streams
            .ack(&done_with)
            .await
            .map_err(unavailable)?;
        Ok(leased)
    }

    /// Forgets and acknowledges the entries held for these deliveries.
    async fn let_go(&self, ids: impl Iterator<Item = &DeliveryId>) -> redis::RedisResult<()> {
        let entry_ids: Vec<String> = {
            let mut held = lock(&self.inner.held);
            ids.filter_map(|id| held.remove(id)).flatten().collect()
        };
        self.inner.streams.ack(&entry_ids).await
    }

    /// The Redis side of completions; PostgreSQL already has them.
    async fn after_complete(
        &self,
        batch: &[Completion],
        moved: &HashMap<DeliveryId, DeliveryStatus>,
    ) -> redis::RedisResult<()> {
        self.let_go(batch.iter().map(|c| &c.delivery_id)).await?;
        let mut retries = Vec::new();
        let mut dead = Vec::new();
        // Where PostgreSQL moved each delivery: not at all when the lease
        // was lost, `failed` when its destination was deleted meanwhile.
        for c in batch {
            match (moved.get(&c.delivery_id), &c.settled) {
                (Some(DeliveryStatus::Retrying), Settled::Retry { at, .. }) => {
                    retries.push((&c.delivery_id, &c.destination_id, *at));
                }
                (Some(DeliveryStatus::Dead), Settled::Dead { error }) => {
                    dead.push((&c.delivery_id, &c.destination_id, error.as_str()));
                }
                _ => {}
            }
        }
        self.inner.streams.delay(&retries).await?;
        self.inner.streams.dead(&dead).await
    }
}

#[async_trait]
impl Queue for RedisQueue {
    async fn claim(&self, ids: &[DeliveryId], lease: &Lease) -> StoreResult<Vec<DeliveryId>> {
        self.inner.pg.claim(ids, lease).await
    }

    async fn lease_due(
        &self,
        limit: u32,
        lease: &Lease,
        exclude: &[DestinationId],
    ) -> StoreResult<Vec<Leased>> {
        let limit = limit as usize;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let streams = &self.inner.streams;
        streams
            .move_due(lease.now, MOVE_CHUNK)
            .await
            .map_err(unavailable)?;
        let excluded: HashSet<&DestinationId> = exclude.iter().collect();
        let (mut skipped, mut wanted): (Vec<Entry>, Vec<Entry>) = self
            .take_over(&lease.owner, limit)
            .await?
            .into_iter()
            .partition(|e| excluded.contains(&e.destination_id));
        // Entries of excluded destinations do not count against the limit:
        // read on until it is reached or nothing is left unread.
        for _ in 0..READ_ROUNDS {
            let want = limit.saturating_sub(wanted.len());
            if want == 0 {
                break;
            }
            let read = self.read_new(&lease.owner, want).await?;
            let drained = read.len() < want;
            for e in read {
                if excluded.contains(&e.destination_id) {
                    skipped.push(e);
                } else {
                    wanted.push(e);
                }
            }
            if drained {
                break;
            }
        }
        self.set_aside(skipped).await?;
        self.lease_entries(wanted, lease).await
    }

    async fn lease_destination(
        &self,
        id: &DestinationId,
        limit: u32,
        lease: &Lease,
    ) -> StoreResult<Vec<Leased>> {
        // The probe of a paused destination leases from the table directly;
        // a stream entry of the same delivery is dropped when read.
        self.inner.pg.lease_destination(id, limit, lease).await
    }

    async fn complete(&self, batch: &[Completion]) -> StoreResult<()> {
        let moved = self.inner.pg.complete_moved(batch).await?;
        // The attempts are recorded: failing now would make the caller
        // record them twice. What Redis misses, reconciliation restores.
        if let Err(error) = self.after_complete(batch, &moved).await {
            warn!(%error, "Recording completions in Redis failed; reconciliation will restore the queue.");
        }
        Ok(())
    }

    async fn extend_leases(&self, ids: &[DeliveryId], lease: &Lease) -> StoreResult<u64> {
        let extended = self.inner.pg.extend_leases(ids, lease).await?;
        let entry_ids: Vec<String> = {
            let held = lock(&self.inner.held);
            ids.iter()
                .filter_map(|id| held.get(id))
                .flatten()
                .cloned()
                .collect()
        };
        let entry_ids: Vec<&str> = entry_ids.iter().map(String::as_str).collect();
        if let Err(error) = self.inner.streams.touch(&lease.owner, &entry_ids).await {
            warn!(%error, "Renewing Redis queue entries failed; another worker may take them over.");
        }
        Ok(extended)
    }

    async fn release(&self, ids: &[DeliveryId], owner: &str) -> StoreResult<u64> {
        let released = self.inner.pg.release_waiting(ids, owner).await?;
        self.let_go(ids.iter()).await.map_err(unavailable)?;
        self.add_waiting(&released).await?;
        Ok(released.len() as u64)
    }

    async fn reclaim(&self, which: &Reclaim) -> StoreResult<u64> {
        let reclaimed = self.inner.pg.reclaim_waiting(which).await?;
        self.add_waiting(&reclaimed).await?;
        self.reconcile().await?;
        Ok(reclaimed.len() as u64)
    }

    async fn next_due_at(&self, exclude: &[DestinationId]) -> StoreResult<Option<DateTime<Utc>>> {
        self.inner.pg.next_due_at(exclude).await
    }

    async fn enqueue(&self, deliveries: &[Delivery]) -> StoreResult<()> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let now = Utc::now();
        let waiting: Vec<Waiting> = deliveries
            .iter()
            .map(|d| Waiting {
                seq: 0,
                id: d.id.clone(),
                destination_id: d.destination_id.clone(),
                due_at: d.next_attempt_at.unwrap_or(now),
            })
            .collect();
        self.add_waiting(&waiting).await?;
        // Workers woken by the commit may have read before the entries
        // existed: wake them again.
        self.inner.pg.notify_work().await
    }
}
