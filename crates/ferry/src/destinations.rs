//! The operator side of a `Ferry`: destinations, the dead-letter queue,
//! replay and the audit trail, with the same validation and the same audit
//! records as the HTTP API.

use std::time::Duration;

use chrono::{DateTime, Utc};
use ferry_core::{DeliveryId, DestinationId, EventId};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::error::Error;
use crate::facade::Ferry;

/// A destination to create: its kind and the kind's configuration, as the
/// API's `POST /v1/destinations` takes them.
///
/// ```
/// use std::time::Duration;
/// use ferry::NewDestination;
/// use serde_json::json;
///
/// let hook = NewDestination::webhook("https://analytics.example.com/hooks/evals")
///     .name("analytics")
///     .max_retries(8)
///     .backoff(Duration::from_secs(1), Duration::from_secs(600));
/// let queue = NewDestination::new("amqp", json!({"url": "amqp://mq.internal:5672/%2f",
///                                                 "exchange": "evals"}));
/// # let _ = (hook, queue);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct NewDestination {
    body: Map<String, Value>,
}

impl NewDestination {
    /// A destination of `kind` (`webhook`, `amqp`, `nats`, `redis`, `mqtt`,
    /// `s3`, `sftp`, `email`, `postgres`, `mysql`, `file`) with its
    /// configuration, checked field by field when created.
    pub fn new(kind: impl Into<String>, config: Value) -> Self {
        let kind = kind.into();
        let mut body = Map::new();
        body.insert("name".into(), Value::String(kind.clone()));
        body.insert("kind".into(), Value::String(kind));
        body.insert("config".into(), config);
        Self { body }
    }

    /// A webhook to `url`, signed with a new secret (shown once, in
    /// [`Destination::signing_secret`]).
    pub fn webhook(url: impl Into<String>) -> Self {
        let url = url.into();
        let name: String = format!("webhook {url}").chars().take(100).collect();
        Self::new("webhook", json!({ "url": url })).name(name)
    }

    /// Its name (default: the kind, and a webhook's URL).
    #[must_use]
    pub fn name(self, name: impl Into<String>) -> Self {
        self.set("name", Value::String(name.into()))
    }

    /// Credentials, as the kind takes them (`{"type": "bearer", "token": …}`).
    #[must_use]
    pub fn auth(self, auth: Value) -> Self {
        self.set("auth", auth)
    }

    /// Retries after the first attempt before the event goes to the
    /// dead-letter queue (default 5).
    #[must_use]
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.retry().insert("max_retries".into(), json!(retries));
        self
    }

    /// The first retry's delay and the longest one; delays double between.
    #[must_use]
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        let retry = self.retry();
        retry.insert("initial_backoff_ms".into(), json!(millis(initial)));
        retry.insert("max_backoff_ms".into(), json!(millis(max)));
        self
    }

    /// Most attempts in flight at once to this destination.
    #[must_use]
    pub fn max_in_flight(self, n: u32) -> Self {
        self.set("max_in_flight", json!(n))
    }

    /// Created disabled: events wait until it is enabled.
    #[must_use]
    pub fn disabled(self) -> Self {
        self.set("enabled", Value::Bool(false))
    }

    fn set(mut self, key: &str, value: Value) -> Self {
        self.body.insert(key.into(), value);
        self
    }

    fn retry(&mut self) -> &mut Map<String, Value> {
        let entry = self
            .body
            .entry("retry")
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        entry.as_object_mut().expect("made an object above")
    }

    /// The body of `POST /v1/destinations`.
    pub(crate) fn into_body(self) -> Value {
        Value::Object(self.body)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A destination, secrets redacted.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Destination {
    /// Its id, for [`Ferry::port`](crate::Ferry::port).
    pub id: DestinationId,
    /// Its name, for people.
    pub name: String,
    /// `webhook`, `amqp`, `nats`, `redis`, `mqtt`, `s3`, `sftp`, `email`,
    /// `postgres`, `mysql` or `file`.
    pub kind: String,
    /// The kind's settings, defaults filled in.
    pub config: Value,
    /// Whether deliveries go out (a disabled destination keeps them).
    pub enabled: bool,
    /// `healthy`, `paused` (the breaker holds deliveries) or `disabled`.
    pub state: String,
    /// A new webhook's signing secret: shown once, when created.
    #[serde(default)]
    pub signing_secret: Option<String>,
    /// A new Ed25519 signing key's public half, when created.
    #[serde(default)]
    pub signing_public_key: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A delivery in the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DeadLetter {
    /// The delivery: one event to one destination.
    #[serde(rename = "id")]
    pub delivery_id: DeliveryId,
    /// The event, for [`Ferry::replay`](crate::Ferry::replay).
    pub event_id: EventId,
    /// Where it was going.
    pub destination_id: DestinationId,
    /// Attempts made.
    #[serde(rename = "attempt_count")]
    pub attempts: u32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the event was accepted.
    pub created_at: DateTime<Utc>,
    /// When it went dead.
    #[serde(rename = "updated_at")]
    pub dead_since: DateTime<Utc>,
}

/// One audit record: who did what to which entity, and when.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AuditEntry {
    /// The record's id (`aud_…`).
    pub id: String,
    /// An API key id, `system`, `source:<id>`, or the embedding
    /// application's actor name.
    pub actor: String,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// `destination`, `event`, `delivery`, `api_key`, …
    pub entity_type: String,
    /// The entity's id.
    pub entity_id: String,
    /// `destination.created`, `event.replayed`, …
    pub action: String,
    /// The entity before, secrets redacted (for changes and deletions).
    pub before: Option<Value>,
    /// The entity after, secrets redacted (for creations and changes).
    pub after: Option<Value>,
}

/// A `Ferry`'s destinations: create, list, read, delete.
pub struct Destinations<'a> {
    pub(crate) ferry: &'a Ferry,
}

impl Destinations<'_> {
    /// Creates a destination after validating its configuration field by
    /// field (errors name each field); audited.
    pub async fn create(&self, new: NewDestination) -> Result<Destination, Error> {
        let body = self
            .ferry
            .backend()
            .create_destination(new.into_body())
            .await?;
        parse(body)
    }

    /// Every destination, oldest first.
    pub async fn list(&self) -> Result<Vec<Destination>, Error> {
        self.ferry
            .backend()
            .list_destinations()
            .await?
            .into_iter()
            .map(parse)
            .collect()
    }

    /// One destination; `None` when unknown.
    pub async fn get(&self, id: &DestinationId) -> Result<Option<Destination>, Error> {
        self.ferry
            .backend()
            .get_destination(id)
            .await?
            .map(parse)
            .transpose()
    }

    /// Deletes a destination; its waiting deliveries end as `failed`.
    /// Audited.
    pub async fn delete(&self, id: &DestinationId) -> Result<(), Error> {
        self.ferry.backend().delete_destination(id).await
    }
}

/// Reads one of the API's JSON views into a typed value.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, Error> {
    serde_json::from_value(value)
        .map_err(|e| Error::Unavailable(format!("unexpected answer from Ferry: {e}")))
}
