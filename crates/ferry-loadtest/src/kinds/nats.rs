//! nats: a JetStream stream of the run's own capturing its subjects,
//! counted from the stream's state. The publisher, like the kind, sends
//! each message with `Nats-Msg-Id` and the metadata headers on one client
//! and waits for the JetStream publish ack.

use std::time::Duration;

use anyhow::{Context as _, bail};
use async_nats::HeaderMap;
use async_nats::jetstream::{self, stream};
use reqwest::Url;
use serde_json::{Value, json};

use super::Message;

/// The kind's default `timeout_ms`, as the wait for a JetStream ack.
const TIMEOUT: Duration = Duration::from_secs(10);

pub struct Fixture {
    context: jetstream::Context,
    stream: String,
    /// Subjects are `{prefix}.{type}`.
    prefix: String,
}

async fn connect(url: &Url) -> anyhow::Result<async_nats::Client> {
    async_nats::ConnectOptions::new()
        .request_timeout(Some(TIMEOUT))
        .connect(url.as_str())
        .await
        .with_context(|| format!("cannot connect to NATS at {}", url.host_str().unwrap_or("")))
}

impl Fixture {
    pub async fn create(url: &Url, name: &str) -> anyhow::Result<Self> {
        let context = jetstream::new(connect(url).await?);
        let stream = format!("FERRY_LOADTEST_{}", name.to_ascii_uppercase());
        let prefix = format!("ferry-loadtest.{name}");
        context
            .create_stream(stream::Config {
                name: stream.clone(),
                subjects: vec![format!("{prefix}.>")],
                ..stream::Config::default()
            })
            .await
            .with_context(|| format!("cannot create JetStream stream {stream}"))?;
        Ok(Self {
            context,
            stream,
            prefix,
        })
    }

    pub fn config(&self, url: &str) -> Value {
        json!({"servers": [url], "subject": format!("{}.{{type}}", self.prefix), "stream": self.stream})
    }

    pub async fn count(&self) -> anyhow::Result<u64> {
        let info = self
            .context
            .get_stream(&self.stream)
            .await
            .with_context(|| format!("cannot find JetStream stream {}", self.stream))?
            .get_info()
            .await
            .with_context(|| format!("cannot read JetStream stream {}", self.stream))?;
        Ok(info.state.messages)
    }

    pub async fn publisher(&self, url: &Url) -> anyhow::Result<Publisher> {
        Ok(Publisher {
            context: jetstream::new(connect(url).await?),
            prefix: self.prefix.clone(),
        })
    }

    pub async fn remove(self) -> anyhow::Result<()> {
        self.context
            .delete_stream(&self.stream)
            .await
            .with_context(|| format!("cannot delete JetStream stream {}", self.stream))?;
        Ok(())
    }
}

pub struct Publisher {
    context: jetstream::Context,
    prefix: String,
}

impl Publisher {
    pub async fn publish(&self, message: &Message) -> anyhow::Result<()> {
        let event = &message.event;
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", event.id.as_str());
        for (name, value) in &message.metadata {
            headers.insert(*name, value.as_str());
        }
        let subject = format!("{}.{}", self.prefix, event.event_type);
        let ack = self
            .context
            .publish_with_headers(subject, headers, message.body.clone().into())
            .await
            .context("JetStream publish failed")?
            .await
            .context("JetStream publish failed")?;
        if ack.duplicate {
            bail!("JetStream took the message as a duplicate");
        }
        Ok(())
    }
}
