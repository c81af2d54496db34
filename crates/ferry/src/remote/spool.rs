//! The remote client's spool: a small SQLite database in the spool
//! directory where each event is committed before `send` answers, and from
//! which the forwarder takes them. Concurrent sends share a commit (a
//! writer task batches them), so `send` costs about one fsync however many
//! callers there are.

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ferry_core::{DestinationId, EventId};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::error::Error;
use crate::port::PortError;

/// Sends committed together, at most.
const MAX_BATCH: usize = 256;
/// Sends waiting for the writer; past this, callers wait.
const QUEUE: usize = 4_096;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS spooled (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    destination_id TEXT NOT NULL,
    body TEXT NOT NULL,
    spooled_at TEXT NOT NULL,
    tries INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE TABLE IF NOT EXISTS refused (
    event_id TEXT PRIMARY KEY,
    destination_id TEXT NOT NULL,
    code TEXT,
    message TEXT NOT NULL,
    refused_at TEXT NOT NULL
);";

/// An event waiting to be forwarded.
#[derive(Debug, Clone)]
pub(crate) struct Spooled {
    pub seq: i64,
    pub event_id: EventId,
    pub destination_id: DestinationId,
    /// The body of `POST /v1/destinations/{id}/events`.
    pub body: String,
}

/// What became of one forward.
#[derive(Debug, Clone)]
pub(crate) enum Forward {
    /// The server has the event (new or a duplicate).
    Taken,
    /// The server will never take it (an unknown destination, an invalid
    /// event): kept aside with the reason.
    Refused {
        code: Option<String>,
        message: String,
    },
    /// Not now: the server is down, busy or refuses the key; try again.
    Later(String),
}

/// An event the server refused for good: why, in its words.
#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    pub code: Option<String>,
    pub message: String,
    pub at: DateTime<Utc>,
}

struct Append {
    event_id: EventId,
    destination_id: DestinationId,
    body: String,
    done: oneshot::Sender<Result<(), String>>,
}

/// The spool of one directory (locked: one process at a time).
pub(crate) struct Spool {
    pool: SqlitePool,
    appends: mpsc::Sender<Append>,
    /// Wakes the forwarder after a commit.
    pub(crate) added: std::sync::Arc<Notify>,
    /// Held until `close`.
    lock: std::sync::Mutex<Option<File>>,
}

impl Spool {
    pub(crate) async fn open(dir: &Path) -> Result<Spool, Error> {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::Start(format!(
                "cannot create the spool directory {}: {e}",
                dir.display()
            ))
        })?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("spool.lock"))
            .map_err(|e| Error::Start(format!("cannot open the spool's lock file: {e}")))?;
        if lock.try_lock().is_err() {
            return Err(Error::Start(format!(
                "another process is using the spool in {}; give each client its own spool_dir",
                dir.display()
            )));
        }
        let options = SqliteConnectOptions::from_str("sqlite://spool.db")
            .map_err(|e| Error::Start(e.to_string()))?
            .filename(dir.join("spool.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // An acknowledged send survives a power cut, not only a crash.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| {
                Error::Start(format!("cannot open the spool in {}: {e}", dir.display()))
            })?;
        sqlx::raw_sql(SCHEMA)
            .execute(&pool)
            .await
            .map_err(|e| Error::Start(format!("cannot prepare the spool: {e}")))?;
        let (appends, queue) = mpsc::channel(QUEUE);
        let added = std::sync::Arc::new(Notify::new());
        tokio::spawn(write(pool.clone(), queue, added.clone()));
        Ok(Spool {
            pool,
            appends,
            added,
            lock: std::sync::Mutex::new(Some(lock)),
        })
    }

    /// Commits an event (a known id is kept as it is); answers after the
    /// commit.
    pub(crate) async fn append(
        &self,
        event_id: EventId,
        destination_id: DestinationId,
        body: String,
    ) -> Result<(), PortError> {
        let (done, answer) = oneshot::channel();
        self.appends
            .send(Append {
                event_id,
                destination_id,
                body,
                done,
            })
            .await
            .map_err(|_| PortError::Closed)?;
        answer
            .await
            .map_err(|_| PortError::Closed)?
            .map_err(|e| PortError::Unavailable(format!("the spool cannot write: {e}")))
    }

    /// The oldest events waiting, up to `limit`.
    pub(crate) async fn oldest(&self, limit: u32) -> Result<Vec<Spooled>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT seq, event_id, destination_id, body FROM spooled ORDER BY seq LIMIT ?1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .filter_map(|row| {
                Some(Spooled {
                    seq: row.get("seq"),
                    event_id: EventId::parse(row.get("event_id")).ok()?,
                    destination_id: DestinationId::parse(row.get("destination_id")).ok()?,
                    body: row.get("body"),
                })
            })
            .collect())
    }

    /// Records what a round of forwards did, in one transaction: events
    /// the server has leave the spool, events it refused for good are kept
    /// aside with the reason (for `status`), and events to try again count
    /// the try and its error.
    pub(crate) async fn settle(&self, round: &[(Spooled, Forward)]) -> Result<(), sqlx::Error> {
        let now = Utc::now().to_rfc3339();
        let mut tx = self.pool.begin().await?;
        for (event, forward) in round {
            match forward {
                Forward::Taken => {}
                Forward::Refused { code, message } => {
                    sqlx::query(
                        "INSERT OR REPLACE INTO refused
                             (event_id, destination_id, code, message, refused_at)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )
                    .bind(event.event_id.as_str())
                    .bind(event.destination_id.as_str())
                    .bind(code.as_deref())
                    .bind(message)
                    .bind(&now)
                    .execute(&mut *tx)
                    .await?;
                }
                Forward::Later(error) => {
                    sqlx::query(
                        "UPDATE spooled SET tries = tries + 1, last_error = ?2 WHERE seq = ?1",
                    )
                    .bind(event.seq)
                    .bind(error)
                    .execute(&mut *tx)
                    .await?;
                    continue;
                }
            }
            sqlx::query("DELETE FROM spooled WHERE seq = ?1")
                .bind(event.seq)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }

    /// Whether the event still waits in the spool for `destination`.
    pub(crate) async fn waiting(
        &self,
        event_id: &EventId,
        destination: &DestinationId,
    ) -> Result<bool, PortError> {
        let found =
            sqlx::query("SELECT 1 FROM spooled WHERE event_id = ?1 AND destination_id = ?2")
                .bind(event_id.as_str())
                .bind(destination.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(read_error)?;
        Ok(found.is_some())
    }

    /// Why the server refused the event, if it did.
    pub(crate) async fn refusal(
        &self,
        event_id: &EventId,
        destination: &DestinationId,
    ) -> Result<Option<Refusal>, PortError> {
        let row = sqlx::query(
            "SELECT code, message, refused_at FROM refused WHERE event_id = ?1 AND destination_id = ?2",
        )
        .bind(event_id.as_str())
        .bind(destination.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(read_error)?;
        Ok(row.map(|row| Refusal {
            code: row.get("code"),
            message: row.get("message"),
            at: DateTime::parse_from_rfc3339(row.get::<&str, _>("refused_at"))
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|_| Utc::now()),
        }))
    }

    /// Events waiting.
    pub(crate) async fn depth(&self) -> Result<u64, sqlx::Error> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM spooled")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Closes the database and unlocks the directory for the next client.
    pub(crate) async fn close(&self) {
        self.pool.close().await;
        drop(self.lock.lock().unwrap_or_else(|e| e.into_inner()).take());
    }
}

fn read_error(error: sqlx::Error) -> PortError {
    PortError::Unavailable(format!("the spool cannot be read: {error}"))
}

/// The writer: commits waiting appends together, then answers each.
async fn write(pool: SqlitePool, mut queue: mpsc::Receiver<Append>, added: std::sync::Arc<Notify>) {
    let mut batch: Vec<Append> = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let result = commit(&pool, &batch).await.map_err(|e| e.to_string());
        if result.is_ok() {
            added.notify_one();
        }
        for append in batch.drain(..) {
            let _ = append.done.send(result.clone());
        }
    }
}

async fn commit(pool: &SqlitePool, batch: &[Append]) -> Result<(), sqlx::Error> {
    let now = Utc::now().to_rfc3339();
    let mut tx = pool.begin().await?;
    for a in batch {
        sqlx::query(
            "INSERT OR IGNORE INTO spooled (event_id, destination_id, body, spooled_at)
             VALUES (?1, ?2, ?3, ?4)",
        )
        .bind(a.event_id.as_str())
        .bind(a.destination_id.as_str())
        .bind(&a.body)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}
