//! The SQLite backend: opening the database, the connection pools, and the
//! helpers every query module shares (error mapping, timestamps, id lists).
//!
//! - One database file in WAL mode with `synchronous=FULL`: a commit is
//!   fsync'd before it returns, so an acknowledged event is durable.
//! - Writes go through a pool of exactly one connection and `BEGIN
//!   IMMEDIATE` transactions: SQLite has one writer anyway, and queuing
//!   writers in the pool (FIFO) instead of in SQLite's busy handler keeps
//!   `SQLITE_BUSY` away under concurrency. Reads use a small pool of their
//!   own; WAL lets them run while a write is in progress.
//! - Timestamps are INTEGER unix microseconds, so they compare in SQL.
//!   Filters take `since` inclusive and `until` exclusive.
//! - Batches are written with multi-row statements (`push_values`), chunked
//!   below SQLite's bind-variable limit. Their SQL text varies with the batch
//!   size, so they are not kept in the statement cache (`persistent(false)`):
//!   preparing one costs little next to running it, and caching every size
//!   would fill the cache with large programs.
//! - Lists of ids are bound as one JSON array and expanded with
//!   `json_each`, which keeps the SQL text fixed and far from SQLite's
//!   bind-variable limit.

mod backend;
mod ports;
mod queue;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ferry_core::StoreError;
use ferry_core::crypto::Cipher;
use ferry_core::error::StoreResult;
use sqlx::migrate::Migrator;

use crate::failure::{self, Failure, migrate_error};
use sqlx::Connection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a statement waits for SQLite's file lock (another process, or a
/// checkpoint) before failing with "database is locked".
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a caller waits for a connection (writers queue here) before the
/// store reports itself unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// Read connections: a few, since reads are short and WAL lets them run
/// beside the writer.
const READERS: u32 = 4;
/// SQLite's default limit on bind variables in one statement.
const MAX_BINDS: usize = 32_766;
/// Page cache per connection, in KiB (negative `cache_size` means KiB).
/// Every commit walks the writer's whole cache (SQLite drops pages past the
/// end of the file), so a larger cache costs each transaction more: 64 MiB
/// made commits about twice as slow as 16 MiB, for both ingest and queue
/// batches (the store's `bench_insert` example).
const WRITER_CACHE_KIB: &str = "-16384";
/// Readers keep a small cache of their own: their reads are short, the
/// operating system's page cache holds the file anyway, and a long read
/// (an export walking a million rows) would otherwise fill every
/// reader's cache in turn.
const READER_CACHE_KIB: &str = "-2048";
/// Rows a connection's thread may hand over before the reading task takes
/// them: larger than any batch, so that the thread never waits mid-statement.
const ROW_BUFFER: usize = 1024;
/// The WAL file is truncated back to this size after a checkpoint.
const WAL_SIZE_LIMIT: &str = "67108864";

/// The embedded store: state and delivery queue in one SQLite file.
/// Cheap to clone (the pools and the cipher are shared).
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    writer: SqlitePool,
    reader: SqlitePool,
    cipher: Cipher,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if missing) the database file at `path`: WAL mode,
    /// `synchronous=FULL` (a commit is fsync'd: Ferry promises that 202
    /// means durable), foreign keys on, a busy timeout; runs the migrations.
    /// Destination secrets are sealed with `cipher`.
    ///
    /// Temporary storage stays SQLite's default: a statement's journal (kept
    /// for a statement inside a transaction, to undo it alone) or a sort is
    /// held in memory up to a small size and then in an unnamed temporary
    /// file. Held in memory whole, one large statement took hundreds of MB
    /// (a migration's backfill of a million deliveries 210 MB, a million
    /// deliveries failed at once by a destination's deletion 390 MB).
    pub async fn open(path: &Path, cipher: Cipher) -> StoreResult<Self> {
        Self::open_with(path, cipher, DEFAULT_BUSY_TIMEOUT).await
    }

    /// `open` with how long a statement waits for a database locked by
    /// another process before the store reports itself unavailable.
    pub async fn open_with(
        path: &Path,
        cipher: Cipher,
        busy_timeout: Duration,
    ) -> StoreResult<Self> {
        let base = SqliteConnectOptions::new()
            .filename(path)
            .foreign_keys(true)
            .busy_timeout(busy_timeout)
            .synchronous(SqliteSynchronous::Full)
            .row_buffer_size(ROW_BUFFER);

        let writer_options = base
            .clone()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .pragma("cache_size", WRITER_CACHE_KIB)
            .pragma("journal_size_limit", WAL_SIZE_LIMIT);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .idle_timeout(None)
            .max_lifetime(None)
            .after_release(|conn, _| Box::pin(leaves_no_transaction(conn)))
            .connect_with(writer_options)
            .await
            .map_err(|e| open_error(path, e))?;
        MIGRATOR
            .run(&writer)
            .await
            .map_err(|e| migrate_error(e, db_error))?;

        // Opened after the writer has switched the file to WAL (a persistent
        // setting), so readers need not touch the journal mode.
        let reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(base.pragma("cache_size", READER_CACHE_KIB))
            .await
            .map_err(|e| open_error(path, e))?;

        Ok(Self {
            inner: Arc::new(Inner {
                writer,
                reader,
                cipher,
            }),
        })
    }

    /// Closes every connection, checkpointing the WAL. Later calls fail with
    /// `StoreError::Unavailable`.
    pub async fn close(&self) {
        self.inner.reader.close().await;
        self.inner.writer.close().await;
    }
}

/// Whether the writer connection may go back to the pool: not while it is
/// still inside a transaction. When a COMMIT fails with SQLITE_FULL or
/// SQLITE_IOERR, SQLite has already rolled the transaction back, so the
/// ROLLBACK that the dropped `Transaction` queues fails too ("no transaction
/// is active") and the driver's transaction depth stays at 1: every later
/// `begin_with` on that connection would fail ("non-zero transaction
/// depth") until a restart. Such a connection is closed instead, and the
/// pool opens a fresh one.
///
/// A committed or rolled-back transaction has brought the depth back to 0
/// before its connection is released, so the common path only reads a
/// counter; after a dropped transaction the queued rollback is flushed
/// through the connection's worker thread first (`ping`), and the depth
/// read after it.
async fn leaves_no_transaction(conn: &mut SqliteConnection) -> Result<bool, sqlx::Error> {
    if !conn.is_in_transaction() {
        return Ok(true);
    }
    conn.ping().await?;
    let clean = !conn.is_in_transaction();
    if !clean {
        tracing::warn!(
            "The store's writer connection is stuck in a failed transaction; replacing it."
        );
    }
    Ok(clean)
}

fn open_error(path: &Path, e: sqlx::Error) -> StoreError {
    match db_error(e) {
        StoreError::Unavailable(msg) => {
            StoreError::Unavailable(format!("cannot open {}: {msg}", path.display()))
        }
        other => other,
    }
}

/// Maps a driver error onto the ports' error, in Ferry's words
/// (`crate::failure`); the driver's message goes to the log.
pub(crate) fn db_error(e: sqlx::Error) -> StoreError {
    failure(&e).into_error(&e)
}

fn failure(e: &sqlx::Error) -> Failure<'_> {
    use sqlx::error::ErrorKind;
    failure::classify(e, |db| {
        // The primary result code is the low byte of the extended one.
        let code = db.code().and_then(|c| c.parse::<i32>().ok()).unwrap_or(0) & 0xff;
        match (db.kind(), code) {
            (ErrorKind::UniqueViolation, _) => Failure::Duplicate(unique_table(db.message())),
            (ErrorKind::ForeignKeyViolation, _) => Failure::MissingReference,
            // Any other SQLITE_CONSTRAINT.
            (_, 19) => Failure::Rule,
            // SQLITE_CORRUPT, SQLITE_NOTADB
            (_, 11 | 26) => Failure::Corrupt,
            // SQLITE_FULL: the disk (or `max_page_count`) is full.
            (_, 13) => Failure::Full,
            // BUSY, LOCKED, NOMEM, READONLY, IOERR, CANTOPEN,
            // PROTOCOL and anything else: storage cannot serve now.
            _ => Failure::Unavailable,
        }
    })
}

/// The table a uniqueness violation names: SQLite reports
/// `UNIQUE constraint failed: table.column[, table.column]`.
fn unique_table(message: &str) -> Option<&str> {
    let columns = message.split_once(": ")?.1;
    Some(columns.split_once('.')?.0)
}

/// A list of ids as one bind parameter, for `IN (SELECT value FROM json_each(?))`.
fn id_list<T: AsRef<str>>(ids: &[T]) -> String {
    let mut out = String::with_capacity(ids.len() * 32 + 2);
    out.push('[');
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        // Ids are validated `prefix_[a-z0-9]+`, but quote properly anyway.
        out.push_str(&serde_json::Value::from(id.as_ref()).to_string());
    }
    out.push(']');
    out
}

/// Rows per multi-row statement with `columns` binds per row.
fn rows_per_statement(columns: usize) -> usize {
    (MAX_BINDS / columns).min(1000)
}

#[cfg(test)]
mod tests {
    use ferry_core::delivery::DeliveryStatus::*;

    use crate::sql::Backend;

    /// The queue's statements run on every dispatch: each must find its rows
    /// through an index, never by scanning the deliveries table.
    #[tokio::test]
    async fn queue_statements_use_their_indexes() {
        use super::queue::sql::*;

        let dir = tempfile::tempdir().unwrap();
        let cipher = ferry_core::crypto::Cipher::new(&[7; 32]).unwrap();
        let store = super::SqliteStore::open(&dir.path().join("plan.db"), cipher)
            .await
            .unwrap();
        let statements = [
            ("claim", CLAIM, 4, "sqlite_autoindex_deliveries_1"),
            ("lease_due", LEASE_DUE, 4, "deliveries_due "),
            (
                "lease_due excluding",
                LEASE_DUE_EXCLUDING,
                5,
                "deliveries_due_by_destination",
            ),
            (
                "lease_destination",
                LEASE_DESTINATION,
                5,
                "deliveries_due_by_destination",
            ),
            ("release", RELEASE, 3, "sqlite_autoindex_deliveries_1"),
            ("reclaim expired", RECLAIM_EXPIRED, 2, "deliveries_leased"),
            ("reclaim foreign", RECLAIM_FOREIGN, 2, "deliveries_leased"),
            ("next due", NEXT_DUE, 0, "deliveries_due"),
            (
                "next due excluding",
                NEXT_DUE_EXCLUDING,
                1,
                "deliveries_due_by_destination",
            ),
        ];
        uses_its_indexes(&store, &statements).await;
    }

    /// The schedules' reads run on every scheduler tick and retention pass:
    /// each reads a range of an index.
    #[tokio::test]
    async fn schedule_statements_use_their_indexes() {
        use crate::sql::schedules::{BUSY, DUE, KEPT, RUNS};

        let dir = tempfile::tempdir().unwrap();
        let cipher = ferry_core::crypto::Cipher::new(&[7; 32]).unwrap();
        let store = super::SqliteStore::open(&dir.path().join("plan.db"), cipher)
            .await
            .unwrap();
        let statements = [
            ("due", DUE, 2, "export_schedules_due"),
            ("runs", RUNS, 4, "exports_by_schedule"),
            ("busy", BUSY, 1, "exports_by_schedule"),
            ("kept", KEPT, 1, "exports_by_schedule"),
        ];
        uses_its_indexes(&store, &statements).await;
    }

    /// The metrics reads (exports, destinations' latency) and compaction
    /// read a range of an index.
    #[tokio::test]
    async fn metrics_statements_use_their_indexes() {
        use crate::sql::metrics::{fold_statement, read_statement};
        use ferry_core::metrics::Bucket;

        let dir = tempfile::tempdir().unwrap();
        let cipher = ferry_core::crypto::Cipher::new(&[7; 32]).unwrap();
        let store = super::SqliteStore::open(&dir.path().join("plan.db"), cipher)
            .await
            .unwrap();
        let (minute, day, fold) = (
            read_statement(Bucket::Minute, true),
            read_statement(Bucket::Day, false),
            fold_statement(),
        );
        let statements = [
            ("read minutes", minute.as_str(), 4, "metric_rollups_org"),
            ("read days", day.as_str(), 3, "metric_rollups_org"),
            ("fold", fold.as_str(), 2, "metric_rollups_age"),
        ];
        uses_its_indexes(&store, &statements).await;
    }

    /// Asserts that each statement (name, SQL, binds, index) reads through
    /// its index and scans no table.
    async fn uses_its_indexes(
        store: &super::SqliteStore,
        statements: &[(&str, &str, usize, &str)],
    ) {
        use sqlx::Row;

        for &(name, sql, binds, index) in statements {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")));
            for _ in 0..binds {
                query = query.bind(None::<i64>);
            }
            let rows = query.fetch_all(store.reader()).await.unwrap();
            let plan: Vec<String> = rows.iter().map(|r| r.get("detail")).collect();
            assert!(
                plan.iter().any(|step| step.contains(index)),
                "{name}: {plan:#?}"
            );
            let full_scan = plan.iter().find(|step| {
                step.starts_with("SCAN ")
                    && !step.contains(" USING ")
                    && !step.contains("VIRTUAL TABLE")
            });
            assert!(full_scan.is_none(), "{name} scans a table: {plan:#?}");
        }
    }

    /// A store over a database made by `sql` run on a new one (which
    /// undoes a migration, to look like a database from before it), closed
    /// and opened again.
    async fn reopened_after(sql: &[&'static str]) -> (tempfile::TempDir, super::SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let cipher = ferry_core::crypto::Cipher::new(&[7; 32]).unwrap();
        let store = super::SqliteStore::open(&path, cipher.clone())
            .await
            .unwrap();
        for sql in sql {
            sqlx::query(*sql)
                .execute(&store.inner.writer)
                .await
                .unwrap();
        }
        store.close().await;
        let store = super::SqliteStore::open(&path, cipher).await.unwrap();
        (dir, store)
    }

    const AN_EVENT: &str = "INSERT INTO events (id, org_id, event_type, data, metadata, \
                            created_at) VALUES ('evt_a', 'org_a', 'order.paid', '{}', '{}', 0)";

    /// Databases made before migration 0002 had no count triggers: opening
    /// one recounts, and the counts follow every change from then on.
    #[tokio::test]
    async fn counts_are_rebuilt_for_databases_older_than_the_triggers() {
        use ferry_core::ports::Store;

        let (_dir, store) = reopened_after(&[
            "INSERT INTO orgs (id, name, created_at) VALUES ('org_a', 'a', 0)",
            AN_EVENT,
            "INSERT INTO deliveries (id, org_id, event_id, destination_id, status, \
             attempt_count, failures_counted, next_attempt_at, created_at, updated_at) VALUES \
             ('dlv_a', 'org_a', 'evt_a', 'dst_a', 'pending', 0, 0, 0, 0, 0), \
             ('dlv_b', 'org_a', 'evt_a', 'dst_a', 'dead', 1, 1, NULL, 0, 0)",
            // What a database from before 0002 looks like.
            "DROP TRIGGER deliveries_count_insert",
            "DROP TRIGGER deliveries_count_update",
            "DROP TRIGGER deliveries_count_delete",
            "UPDATE delivery_counts SET n = 0",
            "DELETE FROM _sqlx_migrations WHERE version = 2",
        ])
        .await;
        let counts = store.delivery_counts().await.unwrap();
        assert!(
            counts.contains(&(Pending, 1)) && counts.contains(&(Dead, 1)),
            "{counts:?}"
        );
        sqlx::query("UPDATE deliveries SET status = 'delivering' WHERE id = 'dlv_a'")
            .execute(&store.inner.writer)
            .await
            .unwrap();
        let counts = store.delivery_counts().await.unwrap();
        assert!(
            counts.contains(&(Pending, 0)) && counts.contains(&(Delivering, 1)),
            "{counts:?}"
        );
    }

    /// Deliveries made before migration 0009 had no event type of their
    /// own: opening such a database copies each one's from its event.
    #[tokio::test]
    async fn deliveries_older_than_their_event_type_get_it_from_their_event() {
        use ferry_core::ids::{DeliveryId, OrgId};
        use ferry_core::ports::Store;

        let (_dir, store) = reopened_after(&[
            "INSERT INTO orgs (id, name, created_at) VALUES ('org_a', 'a', 0)",
            AN_EVENT,
            "INSERT INTO deliveries (id, org_id, event_id, destination_id, status, \
             attempt_count, failures_counted, next_attempt_at, created_at, updated_at) VALUES \
             ('dlv_a', 'org_a', 'evt_a', 'dst_a', 'pending', 0, 0, 0, 0, 0)",
            // What a database from before 0009 looks like.
            "ALTER TABLE deliveries DROP COLUMN event_type",
            "DELETE FROM _sqlx_migrations WHERE version = 9",
        ])
        .await;
        let org: OrgId = "org_a".parse().unwrap();
        let id: DeliveryId = "dlv_a".parse().unwrap();
        let (delivery, _) = store.get_delivery(&org, &id).await.unwrap().unwrap();
        assert_eq!(delivery.event_type, "order.paid");
    }

    /// When a write finds the disk full, SQLite may roll the whole
    /// transaction back by itself (a failed COMMIT always does): the
    /// `ROLLBACK` of the dropped transaction then fails, and the writer
    /// connection stayed inside a transaction as far as the driver knew —
    /// every later write failed until a restart. Here the page limit of the
    /// connection plays the full disk, for a one-row statement (which SQLite
    /// rolls back with its whole transaction); the pool replaces the
    /// connection, and the next writes commit.
    #[tokio::test]
    async fn a_write_that_finds_the_disk_full_does_not_stop_later_writes() {
        use ferry_core::ids::OrgId;
        use ferry_core::org::Org;
        use ferry_core::ports::Store;

        let dir = tempfile::tempdir().unwrap();
        let cipher = ferry_core::crypto::Cipher::new(&[7; 32]).unwrap();
        let store = super::SqliteStore::open(&dir.path().join("full.db"), cipher)
            .await
            .unwrap();
        sqlx::query("CREATE TABLE blobs (b BLOB)")
            .execute(&store.inner.writer)
            .await
            .unwrap();
        for _ in 0..2 {
            let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
                .fetch_one(&store.inner.writer)
                .await
                .unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "PRAGMA max_page_count = {pages}"
            )))
            .execute(&store.inner.writer)
            .await
            .unwrap();
            let mut tx = store.write().await.unwrap();
            let error = sqlx::query("INSERT INTO blobs (b) VALUES (zeroblob(1000000))")
                .execute(&mut *tx)
                .await
                .map_err(super::db_error)
                .unwrap_err();
            assert!(
                matches!(error, ferry_core::StoreError::Full(_)),
                "{error:?}"
            );
            drop(tx);
            // Space again: the connection that replaced the stuck one has
            // no page limit.
            for _ in 0..2 {
                let org = Org {
                    id: OrgId::generate(),
                    name: "acme".into(),
                    alert_destinations: Vec::new(),
                    alerts: Default::default(),
                    created_at: chrono::Utc::now(),
                };
                store.create_org(&org).await.unwrap();
            }
        }
    }

    #[test]
    fn uniqueness_violations_name_their_table() {
        assert_eq!(
            super::unique_table("UNIQUE constraint failed: api_keys.hash"),
            Some("api_keys")
        );
        assert_eq!(super::unique_table("constraint failed"), None);
    }

    #[test]
    fn id_lists_are_json_arrays() {
        assert_eq!(super::id_list::<&str>(&[]), "[]");
        assert_eq!(super::id_list(&["evt_a", "evt_b"]), r#"["evt_a","evt_b"]"#);
    }
}
