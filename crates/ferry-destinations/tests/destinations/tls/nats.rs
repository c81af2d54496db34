//! NATS JetStream over TLS against a private nats-server, read back by a
//! client of the test's own (over TLS too, with the client certificate).

use async_nats::jetstream;
use async_trait::async_trait;
use ferry_core::destination::DestinationKind;
use ferry_testkit::tls::{ClientCertificates, TestCertificates, TlsNats};
use serde_json::{Value, json};

use super::TlsTarget;
use crate::compliance::nats::{NatsStream, create_stream};
use crate::compliance::{Received, Target, unique_name};

pub struct TlsJetStream {
    stream: NatsStream,
    _server: TlsNats,
}

#[async_trait]
impl TlsTarget for TlsJetStream {
    const KIND: DestinationKind = DestinationKind::Nats;

    async fn start(certificates: &TestCertificates, clients: ClientCertificates) -> (Self, Value) {
        let server = TlsNats::start(certificates, clients);
        let client = async_nats::ConnectOptions::new()
            .require_tls(true)
            .add_root_certificates(certificates.path("ca.pem"))
            .add_client_certificate(
                certificates.path("client.pem"),
                certificates.path("client.key"),
            )
            .connect(server.url())
            .await
            .unwrap();
        let name = unique_name("FERRY_TLS");
        let prefix = unique_name("ferry_tls");
        let stream = create_stream(&jetstream::new(client), &name, &prefix).await;
        let config = json!({
            "servers": [server.url()],
            "subject": format!("{prefix}.{{type}}"),
            "stream": name,
        });
        let stream = NatsStream { stream };
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

tls_suite!(TlsJetStream);
