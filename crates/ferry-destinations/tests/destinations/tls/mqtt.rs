//! MQTT over TLS against a private Mosquitto, read back by a subscriber on
//! the same broker's plain listener.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use ferry_core::destination::DestinationKind;
use ferry_testkit::tls::{ClientCertificates, TestCertificates, TlsMosquitto};
use rumqttc::v5::AsyncClient;
use serde_json::{Value, json};

use super::TlsTarget;
use crate::compliance::mqtt::subscribe_on;
use crate::compliance::{Received, unique_name};

pub struct TlsTopic {
    _subscriber: AsyncClient,
    received: Arc<Mutex<Vec<Received>>>,
    _broker: TlsMosquitto,
}

#[async_trait]
impl TlsTarget for TlsTopic {
    const KIND: DestinationKind = DestinationKind::Mqtt;

    async fn start(certificates: &TestCertificates, clients: ClientCertificates) -> (Self, Value) {
        let broker = TlsMosquitto::start(certificates, clients);
        let prefix = unique_name("ferry_tls");
        let (subscriber, received) = subscribe_on(broker.plain_port, &format!("{prefix}/#")).await;
        let config = json!({"url": broker.tls_url(), "topic": format!("{prefix}/{{type}}")});
        let target = Self {
            _subscriber: subscriber,
            received,
            _broker: broker,
        };
        (target, config)
    }

    async fn received(&mut self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

tls_suite!(TlsTopic);
