//! The postgres adapter (`validate`, `build`) and deliverer (`deliver`,
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
use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::types::Json;

use super::config::PostgresConfig;
use crate::client_adapter::{ClientAdapter, ClientKind, Reach};
use crate::link::timed;
use crate::net_guard::NetworkPolicy;
use crate::sql::{self, Dialect, SqlConfig, delivery};
use crate::tls;

/// The `postgres` kind.
pub struct Postgres;

/// The `postgres` kind's adapter.
pub type PostgresAdapter = ClientAdapter<Postgres>;

impl ClientKind for Postgres {
    const KIND: DestinationKind = DestinationKind::Postgres;
    type Config = PostgresConfig;

    fn build(
        PostgresConfig(config): PostgresConfig,
        destination: &Destination,
        reach: &Reach,
    ) -> Result<Arc<dyn Deliverer>, String> {
        let auth = &destination.secrets.auth;
        let mut options = PgConnectOptions::from_str(config.url.as_str())
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
            options = options.ssl_root_cert_from_pem(ca.into_bytes());
        }
        let timeout = Duration::from_millis(config.timeout_ms);
        let connect_timeout = reach.connect_timeout.min(timeout);
        let pool = delivery::pool_options(connect_timeout).connect_lazy_with(options.clone());
        Ok(Arc::new(PostgresDeliverer {
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

/// `INSERT INTO "schema"."table" ("id", …) VALUES ($1, …) ON CONFLICT
/// ("id") DO NOTHING`, from validated identifiers only.
fn insert_statement(config: &SqlConfig) -> String {
    let quote = |name: &str| Dialect::Postgres.quote(name);
    let columns: Vec<String> = config.columns.iter().map(|(_, c)| quote(c)).collect();
    let values: Vec<String> = (1..=columns.len()).map(|n| format!("${n}")).collect();
    format!(
        "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) DO NOTHING",
        config.table.quoted(Dialect::Postgres),
        columns.join(", "),
        values.join(", "),
        quote(config.column("id").unwrap_or("id")),
    )
}

/// One postgres destination, built: a small connection pool (at most
/// [`POOL_SIZE`](crate::sql::POOL_SIZE) connections, opened on demand) and its insert statement.
pub struct PostgresDeliverer {
    insert: String,
    pool: PgPool,
    /// Holds the password (from `auth`); never shown.
    options: PgConnectOptions,
    timeout: Duration,
    connect_timeout: Duration,
    policy: Arc<NetworkPolicy>,
    config: SqlConfig,
}

impl PostgresDeliverer {
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
            query.execute(&self.pool).await.map_err(|e| {
                delivery::pool_aware(&e, self.connect_timeout, "PostgreSQL", sql::classify)
            })
        })
        .await?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl Deliverer for PostgresDeliverer {
    /// One committed insert of the event's row; a row already holding the
    /// event id is left as it is (delivered: a replay creates no second
    /// row).
    async fn deliver(&self, envelope: &Envelope) -> AttemptReport {
        // No row inserted: one already holds the event id.
        let result = self.insert(envelope).await.map(|rows| {
            Receipt::of([
                ("table", json!(self.config.table.as_text())),
                ("id", json!(envelope.event.id)),
                ("inserted", json!(rows)),
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
                "SELECT column_name::text FROM information_schema.columns \
                 WHERE table_schema = COALESCE($1, current_schema()) AND table_name = $2",
            )
            .bind(schema_filter)
            .bind(&self.config.table.name)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| {
                delivery::pool_aware(&e, self.connect_timeout, "PostgreSQL", sql::classify)
            })?;
            let found: Vec<String> = found.into_iter().map(|(c,)| c).collect();
            sql::check_columns(&self.config, &found)?;
            let unique: Option<(i32,)> = sqlx::query_as(
                "SELECT 1 FROM pg_index i JOIN pg_attribute a \
                 ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
                 WHERE i.indrelid = $1::regclass AND i.indisunique AND i.indnkeyatts = 1 \
                 AND a.attname = $2 LIMIT 1",
            )
            .bind(self.config.table.quoted(Dialect::Postgres))
            .bind(self.config.column("id").unwrap_or("id"))
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| sql::classify(&e))?;
            if unique.is_none() {
                return Err(sql::missing_unique_id(&self.config));
            }
            Ok(())
        })
        .await;
        delivery::check(&self.config, started, result)
    }
}
