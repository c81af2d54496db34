//! postgres and mysql: a table of the run's own with the kind's default
//! columns (`id` primary key, `type`, `timestamp`, `data` as JSON), counted
//! with `COUNT(*)`. The publisher, like the kind, runs one committed insert
//! per message that leaves an id already there alone (`ON CONFLICT (id) DO
//! NOTHING`, `ON DUPLICATE KEY UPDATE id = id`), on a pool of the kind's
//! size.
//!
//! Both kinds do the same thing with a different server, so the fixture and
//! the publisher are written once over sqlx's `Database`; a [`Dialect`]
//! supplies only what differs: the driver, the column types and the insert's
//! placeholders and conflict clause.

use std::marker::PhantomData;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use ferry_destinations::sql::POOL_SIZE;
use reqwest::Url;
use serde_json::{Value, json};
use sqlx::pool::PoolOptions;
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, Database, Encode, Executor, FromRow, IntoArguments, Pool, Type};

use super::Message;

/// The kind's default `timeout_ms`, as the pool's wait for a connection.
const TIMEOUT: Duration = Duration::from_secs(10);

/// What one database kind supplies to the shared table driver.
pub trait Dialect {
    type DB: Database;
    /// The server, as named when a connection fails.
    const SERVER: &'static str;
    /// The columns of `CREATE TABLE`, as the kind's default config expects.
    const COLUMNS: &'static str;
    /// The insert's four placeholders (id, type, timestamp, data).
    const VALUES: &'static str;
    /// What the insert does when the id is already there: nothing.
    const ON_CONFLICT: &'static str;
}

/// PostgreSQL.
pub struct Postgres;

impl Dialect for Postgres {
    type DB = sqlx::Postgres;
    const SERVER: &'static str = "PostgreSQL";
    const COLUMNS: &'static str = "id text PRIMARY KEY, type text NOT NULL, \
         timestamp timestamptz NOT NULL, data jsonb NOT NULL";
    const VALUES: &'static str = "($1, $2, $3, $4)";
    const ON_CONFLICT: &'static str = "ON CONFLICT (id) DO NOTHING";
}

/// MySQL or MariaDB.
pub struct Mysql;

impl Dialect for Mysql {
    type DB = sqlx::MySql;
    const SERVER: &'static str = "MySQL";
    const COLUMNS: &'static str = "id VARCHAR(64) PRIMARY KEY, type VARCHAR(255) NOT NULL, \
         timestamp DATETIME(6) NOT NULL, data JSON NOT NULL";
    const VALUES: &'static str = "(?, ?, ?, ?)";
    const ON_CONFLICT: &'static str = "ON DUPLICATE KEY UPDATE id = id";
}

async fn pool<D: Dialect>(url: &Url, size: u32) -> anyhow::Result<Pool<D::DB>> {
    PoolOptions::<D::DB>::new()
        .max_connections(size)
        .acquire_timeout(TIMEOUT)
        .test_before_acquire(false)
        .connect(url.as_str())
        .await
        .with_context(|| {
            format!(
                "cannot connect to {} at {}",
                D::SERVER,
                url.host_str().unwrap_or("")
            )
        })
}

pub struct Fixture<D: Dialect> {
    pool: Pool<D::DB>,
    /// Lower-case letters, digits and `_`: used unquoted.
    table: String,
}

impl<D: Dialect> Fixture<D>
where
    for<'c> &'c mut <D::DB as Database>::Connection: Executor<'c, Database = D::DB>,
    <D::DB as Database>::Arguments: IntoArguments<D::DB>,
    (i64,): for<'r> FromRow<'r, <D::DB as Database>::Row>,
{
    pub async fn create(url: &Url, name: &str) -> anyhow::Result<Self> {
        let pool = pool::<D>(url, 1).await?;
        let table = format!("ferry_loadtest_{name}");
        let ddl = format!("CREATE TABLE {table} ({})", D::COLUMNS);
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

    pub async fn publisher(&self, url: &Url) -> anyhow::Result<Publisher<D>> {
        Ok(Publisher {
            pool: pool::<D>(url, POOL_SIZE).await?,
            insert: format!(
                "INSERT INTO {} (id, type, timestamp, data) VALUES {} {}",
                self.table,
                D::VALUES,
                D::ON_CONFLICT
            ),
            dialect: PhantomData,
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

pub struct Publisher<D: Dialect> {
    pool: Pool<D::DB>,
    insert: String,
    dialect: PhantomData<D>,
}

impl<D: Dialect> Publisher<D>
where
    for<'c> &'c mut <D::DB as Database>::Connection: Executor<'c, Database = D::DB>,
    <D::DB as Database>::Arguments: IntoArguments<D::DB>,
    for<'q> &'q str: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> DateTime<Utc>: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> Json<&'q Value>: Encode<'q, D::DB> + Type<D::DB>,
{
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
