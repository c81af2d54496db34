//! PostgreSQL over TLS (`sslmode=verify-full`) against a private cluster.
//! Without client certificates the destination logs in as `postgres`
//! (trust); with them, as the role named by the client certificate, which
//! `pg_hba.conf` admits only with that certificate (`hostssl … cert`).

use async_trait::async_trait;
use ferry_core::destination::DestinationKind;
use ferry_testkit::pg::PrivateCluster;
use ferry_testkit::tls::{CLIENT_NAME, ClientCertificates, TestCertificates};
use serde_json::{Value, json};
use sqlx::PgPool;

use super::TlsTarget;
use crate::compliance::postgres::{PostgresTable, create_table};
use crate::compliance::{Received, Target, unique_name};

pub struct TlsTable {
    table: PostgresTable,
    _cluster: PrivateCluster,
}

#[async_trait]
impl TlsTarget for TlsTable {
    const KIND: DestinationKind = DestinationKind::Postgres;

    async fn start(certificates: &TestCertificates, clients: ClientCertificates) -> (Self, Value) {
        let cluster = PrivateCluster::start_tls(certificates);
        let pool = PgPool::connect(&cluster.url()).await.unwrap();
        let table = unique_name("ferry_tls");
        create_table(&pool, &table).await;
        let user = match clients {
            ClientCertificates::NotAsked => "postgres",
            ClientCertificates::Required => CLIENT_NAME,
        };
        let grant = format!("GRANT SELECT, INSERT ON {table} TO {CLIENT_NAME}");
        sqlx::raw_sql(sqlx::AssertSqlSafe(grant))
            .execute(&pool)
            .await
            .unwrap();
        let config = json!({
            "url": format!("postgres://{user}@127.0.0.1:{}/postgres?sslmode=verify-full", cluster.port),
            "table": table,
        });
        (
            Self {
                table: PostgresTable { pool, table },
                _cluster: cluster,
            },
            config,
        )
    }

    async fn received(&mut self) -> Vec<Received> {
        self.table.received().await
    }
}

tls_suite!(TlsTable);
