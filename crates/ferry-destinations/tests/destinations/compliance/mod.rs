//! The destination compliance suite: the same checks for every kind, each
//! against the real server of that kind.
//!
//! A kind takes part by implementing [`Target`] in its own module here and
//! invoking [`compliance!`], which generates one test per check:
//!
//! - `delivers_every_event_intact`: N events arrive, read back with the
//!   kind's own client, each with its id and payload intact; the
//!   connection test passes.
//! - `redelivery_is_idempotent`: delivering the same event again creates no
//!   second copy where the target de-duplicates, and carries the same id
//!   where it does not (so consumers can).
//! - `wrong_credentials_are_permanent`: a permanent failure whose message
//!   names the authentication problem; the connection test fails.
//! - `unreachable_is_retryable_then_delivered`: with nothing listening the
//!   attempt is retryable; pointed at the real server (as a `PATCH` does),
//!   the same event is delivered once. (Kinds without a network, files,
//!   have nothing to be unreachable.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use ferry_core::delivery::Envelope;
use ferry_core::destination::{
    Auth, DEFAULT_MAX_IN_FLIGHT, Destination, DestinationKind, DestinationSecrets,
};
use ferry_core::event::Event;
use ferry_core::ports::{AttemptError, Deliverer, Outcome};
use ferry_core::{DeliveryId, DestinationId, EventId, OrgId};
use ferry_destinations::{Catalog, CatalogOptions};
use serde_json::{Value, json};

/// Generates the suite's tests for a [`Target`].
macro_rules! compliance {
    ($target:ty) => {
        #[tokio::test]
        async fn delivers_every_event_intact() {
            crate::compliance::delivers_every_event_intact::<$target>().await;
        }

        #[tokio::test]
        async fn redelivery_is_idempotent() {
            crate::compliance::redelivery_is_idempotent::<$target>().await;
        }

        #[tokio::test]
        async fn wrong_credentials_are_permanent() {
            crate::compliance::wrong_credentials_are_permanent::<$target>().await;
        }

        #[tokio::test]
        async fn unreachable_is_retryable_then_delivered() {
            crate::compliance::unreachable_is_retryable_then_delivered::<$target>().await;
        }
    };
}

#[cfg(feature = "amqp")]
pub mod amqp;
#[cfg(feature = "email")]
pub mod email;
#[cfg(feature = "file")]
mod file;
#[cfg(feature = "mqtt")]
pub mod mqtt;
#[cfg(feature = "mysql")]
pub mod mysql;
#[cfg(feature = "nats")]
pub mod nats;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "s3")]
pub mod s3;
#[cfg(feature = "sftp")]
pub mod sftp;
#[cfg(feature = "webhook")]
mod webhook;

/// How long a check waits for deliveries to become visible.
pub const WAIT: Duration = Duration::from_secs(15);
/// Events delivered by `delivers_every_event_intact`.
pub const EVENTS: usize = 25;

/// One event as the target's own client read it back.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// The event id as carried by the kind (message id, header, column …).
    pub id: String,
    /// The Standard Webhooks body `{"id","type","timestamp","data"}`, or
    /// for kinds that store columns, the same fields read back.
    pub payload: Value,
    /// The W3C `traceparent` it carried (kinds with `CARRIES_TRACE`).
    pub traceparent: Option<String>,
}

/// A test-owned resource on a real server (a queue, a stream, a table, a
/// bucket …) and how to read it back.
#[async_trait]
pub trait Target: Send + Sync {
    const KIND: DestinationKind;
    /// Whether re-delivering an event leaves one copy (JetStream, SQL
    /// tables, object keys, files) rather than two with the same id.
    const DEDUPLICATES: bool;
    /// Whether the kind reaches its target over the network (so that it
    /// can be unreachable); `false` only for local files.
    const NETWORKED: bool = true;
    /// Whether the consumer gets the attempt's `traceparent` (a header, a
    /// property, a field) and `received` reads it back.
    const CARRIES_TRACE: bool = false;
    /// The fields of the receipt of every delivered attempt: the kind's
    /// own reference to what it made (an entry id, an ETag, a path …).
    const RECEIPT: &'static [&'static str];

    /// Creates the resource, unique to this test, and returns the config
    /// and auth of a destination that reaches it.
    async fn provision() -> (Self, Value, Auth)
    where
        Self: Sized;

    /// Everything that arrived so far.
    async fn received(&mut self) -> Vec<Received>;

    /// The same destination with credentials the server refuses; `None`
    /// for kinds that have none (files).
    fn wrong_credentials(&self, config: &Value, auth: &Auth) -> Option<(Value, Auth)>;

    /// The same destination pointed at an address where nothing listens.
    fn unreachable(&self, config: &Value) -> Value;
}

/// The catalog of the tests: loopback allowed, files written under the
/// system's temporary directory.
pub fn catalog() -> Catalog {
    Catalog::new(CatalogOptions {
        allow_private_networks: true,
        file_roots: vec![std::env::temp_dir()],
        ..CatalogOptions::default()
    })
}

/// The hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A deliverer built as the API builds one: validated config, stored
/// destination, catalog.
pub fn deliverer(kind: DestinationKind, config: &Value, auth: &Auth) -> Arc<dyn Deliverer> {
    deliverer_in(&catalog(), kind, config, auth)
}

/// As [`deliverer`], with the given catalog.
pub fn deliverer_in(
    catalog: &Catalog,
    kind: DestinationKind,
    config: &Value,
    auth: &Auth,
) -> Arc<dyn Deliverer> {
    catalog
        .build(&validated(catalog, kind, config, auth))
        .unwrap_or_else(|e| panic!("{kind} destination did not build: {e}"))
}

/// A destination validated and stored as the API stores one.
pub fn validated(
    catalog: &Catalog,
    kind: DestinationKind,
    config: &Value,
    auth: &Auth,
) -> Destination {
    let config = catalog
        .validate(kind, config, auth)
        .unwrap_or_else(|errors| panic!("{kind} config {config} refused: {errors:?}"));
    stored(kind, config, auth)
}

/// Passes the connection test, then delivers `envelope`, which must be
/// delivered; the attempt's report.
#[cfg(any(feature = "email", feature = "s3"))]
pub async fn check_and_deliver(
    deliverer: &dyn Deliverer,
    envelope: &Envelope,
) -> ferry_core::ports::AttemptReport {
    let check = deliverer.check().await;
    assert!(check.ok, "{}", check.message);
    let report = deliverer.deliver(envelope).await;
    assert!(report.result.is_ok(), "{:?}", report.result);
    report
}

/// A stored destination of `kind` with this validated config and auth.
pub fn stored(kind: DestinationKind, config: Value, auth: &Auth) -> Destination {
    let now = Utc::now();
    Destination {
        id: DestinationId::generate(),
        org_id: OrgId::generate(),
        name: format!("{kind} compliance"),
        kind,
        config,
        filter: Default::default(),
        retry: Default::default(),
        is_default: false,
        enabled: true,
        max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        alerts: Default::default(),
        secrets: DestinationSecrets {
            auth: auth.clone(),
            signing: Default::default(),
        },
        health: Default::default(),
        created_at: now,
        updated_at: now,
    }
}

/// A name no other test (or earlier run) uses: `<prefix>_<ulid>`, in
/// lower case so that it is also a valid SQL, queue or topic name.
#[cfg(any(
    feature = "redis",
    feature = "amqp",
    feature = "postgres",
    feature = "mysql",
    feature = "nats",
    feature = "mqtt"
))]
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{}", ulid::Ulid::new()).to_lowercase()
}

/// An event with a payload that exercises escaping and non-ASCII text. Its
/// timestamp has microsecond precision, as events read from the store have
/// (and as SQL timestamp columns keep).
pub fn envelope(n: usize, attempt: u32) -> Envelope {
    let event = Event {
        id: EventId::generate(),
        org_id: OrgId::generate(),
        event_type: format!("order.created.v{}", n % 3),
        data: json!({"n": n, "note": "ünïcode \"quoted\" \n line", "items": [1.5, null, true]}),
        metadata: json!({}),
        idempotency_key: None,
        created_at: chrono::DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap(),
        trace: None,
    };
    // Every other event belongs to a trace.
    let trace = n.is_multiple_of(2).then(|| {
        let parent = format!("00-{:032x}-{:016x}-01", 0xfe_u128 << 64 | n as u128, n + 1);
        ferry_core::trace::TraceContext::parse(&parent, None).unwrap()
    });
    Envelope {
        delivery_id: DeliveryId::generate(),
        event: Arc::new(event),
        attempt,
        trace,
    }
}

/// The payload every kind must carry for `envelope`'s event.
pub fn expected_payload(envelope: &Envelope) -> Value {
    serde_json::to_value(ferry_destinations::message::Payload::of(&envelope.event)).unwrap()
}

/// Polls the target until `n` entries arrived (or `WAIT` passed), then
/// waits a little longer to see any extra copy.
pub async fn wait_for<T: Target>(target: &mut T, n: usize) -> Vec<Received> {
    let deadline = Instant::now() + WAIT;
    loop {
        let received = target.received().await;
        if received.len() >= n {
            tokio::time::sleep(Duration::from_millis(300)).await;
            return target.received().await;
        }
        if Instant::now() > deadline {
            return received;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn assert_delivered(kind: DestinationKind, outcome: &Outcome) {
    assert!(
        outcome.is_ok(),
        "{kind}: expected delivered, got {outcome:?}"
    );
}

pub async fn delivers_every_event_intact<T: Target>() {
    let (mut target, config, auth) = T::provision().await;
    let deliverer = deliverer(T::KIND, &config, &auth);
    let check = deliverer.check().await;
    assert!(
        check.ok,
        "{}: connection test failed: {}",
        T::KIND,
        check.message
    );

    let envelopes: Vec<_> = (0..EVENTS).map(|n| envelope(n, 1)).collect();
    for envelope in &envelopes {
        let outcome = deliverer.deliver(envelope).await.result;
        assert_delivered(T::KIND, &outcome);
        let receipt = outcome.ok().and_then(|d| d.receipt).unwrap_or_default();
        for field in T::RECEIPT {
            let value = receipt.get(field);
            assert!(
                value.is_some_and(|v| !v.is_null() && v != ""),
                "{}: the receipt has no `{field}`: {receipt:?}",
                T::KIND
            );
        }
    }
    let received = wait_for(&mut target, EVENTS).await;
    assert_eq!(received.len(), EVENTS, "{}: {received:?}", T::KIND);
    for envelope in &envelopes {
        let id = envelope.event.id.as_str();
        let copy = received
            .iter()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("{}: event {id} missing", T::KIND));
        assert_eq!(copy.payload, expected_payload(envelope), "{}", T::KIND);
        if T::CARRIES_TRACE {
            assert_eq!(
                copy.traceparent,
                envelope.trace.as_ref().map(|t| t.traceparent()),
                "{}: the consumer's traceparent",
                T::KIND
            );
        }
    }
}

pub async fn redelivery_is_idempotent<T: Target>() {
    let (mut target, config, auth) = T::provision().await;
    let deliverer = deliverer(T::KIND, &config, &auth);
    let first = envelope(0, 1);
    let mut again = first.clone();
    again.attempt = 2;
    let mut replay = first.clone();
    replay.delivery_id = DeliveryId::generate();
    for envelope in [&first, &again, &replay] {
        assert_delivered(T::KIND, &deliverer.deliver(envelope).await.result);
    }
    let expected = if T::DEDUPLICATES { 1 } else { 3 };
    let received = wait_for(&mut target, expected).await;
    assert_eq!(received.len(), expected, "{}: {received:?}", T::KIND);
    for copy in &received {
        assert_eq!(copy.id, first.event.id.as_str(), "{}", T::KIND);
        assert_eq!(copy.payload, expected_payload(&first), "{}", T::KIND);
    }
}

pub async fn wrong_credentials_are_permanent<T: Target>() {
    let (mut target, config, auth) = T::provision().await;
    let Some((config, auth)) = target.wrong_credentials(&config, &auth) else {
        return;
    };
    let deliverer = deliverer(T::KIND, &config, &auth);
    let report = deliverer.deliver(&envelope(0, 1)).await;
    let Err(AttemptError::Permanent { reason: error }) = &report.result else {
        panic!(
            "{}: expected a permanent failure, got {:?}",
            T::KIND,
            report.result
        );
    };
    let lower = error.to_lowercase();
    assert!(
        [
            "auth",
            "credential",
            "password",
            "denied",
            "login",
            "refused by the server"
        ]
        .iter()
        .any(|word| lower.contains(word)),
        "{}: the error does not say what is wrong: {error}",
        T::KIND
    );
    let check = deliverer.check().await;
    assert!(!check.ok, "{}: the connection test passed", T::KIND);
    assert!(target.received().await.is_empty(), "{}", T::KIND);
    let shown = format!(
        "{error} {} {:?} {:?}",
        check.message, report.request, report.response
    );
    for secret in secrets_of(&auth) {
        assert!(
            !shown.contains(&secret),
            "{}: a secret of the auth is shown: {shown}",
            T::KIND
        );
    }
}

/// The secret values of an auth, which no error, check message or captured
/// request may show.
fn secrets_of(auth: &Auth) -> Vec<String> {
    let value = serde_json::to_value(auth).unwrap();
    let shown = auth.redacted();
    let Value::Object(fields) = value else {
        return Vec::new();
    };
    fields
        .into_iter()
        .filter(|(name, _)| shown.get(name) == Some(&json!("***")))
        .filter_map(|(_, value)| value.as_str().map(str::to_owned))
        .collect()
}

pub async fn unreachable_is_retryable_then_delivered<T: Target>() {
    if !T::NETWORKED {
        return;
    }
    let (mut target, config, auth) = T::provision().await;
    let event = envelope(0, 1);
    let down = deliverer(T::KIND, &target.unreachable(&config), &auth);
    let started = Instant::now();
    let report = down.deliver(&event).await;
    assert!(
        matches!(report.result, Err(AttemptError::Retryable { .. })),
        "{}: expected retryable, got {:?}",
        T::KIND,
        report.result
    );
    assert!(
        started.elapsed() < WAIT,
        "{}: an unreachable server took {:?} to fail",
        T::KIND,
        started.elapsed()
    );
    assert!(!down.check().await.ok, "{}", T::KIND);

    let mut retry = event.clone();
    retry.attempt = 2;
    let up = deliverer(T::KIND, &config, &auth);
    assert_delivered(T::KIND, &up.deliver(&retry).await.result);
    let received = wait_for(&mut target, 1).await;
    assert_eq!(received.len(), 1, "{}: {received:?}", T::KIND);
    assert_eq!(received[0].id, event.event.id.as_str());
}
