//! The mysql adapter (`validate`, `build`) and deliverer (`deliver`,
//! `check`).

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ferry_core::attempt::Receipt;
use ferry_core::delivery::Envelope;
use ferry_core::destination::{Destination, DestinationKind};
use ferry_core::ports::{AttemptError, AttemptReport, CheckReport, Deliverer};
use serde_json::json;
use sqlx::AssertSqlSafe;
use sqlx::mysql::{MySqlConnectOptions, MySqlDatabaseError, MySqlPool};
use sqlx::types::Json;

use super::config::MysqlConfig;
use crate::client_adapter::{ClientAdapter, ClientKind, Reach};
use crate::link::timed;
use crate::net_guard::NetworkPolicy;
use crate::sql::{self, Dialect, SqlConfig, delivery};
use crate::tls;

/// The `mysql` kind.
pub struct Mysql;

/// The `mysql` kind's adapter.
pub type MysqlAdapter = ClientAdapter<Mysql>;

impl ClientKind for Mysql {
    const KIND: DestinationKind = DestinationKind::Mysql;
    type Config = MysqlConfig;

    fn build(
        MysqlConfig(config): MysqlConfig,
        destination: &Destination,
        reach: &Reach,
    ) -> Result<Arc<dyn Deliverer>, String> {
        let auth = &destination.secrets.auth;
        let mut options = MySqlConnectOptions::from_str(config.url.as_str())
            .map_err(|e| format!("config.url: {e}"))?;
        let (username, password) = sql::login(auth);
        if let Some(username) = username {
            options = options.username(username);
        }
        if let Some(password) = password {
            options = options.password(password);
        }
        if let Some(identity) = tls::identity(auth) {
            options = options
                .ssl_client_cert_from_pem(identity.certificate)
                .ssl_client_key_from_pem(identity.private_key);
        }
        if let Some(ca) = config.tls.as_ref().and_then(|t| t.ca_certificate.clone()) {
            options = options.ssl_ca_from_pem(ca.into_bytes());
        }
        let timeout = Duration::from_millis(config.timeout_ms);
        let connect_timeout = reach.connect_timeout.min(timeout);
        let pool = delivery::pool_options(connect_timeout).connect_lazy_with(options.clone());
        Ok(Arc::new(MysqlDeliverer {
            insert: insert_statement(&config),
            pool,
            options,
            timeout,
            connect_timeout,
            policy: Arc::clone(&reach.policy),
            config,
        }))
    }
}

/// ``INSERT INTO `db`.`table` (`id`, …) VALUES (?, …) ON DUPLICATE KEY
/// UPDATE `id` = `id` ``, from validated identifiers only. Unlike `INSERT
/// IGNORE`, which would also turn a bad value into a warning and a
/// truncated row, this ignores only the duplicate key.
pub(super) fn insert_statement(config: &SqlConfig) -> String {
    let quote = |name: &str| Dialect::Mysql.quote(name);
    let columns: Vec<String> = config.columns.iter().map(|(_, c)| quote(c)).collect();
    let values = vec!["?"; columns.len()];
    let id = quote(config.column("id").unwrap_or("id"));
    format!(
        "INSERT INTO {} ({}) VALUES ({}) ON DUPLICATE KEY UPDATE {id} = {id}",
        config.table.quoted(Dialect::Mysql),
        columns.join(", "),
        values.join(", "),
    )
}

/// One mysql destination, built: a small connection pool (at most
/// [`POOL_SIZE`](crate::sql::POOL_SIZE) connections, opened on demand) and its insert statement.
pub struct MysqlDeliverer {
    insert: String,
    pool: MySqlPool,
    /// Holds the password (from `auth`); never shown.
    options: MySqlConnectOptions,
    timeout: Duration,
    connect_timeout: Duration,
    policy: Arc<NetworkPolicy>,
    config: SqlConfig,
}

impl MysqlDeliverer {
    /// The SSRF guard's verdict on the host, before the pool opens its
    /// first connection.
    async fn guard(&self) -> Result<(), AttemptError> {
        delivery::guard(
            self.pool.size(),
            &self.policy,
            self.options.get_host(),
            self.options.get_port(),
            self.connect_timeout,
        )
        .await
    }

    async fn insert(&self, envelope: &Envelope) -> Result<u64, AttemptError> {
        self.guard().await?;
        let event = &envelope.event;
        // Built from checked, quoted identifiers only (`insert_statement`).
        let mut query = sqlx::query(AssertSqlSafe(self.insert.as_str()));
        for (field, _) in &self.config.columns {
            query = match *field {
                "id" => query.bind(event.id.as_str()),
                "type" => query.bind(event.event_type.as_str()),
                "timestamp" => query.bind(event.created_at),
                _ => query.bind(Json(&event.data)),
            };
        }
        let done = timed("the insert", self.connect_timeout + self.timeout, async {
            query
                .execute(&self.pool)
                .await
                .map_err(|e| delivery::pool_aware(&e, self.connect_timeout, "MySQL", classify))
        })
        .await?;
        Ok(done.rows_affected())
    }
}

/// [`sql::classify`], with MySQL's error numbers where its SQLSTATE is the
/// catch-all `HY000`, and a refused login (1045) that may be a missing
/// client certificate: a value the column refuses (1292, 1364, 1366, 1406,
/// 1264, 3140) is permanent; lock waits (1205), too many connections (1040)
/// and a server shutting down or gone (1053, 2006, 2013) are retryable.
pub fn classify(error: &sqlx::Error) -> AttemptError {
    let number = match error {
        sqlx::Error::Database(db) => db
            .try_downcast_ref::<MySqlDatabaseError>()
            .map(|e| (e.number(), e.message().to_owned())),
        _ => None,
    };
    match number {
        // The server does not say why: a wrong password and a user that
        // requires a client certificate (`REQUIRE X509`) look the same.
        Some((1045, message)) => AttemptError::permanent(format!(
            "authentication failed: the database refused the login (check `auth`: the password, or the client certificate where the user requires one): {message}"
        )),
        Some((1264 | 1292 | 1364 | 1366 | 1406 | 3140, message)) => {
            AttemptError::permanent(format!("the table rejected the row: {message}"))
        }
        Some((1040 | 1053 | 1205 | 2006 | 2013, message)) => {
            AttemptError::retryable(format!("the database is unavailable: {message}"))
        }
        _ => sql::classify(error),
    }
}

#[async_trait]
impl Deliverer for MysqlDeliverer {
    /// One committed insert of the event's row; a row already holding the
    /// event id is left as it is (delivered: a replay creates no second
    /// row).
    async fn deliver(&self, envelope: &Envelope) -> AttemptReport {
        // The connection reports matched rows (CLIENT_FOUND_ROWS), so a
        // duplicate also counts 1: the receipt cannot tell.
        let result = self.insert(envelope).await.map(|rows| {
            Receipt::of([
                ("table", json!(self.config.table.as_text())),
                ("id", json!(envelope.event.id)),
                ("rows", json!(rows)),
            ])
        });
        delivery::attempt(envelope, &self.insert, result)
    }

    /// Connects and logs in, then checks that the table exists with every
    /// configured column and that the id column is unique.
    async fn check(&self) -> CheckReport {
        let started = Instant::now();
        let result = timed("the check", self.connect_timeout + self.timeout, async {
            self.guard().await?;
            let schema_filter = self.config.table.schema.clone();
            let found: Vec<(String,)> = sqlx::query_as(
                "SELECT CAST(column_name AS CHAR) FROM information_schema.columns \
                 WHERE table_schema = COALESCE(?, DATABASE()) AND table_name = ?",
            )
            .bind(schema_filter)
            .bind(&self.config.table.name)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| delivery::pool_aware(&e, self.connect_timeout, "MySQL", classify))?;
            let found: Vec<String> = found.into_iter().map(|(c,)| c).collect();
            sql::check_columns(&self.config, &found)?;
            let unique: Option<(String,)> = sqlx::query_as(
                "SELECT CAST(index_name AS CHAR) FROM information_schema.statistics \
                 WHERE table_schema = COALESCE(?, DATABASE()) AND table_name = ? \
                 AND non_unique = 0 GROUP BY index_name \
                 HAVING COUNT(*) = 1 AND MAX(column_name) = ? LIMIT 1",
            )
            .bind(self.config.table.schema.clone())
            .bind(&self.config.table.name)
            .bind(self.config.column("id").unwrap_or("id"))
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| classify(&e))?;
            if unique.is_none() {
                return Err(sql::missing_unique_id(&self.config));
            }
            Ok(())
        })
        .await;
        delivery::check(&self.config, started, result)
    }
}
