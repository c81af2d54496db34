//! The broker and database kinds the load tool drives (`--kind` with
//! `--target URL`): for each, a fixture that creates the broker-side object
//! a run needs under a name of its own (a queue bound to an exchange, a
//! JetStream stream, a Redis stream key, a topic subscriber, a table), gives
//! the destination config that delivers there, counts what arrived with the
//! real client, and removes the object again; and a publisher that sends the
//! same messages straight through the same client crate, with the kind's
//! success semantics and connection layout, for the baseline.

mod amqp;
mod mqtt;
mod nats;
mod redis;
mod table;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::Utc;
use ferry_client::usage;
use ferry_core::delivery::Envelope;
use ferry_core::event::Event;
use ferry_core::{DeliveryId, EventId, OrgId};
use ferry_destinations::message::{Payload, metadata};
use reqwest::Url;
use serde_json::{Value, json};

use super::report::ReadBack;

/// How long a read-back waits for the count to reach what was expected.
const READ_BACK_WAIT: Duration = Duration::from_secs(10);

/// Where deliveries go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// The tool's own loopback webhook receiver.
    Webhook,
    /// A queue bound to an exchange of the run's own (publisher confirms).
    Amqp,
    /// A JetStream stream of the run's own (publish acks).
    Nats,
    /// A Redis stream key of the run's own (`XADD`).
    Redis,
    /// A topic of the run's own with a subscriber (QoS 1, PUBACK).
    Mqtt,
    /// A PostgreSQL table of the run's own (committed inserts).
    Postgres,
    /// A MySQL or MariaDB table of the run's own (committed inserts).
    Mysql,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Webhook => "webhook",
            Kind::Amqp => "amqp",
            Kind::Nats => "nats",
            Kind::Redis => "redis",
            Kind::Mqtt => "mqtt",
            Kind::Postgres => "postgres",
            Kind::Mysql => "mysql",
        }
    }

    /// URL schemes `--target` may use.
    fn schemes(self) -> &'static [&'static str] {
        match self {
            Kind::Webhook => &[],
            Kind::Amqp => &["amqp", "amqps"],
            Kind::Nats => &["nats", "tls"],
            Kind::Redis => &["redis", "rediss"],
            Kind::Mqtt => &["mqtt", "mqtts"],
            Kind::Postgres => &["postgres", "postgresql"],
            Kind::Mysql => &["mysql", "mariadb"],
        }
    }
}

/// A broker or database to drive, from `--kind` and `--target`.
#[derive(Clone)]
pub struct BrokerTarget {
    pub kind: Kind,
    /// The URL as given, credentials included: what the tool's own clients use.
    url: Url,
    /// The URL without credentials: what the destination's config gets.
    bare: Url,
    /// `user:password` of the URL, for the destination's `auth` (sealed at
    /// rest); a database user name without a password stays in the URL.
    login: Option<(String, String)>,
}

impl std::fmt::Debug for BrokerTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerTarget")
            .field("kind", &self.kind)
            .field("url", &self.bare.as_str())
            .finish_non_exhaustive()
    }
}

impl BrokerTarget {
    /// Checks `--target` against `--kind`.
    pub fn parse(kind: Kind, raw: &str) -> anyhow::Result<Self> {
        let url = Url::parse(raw)
            .map_err(|e| usage(format!("--target is not a valid URL ({e}): {raw}")))?;
        if !kind.schemes().contains(&url.scheme()) {
            let schemes: Vec<String> = kind.schemes().iter().map(|s| format!("{s}://")).collect();
            return Err(usage(format!(
                "--target for --kind {} must be a {} URL, not {}://",
                kind.name(),
                schemes.join(" or "),
                url.scheme()
            )));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(usage("--target must name a host"));
        }
        if matches!(kind, Kind::Postgres | Kind::Mysql) && url.path().trim_matches('/').is_empty() {
            return Err(usage(format!(
                "--target for --kind {} must name a database, e.g. {}://user@127.0.0.1/test",
                kind.name(),
                url.scheme()
            )));
        }
        let mut bare = url.clone();
        let login = match url.password() {
            Some(password) => {
                let decode = |s: &str| {
                    percent_decode(s).with_context(|| "--target has invalid %-escapes in its login")
                };
                let login = (decode(url.username())?, decode(password)?);
                // Invariant: the URL has a host, so it can lose its login.
                let _ = bare.set_username("");
                let _ = bare.set_password(None);
                Some(login)
            }
            // The database kinds take a user name in the URL.
            None if url.username().is_empty() || matches!(kind, Kind::Postgres | Kind::Mysql) => {
                None
            }
            None => {
                return Err(usage(format!(
                    "--target for --kind {} takes user:password@ or no login at all",
                    kind.name()
                )));
            }
        };
        Ok(Self {
            kind,
            url,
            bare,
            login,
        })
    }

    /// The URL without its login, to show.
    pub fn display_url(&self) -> &str {
        self.bare.as_str()
    }

    /// The destination's `auth`: `basic` with the URL's login, else `none`.
    pub fn auth(&self) -> Value {
        match &self.login {
            Some((username, password)) => {
                json!({"type": "basic", "username": username, "password": password})
            }
            None => json!({"type": "none"}),
        }
    }
}

/// `%XX` escapes of a URL's user name or password, decoded.
fn percent_decode(s: &str) -> anyhow::Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .context("a `%` without two hex digits")?;
            out.push(u8::from_str_radix(hex, 16).context("a `%` without two hex digits")?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).context("not UTF-8")
}

/// One message as every kind sends it: the Standard Webhooks body and the
/// metadata headers of a first attempt, built by the kinds' own code.
pub struct Message {
    pub body: Vec<u8>,
    pub metadata: Vec<(&'static str, String)>,
    pub event: Arc<Event>,
}

impl Message {
    /// A new event of `event_type` with `data`, as Ferry would deliver it.
    pub fn new(event_type: &str, data: Value) -> Self {
        let event = Arc::new(Event {
            id: EventId::generate(),
            org_id: OrgId::generate(),
            event_type: event_type.to_owned(),
            data,
            metadata: json!({}),
            idempotency_key: None,
            created_at: Utc::now(),
            trace: None,
        });
        let envelope = Envelope {
            delivery_id: DeliveryId::generate(),
            event: Arc::clone(&event),
            attempt: 1,
            trace: None,
        };
        Self {
            body: Payload::of(&event).to_bytes(),
            metadata: metadata(&envelope),
            event,
        }
    }
}

/// The broker-side object of one run.
pub enum Fixture {
    Amqp(amqp::Fixture),
    Nats(nats::Fixture),
    Redis(redis::Fixture),
    Mqtt(mqtt::Fixture),
    Postgres(table::Fixture<table::Postgres>),
    Mysql(table::Fixture<table::Mysql>),
}

impl Fixture {
    /// Creates the object, named after `name` (lower-case letters, digits
    /// and `_`), where events of `event_type` will be delivered.
    pub async fn create(
        target: &BrokerTarget,
        name: &str,
        event_type: &str,
    ) -> anyhow::Result<Self> {
        let url = &target.url;
        let created = match target.kind {
            Kind::Webhook => anyhow::bail!("the webhook kind has no broker-side object"),
            Kind::Amqp => Fixture::Amqp(amqp::Fixture::create(url, name, event_type).await?),
            Kind::Nats => Fixture::Nats(nats::Fixture::create(url, name).await?),
            Kind::Redis => Fixture::Redis(redis::Fixture::create(url, name).await?),
            Kind::Mqtt => Fixture::Mqtt(mqtt::Fixture::create(url, name).await?),
            Kind::Postgres => Fixture::Postgres(table::Fixture::create(url, name).await?),
            Kind::Mysql => Fixture::Mysql(table::Fixture::create(url, name).await?),
        };
        Ok(created)
    }

    /// The destination config that delivers into the object.
    pub fn config(&self, target: &BrokerTarget) -> Value {
        let url = target.bare.as_str();
        match self {
            Fixture::Amqp(f) => f.config(url),
            Fixture::Nats(f) => f.config(url),
            Fixture::Redis(f) => f.config(url),
            Fixture::Mqtt(f) => f.config(url),
            Fixture::Postgres(f) => f.config(url),
            Fixture::Mysql(f) => f.config(url),
        }
    }

    /// What the read-back counts, for the report.
    fn counted(&self) -> &'static str {
        match self {
            Fixture::Amqp(_) => "messages in the queue",
            Fixture::Nats(_) => "messages in the stream",
            Fixture::Redis(_) => "entries in the stream (XLEN)",
            Fixture::Mqtt(_) => "distinct messages the subscriber got",
            Fixture::Postgres(_) | Fixture::Mysql(_) => "rows in the table",
        }
    }

    /// How many messages the object holds (or its subscriber got).
    async fn count(&mut self) -> anyhow::Result<u64> {
        match self {
            Fixture::Amqp(f) => f.count().await,
            Fixture::Nats(f) => f.count().await,
            Fixture::Redis(f) => f.count().await,
            Fixture::Mqtt(f) => Ok(f.count()),
            Fixture::Postgres(f) => f.count().await,
            Fixture::Mysql(f) => f.count().await,
        }
    }

    /// Counts what the object holds with the real client, waiting up to
    /// [`READ_BACK_WAIT`] for `expected` (a subscriber may still be receiving).
    pub async fn read_back(&mut self, expected: u64) -> anyhow::Result<ReadBack> {
        let deadline = Instant::now() + READ_BACK_WAIT;
        loop {
            let count = self.count().await?;
            if count >= expected || Instant::now() >= deadline {
                return Ok(ReadBack {
                    counted: self.counted(),
                    count,
                    expected,
                    complete: count >= expected,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A client that publishes into the object the way the kind does.
    pub async fn publisher(&self, target: &BrokerTarget) -> anyhow::Result<Publisher> {
        let url = &target.url;
        Ok(match self {
            Fixture::Amqp(f) => Publisher::Amqp(f.publisher(url).await?),
            Fixture::Nats(f) => Publisher::Nats(f.publisher(url).await?),
            Fixture::Redis(f) => Publisher::Redis(f.publisher(url).await?),
            Fixture::Mqtt(f) => Publisher::Mqtt(f.publisher(url).await?),
            Fixture::Postgres(f) => Publisher::Postgres(f.publisher(url).await?),
            Fixture::Mysql(f) => Publisher::Mysql(f.publisher(url).await?),
        })
    }

    /// Deletes the object.
    pub async fn remove(self) -> anyhow::Result<()> {
        match self {
            Fixture::Amqp(f) => f.remove().await,
            Fixture::Nats(f) => f.remove().await,
            Fixture::Redis(f) => f.remove().await,
            Fixture::Mqtt(f) => f.remove().await,
            Fixture::Postgres(f) => f.remove().await,
            Fixture::Mysql(f) => f.remove().await,
        }
    }
}

/// The baseline's client: one publish, returning once the broker or
/// database acknowledged it as the kind requires.
pub enum Publisher {
    Amqp(amqp::Publisher),
    Nats(nats::Publisher),
    Redis(redis::Publisher),
    Mqtt(mqtt::Publisher),
    Postgres(table::Publisher<table::Postgres>),
    Mysql(table::Publisher<table::Mysql>),
}

impl Publisher {
    pub async fn publish(&self, message: &Message) -> anyhow::Result<()> {
        match self {
            Publisher::Amqp(p) => p.publish(message).await,
            Publisher::Nats(p) => p.publish(message).await,
            Publisher::Redis(p) => p.publish(message).await,
            Publisher::Mqtt(p) => p.publish(message).await,
            Publisher::Postgres(p) => p.publish(message).await,
            Publisher::Mysql(p) => p.publish(message).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_checked_against_the_kind() {
        let t = BrokerTarget::parse(Kind::Amqp, "amqp://ferry:p%40ss@127.0.0.1:5672/%2f").unwrap();
        assert_eq!(t.bare.as_str(), "amqp://127.0.0.1:5672/%2f");
        assert_eq!(
            t.auth(),
            json!({"type": "basic", "username": "ferry", "password": "p@ss"})
        );
        let t = BrokerTarget::parse(Kind::Redis, "redis://127.0.0.1:6379").unwrap();
        assert_eq!(t.auth(), json!({"type": "none"}));
        let t = BrokerTarget::parse(Kind::Mysql, "mysql://root@127.0.0.1:3306/test").unwrap();
        assert_eq!(t.bare.as_str(), "mysql://root@127.0.0.1:3306/test");
        assert_eq!(t.auth(), json!({"type": "none"}));
        let half = BrokerTarget::parse(Kind::Amqp, "amqp://guest@127.0.0.1").unwrap_err();
        assert!(half.to_string().contains("user:password@"), "{half}");

        let wrong = BrokerTarget::parse(Kind::Nats, "redis://127.0.0.1:6379").unwrap_err();
        assert!(wrong.to_string().contains("nats:// or tls://"), "{wrong}");
        let no_db =
            BrokerTarget::parse(Kind::Postgres, "postgres://postgres@127.0.0.1").unwrap_err();
        assert!(
            no_db.to_string().contains("must name a database"),
            "{no_db}"
        );
        assert!(BrokerTarget::parse(Kind::Mqtt, "not a url").is_err());
    }

    #[test]
    fn messages_carry_the_kinds_payload_and_metadata() {
        let m = Message::new("load.test", json!({"seq": 1}));
        let body: Value = serde_json::from_slice(&m.body).unwrap();
        let id = m.event.id.to_string();
        assert_eq!(body["id"], json!(id));
        assert_eq!(body["type"], "load.test");
        assert_eq!(body["data"], json!({"seq": 1}));
        assert_eq!(m.metadata[0], ("webhook-id", id));
    }
}
