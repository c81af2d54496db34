//! The store's SQL, written once for both backends. Every statement that
//! reads the same on SQLite and PostgreSQL (with `$n` placeholders, which
//! SQLite reads too) is executed here, over sqlx's `Database`, by
//! [`Tables`]; a backend ([`Backend`]) supplies only what really differs:
//!
//! - how a transaction starts (SQLite's single writer with `BEGIN
//!   IMMEDIATE`, PostgreSQL's pool) and how other processes hear of new
//!   work (PostgreSQL's `NOTIFY`; nothing on SQLite, whose dispatcher lives
//!   in the same process);
//! - the batch statements, whose shape differs: multi-row `VALUES` chunked
//!   below SQLite's bind limit, against one `UNNEST` over arrays on
//!   PostgreSQL;
//! - lists bound as one parameter (`json_each` against `= ANY`), row locks
//!   (`FOR UPDATE` where a statement would race another process), the
//!   per-status counts (kept by triggers in each schema's own way), and how
//!   driver errors map onto the ports' errors.
//!
//! Leasing differs in its text only (SQLite has one writer; PostgreSQL
//! leases with `FOR UPDATE SKIP LOCKED`): each backend's queue module holds
//! its statements, and `queue` runs them. `store_ports!` hands each port's
//! method to these.
//!
//! Each module's `impl Tables` names the sqlx bounds its statements need
//! (which types encode and decode): Rust does not carry such bounds from a
//! trait's declaration to its users, so they cannot live on `Backend`.

mod audit;
mod config;
pub(crate) mod decode;
mod deliveries;
mod destinations;
mod events;
mod exports;
mod json_page;
pub(crate) mod metrics;
mod orgs;
mod ownership;
pub(crate) mod queue;
mod records;
mod resealing;
pub(crate) mod schedules;
mod source_rows;
mod sources;

use chrono::{DateTime, Utc};
use ferry_core::StoreError;
use ferry_core::audit::AuditRecord;
use ferry_core::crypto::Cipher;
use ferry_core::delivery::{Delivery, DeliveryStatus};
use ferry_core::destination::Health;
use ferry_core::error::StoreResult;
use ferry_core::event::NewEvent;
use ferry_core::ids::{ApiKeyId, DestinationId, OrgId};
use ferry_core::page::{Page, PageRequest};
use ferry_core::ports::Completion;
use sqlx::{Database, Encode, Executor, IntoArguments, Pool, QueryBuilder, Transaction, Type};

use crate::values::page_limit;
use queue::{AttemptRow, QueueStatements};
pub(crate) use resealing::RowLocks;

/// What one SQL backend supplies to the shared statements of [`Tables`].
pub(crate) trait Backend: Sync + Sized {
    type DB: Database;

    /// Where reads go (SQLite's readers; PostgreSQL's one pool).
    fn reader(&self) -> &Pool<Self::DB>;

    /// Seals and opens the secrets at rest.
    fn cipher(&self) -> &Cipher;

    /// Maps a driver error onto the ports' error, in Ferry's words
    /// (`crate::failure`); the driver's message goes to the log.
    fn db_error(e: sqlx::Error) -> StoreError;

    /// Starts a durable write transaction: its commit is on disk before it
    /// returns.
    async fn write(&self) -> StoreResult<Transaction<'static, Self::DB>>;

    /// Starts a write transaction whose commit is not flushed by itself:
    /// for bookkeeping that a crash may lose without breaking a promise.
    async fn write_relaxed(&self) -> StoreResult<Transaction<'static, Self::DB>>;

    /// Tells other processes, once `tx` commits, that work may be due.
    async fn signal_work(&self, tx: &mut Transaction<'static, Self::DB>) -> StoreResult<()>;

    /// The queue's statements in this dialect.
    const QUEUE: QueueStatements;

    /// Whether an export's page of records is read as one JSON value
    /// (`json_page`): where the driver's cost per column of a row is
    /// higher than building and parsing the JSON (SQLite's, whose every
    /// column is copied on one thread and freed on another).
    const JSON_PAGES: bool;

    /// A list bound as one parameter (a JSON array on SQLite, an array on
    /// PostgreSQL).
    type TextList: for<'q> Encode<'q, Self::DB> + Type<Self::DB> + Send + 'static;

    fn text_list<T: AsRef<str>>(items: &[T]) -> Self::TextList;

    /// How the rows re-sealed after a master-key change are kept from
    /// changing meanwhile.
    const ROW_LOCKS: RowLocks;

    /// Appended to the selection of an operator requeue: locks the rows
    /// until the update where another process could lease them meanwhile.
    const REQUEUE_LOCK: &'static str;

    /// Pushes `column` in `ids`, the list bound as one parameter.
    fn push_in_texts(qb: &mut QueryBuilder<Self::DB>, column: &str, ids: &[&str]);

    /// Pushes `column` in `values`, the list bound as one parameter.
    fn push_in_ints(qb: &mut QueryBuilder<Self::DB>, column: &str, values: &[i64]);

    /// Inserts audit records in order, inside the caller's transaction.
    async fn insert_audit(
        conn: &mut <Self::DB as Database>::Connection,
        records: &[&AuditRecord],
    ) -> StoreResult<()>;

    /// Inserts the events of a batch (ids unique within it) unless an id is
    /// already stored; returns the ids it inserted.
    async fn insert_events(
        conn: &mut <Self::DB as Database>::Connection,
        batch: &[&NewEvent],
    ) -> StoreResult<Vec<String>>;

    /// Inserts delivery rows in order, inside the caller's transaction. A
    /// waiting delivery without a due time is due when it was created
    /// ([`due_at`]).
    async fn insert_deliveries(
        conn: &mut <Self::DB as Database>::Connection,
        deliveries: &[&Delivery],
    ) -> StoreResult<()>;

    /// Moves the completed deliveries whose lease the completing owner
    /// still holds (`crate::deleted` says what becomes of those whose
    /// destination is gone); returns each moved delivery's id and status.
    async fn move_completed(
        conn: &mut <Self::DB as Database>::Connection,
        batch: &[Completion],
    ) -> StoreResult<Vec<(String, String)>>;

    /// Records attempts in order, inside the caller's transaction.
    async fn insert_attempts(
        conn: &mut <Self::DB as Database>::Connection,
        attempts: &[AttemptRow<'_>],
    ) -> StoreResult<()>;

    /// Periodic upkeep, run after each reclaim (every worker reclaims
    /// periodically).
    async fn upkeep(&self) -> StoreResult<()>;

    /// Stores destinations' health; a destination listed twice keeps the
    /// last.
    async fn write_health(&self, updates: &[(DestinationId, Health)]) -> StoreResult<()>;

    /// Records when keys were last used; `last_used_at` never moves
    /// backwards (batches may arrive late).
    async fn write_key_use(&self, used: &[(ApiKeyId, DateTime<Utc>)]) -> StoreResult<()>;

    /// Deliveries per status, every status present, in the order of
    /// `DeliveryStatus::ALL`.
    async fn count_by_status(&self) -> StoreResult<Vec<(DeliveryStatus, u64)>>;
}

/// The statements both backends share, on backend `B`.
pub(crate) struct Tables<'a, B>(pub &'a B);

impl<B> Tables<'_, B>
where
    B: Backend,
    <B::DB as Database>::Arguments: IntoArguments<B::DB>,
    for<'c> &'c mut <B::DB as Database>::Connection: Executor<'c, Database = B::DB>,
    for<'q> &'q str: Encode<'q, B::DB> + Type<B::DB>,
    for<'q> i64: Encode<'q, B::DB> + Type<B::DB>,
{
    /// One page of an organization's rows, newest first: `sql` selects
    /// `WHERE org_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3`, and
    /// `decode` reads a row with its `seq`.
    async fn org_page<T>(
        &self,
        sql: &'static str,
        org: &OrgId,
        page: PageRequest,
        decode: impl Fn(&<B::DB as Database>::Row) -> StoreResult<(i64, T)>,
    ) -> StoreResult<Page<T>> {
        let limit = page_limit(page.limit);
        let rows = sqlx::query(sql)
            .bind(org.as_str())
            .bind(page.after.unwrap_or(i64::MAX))
            .bind(i64::from(limit) + 1)
            .fetch_all(self.0.reader())
            .await
            .map_err(B::db_error)?;
        let rows = rows.iter().map(decode).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_rows(rows, limit))
    }
}

/// When a new delivery row is due: a waiting delivery without a due time is
/// due when it was created.
pub(crate) fn due_at(d: &Delivery) -> Option<DateTime<Utc>> {
    let waiting = matches!(d.status, DeliveryStatus::Pending | DeliveryStatus::Retrying);
    match d.next_attempt_at {
        None if waiting => Some(d.created_at),
        next => next,
    }
}
