//! The PostgreSQL server tests use (`FERRY_TEST_DATABASE_URL`, default the
//! local `test` database) and a schema of a test's own, dropped afterwards.

/// The PostgreSQL server tests connect to.
pub fn database_url() -> String {
    std::env::var("FERRY_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A schema owned by one test: dropped (best effort, with `psql`) when this
/// is dropped; a leftover schema only takes space.
pub struct PgSchema {
    pub name: String,
}

impl PgSchema {
    /// A fresh schema name with `prefix`; Ferry creates it on connect.
    pub fn new(prefix: &str) -> Self {
        Self {
            name: format!("{prefix}_{}", ferry_core::ids::unique_token()),
        }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .arg(database_url())
            .args([
                "-q",
                "-c",
                &format!(
                    "SET lock_timeout = '2s'; DROP SCHEMA IF EXISTS {} CASCADE",
                    self.name
                ),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}
