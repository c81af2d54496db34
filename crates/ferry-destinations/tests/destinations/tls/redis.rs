//! Redis over TLS against a private redis-server whose TLS port is the only
//! one Ferry is given; the stream is read back on its plain port.

use async_trait::async_trait;
use ferry_core::destination::DestinationKind;
use ferry_testkit::redis::PrivateRedis;
use ferry_testkit::tls::{ClientCertificates, TestCertificates};
use serde_json::{Value, json};

use super::TlsTarget;
use crate::compliance::redis::RedisStream;
use crate::compliance::{Received, Target, unique_name};

pub struct TlsStream {
    stream: RedisStream,
    _server: PrivateRedis,
}

#[async_trait]
impl TlsTarget for TlsStream {
    const KIND: DestinationKind = DestinationKind::Redis;

    async fn start(certificates: &TestCertificates, clients: ClientCertificates) -> (Self, Value) {
        let server = PrivateRedis::start_tls(certificates, clients);
        let conn = redis::Client::open(server.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let key = unique_name("ferry-tls");
        let config = json!({"url": server.tls_url(), "key": key});
        let stream = RedisStream { conn, key };
        (
            Self {
                stream,
                _server: server,
            },
            config,
        )
    }

    async fn received(&mut self) -> Vec<Received> {
        self.stream.received().await
    }
}

tls_suite!(TlsStream);
