//! The service's own store: every run, every evaluation's result, and how
//! each result's export stands — one SQLite file in the data directory,
//! separate from Ferry's.
//!
//! An evaluation is stored before it is exported, and the event id of its
//! export only once `send` returned it: a row without an event id is an
//! export still to make (a refused `send`, or a crash in between), and is
//! sent again under the same caller id, which Ferry treats as a duplicate
//! if the first `send` did land.
//!
//! WAL with `synchronous=NORMAL`: a commit survives the process being
//! killed (it is in the WAL file); a power cut may lose the last commits,
//! which only means evaluations scored again and exports sent again as
//! duplicates.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use ferry::port::{DestinationId, EventId};
use serde::Serialize;
use sqlx::Row as _;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use ulid::Ulid;

use crate::evaluation::{ConfusionMatrix, Metrics};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// How long a statement waits for the file while another process holds
/// its write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Evaluations still to export, read a page at a time.
const PAGE: i64 = 512;

/// Why the results store failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open the results database {}: {source}", path.display())]
    Open { path: PathBuf, source: sqlx::Error },
    #[error("cannot prepare the results database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("results database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("results database holds an invalid {what}: {value:?}")]
    Corrupt { what: &'static str, value: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A run's id: a ULID, written in lower case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(Ulid);

impl RunId {
    pub fn new() -> RunId {
        RunId(Ulid::new())
    }
}

impl Default for RunId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_string().to_ascii_lowercase())
    }
}

impl FromStr for RunId {
    type Err = ulid::DecodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ulid::from_string(&s.to_ascii_uppercase()).map(RunId)
    }
}

/// One run: `planned` evaluations of a data set, exported to a destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub id: RunId,
    pub destination: DestinationId,
    pub dataset: String,
    pub seed: u32,
    pub planned: u32,
}

/// Which evaluation: its run and its number in the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub run: RunId,
    pub n: u32,
}

/// One evaluation's result, with what its export needs from its run.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub key: Key,
    pub dataset: String,
    pub seed: u32,
    pub metrics: Metrics,
    pub duration: Duration,
    pub completed_at: DateTime<Utc>,
}

/// How an export stands, as last read through the port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExportState {
    Pending,
    Retrying,
    Delivered,
    /// Refused for good by the destination.
    Failed,
    /// Every retry spent: in Ferry's dead-letter queue.
    Dead,
    /// Ferry does not know the event (its store was replaced): read again
    /// on each start, not waited for.
    Unknown,
}

impl ExportState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Retrying => "retrying",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Dead => "dead",
            Self::Unknown => "unknown",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "pending" => Self::Pending,
            "retrying" => Self::Retrying,
            "delivered" => Self::Delivered,
            "failed" => Self::Failed,
            "dead" => Self::Dead,
            "unknown" => Self::Unknown,
            other => return Err(corrupt("export state", other)),
        })
    }

    /// Still on its way: Ferry will move it on by itself.
    pub fn in_flight(self) -> bool {
        matches!(self, Self::Pending | Self::Retrying)
    }
}

/// What one `send` did.
#[derive(Debug, Clone, PartialEq)]
pub enum Export {
    /// `send` returned Ok: the event id and how it stood.
    Accepted {
        event_id: EventId,
        state: ExportState,
    },
    /// `send` failed; the evaluation stays to be exported.
    Refused { error: String },
}

/// An export whose state may still change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenExport {
    pub key: Key,
    pub event_id: EventId,
    /// As last read.
    pub state: ExportState,
}

/// A state read through the port.
#[derive(Debug, Clone, PartialEq)]
pub struct StateRead {
    pub key: Key,
    pub state: ExportState,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// A destination's exports by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ExportCounts {
    pub delivered: u64,
    pub pending: u64,
    pub retrying: u64,
    pub failed: u64,
    pub dead: u64,
    pub unknown: u64,
    /// Stored evaluations without an accepted export yet.
    pub not_exported: u64,
}

impl ExportCounts {
    /// Exports Ferry is still working on.
    pub fn in_flight(&self) -> u64 {
        self.pending + self.retrying
    }

    /// Every stored evaluation of the destination.
    pub fn evaluations(&self) -> u64 {
        self.delivered
            + self.pending
            + self.retrying
            + self.failed
            + self.dead
            + self.unknown
            + self.not_exported
    }
}

/// The results database.
#[derive(Debug, Clone)]
pub struct Results {
    pool: SqlitePool,
    path: PathBuf,
}

impl Results {
    /// Opens (creating if missing) the database at `path`.
    pub async fn open(path: &Path) -> Result<Results> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        // One connection: the service writes from one task, in order.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(|source| Error::Open {
                path: path.to_path_buf(),
                source,
            })?;
        MIGRATOR.run(&pool).await?;
        Ok(Results {
            pool,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records a new run.
    pub async fn start_run(
        &self,
        destination: &DestinationId,
        dataset: &str,
        seed: u32,
        planned: u32,
    ) -> Result<Run> {
        let run = Run {
            id: RunId::new(),
            destination: destination.clone(),
            dataset: dataset.to_owned(),
            seed,
            planned,
        };
        sqlx::query(
            "INSERT INTO runs (id, destination_id, dataset, seed, planned, started_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(run.id.to_string())
        .bind(destination.to_string())
        .bind(dataset)
        .bind(i64::from(seed))
        .bind(i64::from(planned))
        .bind(timestamp(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(run)
    }

    /// The latest run to `destination` that did not finish (the process
    /// stopped or crashed during it).
    pub async fn unfinished_run(&self, destination: &DestinationId) -> Result<Option<Run>> {
        let row = sqlx::query(
            "SELECT id, dataset, seed, planned FROM runs
             WHERE destination_id = ? AND finished_at IS NULL
             ORDER BY started_at DESC LIMIT 1",
        )
        .bind(destination.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(Run {
                id: run_id(row.try_get("id")?)?,
                destination: destination.clone(),
                dataset: row.try_get("dataset")?,
                seed: number(row.try_get("seed")?, "seed")?,
                planned: number(row.try_get("planned")?, "planned count")?,
            })
        })
        .transpose()
    }

    pub async fn finish_run(&self, run: &RunId) -> Result<()> {
        sqlx::query("UPDATE runs SET finished_at = ? WHERE id = ?")
            .bind(timestamp(Utc::now()))
            .bind(run.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The numbers of the run's evaluations already stored.
    pub async fn stored(&self, run: &RunId) -> Result<HashSet<u32>> {
        let rows: Vec<i64> = sqlx::query_scalar("SELECT n FROM evaluations WHERE run_id = ?")
            .bind(run.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|n| number(n, "evaluation number"))
            .collect()
    }

    /// Stores results, in one transaction.
    pub async fn insert(&self, evaluations: &[Evaluation]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for e in evaluations {
            let m = &e.metrics;
            let c = &m.confusion_matrix;
            sqlx::query(
                "INSERT INTO evaluations (run_id, n, accuracy, precision, recall, f1,
                     true_positives, false_positives, true_negatives, false_negatives,
                     duration_us, completed_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(e.key.run.to_string())
            .bind(i64::from(e.key.n))
            .bind(m.accuracy)
            .bind(m.precision)
            .bind(m.recall)
            .bind(m.f1)
            .bind(i64::from(c.true_positives))
            .bind(i64::from(c.false_positives))
            .bind(i64::from(c.true_negatives))
            .bind(i64::from(c.false_negatives))
            .bind(i64::try_from(e.duration.as_micros()).unwrap_or(i64::MAX))
            .bind(timestamp(e.completed_at))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records what each `send` did, in one transaction.
    pub async fn record_exports(&self, exports: &[(Key, Export)]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for (key, export) in exports {
            let query = match export {
                Export::Accepted { event_id, state } => sqlx::query(
                    "UPDATE evaluations SET event_id = ?, export_state = ?, export_error = NULL
                     WHERE run_id = ? AND n = ?",
                )
                .bind(event_id.to_string())
                .bind(state.as_str()),
                Export::Refused { error } => sqlx::query(
                    "UPDATE evaluations SET export_error = ? WHERE run_id = ? AND n = ?",
                )
                .bind(error.clone()),
            };
            query
                .bind(key.run.to_string())
                .bind(i64::from(key.n))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Up to a page of `destination`'s evaluations without an accepted
    /// export, in key order after `after`.
    pub async fn unexported(
        &self,
        destination: &DestinationId,
        after: Option<Key>,
    ) -> Result<Vec<Evaluation>> {
        let (run, n) = after.map_or((String::new(), -1), |k| (k.run.to_string(), i64::from(k.n)));
        let rows = sqlx::query(
            "SELECT e.*, r.dataset, r.seed FROM evaluations e JOIN runs r ON r.id = e.run_id
             WHERE r.destination_id = ? AND e.event_id IS NULL AND (e.run_id, e.n) > (?, ?)
             ORDER BY e.run_id, e.n LIMIT ?",
        )
        .bind(destination.to_string())
        .bind(run)
        .bind(n)
        .bind(PAGE)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(evaluation).collect()
    }

    /// `destination`'s exports whose state may still change.
    pub async fn open_exports(&self, destination: &DestinationId) -> Result<Vec<OpenExport>> {
        let rows = sqlx::query(
            "SELECT e.run_id, e.n, e.event_id, e.export_state FROM evaluations e JOIN runs r ON r.id = e.run_id
             WHERE r.destination_id = ? AND e.event_id IS NOT NULL
               AND e.export_state IN ('pending', 'retrying', 'unknown')",
        )
        .bind(destination.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let event_id: String = row.try_get("event_id")?;
                let state: String = row.try_get("export_state")?;
                Ok(OpenExport {
                    key: key(row)?,
                    event_id: event_id
                        .parse()
                        .map_err(|_| corrupt("event id", &event_id))?,
                    state: ExportState::parse(&state)?,
                })
            })
            .collect()
    }

    /// Records states read through the port, in one transaction.
    pub async fn record_states(&self, reads: &[StateRead]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for read in reads {
            sqlx::query(
                "UPDATE evaluations SET export_state = ?, delivered_at = ? WHERE run_id = ? AND n = ?",
            )
            .bind(read.state.as_str())
            .bind(read.delivered_at.map(timestamp))
            .bind(read.key.run.to_string())
            .bind(i64::from(read.key.n))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// `destination`'s stored evaluations by export state.
    pub async fn export_counts(&self, destination: &DestinationId) -> Result<ExportCounts> {
        let rows = sqlx::query(
            "SELECT e.export_state AS state, count(*) AS n
             FROM evaluations e JOIN runs r ON r.id = e.run_id
             WHERE r.destination_id = ? GROUP BY e.export_state",
        )
        .bind(destination.to_string())
        .fetch_all(&self.pool)
        .await?;
        let mut counts = ExportCounts::default();
        for row in &rows {
            let n = u64::try_from(row.try_get::<i64, _>("n")?).unwrap_or(0);
            let state: Option<String> = row.try_get("state")?;
            let slot = match state.as_deref().map(ExportState::parse).transpose()? {
                None => &mut counts.not_exported,
                Some(ExportState::Pending) => &mut counts.pending,
                Some(ExportState::Retrying) => &mut counts.retrying,
                Some(ExportState::Delivered) => &mut counts.delivered,
                Some(ExportState::Failed) => &mut counts.failed,
                Some(ExportState::Dead) => &mut counts.dead,
                Some(ExportState::Unknown) => &mut counts.unknown,
            };
            *slot += n;
        }
        Ok(counts)
    }

    /// Closes the database, checkpointing its WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn corrupt(what: &'static str, value: impl Into<String>) -> Error {
    Error::Corrupt {
        what,
        value: value.into(),
    }
}

fn run_id(s: String) -> Result<RunId> {
    s.parse().map_err(|_| corrupt("run id", s))
}

fn number(n: i64, what: &'static str) -> Result<u32> {
    u32::try_from(n).map_err(|_| corrupt(what, n.to_string()))
}

fn key(row: &SqliteRow) -> Result<Key> {
    Ok(Key {
        run: run_id(row.try_get("run_id")?)?,
        n: number(row.try_get("n")?, "evaluation number")?,
    })
}

fn evaluation(row: &SqliteRow) -> Result<Evaluation> {
    let count = |column: &'static str| -> Result<u32> { number(row.try_get(column)?, column) };
    let completed_at: String = row.try_get("completed_at")?;
    Ok(Evaluation {
        key: key(row)?,
        dataset: row.try_get("dataset")?,
        seed: count("seed")?,
        metrics: Metrics {
            accuracy: row.try_get("accuracy")?,
            precision: row.try_get("precision")?,
            recall: row.try_get("recall")?,
            f1: row.try_get("f1")?,
            confusion_matrix: ConfusionMatrix {
                true_positives: count("true_positives")?,
                false_positives: count("false_positives")?,
                true_negatives: count("true_negatives")?,
                false_negatives: count("false_negatives")?,
            },
        },
        duration: Duration::from_micros(
            u64::try_from(row.try_get::<i64, _>("duration_us")?).unwrap_or(0),
        ),
        completed_at: DateTime::parse_from_rfc3339(&completed_at)
            .map_err(|_| corrupt("timestamp", &completed_at))?
            .with_timezone(&Utc),
    })
}

#[cfg(test)]
mod tests {
    use chrono::SubsecRound as _;

    use super::*;
    use crate::evaluation::{Dataset, evaluate};

    fn dst() -> DestinationId {
        "dst_01jq3v2a4c6e8g0j2m4p6r8t0v".parse().unwrap()
    }

    fn scored(run: &Run, n: u32) -> Evaluation {
        Evaluation {
            key: Key { run: run.id, n },
            dataset: run.dataset.clone(),
            seed: run.seed,
            metrics: evaluate(&Dataset::bundled().unwrap(), run.seed, n),
            duration: Duration::from_micros(42),
            // Stored to the microsecond.
            completed_at: Utc::now().trunc_subsecs(6),
        }
    }

    #[test]
    fn run_ids_read_back_in_either_case() {
        let id = RunId::new();
        let text = id.to_string();
        assert_eq!(text, text.to_ascii_lowercase());
        assert_eq!(text.parse::<RunId>().unwrap(), id);
        assert_eq!(text.to_ascii_uppercase().parse::<RunId>().unwrap(), id);
    }

    #[tokio::test]
    async fn an_evaluation_is_to_export_until_its_event_id_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let results = Results::open(&dir.path().join("results.db")).await.unwrap();
        let run = results
            .start_run(&dst(), "churn_predictions", 3, 4)
            .await
            .unwrap();
        let stored: Vec<_> = (0..3).map(|n| scored(&run, n)).collect();
        results.insert(&stored).await.unwrap();
        assert_eq!(
            results.stored(&run.id).await.unwrap(),
            HashSet::from([0, 1, 2])
        );
        assert_eq!(
            results.unfinished_run(&dst()).await.unwrap(),
            Some(run.clone())
        );

        let event_id: EventId = "evt_01jq3v2a4c6e8g0j2m4p6r8t0v".parse().unwrap();
        results
            .record_exports(&[
                (
                    stored[0].key,
                    Export::Accepted {
                        event_id: event_id.clone(),
                        state: ExportState::Pending,
                    },
                ),
                (
                    stored[1].key,
                    Export::Refused {
                        error: "the store cannot write".into(),
                    },
                ),
            ])
            .await
            .unwrap();
        let unexported = results.unexported(&dst(), None).await.unwrap();
        assert_eq!(unexported, stored[1..]);
        let after = results
            .unexported(&dst(), Some(stored[1].key))
            .await
            .unwrap();
        assert_eq!(after, stored[2..]);
        let open = results.open_exports(&dst()).await.unwrap();
        assert_eq!(
            open,
            [OpenExport {
                key: stored[0].key,
                event_id,
                state: ExportState::Pending,
            }]
        );

        results
            .record_states(&[StateRead {
                key: stored[0].key,
                state: ExportState::Delivered,
                delivered_at: Some(Utc::now()),
            }])
            .await
            .unwrap();
        assert!(results.open_exports(&dst()).await.unwrap().is_empty());
        let counts = results.export_counts(&dst()).await.unwrap();
        assert_eq!((counts.delivered, counts.not_exported), (1, 2));
        assert_eq!(counts.evaluations(), 3);

        results.finish_run(&run.id).await.unwrap();
        assert_eq!(results.unfinished_run(&dst()).await.unwrap(), None);
        results.close().await;
    }
}
