//! The PostgreSQL backend (scale-out): connecting, the connection pool, and
//! the helpers every query module shares (error mapping, timestamps).
//!
//! - Many Ferry processes on many hosts share one schema and meet only
//!   here. Every statement is written for concurrent writers: leases are
//!   taken with `FOR UPDATE SKIP LOCKED` (two workers never lease the same
//!   delivery), duplicates are resolved by `ON CONFLICT (id) DO NOTHING`,
//!   and completions move a delivery only while the completing owner still
//!   holds its lease.
//! - Durable writes (ingest, operator actions) commit with the server's
//!   `synchronous_commit` (on by default: flushed before the commit
//!   returns). Queue bookkeeping (leases, attempt records, give-backs)
//!   commits with `synchronous_commit = off`: a server crash may forget the
//!   last few, which only means another attempt (at-least-once), as with
//!   SQLite's relaxed writes.
//! - Timestamps are BIGINT unix microseconds, as on SQLite, so that the two
//!   adapters share their SQL's reasoning; filters take `since` inclusive and
//!   `until` exclusive.
//! - Batches and id lists are bound as arrays and expanded with `UNNEST`
//!   (`= ANY($n)` for id lists): one fixed SQL text per statement whatever
//!   the batch size (so statements stay in the prepared-statement cache) and
//!   no limit on binds; `WITH ORDINALITY` keeps the caller's row order, and
//!   with it the order of `seq` (events go in in id order instead, so that
//!   concurrent batches sharing ids cannot deadlock: see `backend.rs`).
//! - A transaction whose COMMIT fails (a full disk, a lost connection, a
//!   check deferred to commit time) leaves no pooled connection stuck in
//!   it: the driver counts the transaction as ended once it is dropped and
//!   sends its ROLLBACK before the connection is used again (a mere warning
//!   if PostgreSQL has already ended it), and a connection that is gone
//!   fails the pool's check on release and is replaced. SQLite's driver
//!   needs a guard for this (`sqlite::leaves_no_transaction`); this one
//!   does not, as a conformance check shows.
//! - The schema is the first one of the connection's `search_path`
//!   ([`PgOptions::schema`]); migrations run there when the store connects
//!   (sqlx serializes concurrent migrators with an advisory lock).

mod backend;
mod external_queue;
mod ports;
mod queue;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use ferry_core::StoreError;
use ferry_core::crypto::Cipher;
use ferry_core::error::StoreResult;
use sqlx::Connection;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgListener;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::failure::{self, Failure, migrate_error};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// How the store connects, beyond the URL.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Connections in the pool.
    pub max_connections: u32,
    /// How long a caller waits for a connection (or a new connection for a
    /// handshake) before the store reports itself unavailable.
    pub acquire_timeout: Duration,
    /// The schema that holds Ferry's tables, created if missing and put
    /// first in every connection's `search_path`. `None` keeps the
    /// server's `search_path` (normally `public`).
    pub schema: Option<String>,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            max_connections: 12,
            acquire_timeout: Duration::from_secs(10),
            schema: None,
        }
    }
}

/// The scale-out store: state and delivery queue in PostgreSQL, shared by
/// any number of Ferry processes. Cheap to clone (the pool and the cipher
/// are shared).
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    cipher: Cipher,
    /// The NOTIFY channel of this schema: transactions that make work due
    /// signal it, workers listen (see [`WorkListener`]).
    channel: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/db`) with the default
    /// [`PgOptions`] and runs the migrations. Destination secrets are sealed
    /// with `cipher`.
    pub async fn connect(url: &str, cipher: Cipher) -> StoreResult<Self> {
        Self::connect_with(url, cipher, &PgOptions::default()).await
    }

    /// `connect` with explicit options (pool size, schema).
    pub async fn connect_with(url: &str, cipher: Cipher, options: &PgOptions) -> StoreResult<Self> {
        let mut connect = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Unavailable(format!("invalid PostgreSQL URL: {e}")))?
            .application_name("ferry");
        if let Some(schema) = &options.schema {
            create_schema(&connect, schema).await?;
            connect = connect.options([("search_path", quote_ident(schema))]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(|e| connect_error(url, e))?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| migrate_error(e, db_error))?;
        let channel = format!(
            "ferry_work_{}",
            options.schema.as_deref().unwrap_or("public")
        );
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                cipher,
                channel,
            }),
        })
    }

    /// Closes every connection. Later calls fail with
    /// `StoreError::Unavailable`.
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }

    /// Listens for work made due by other processes (new deliveries,
    /// requeues, released or expired leases): a worker wakes at once instead
    /// of waiting for its next poll.
    pub async fn listen_for_work(&self) -> StoreResult<WorkListener> {
        let mut listener = PgListener::connect_with(&self.inner.pool)
            .await
            .map_err(db_error)?;
        listener
            .listen(&self.inner.channel)
            .await
            .map_err(db_error)?;
        Ok(WorkListener { listener })
    }

    fn channel(&self) -> &str {
        &self.inner.channel
    }

    fn pool(&self) -> &PgPool {
        &self.inner.pool
    }
}

/// Notifications that work may be due. Spurious ones are harmless: the
/// worker polls and finds nothing.
pub struct WorkListener {
    listener: PgListener,
}

impl WorkListener {
    /// Waits for the next notification. After a lost connection it
    /// reconnects by itself and reports one wake-up (work may have been
    /// missed meanwhile).
    pub async fn next(&mut self) -> StoreResult<()> {
        self.listener.recv().await.map(|_| ()).map_err(db_error)
    }
}

/// Creates the schema if it is missing, on a connection of its own (before
/// the pool exists, since the pool's connections name it in `search_path`).
async fn create_schema(connect: &PgConnectOptions, schema: &str) -> StoreResult<()> {
    let mut conn = sqlx::PgConnection::connect_with(connect)
        .await
        .map_err(|e| connect_error(&describe(connect), e))?;
    let sql = format!("CREATE SCHEMA IF NOT EXISTS {}", quote_ident(schema));
    let created = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await;
    // Best effort: the connection is dropped either way.
    let _ = conn.close().await;
    match created {
        Ok(_) => Ok(()),
        // Two stores creating the same schema at once: one of them wins.
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("23505") => Ok(()),
        Err(e) => Err(db_error(e)),
    }
}

fn describe(connect: &PgConnectOptions) -> String {
    format!("{}:{}", connect.get_host(), connect.get_port())
}

/// An SQL identifier, quoted (schema names come from configuration).
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Names where the store failed to connect, without the URL's password.
fn connect_error(url: &str, e: sqlx::Error) -> StoreError {
    let place = match PgConnectOptions::from_str(url) {
        Ok(o) => describe(&o),
        Err(_) => url.split('@').next_back().unwrap_or_default().to_owned(),
    };
    match db_error(e) {
        StoreError::Unavailable(msg) => {
            StoreError::Unavailable(format!("cannot connect to PostgreSQL at {place}: {msg}"))
        }
        other => other,
    }
}

/// Maps a driver error onto the ports' error by SQLSTATE, in Ferry's words
/// (`crate::failure`); the driver's message goes to the log.
pub(crate) fn db_error(e: sqlx::Error) -> StoreError {
    failure(&e).into_error(&e)
}

fn failure(e: &sqlx::Error) -> Failure<'_> {
    use sqlx::error::ErrorKind;
    failure::classify(e, |db| {
        let code = db.code().unwrap_or_default();
        match db.kind() {
            ErrorKind::UniqueViolation => Failure::Duplicate(db.table()),
            ErrorKind::ForeignKeyViolation => Failure::MissingReference,
            // Any other integrity constraint violation.
            _ if code.starts_with("23") => Failure::Rule,
            // disk_full
            _ if code == "53100" => Failure::Full,
            // data_corrupted, index_corrupted; data exceptions (a stored
            // value that does not fit what it is read as).
            _ if code.starts_with("XX00") || code.starts_with("22") => Failure::Corrupt,
            // Connection failures (08), serialization failures and
            // deadlocks (40), insufficient resources (53), operator
            // intervention such as a shutdown (57), read-only (25006) and
            // anything else: storage cannot serve this now.
            _ => Failure::Unavailable,
        }
    })
}

/// Ids as one array bind (`= ANY($n)`, `UNNEST($n)`).
fn id_array<T: AsRef<str>>(ids: &[T]) -> Vec<&str> {
    ids.iter().map(AsRef::as_ref).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(super::quote_ident("ferry"), "\"ferry\"");
        assert_eq!(super::quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
