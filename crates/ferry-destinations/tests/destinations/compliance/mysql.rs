//! MariaDB (root without a password, database `test`): a table of the
//! test's own, read back with `SELECT`. A wrong password for root is
//! refused (1045).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ferry_core::destination::{Auth, DestinationKind};
use ferry_core::secret::Secret;
use ferry_testkit::free_port;
use serde_json::{Value, json};
use sqlx::MySqlPool;

use super::{Received, Target, unique_name};

pub const URL: &str = "mysql://root@127.0.0.1:3306/test";

/// A pool of the test's own.
pub async fn pool() -> MySqlPool {
    MySqlPool::connect(URL)
        .await
        .expect("the local MariaDB at 127.0.0.1:3306")
}

/// Creates `name` with the default columns.
pub async fn create_table(pool: &MySqlPool, name: &str) {
    let ddl = format!(
        "CREATE TABLE {name} (id VARCHAR(64) PRIMARY KEY, type VARCHAR(255) NOT NULL, \
         timestamp DATETIME(6) NOT NULL, data JSON NOT NULL)"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
        .execute(pool)
        .await
        .unwrap();
}

pub struct MysqlTable {
    pub pool: MySqlPool,
    pub table: String,
}

#[async_trait]
impl Target for MysqlTable {
    const KIND: DestinationKind = DestinationKind::Mysql;
    const RECEIPT: &'static [&'static str] = &["table", "id", "rows"];
    const DEDUPLICATES: bool = true;

    async fn provision() -> (Self, Value, Auth) {
        let pool = pool().await;
        let table = unique_name("ferry_test");
        create_table(&pool, &table).await;
        let config = json!({"url": URL, "table": table});
        (Self { pool, table }, config, Auth::None)
    }

    async fn received(&mut self) -> Vec<Received> {
        let select = format!(
            "SELECT id, type, timestamp, CAST(data AS CHAR) FROM {}",
            self.table
        );
        let rows: Vec<(String, String, DateTime<Utc>, String)> =
            sqlx::query_as(sqlx::AssertSqlSafe(select))
                .fetch_all(&self.pool)
                .await
                .unwrap();
        rows.into_iter()
            .map(|(id, event_type, timestamp, data)| Received {
                payload: json!({"id": id, "type": event_type, "timestamp": timestamp,
                                "data": serde_json::from_str::<Value>(&data).unwrap()}),
                id,
                traceparent: None,
            })
            .collect()
    }

    fn wrong_credentials(&self, config: &Value, _auth: &Auth) -> Option<(Value, Auth)> {
        let wrong = Auth::Basic {
            username: "root".into(),
            password: Secret::new("wrong-s3cr3t".into()),
        };
        Some((config.clone(), wrong))
    }

    fn unreachable(&self, config: &Value) -> Value {
        let mut config = config.clone();
        config["url"] = json!(format!("mysql://root@127.0.0.1:{}/test", free_port()));
        config
    }
}

compliance!(MysqlTable);
