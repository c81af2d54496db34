//! MQTT 5 against the local Mosquitto (anonymous access): a subscriber of
//! the test's own on `<prefix>/#`, collecting what arrives.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use ferry_core::destination::{Auth, DestinationKind};
use ferry_testkit::free_port;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use serde_json::{Value, json};

use super::{Received, Target, unique_name};

pub const URL: &str = "mqtt://127.0.0.1:1883";

/// A subscriber on `filter` at the local Mosquitto, ready once the broker
/// acknowledged the subscription; what arrives is appended to the returned
/// list.
pub async fn subscribe(filter: &str) -> (AsyncClient, Arc<Mutex<Vec<Received>>>) {
    subscribe_on(1883, filter).await
}

/// As [`subscribe`], at a (plain-text) broker on another loopback port.
pub async fn subscribe_on(port: u16, filter: &str) -> (AsyncClient, Arc<Mutex<Vec<Received>>>) {
    let options = MqttOptions::new(unique_name("ferry-test-sub"), "127.0.0.1", port);
    let (client, mut events) = AsyncClient::new(options, 16);
    client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&received);
    let (ready, subscribed) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut ready = Some(ready);
        while let Ok(event) = events.poll().await {
            match event {
                Event::Incoming(Packet::SubAck(_)) => {
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(());
                    }
                }
                Event::Incoming(Packet::Publish(publish)) => {
                    let properties = publish.properties.unwrap_or_default();
                    let id = properties
                        .user_properties
                        .iter()
                        .find(|(name, _)| name == "webhook-id")
                        .map(|(_, value)| value.clone())
                        .unwrap_or_default();
                    let payload: Value = serde_json::from_slice(&publish.payload).unwrap();
                    assert_eq!(payload["id"], json!(id));
                    let traceparent = properties
                        .user_properties
                        .iter()
                        .find(|(name, _)| name == "traceparent")
                        .map(|(_, value)| value.clone());
                    sink.lock().unwrap().push(Received {
                        id,
                        payload,
                        traceparent,
                    });
                }
                _ => {}
            }
        }
    });
    subscribed
        .await
        .unwrap_or_else(|_| panic!("no Mosquitto answered at 127.0.0.1:{port}"));
    (client, received)
}

pub struct MqttTopic {
    _client: AsyncClient,
    received: Arc<Mutex<Vec<Received>>>,
}

#[async_trait]
impl Target for MqttTopic {
    const KIND: DestinationKind = DestinationKind::Mqtt;
    const RECEIPT: &'static [&'static str] = &["topic", "qos", "ack"];
    const DEDUPLICATES: bool = false;
    const CARRIES_TRACE: bool = true;

    async fn provision() -> (Self, Value, Auth) {
        let prefix = unique_name("ferry_test");
        let (client, received) = subscribe(&format!("{prefix}/#")).await;
        let config = json!({"url": URL, "topic": format!("{prefix}/{{type}}")});
        let target = Self {
            _client: client,
            received,
        };
        (target, config, Auth::None)
    }

    async fn received(&mut self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The local Mosquitto allows anonymous access and ignores credentials:
    /// there is nothing it would refuse.
    fn wrong_credentials(&self, _config: &Value, _auth: &Auth) -> Option<(Value, Auth)> {
        None
    }

    fn unreachable(&self, config: &Value) -> Value {
        let mut config = config.clone();
        config["url"] = json!(format!("mqtt://127.0.0.1:{}", free_port()));
        config
    }
}

compliance!(MqttTopic);
