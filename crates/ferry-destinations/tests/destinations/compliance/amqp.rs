//! AMQP against the local RabbitMQ (guest/guest): a topic exchange of the
//! test's own, bound with `#` to a queue of its own, read back with
//! `basic.get`.

use async_trait::async_trait;
use ferry_core::destination::{Auth, DestinationKind};
use ferry_core::secret::Secret;
use ferry_testkit::free_port;
use lapin::options::{
    BasicGetOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use serde_json::{Value, json};

use super::{Received, Target, unique_name};

pub const URL: &str = "amqp://127.0.0.1:5672";

pub fn guest() -> Auth {
    Auth::Basic {
        username: "guest".into(),
        password: Secret::new("guest".into()),
    }
}

/// A channel of the test's own on the local RabbitMQ, and the connection
/// it lives on.
pub async fn channel() -> (Connection, Channel) {
    channel_at("amqp://guest:guest@127.0.0.1:5672/%2f").await
}

/// As [`channel`], on the broker at `url`.
pub async fn channel_at(url: &str) -> (Connection, Channel) {
    let connection = Connection::connect(url, ConnectionProperties::default())
        .await
        .unwrap_or_else(|e| panic!("no RabbitMQ answered at {url}: {e}"));
    let channel = connection.create_channel().await.unwrap();
    (connection, channel)
}

/// Declares a queue of the test's own (deleted when the test's
/// connection closes).
pub async fn queue(channel: &Channel, name: &str) {
    let options = QueueDeclareOptions {
        auto_delete: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(name.into(), options, FieldTable::default())
        .await
        .unwrap();
}

/// Every message waiting in `queue`, as the suite reads them.
pub async fn drain(channel: &Channel, queue: &str) -> Vec<Received> {
    let mut received = Vec::new();
    while let Some(message) = channel
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        let properties = &message.delivery.properties;
        let id = properties.message_id().as_ref().unwrap().to_string();
        let headers = properties.headers().as_ref().unwrap();
        let webhook_id = headers.inner().get("webhook-id");
        assert!(
            matches!(webhook_id, Some(AMQPValue::LongString(v)) if v.to_string() == id),
            "{webhook_id:?}"
        );
        assert_eq!(
            properties.content_type().as_ref().unwrap().as_str(),
            "application/json"
        );
        let traceparent = match headers.inner().get("traceparent") {
            Some(AMQPValue::LongString(v)) => Some(v.to_string()),
            _ => None,
        };
        received.push(Received {
            id,
            payload: serde_json::from_slice(&message.delivery.data).unwrap(),
            traceparent,
        });
    }
    received
}

pub struct AmqpExchange {
    _connection: Connection,
    channel: Channel,
    queue: String,
    received: Vec<Received>,
}

#[async_trait]
impl Target for AmqpExchange {
    const KIND: DestinationKind = DestinationKind::Amqp;
    const RECEIPT: &'static [&'static str] = &["exchange", "routing_key", "confirm"];
    const DEDUPLICATES: bool = false;
    const CARRIES_TRACE: bool = true;

    async fn provision() -> (Self, Value, Auth) {
        let (connection, channel) = channel().await;
        let exchange = unique_name("ferry-test-x");
        let queue_name = unique_name("ferry-test-q");
        let options = ExchangeDeclareOptions {
            auto_delete: true,
            ..ExchangeDeclareOptions::default()
        };
        channel
            .exchange_declare(
                exchange.as_str().into(),
                ExchangeKind::Topic,
                options,
                FieldTable::default(),
            )
            .await
            .unwrap();
        queue(&channel, &queue_name).await;
        channel
            .queue_bind(
                queue_name.as_str().into(),
                exchange.as_str().into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        let config = json!({"url": URL, "exchange": exchange, "routing_key": "{type}"});
        let target = Self {
            _connection: connection,
            channel,
            queue: queue_name,
            received: Vec::new(),
        };
        (target, config, guest())
    }

    async fn received(&mut self) -> Vec<Received> {
        let new = drain(&self.channel, &self.queue).await;
        self.received.extend(new);
        self.received.clone()
    }

    fn wrong_credentials(&self, config: &Value, _auth: &Auth) -> Option<(Value, Auth)> {
        let wrong = Auth::Basic {
            username: "guest".into(),
            password: Secret::new("not-the-password".into()),
        };
        Some((config.clone(), wrong))
    }

    fn unreachable(&self, config: &Value) -> Value {
        let mut config = config.clone();
        config["url"] = json!(format!("amqp://127.0.0.1:{}", free_port()));
        config
    }
}

compliance!(AmqpExchange);
