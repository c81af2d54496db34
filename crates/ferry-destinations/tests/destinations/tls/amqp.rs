//! AMQP over TLS against a private RabbitMQ node, read back from a queue on
//! the node's plain listener. The login is `guest` (PLAIN over TLS, with
//! the client certificate where the node requires one).

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
        let broker = TlsRabbitmq::start(certificates, clients);
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

tls_suite!(TlsQueue);
