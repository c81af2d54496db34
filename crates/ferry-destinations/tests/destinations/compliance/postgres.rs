//! PostgreSQL (trust auth, user `postgres`, database `test`): a table of
//! the test's own, read back with `SELECT`. Trust auth accepts any
//! password, but not a role that does not exist.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ferry_core::destination::{Auth, DestinationKind};
use ferry_core::secret::Secret;
use ferry_testkit::free_port;
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::types::Json;

use super::{Received, Target, unique_name};

pub const URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A pool of the test's own.
pub async fn pool() -> PgPool {
    PgPool::connect(URL)
        .await
        .expect("the local PostgreSQL at 127.0.0.1:5432")
}

/// Creates `name` with the default columns.
pub async fn create_table(pool: &PgPool, name: &str) {
    let ddl = format!(
        "CREATE TABLE {name} (id text PRIMARY KEY, type text NOT NULL, \
         timestamp timestamptz NOT NULL, data jsonb NOT NULL)"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
        .execute(pool)
        .await
        .unwrap();
}

pub struct PostgresTable {
    pub pool: PgPool,
    pub table: String,
}

#[async_trait]
impl Target for PostgresTable {
    const KIND: DestinationKind = DestinationKind::Postgres;
    const RECEIPT: &'static [&'static str] = &["table", "id", "inserted"];
    const DEDUPLICATES: bool = true;

    async fn provision() -> (Self, Value, Auth) {
        let pool = pool().await;
        let table = unique_name("ferry_test");
        create_table(&pool, &table).await;
        let config = json!({"url": URL, "table": table});
        (Self { pool, table }, config, Auth::None)
    }

    async fn received(&mut self) -> Vec<Received> {
        let select = format!("SELECT id, type, timestamp, data FROM {}", self.table);
        let rows: Vec<(String, String, DateTime<Utc>, Json<Value>)> =
            sqlx::query_as(sqlx::AssertSqlSafe(select))
                .fetch_all(&self.pool)
                .await
                .unwrap();
        rows.into_iter()
            .map(|(id, event_type, timestamp, Json(data))| Received {
                payload: json!({"id": id, "type": event_type, "timestamp": timestamp, "data": data}),
                id,
                traceparent: None,
            })
            .collect()
    }

    fn wrong_credentials(&self, config: &Value, _auth: &Auth) -> Option<(Value, Auth)> {
        let wrong = Auth::Basic {
            username: "ferry_no_such_role".into(),
            password: Secret::new("wrong-s3cr3t".into()),
        };
        Some((config.clone(), wrong))
    }

    fn unreachable(&self, config: &Value) -> Value {
        let mut config = config.clone();
        config["url"] = json!(format!(
            "postgres://postgres@127.0.0.1:{}/test",
            free_port()
        ));
        config
    }
}

compliance!(PostgresTable);
