//! The ports: what the engine needs from storage (`Store`), from the delivery
//! queue (`Queue`) and from each destination kind (`DestinationAdapter`,
//! `Deliverer`). Adapters live in other crates; every storage backend runs
//! the same conformance suite against these traits.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

pub use crate::attempt::{AttemptError, Delivered, Outcome};
use crate::audit::{AuditFilter, AuditRecord};
use crate::delivery::{
    Attempt, Captured, Delivery, DeliveryFilter, DeliveryStatus, Envelope, Leased,
};
use crate::destination::{Auth, Destination, DestinationKind, Health};
use crate::error::{FieldError, StoreResult};
use crate::event::{Event, InsertOutcome, NewEvent};
use crate::export::{ExportJob, ExportProgress, ExportSchedule, Record, RecordQuery};
use crate::ids::{
    ApiKeyId, DeliveryId, DestinationId, EventId, ExportId, OrgId, ScheduleId, SourceId,
};
use crate::metrics::{MetricsQuery, MetricsRetention, Rollup};
use crate::org::{ApiKey, Org};
use crate::page::{Page, PageRequest};
use crate::source::Source;

/// Which terminal deliveries an operator sends back to `pending`.
#[derive(Debug, Clone)]
pub enum RequeueSelector {
    /// One delivery (`POST /v1/deliveries/{id}/retry`).
    Delivery(DeliveryId),
    /// The deliveries of an event, optionally only to some destinations
    /// (`POST /v1/events/{id}/replay`).
    Event {
        event_id: EventId,
        destinations: Option<Vec<DestinationId>>,
    },
    /// Dead deliveries matching a filter (`POST /v1/dlq/replay`); the
    /// filter's `status` is ignored.
    Dead(DeliveryFilter),
}

/// State, scoped by organization in every query that takes an `OrgId`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Succeeds when storage answers a trivial query.
    async fn ping(&self) -> StoreResult<()>;
    /// Commits a tiny write (one row kept for this purpose), not flushed by
    /// itself: succeeds when storage can commit writes now. Readiness runs
    /// it after a write failed, since a read (`ping`) succeeds on a full disk.
    async fn probe_write(&self) -> StoreResult<()>;

    // Organizations and API keys.
    async fn create_org(&self, org: &Org) -> StoreResult<()>;
    async fn get_org(&self, id: &OrgId) -> StoreResult<Option<Org>>;
    async fn list_orgs(&self, page: PageRequest) -> StoreResult<Page<Org>>;
    /// Saves an organization's changed name; `false` when there is none.
    async fn update_org(&self, org: &Org, audit: &AuditRecord) -> StoreResult<bool>;
    async fn insert_api_key(&self, key: &ApiKey, audit: &AuditRecord) -> StoreResult<()>;
    async fn api_key_by_hash(&self, hash: &[u8; 32]) -> StoreResult<Option<ApiKey>>;
    async fn list_api_keys(&self, org: &OrgId, page: PageRequest) -> StoreResult<Page<ApiKey>>;
    /// Revokes a key; `false` when the org has no such key.
    async fn delete_api_key(
        &self,
        org: &OrgId,
        id: &ApiKeyId,
        audit: &AuditRecord,
    ) -> StoreResult<bool>;
    /// Records when keys were last used (batched by the caller).
    async fn touch_api_keys(&self, used: &[(ApiKeyId, DateTime<Utc>)]) -> StoreResult<()>;

    // Destinations (secrets are sealed at rest by the adapter).
    async fn insert_destination(&self, d: &Destination, audit: &AuditRecord) -> StoreResult<()>;
    async fn get_destination(
        &self,
        org: &OrgId,
        id: &DestinationId,
    ) -> StoreResult<Option<Destination>>;
    /// Every destination of the org, oldest first (routing reads this).
    async fn org_destinations(&self, org: &OrgId) -> StoreResult<Vec<Destination>>;
    async fn list_destinations(
        &self,
        org: &OrgId,
        page: PageRequest,
    ) -> StoreResult<Page<Destination>>;
    /// Replaces the destination's row; `false` when the org has no such one.
    async fn update_destination(&self, d: &Destination, audit: &AuditRecord) -> StoreResult<bool>;
    /// Deletes it and moves its unfinished deliveries to `failed`.
    async fn delete_destination(
        &self,
        org: &OrgId,
        id: &DestinationId,
        audit: &AuditRecord,
    ) -> StoreResult<bool>;
    /// The engine's destination lookup, across orgs (ids are unique).
    async fn destination_by_id(&self, id: &DestinationId) -> StoreResult<Option<Destination>>;
    /// Persists breaker/health counters.
    async fn save_health(&self, updates: &[(DestinationId, Health)]) -> StoreResult<()>;

    // Events.
    /// Group commit: stores every new event with its deliveries in one
    /// durable transaction. Known ids store nothing and report the original
    /// deliveries. Either all of the batch is committed or none of it.
    async fn insert_events(&self, batch: &[NewEvent]) -> StoreResult<Vec<InsertOutcome>>;
    async fn get_event(
        &self,
        org: &OrgId,
        id: &EventId,
    ) -> StoreResult<Option<(Event, Vec<Delivery>)>>;
    /// Adds deliveries to existing events (replay to a new destination).
    async fn insert_deliveries(
        &self,
        deliveries: &[Delivery],
        audit: &[AuditRecord],
    ) -> StoreResult<()>;

    // Deliveries.
    async fn get_delivery(
        &self,
        org: &OrgId,
        id: &DeliveryId,
    ) -> StoreResult<Option<(Delivery, Vec<Attempt>)>>;
    /// Newest first.
    async fn list_deliveries(
        &self,
        org: &OrgId,
        filter: &DeliveryFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Delivery>>;
    /// Moves the selected deliveries that allow a requeue (`retrying` or
    /// terminal, see `DeliveryStatus::sources_of`) back to `pending`, due now,
    /// with a fresh retry budget; appends one audit record each with `actor`.
    async fn requeue(
        &self,
        org: &OrgId,
        selector: &RequeueSelector,
        actor: &str,
    ) -> StoreResult<Vec<Delivery>>;
    /// Replays an event in one transaction: requeues its settled deliveries (all,
    /// or only those to `destinations`), creates a waiting delivery for each listed
    /// destination that never had one (`Delivery::new_now`), appends their
    /// `delivery.requeued` / `delivery.created` audit records and one
    /// `event.replayed` record (`after: {"deliveries": [ids]}`), and returns the
    /// deliveries now waiting. `None` when the event is not the org's.
    async fn replay_event(
        &self,
        org: &OrgId,
        event_id: &EventId,
        destinations: Option<&[DestinationId]>,
        actor: &str,
    ) -> StoreResult<Option<Vec<Delivery>>>;
    /// Deliveries per status, across orgs (queue-depth metrics).
    async fn delivery_counts(&self) -> StoreResult<Vec<(DeliveryStatus, u64)>>;

    // Audit.
    async fn append_audit(&self, records: &[AuditRecord]) -> StoreResult<()>;
    /// Newest first.
    async fn list_audit(
        &self,
        org: &OrgId,
        filter: &AuditFilter,
        page: PageRequest,
    ) -> StoreResult<Page<AuditRecord>>;
}

/// Inbound sources: a capability of its own, so that a backend can add it
/// separately. Verification secrets are sealed at rest by the adapter.
#[async_trait]
pub trait SourceStore: Send + Sync + 'static {
    async fn insert_source(&self, source: &Source, audit: &AuditRecord) -> StoreResult<()>;
    async fn get_source(&self, org: &OrgId, id: &SourceId) -> StoreResult<Option<Source>>;
    /// The public endpoint's lookup, across orgs (ids are unique).
    async fn source_by_id(&self, id: &SourceId) -> StoreResult<Option<Source>>;
    /// Newest first.
    async fn list_sources(&self, org: &OrgId, page: PageRequest) -> StoreResult<Page<Source>>;
    async fn delete_source(
        &self,
        org: &OrgId,
        id: &SourceId,
        audit: &AuditRecord,
    ) -> StoreResult<bool>;
}

/// Export jobs and the records they read: a capability of its own. Record
/// pages are read in ascending `seq` order from the store's readers, one
/// short statement per page, so that an export of any size never holds the
/// writer nor one long read transaction.
#[async_trait]
pub trait ExportStore: Send + Sync + 'static {
    async fn insert_export(&self, job: &ExportJob, audit: &AuditRecord) -> StoreResult<()>;
    async fn get_export(&self, org: &OrgId, id: &ExportId) -> StoreResult<Option<ExportJob>>;
    /// Newest first.
    async fn list_exports(&self, org: &OrgId, page: PageRequest) -> StoreResult<Page<ExportJob>>;
    /// Stores `job` (status, progress, output, error, times) if its stored
    /// status is one `job.status` may come from
    /// ([`ExportStatus::comes_from`](crate::export::ExportStatus::comes_from)), with `audit` in the same
    /// transaction; whether it did.
    async fn transition_export(
        &self,
        job: &ExportJob,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<bool>;
    /// Records a running job's progress (and that its runner is alive);
    /// whether it is still running (false once cancelled).
    async fn save_export_progress(
        &self,
        id: &ExportId,
        progress: &ExportProgress,
    ) -> StoreResult<bool>;
    /// The newest succeeded job of `org` with this incremental key
    /// ([`ExportJob::incremental_key`]).
    async fn last_incremental(&self, org: &OrgId, key: &str) -> StoreResult<Option<ExportJob>>;
    /// Queued and running jobs of `org`.
    async fn active_exports(&self, org: &OrgId) -> StoreResult<u64>;
    /// Active jobs whose runner has not reported since `before` (a crashed
    /// or stopped process), across organizations.
    async fn stale_exports(&self, before: DateTime<Utc>) -> StoreResult<Vec<ExportJob>>;
    /// Up to `limit` records after `after` (a `seq`; 0 for the start),
    /// ascending, with their `seq`.
    async fn record_page(
        &self,
        org: &OrgId,
        query: &RecordQuery,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<(i64, Record)>>;
    /// How many records `query` selects (the progress's total).
    async fn count_records(&self, org: &OrgId, query: &RecordQuery) -> StoreResult<u64>;
}

/// Export schedules (`sch_…`) and the runs they start. Every write of a
/// schedule names the revision it read and happens only if that is still
/// the stored one: a claim by two processes at once goes to one of them.
#[async_trait]
pub trait ScheduleStore: Send + Sync + 'static {
    /// A duplicate name in the organization is a `Conflict`.
    async fn insert_schedule(
        &self,
        schedule: &ExportSchedule,
        audit: &AuditRecord,
    ) -> StoreResult<()>;
    async fn get_schedule(
        &self,
        org: &OrgId,
        id: &ScheduleId,
    ) -> StoreResult<Option<ExportSchedule>>;
    /// Newest first.
    async fn list_schedules(
        &self,
        org: &OrgId,
        page: PageRequest,
    ) -> StoreResult<Page<ExportSchedule>>;
    /// Writes `schedule` if its stored revision is still `read_revision`,
    /// and in the same transaction inserts `run` (a queued job it starts)
    /// and `audit`; whether it did. A duplicate name is a `Conflict`.
    async fn save_schedule(
        &self,
        schedule: &ExportSchedule,
        read_revision: i64,
        run: Option<&ExportJob>,
        audit: &[AuditRecord],
    ) -> StoreResult<bool>;
    /// Whether it existed. Its runs stay in the export history.
    async fn delete_schedule(
        &self,
        org: &OrgId,
        id: &ScheduleId,
        audit: &AuditRecord,
    ) -> StoreResult<bool>;
    /// Enabled schedules with a run due at `now`
    /// ([`ExportSchedule::due_at`]), across organizations, earliest first.
    async fn due_schedules(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<ExportSchedule>>;
    /// A schedule's runs, newest first.
    async fn schedule_runs(
        &self,
        org: &OrgId,
        id: &ScheduleId,
        page: PageRequest,
    ) -> StoreResult<Page<ExportJob>>;
    /// Whether a run of the schedule is queued or running.
    async fn schedule_busy(&self, id: &ScheduleId) -> StoreResult<bool>;
    /// The schedule's succeeded runs whose output has not been removed,
    /// newest first.
    async fn kept_outputs(&self, id: &ScheduleId) -> StoreResult<Vec<ExportJob>>;
    /// Records that retention removed a run's output (with `audit`).
    async fn mark_output_removed(
        &self,
        id: &ExportId,
        at: DateTime<Utc>,
        audit: &AuditRecord,
    ) -> StoreResult<()>;
}

/// Delivery metrics history (`crate::metrics`): rollups are only ever
/// added (one row per flush, summed when read), so that writers in several
/// processes never lose each other's counts, and folded into coarser
/// buckets as they age.
#[async_trait]
pub trait MetricsStore: Send + Sync + 'static {
    /// Stores rollups (of any bucket) in one transaction, not flushed by
    /// itself: metrics are bookkeeping that a crash may lose.
    async fn add_rollups(&self, rows: &[Rollup]) -> StoreResult<()>;
    /// The org's rollups of `query.bucket` (finer stored ones merged into
    /// it) starting in the query's range, by start, then destination.
    async fn rollups(&self, org: &OrgId, query: &MetricsQuery) -> StoreResult<Vec<Rollup>>;
    /// When the org's oldest stored rollup starts.
    async fn first_rollup_at(&self, org: &OrgId) -> StoreResult<Option<DateTime<Utc>>>;
    /// Folds minutes and hours past their retention into hours and days,
    /// and deletes days past theirs, across organizations. Each row is
    /// folded once even when several processes compact at once. Returns
    /// how many rows went.
    async fn compact_rollups(
        &self,
        now: DateTime<Utc>,
        retention: &MetricsRetention,
    ) -> StoreResult<u64>;
}

/// One change a configuration import makes (see
/// [`crate::config_doc`]). An update writes the whole object as given.
#[derive(Debug, Clone)]
pub enum ConfigChange {
    CreateOrg(Org),
    /// Name and alert destinations.
    UpdateOrg(Org),
    CreateDestination(Destination),
    /// Everything but its health, which stays as stored.
    UpdateDestination(Destination),
    /// As `Store::delete_destination` deletes one.
    DeleteDestination(OrgId, DestinationId),
    CreateSource(Source),
    /// The stored source replaced by this one (same id).
    ReplaceSource(Source),
    DeleteSource(OrgId, SourceId),
    CreateSchedule(ExportSchedule),
    /// Written only if the stored revision is still the one before this
    /// one's (`revision - 1`, what the importer read): a run claimed or a
    /// change made since is a `Conflict`, never a run claimed twice.
    UpdateSchedule(ExportSchedule),
    DeleteSchedule(OrgId, ScheduleId),
}

/// Applying a configuration import.
#[async_trait]
pub trait ConfigStore: Send + Sync + 'static {
    /// Applies `changes` in order, with `audit`, in one transaction: all of
    /// them or none. A duplicate (an id or a unique name taken), or an
    /// update or delete of something that no longer exists, is a
    /// `Conflict`.
    async fn apply_config(
        &self,
        changes: &[ConfigChange],
        audit: &[AuditRecord],
    ) -> StoreResult<()>;
}

/// Which organization owns an id, whatever its kind (`evt_`, `dlv_`, `dst_`,
/// `src_`, `key_`, `sch_`; an organization owns itself): lets the API notice a key probing another organization's
/// objects (it still answers 404, and audits the attempt).
#[async_trait]
pub trait Ownership: Send + Sync + 'static {
    async fn owner_of(&self, id: &str) -> StoreResult<Option<OrgId>>;
}

/// Re-sealing every secret at rest with the cipher's current key (the
/// master-key rotation). One transaction: all of them or none.
#[async_trait]
pub trait Resealing: Send + Sync + 'static {
    /// Returns how many sealed values were rewritten.
    async fn reseal_secrets(&self) -> StoreResult<u64>;
}

/// A lease taken by a worker: the deliveries are its own until `until`.
#[derive(Debug, Clone)]
pub struct Lease {
    pub owner: String,
    pub now: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// Where an attempt leaves its delivery: the states a completion can ask
/// for. (A delivery whose destination was deleted during the attempt fails
/// instead, unless it was delivered: the store decides that, when it
/// records the completion.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// The destination accepted it.
    Delivered,
    /// It failed and is tried again at `at`. `counted`: whether this
    /// failure spends the retry budget (one while the destination is paused
    /// by the breaker does not: the probe decides).
    Retry {
        at: DateTime<Utc>,
        counted: bool,
        error: String,
    },
    /// It failed for good (a permanent failure, or the retry budget is
    /// spent): it waits in the dead-letter queue. Always counted.
    Dead { error: String },
}

impl Settled {
    /// The delivery's status once settled.
    pub fn status(&self) -> DeliveryStatus {
        match self {
            Self::Delivered => DeliveryStatus::Delivered,
            Self::Retry { .. } => DeliveryStatus::Retrying,
            Self::Dead { .. } => DeliveryStatus::Dead,
        }
    }

    /// When the next attempt is due, for a retry.
    pub fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::Retry { at, .. } => Some(*at),
            _ => None,
        }
    }

    /// Whether this attempt spends the retry budget.
    pub fn counted(&self) -> bool {
        match self {
            Self::Delivered => false,
            Self::Retry { counted, .. } => *counted,
            Self::Dead { .. } => true,
        }
    }

    /// Why the attempt failed.
    pub fn error(&self) -> Option<&str> {
        match self {
            Self::Delivered => None,
            Self::Retry { error, .. } | Self::Dead { error } => Some(error),
        }
    }
}

/// The end of one attempt, written in batches.
#[derive(Debug, Clone)]
pub struct Completion {
    pub delivery_id: DeliveryId,
    /// The delivery's organization, which its attempt row belongs to.
    pub org_id: OrgId,
    pub destination_id: DestinationId,
    /// The lease owner that made the attempt; the delivery's status changes
    /// only while that lease is still held.
    pub owner: String,
    /// When the attempt's event was accepted (its end-to-end latency).
    pub accepted_at: DateTime<Utc>,
    pub attempt: Attempt,
    pub settled: Settled,
    pub audit: AuditRecord,
}

/// Which leases to take back.
#[derive(Debug, Clone)]
pub enum Reclaim {
    /// Leases that expired before this time (crashed workers).
    ExpiredBefore(DateTime<Utc>),
    /// Every lease not held by this owner (a single-node restart: no other
    /// process can hold the store).
    NotOwnedBy(String),
}

/// The delivery queue. On SQLite and PostgreSQL it lives in the deliveries
/// table; leases expire so that a crashed worker's work is redelivered.
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Leases the given deliveries (handed over in memory after ingest) if
    /// they are still `pending`; returns the ids now leased.
    async fn claim(&self, ids: &[DeliveryId], lease: &Lease) -> StoreResult<Vec<DeliveryId>>;
    /// Leases up to `limit` due deliveries (`pending`/`retrying`, due at
    /// `lease.now`), oldest due first, skipping the excluded destinations.
    async fn lease_due(
        &self,
        limit: u32,
        lease: &Lease,
        exclude: &[DestinationId],
    ) -> StoreResult<Vec<Leased>>;
    /// Leases up to `limit` waiting deliveries of one destination whether
    /// due or not (the breaker's probe).
    async fn lease_destination(
        &self,
        id: &DestinationId,
        limit: u32,
        lease: &Lease,
    ) -> StoreResult<Vec<Leased>>;
    /// Records attempts and moves deliveries on, in one transaction.
    async fn complete(&self, batch: &[Completion]) -> StoreResult<()>;
    /// Extends leases still held by `lease.owner` to `lease.until` (a live
    /// worker renews its leases, so they can be short and a crashed worker's
    /// deliveries come back soon); returns how many were extended.
    async fn extend_leases(&self, ids: &[DeliveryId], lease: &Lease) -> StoreResult<u64>;
    /// Gives leased deliveries back (`pending`, due now) without an attempt.
    async fn release(&self, ids: &[DeliveryId], owner: &str) -> StoreResult<u64>;
    /// Takes back leases of crashed or previous workers; returns how many.
    async fn reclaim(&self, which: &Reclaim) -> StoreResult<u64>;
    /// When the earliest waiting delivery is due, skipping the excluded
    /// destinations (the dispatcher sleeps until then at most).
    async fn next_due_at(&self, exclude: &[DestinationId]) -> StoreResult<Option<DateTime<Utc>>>;
    /// Deliveries the store made waiting outside the queue (ingest, an
    /// operator's requeue), called once they are committed. Queues kept in
    /// the deliveries table have nothing to do; a queue kept elsewhere
    /// (Redis Streams) adds them. An error loses nothing: the store stays
    /// the source of truth and such a queue reconciles itself with it.
    async fn enqueue(&self, deliveries: &[Delivery]) -> StoreResult<()> {
        let _ = deliveries;
        Ok(())
    }
}

/// What a deliverer reports of one attempt.
#[derive(Debug, Clone)]
pub struct AttemptReport {
    pub result: Outcome,
    pub status_code: Option<u16>,
    pub request: Option<Captured>,
    pub response: Option<Captured>,
}

/// The answer of a destination's connection test.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CheckReport {
    pub ok: bool,
    pub message: String,
}

/// A built destination, ready to deliver. One per destination, reused
/// across deliveries (it owns pooled connections).
#[async_trait]
pub trait Deliverer: Send + Sync {
    async fn deliver(&self, envelope: &Envelope) -> AttemptReport;
    /// Connects and authenticates for real.
    async fn check(&self) -> CheckReport;
}

/// One destination kind: pure validation, then building a deliverer.
pub trait DestinationAdapter: Send + Sync {
    fn kind(&self) -> DestinationKind;
    /// Checks a kind's config and auth without I/O; returns the config with
    /// defaults filled in, or an error per invalid field.
    fn validate(&self, config: &Value, auth: &Auth) -> Result<Value, Vec<FieldError>>;
    /// Builds the deliverer of a stored (validated) destination.
    fn build(&self, destination: &Destination) -> Result<Arc<dyn Deliverer>, String>;
    /// Where exports go on a stored destination of this kind, its
    /// credentials reused; `None` when the kind does not take exports.
    fn export_outputs(
        &self,
        _destination: &Destination,
    ) -> Option<Result<Arc<dyn ExportOutputs>, String>> {
        None
    }
}

/// One export's output as it is opened at a destination.
#[derive(Debug, Clone, Copy)]
pub struct ExportObject<'a> {
    /// Relative to the destination's directory or bucket; checked (no
    /// `.`, `..` or leading `/`).
    pub path: &'a str,
    /// The export's id: what names the staged output, so that a restart
    /// can find and remove what an interrupted run left.
    pub export_id: &'a str,
    pub content_type: &'a str,
}

/// Exports written to one destination, never half: an output is staged
/// (under a temporary name, or as an unfinished multipart upload) and
/// appears at its path only when committed.
#[async_trait]
pub trait ExportOutputs: Send + Sync {
    /// Starts staging `object`.
    async fn create(&self, object: ExportObject<'_>) -> Result<Box<dyn ExportSink>, String>;
    /// Removes what an interrupted run staged for `object`, if anything
    /// (best effort: a failure is logged).
    async fn clean_up(&self, object: ExportObject<'_>);
    /// Deletes a committed output (gone already is not an error).
    async fn delete(&self, object: ExportObject<'_>) -> Result<(), String>;
}

/// An output being staged.
#[async_trait]
pub trait ExportSink: Send {
    /// Appends to the output.
    async fn write(&mut self, chunk: Vec<u8>) -> Result<(), String>;
    /// Makes the whole output visible at its path (replacing what was
    /// there); returns where it is, e.g. `s3://bucket/key`. On failure
    /// nothing is left staged.
    async fn commit(self: Box<Self>) -> Result<String, String>;
    /// Removes what was staged (best effort: a failure is logged).
    async fn abort(self: Box<Self>);
}
