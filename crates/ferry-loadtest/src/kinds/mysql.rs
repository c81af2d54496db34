//! mysql: a table of the run's own with the kind's default columns
//! (`id` primary key, `type`, `timestamp`, `data` JSON), counted with
//! `COUNT(*)`. The publisher, like the kind, runs one committed `INSERT …
//! ON DUPLICATE KEY UPDATE id = id` per message on a pool of the kind's
//! size.

use std::time::Duration;

use anyhow::Context as _;
use ferry_destinations::sql::POOL_SIZE;
use reqwest::Url;
use serde_json::{Value, json};
use sqlx::AssertSqlSafe;
use sqlx::mysql::{MySqlPool, MySqlPoolOptions};
use sqlx::types::Json;

use super::Message;

/// The kind's default `timeout_ms`, as the pool's wait for a connection.
const TIMEOUT: Duration = Duration::from_secs(10);

async fn pool(url: &Url, size: u32) -> anyhow::Result<MySqlPool> {
    MySqlPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(TIMEOUT)
        .test_before_acquire(false)
        .connect(url.as_str())
        .await
        .with_context(|| {
            format!(
                "cannot connect to MySQL at {}",
                url.host_str().unwrap_or("")
            )
        })
}

pub struct Fixture {
    pool: MySqlPool,
    /// Lower-case letters, digits and `_`: used unquoted.
    table: String,
}

impl Fixture {
    pub async fn create(url: &Url, name: &str) -> anyhow::Result<Self> {
        let pool = pool(url, 1).await?;
        let table = format!("ferry_loadtest_{name}");
        let ddl = format!(
            "CREATE TABLE {table} (id VARCHAR(64) PRIMARY KEY, type VARCHAR(255) NOT NULL, \
             timestamp DATETIME(6) NOT NULL, data JSON NOT NULL)"
        );
        sqlx::raw_sql(AssertSqlSafe(ddl))
            .execute(&pool)
            .await
            .with_context(|| format!("cannot create table {table}"))?;
        Ok(Self { pool, table })
    }

    pub fn config(&self, url: &str) -> Value {
        json!({"url": url, "table": self.table})
    }

    pub async fn count(&self) -> anyhow::Result<u64> {
        let select = format!("SELECT COUNT(*) FROM {}", self.table);
        let (count,): (i64,) = sqlx::query_as(AssertSqlSafe(select))
            .fetch_one(&self.pool)
            .await
            .with_context(|| format!("cannot count the rows of {}", self.table))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    pub async fn publisher(&self, url: &Url) -> anyhow::Result<Publisher> {
        Ok(Publisher {
            pool: pool(url, POOL_SIZE).await?,
            insert: format!(
                "INSERT INTO {} (id, type, timestamp, data) VALUES (?, ?, ?, ?) \
                 ON DUPLICATE KEY UPDATE id = id",
                self.table
            ),
        })
    }

    pub async fn remove(self) -> anyhow::Result<()> {
        let drop = format!("DROP TABLE {}", self.table);
        sqlx::raw_sql(AssertSqlSafe(drop))
            .execute(&self.pool)
            .await
            .with_context(|| format!("cannot drop table {}", self.table))?;
        self.pool.close().await;
        Ok(())
    }
}

pub struct Publisher {
    pool: MySqlPool,
    insert: String,
}

impl Publisher {
    pub async fn publish(&self, message: &Message) -> anyhow::Result<()> {
        let event = &message.event;
        sqlx::query(AssertSqlSafe(self.insert.as_str()))
            .bind(event.id.as_str())
            .bind(event.event_type.as_str())
            .bind(event.created_at)
            .bind(Json(&event.data))
            .execute(&self.pool)
            .await
            .context("the insert failed")?;
        Ok(())
    }
}
