//! Running the real `evaluation-export` binary on a data directory of its
//! own, and reading what it recorded in its results database.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Stdio;

use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use tempfile::TempDir;
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_evaluation-export");

/// The service's data directory, deleted at the end of the test.
pub struct App {
    dir: TempDir,
}

impl App {
    pub fn new() -> App {
        App {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .arg("run")
            .args(args)
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--json")
            .env_remove("RUST_LOG")
            .kill_on_drop(true);
        command
    }

    /// `evaluation-export run ARGS --json` to the end; its summary.
    pub async fn run(&self, args: &[&str]) -> Value {
        let out = self.command(args).output().await.unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{args:?} failed: {}\n{stderr}",
            out.status
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "the summary is not JSON ({e}): {}\n{stderr}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// `evaluation-export run ARGS --json`, left running.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// Rows of the results database: `(evaluations stored, event ids
    /// recorded)`.
    pub async fn recorded(&self) -> (usize, HashSet<String>) {
        let options = SqliteConnectOptions::new()
            .filename(self.data_dir().join("results.db"))
            .read_only(true);
        let db = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap();
        let ids: Vec<Option<String>> = sqlx::query_scalar("SELECT event_id FROM evaluations")
            .fetch_all(&db)
            .await
            .unwrap();
        db.close().await;
        let stored = ids.len();
        (stored, ids.into_iter().flatten().collect())
    }
}

/// A number in the summary.
pub fn count(summary: &Value, path: &str) -> u64 {
    let value = path.split('.').fold(summary, |v, key| &v[key]);
    value
        .as_u64()
        .unwrap_or_else(|| panic!("{path} is not a count in {summary:#}"))
}
