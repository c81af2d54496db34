//! postgres: a table of the run's own with the kind's default columns
//! (`id` text primary key, `type`, `timestamp`, `data` jsonb), counted with
//! `COUNT(*)`. The publisher, like the kind, runs one committed `INSERT …
//! ON CONFLICT (id) DO NOTHING` per message on a pool of the kind's size.

use std::time::Duration;

use anyhow::Context as _;
use ferry_destinations::sql::POOL_SIZE;
use reqwest::Url;
use serde_json::{Value, json};
use sqlx::AssertSqlSafe;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::types::Json;

use super::Message;

/// The kind's default `timeout_ms`, as the pool's wait for a connection.
const TIMEOUT: Duration = Duration::from_secs(10);

async fn pool(url: &Url, size: u32) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(TIMEOUT)
        .test_before_acquire(false)
        .connect(url.as_str())
        .await
        .with_context(|| {
            format!(
                "cannot connect to PostgreSQL at {}",
                url.host_str().unwrap_or("")
            )
        })
}

pub struct Fixture {
    pool: PgPool,
    /// Lower-case letters, digits and `_`: used unquoted.
    table: String,
}

impl Fixture {
    pub async fn create(url: &Url, name: &str) -> anyhow::Result<Self> {
        let pool = pool(url, 1).await?;
        let table = format!("ferry_loadtest_{name}");
        let ddl = format!(
            "CREATE TABLE {table} (id text PRIMARY KEY, type text NOT NULL, \
             timestamp timestamptz NOT NULL, data jsonb NOT NULL)"
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
                "INSERT INTO {} (id, type, timestamp, data) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (id) DO NOTHING",
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
    pool: PgPool,
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
