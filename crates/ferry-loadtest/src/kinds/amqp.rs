//! amqp: a durable direct exchange and a durable queue of the run's own,
//! bound for the event type (the kind's default routing key `{type}`),
//! counted with a passive declare. The publisher, like the kind, publishes
//! persistent, mandatory messages on one confirm-mode channel and waits for
//! each publisher confirm.

use anyhow::{Context as _, bail};
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions,
    QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use reqwest::Url;
use serde_json::{Value, json};

use super::Message;

pub struct Fixture {
    connection: Connection,
    channel: Channel,
    /// The exchange and the queue share this name.
    name: String,
}

async fn connect(url: &Url) -> anyhow::Result<(Connection, Channel)> {
    let connection = Connection::connect(url.as_str(), ConnectionProperties::default())
        .await
        .with_context(|| {
            format!(
                "cannot connect to the AMQP broker at {}",
                url.host_str().unwrap_or("")
            )
        })?;
    let channel = connection
        .create_channel()
        .await
        .context("cannot open an AMQP channel")?;
    Ok((connection, channel))
}

impl Fixture {
    pub async fn create(url: &Url, name: &str, event_type: &str) -> anyhow::Result<Self> {
        let (connection, channel) = connect(url).await?;
        let name = format!("ferry-loadtest-{name}");
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        channel
            .exchange_declare(
                name.as_str().into(),
                ExchangeKind::Direct,
                durable,
                FieldTable::default(),
            )
            .await
            .with_context(|| format!("cannot declare exchange {name}"))?;
        let durable = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        channel
            .queue_declare(name.as_str().into(), durable, FieldTable::default())
            .await
            .with_context(|| format!("cannot declare queue {name}"))?;
        channel
            .queue_bind(
                name.as_str().into(),
                name.as_str().into(),
                event_type.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .with_context(|| format!("cannot bind queue {name}"))?;
        Ok(Self {
            connection,
            channel,
            name,
        })
    }

    pub fn config(&self, url: &str) -> Value {
        json!({"url": url, "exchange": self.name, "routing_key": "{type}"})
    }

    pub async fn count(&self) -> anyhow::Result<u64> {
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        let queue = self
            .channel
            .queue_declare(self.name.as_str().into(), passive, FieldTable::default())
            .await
            .with_context(|| format!("cannot count the messages of queue {}", self.name))?;
        Ok(u64::from(queue.message_count()))
    }

    pub async fn publisher(&self, url: &Url) -> anyhow::Result<Publisher> {
        let (connection, channel) = connect(url).await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .context("cannot put the AMQP channel in confirm mode")?;
        Ok(Publisher {
            _connection: connection,
            channel,
            exchange: self.name.clone(),
        })
    }

    pub async fn remove(self) -> anyhow::Result<()> {
        self.channel
            .queue_delete(self.name.as_str().into(), QueueDeleteOptions::default())
            .await
            .with_context(|| format!("cannot delete queue {}", self.name))?;
        self.channel
            .exchange_delete(self.name.as_str().into(), ExchangeDeleteOptions::default())
            .await
            .with_context(|| format!("cannot delete exchange {}", self.name))?;
        let _ = self.connection.close(200, "done".into()).await;
        Ok(())
    }
}

pub struct Publisher {
    _connection: Connection,
    channel: Channel,
    exchange: String,
}

impl Publisher {
    pub async fn publish(&self, message: &Message) -> anyhow::Result<()> {
        let event = &message.event;
        let mut headers = FieldTable::default();
        for (name, value) in &message.metadata {
            headers.insert((*name).into(), AMQPValue::LongString(value.as_str().into()));
        }
        let properties = BasicProperties::default()
            .with_message_id(event.id.as_str().into())
            .with_content_type("application/json".into())
            .with_type(event.event_type.as_str().into())
            .with_timestamp(u64::try_from(event.created_at.timestamp()).unwrap_or(0))
            .with_app_id("ferry".into())
            .with_delivery_mode(2)
            .with_headers(headers);
        let options = BasicPublishOptions {
            mandatory: true,
            immediate: false,
        };
        let confirm = self
            .channel
            .basic_publish(
                self.exchange.as_str().into(),
                event.event_type.as_str().into(),
                options,
                &message.body,
                properties,
            )
            .await
            .context("AMQP publish failed")?
            .await
            .context("AMQP publish failed")?;
        match confirm {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(_)) => bail!("the broker returned the message as unroutable"),
            Confirmation::Nack(_) => bail!("the broker refused the message (nack)"),
            Confirmation::NotRequested => bail!("the channel is not in confirm mode"),
        }
    }
}
