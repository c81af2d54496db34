//! redis: a stream key of the run's own, counted with `XLEN`. The
//! publisher, like the kind in `stream` mode, runs one `XADD key * id …
//! payload … <metadata>` per message on one multiplexed connection.

use anyhow::Context as _;
use std::time::Duration;

use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use reqwest::Url;
use serde_json::{Value, json};

use super::Message;

/// The kind's default `timeout_ms`.
const TIMEOUT: Duration = Duration::from_secs(10);

pub struct Fixture {
    connection: MultiplexedConnection,
    key: String,
}

async fn connect(url: &Url) -> anyhow::Result<MultiplexedConnection> {
    let host = url.host_str().unwrap_or("");
    redis::Client::open(url.as_str())
        .with_context(|| format!("invalid Redis URL for {host}"))?
        .get_multiplexed_async_connection_with_config(
            &AsyncConnectionConfig::new()
                .set_connection_timeout(Some(TIMEOUT))
                .set_response_timeout(Some(TIMEOUT)),
        )
        .await
        .with_context(|| format!("cannot connect to Redis at {host}"))
}

impl Fixture {
    pub async fn create(url: &Url, name: &str) -> anyhow::Result<Self> {
        let mut connection = connect(url).await?;
        let key = format!("ferry-loadtest:{name}");
        // A stream starts with its first entry; make sure no old one is there.
        redis::cmd("DEL")
            .arg(&key)
            .query_async::<()>(&mut connection)
            .await
            .with_context(|| format!("cannot clear Redis key {key}"))?;
        Ok(Self { connection, key })
    }

    pub fn config(&self, url: &str) -> Value {
        json!({"url": url, "mode": "stream", "key": self.key})
    }

    pub async fn count(&self) -> anyhow::Result<u64> {
        let mut connection = self.connection.clone();
        redis::cmd("XLEN")
            .arg(&self.key)
            .query_async(&mut connection)
            .await
            .with_context(|| format!("cannot read XLEN of {}", self.key))
    }

    pub async fn publisher(&self, url: &Url) -> anyhow::Result<Publisher> {
        Ok(Publisher {
            connection: connect(url).await?,
            key: self.key.clone(),
        })
    }

    pub async fn remove(mut self) -> anyhow::Result<()> {
        redis::cmd("DEL")
            .arg(&self.key)
            .query_async::<()>(&mut self.connection)
            .await
            .with_context(|| format!("cannot delete Redis key {}", self.key))
    }
}

pub struct Publisher {
    connection: MultiplexedConnection,
    key: String,
}

impl Publisher {
    pub async fn publish(&self, message: &Message) -> anyhow::Result<()> {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&self.key)
            .arg("*")
            .arg("id")
            .arg(message.event.id.as_str())
            .arg("payload")
            .arg(&message.body);
        for (name, value) in &message.metadata {
            cmd.arg(*name).arg(value);
        }
        let mut connection = self.connection.clone();
        cmd.query_async::<redis::Value>(&mut connection)
            .await
            .context("XADD failed")?;
        Ok(())
    }
}
