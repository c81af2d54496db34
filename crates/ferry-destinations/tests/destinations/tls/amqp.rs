//! AMQP over TLS against a private RabbitMQ node, read back from a queue on
//! the node's plain listener. The login is `guest` (PLAIN over TLS, with
//! the client certificate where the node requires one), or the client
//! certificate itself (SASL `EXTERNAL`) on a node that has no `guest`.

use async_trait::async_trait;
use ferry_core::destination::{Auth, DestinationKind};
use ferry_core::secret::Secret;
use ferry_testkit::tls::{ClientCertificates, TestCertificates, TlsRabbitmq};
use lapin::{Channel, Connection};
use serde_json::{Value, json};

use super::TlsTarget;
use crate::compliance::amqp::{channel_at, drain, queue};
use crate::compliance::{Received, unique_name};

pub struct TlsQueue {
    _connection: Connection,
    channel: Channel,
    queue: String,
    received: Vec<Received>,
    _broker: TlsRabbitmq,
}

#[async_trait]
impl TlsTarget for TlsQueue {
    const KIND: DestinationKind = DestinationKind::Amqp;
    /// The node sends its alert and closes at once, while the client's
    /// last handshake messages are still arriving: the unread data turns
    /// the close into a reset, which can overtake the alert.
    const REFUSAL_MAY_BE_A_RESET: bool = true;

    async fn start(certificates: &TestCertificates, clients: ClientCertificates) -> (Self, Value) {
        Self::on(TlsRabbitmq::start(certificates, clients)).await
    }

    /// Messages are taken off the queue as they are read: they are kept.
    async fn received(&mut self) -> Vec<Received> {
        let more = drain(&self.channel, &self.queue).await;
        self.received.extend(more);
        self.received.clone()
    }

    fn client_certificate(certificates: &TestCertificates) -> Auth {
        Auth::ClientCertificate {
            certificate: certificates.client_certificate(),
            private_key: Secret::new(certificates.client_key()),
            username: Some("guest".into()),
            password: Some(Secret::new("guest".into())),
        }
    }
}

impl TlsQueue {
    /// A queue of the test's own on `broker`, and the config reaching it over TLS.
    async fn on(broker: TlsRabbitmq) -> (Self, Value) {
        let (connection, channel) = channel_at(&broker.plain_url()).await;
        let name = unique_name("ferry_tls");
        queue(&channel, &name).await;
        let config = json!({"url": broker.tls_url(), "exchange": "", "routing_key": name});
        let target = Self {
            _connection: connection,
            channel,
            queue: name,
            received: Vec::new(),
            _broker: broker,
        };
        (target, config)
    }
}

tls_suite!(TlsQueue);

/// Without a user name and password, the certificate is the login: the
/// node has no `guest`, only the certificate's common name, so a delivery
/// that arrives logged in through `EXTERNAL`.
#[tokio::test]
async fn the_client_certificate_is_the_login_with_external() {
    let certificates = TestCertificates::generate();
    let (mut target, config) =
        TlsQueue::on(TlsRabbitmq::start_certificate_login(&certificates)).await;
    let config = super::trusting(&config, &certificates.ca());
    let certificate_only = Auth::ClientCertificate {
        certificate: certificates.client_certificate(),
        private_key: Secret::new(certificates.client_key()),
        username: None,
        password: None,
    };
    super::deliver_and_read_back(&mut target, &config, &certificate_only).await;
    // A password login as guest, over the same TLS connection, is refused.
    let guest = TlsQueue::client_certificate(&certificates);
    super::expect_permanent::<TlsQueue>(&config, &guest, &["auth", "login", "credential"]).await;
}
