//! MariaDB over TLS (`ssl-mode=verify_identity`) against a private server.
//! Without client certificates the destination logs in as `root`; with
//! them, as a user created `REQUIRE X509`, which the server admits only
//! with a client certificate signed by the test CA.

use async_trait::async_trait;
use ferry_core::destination::DestinationKind;
use ferry_testkit::tls::{CLIENT_NAME, ClientCertificates, TestCertificates, TlsMariadb};
use serde_json::{Value, json};
use sqlx::MySqlPool;

use super::TlsTarget;
use crate::compliance::mysql::{MysqlTable, create_table};
use crate::compliance::{Received, Target, unique_name};

pub struct TlsTable {
    table: MysqlTable,
    _server: TlsMariadb,
}

#[async_trait]
impl TlsTarget for TlsTable {
    const KIND: DestinationKind = DestinationKind::Mysql;

    async fn start(certificates: &TestCertificates, clients: ClientCertificates) -> (Self, Value) {
        let server = TlsMariadb::start(certificates);
        let pool = MySqlPool::connect(&server.root_url()).await.unwrap();
        let table = unique_name("ferry_tls");
        create_table(&pool, &table).await;
        let user = match clients {
            ClientCertificates::NotAsked => "root",
            ClientCertificates::Required => CLIENT_NAME,
        };
        let config = json!({
            "url": format!("mysql://{user}@127.0.0.1:{}/test?ssl-mode=verify_identity", server.port),
            "table": table,
        });
        (
            Self {
                table: MysqlTable { pool, table },
                _server: server,
            },
            config,
        )
    }

    async fn received(&mut self) -> Vec<Received> {
        self.table.received().await
    }
}

tls_suite!(TlsTable);
