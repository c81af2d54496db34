//! What the conformance cases share: the backend under test seen through
//! both ports, the fixture that opens it, and builders for domain values.
//! Timestamps are whole microseconds: every backend keeps at least that.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use ferry_core::audit::{AuditRecord, SYSTEM_ACTOR};
use ferry_core::crypto::Cipher;
use ferry_core::delivery::{Attempt, AttemptOutcome, Captured, Delivery, DeliveryStatus, Leased};
use ferry_core::destination::{
    Auth, DEFAULT_MAX_IN_FLIGHT, Destination, DestinationKind, DestinationSecrets, Filter, Health,
    Signing, SigningKey,
};
use ferry_core::event::{Event, NewEvent};
use ferry_core::ids::{ApiKeyId, DeliveryId, DestinationId, EventId, OrgId};
use ferry_core::org::{ApiKey, Org, Scope};
use ferry_core::page::PageRequest;
use ferry_core::ports::{
    Completion, ConfigStore, ExportStore, Lease, MetricsStore, Ownership, Queue, Resealing,
    ScheduleStore, Settled, SourceStore, Store,
};
use ferry_core::retry::RetryPolicy;
use ferry_core::secret::Secret;
use ferry_core::signing::SigningSecret;
use serde_json::json;

/// One backend under test: the same storage through both ports, as the
/// server holds it.
#[derive(Clone)]
pub struct Backend {
    pub store: Arc<dyn Store>,
    pub sources: Arc<dyn SourceStore>,
    pub ownership: Arc<dyn Ownership>,
    pub resealing: Arc<dyn Resealing>,
    pub exports: Arc<dyn ExportStore>,
    pub schedules: Arc<dyn ScheduleStore>,
    pub metrics: Arc<dyn MetricsStore>,
    pub config: Arc<dyn ConfigStore>,
    pub queue: Arc<dyn Queue>,
    /// The cipher the store seals with (clones share its key ring).
    pub cipher: Cipher,
}

impl Backend {
    /// A backend whose one store serves every state port.
    pub fn new<S>(store: S, queue: Arc<dyn Queue>, cipher: Cipher) -> Self
    where
        S: Store
            + SourceStore
            + Ownership
            + Resealing
            + ExportStore
            + ScheduleStore
            + MetricsStore
            + ConfigStore
            + Clone,
    {
        Self {
            store: Arc::new(store.clone()),
            sources: Arc::new(store.clone()),
            ownership: Arc::new(store.clone()),
            exports: Arc::new(store.clone()),
            schedules: Arc::new(store.clone()),
            metrics: Arc::new(store.clone()),
            config: Arc::new(store.clone()),
            resealing: Arc::new(store),
            queue,
            cipher,
        }
    }
}

/// Where a backend lives. Opening it again reaches the same data.
pub trait Fixture {
    async fn open(&self) -> Backend;

    /// Makes the backend refuse, from now on, to append audit records with
    /// `action` (a trigger), so that a case can see a write fail midway.
    async fn refuse_audit(&self, action: &str);
}

/// Now, truncated to whole microseconds.
pub fn now() -> DateTime<Utc> {
    micros(Utc::now())
}

pub fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap()
}

pub fn secs(n: i64) -> Duration {
    Duration::seconds(n)
}

pub async fn org(b: &Backend) -> OrgId {
    let org = Org {
        alert_destinations: Vec::new(),
        alerts: Default::default(),
        id: OrgId::generate(),
        name: "acme".into(),
        created_at: now(),
    };
    b.store.create_org(&org).await.unwrap();
    org.id
}

pub fn audit(org: &OrgId, entity: &str, action: &str) -> AuditRecord {
    let mut record = AuditRecord::new(org.clone(), "key_test", "test", entity, action);
    record.at = now();
    record
}

pub fn destination_value(org: &OrgId, name: &str, token: &str) -> Destination {
    let t = now();
    Destination {
        id: DestinationId::generate(),
        org_id: org.clone(),
        name: name.into(),
        kind: DestinationKind::Webhook,
        config: json!({"url": "https://receiver.test/hook", "timeout_ms": 10000}),
        filter: Filter {
            event_types: vec!["order.*".into()],
        },
        retry: RetryPolicy {
            multiplier: 1.5,
            ..RetryPolicy::default()
        },
        is_default: false,
        enabled: true,
        max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        alerts: ferry_core::alerting::AlertSettings {
            disable_after: Some(ferry_core::alerting::DisableAfter {
                failing_for_s: None,
                consecutive_failures: Some(500),
            }),
            ..Default::default()
        },
        secrets: DestinationSecrets {
            auth: Auth::Bearer {
                token: Secret::new(token.into()),
            },
            signing: Signing {
                secrets: vec![SigningKey {
                    secret: SigningSecret::generate(),
                    expires_at: None,
                }],
            },
        },
        health: Health::default(),
        created_at: t,
        updated_at: t,
    }
}

pub async fn destination(b: &Backend, org: &OrgId, name: &str) -> DestinationId {
    let d = destination_value(org, name, "token-for-tests");
    b.store
        .insert_destination(&d, &audit(org, d.id.as_str(), "destination.created"))
        .await
        .unwrap();
    d.id
}

pub fn event_at(org: &OrgId, event_type: &str, at: DateTime<Utc>) -> Event {
    let key = DeliveryId::generate().to_string();
    Event {
        id: ferry_core::ids::EventId::from_caller_key(org, &key),
        org_id: org.clone(),
        event_type: event_type.into(),
        data: json!({"order": {"id": 42, "total": 12.5, "items": ["a", "b"]}}),
        metadata: json!({"source": "tests"}),
        idempotency_key: Some(key),
        created_at: at,
        // Compared whole after every round trip: the trace context with it.
        trace: ferry_core::trace::TraceContext::parse(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            Some("ferry=t61rcWkgMzE,other=1"),
        ),
    }
}

/// An event with one pending delivery per destination, due at `at`.
pub fn new_event_at(
    org: &OrgId,
    event_type: &str,
    destinations: &[&DestinationId],
    at: DateTime<Utc>,
) -> NewEvent {
    let event = event_at(org, event_type, at);
    let deliveries = destinations
        .iter()
        .map(|d| Delivery::new(&event, (*d).clone()))
        .collect();
    NewEvent { event, deliveries }
}

pub fn new_event(org: &OrgId, destinations: &[&DestinationId]) -> NewEvent {
    new_event_at(org, "order.created", destinations, now())
}

/// Stores the events and hands their deliveries to the queue, as ingest
/// does; panics unless all are new.
pub async fn ingest(b: &Backend, batch: &[NewEvent]) {
    let outcomes = b.store.insert_events(batch).await.unwrap();
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, ferry_core::event::InsertOutcome::Inserted))
    );
    let deliveries: Vec<Delivery> = batch
        .iter()
        .flat_map(|e| e.deliveries.iter().cloned())
        .collect();
    b.queue.enqueue(&deliveries).await.unwrap();
}

/// Requeues as an operator does through the API: the store moves the
/// deliveries, then the queue is told.
pub async fn requeue(
    b: &Backend,
    org: &OrgId,
    selector: &ferry_core::ports::RequeueSelector,
    actor: &str,
) -> ferry_core::error::StoreResult<Vec<Delivery>> {
    let moved = b.store.requeue(org, selector, actor).await?;
    b.queue.enqueue(&moved).await?;
    Ok(moved)
}

/// Replays an event as an operator does through the API: the store commits
/// the replay, then the queue is given the deliveries now waiting.
pub async fn replay(
    b: &Backend,
    org: &OrgId,
    event_id: &EventId,
    destinations: Option<&[DestinationId]>,
) -> ferry_core::error::StoreResult<Option<Vec<Delivery>>> {
    let waiting = b
        .store
        .replay_event(org, event_id, destinations, "key_op")
        .await?;
    if let Some(waiting) = &waiting {
        b.queue.enqueue(waiting).await?;
    }
    Ok(waiting)
}

pub fn lease(owner: &str, now: DateTime<Utc>) -> Lease {
    Lease {
        owner: owner.into(),
        now,
        until: now + secs(30),
    }
}

/// The end of an attempt on a leased delivery.
pub fn completion(
    leased: &Leased,
    owner: &str,
    status: DeliveryStatus,
    next_attempt_at: Option<DateTime<Utc>>,
    counted: bool,
) -> Completion {
    let d = &leased.delivery;
    let (outcome, code, error) = match status {
        DeliveryStatus::Delivered => (AttemptOutcome::Delivered, 200, None),
        DeliveryStatus::Retrying => (AttemptOutcome::Retryable, 503, Some("HTTP 503")),
        _ => (AttemptOutcome::Permanent, 400, Some("HTTP 400")),
    };
    let headers = BTreeMap::from([("content-type".to_owned(), "application/json".to_owned())]);
    let mut audit = AuditRecord::new(
        d.org_id.clone(),
        SYSTEM_ACTOR,
        "delivery",
        d.id.as_str(),
        &format!("delivery.{status}"),
    )
    .before(json!({"status": "delivering"}))
    .after(json!({"status": status.as_str()}));
    audit.at = now();
    Completion {
        delivery_id: d.id.clone(),
        org_id: d.org_id.clone(),
        destination_id: d.destination_id.clone(),
        owner: owner.into(),
        accepted_at: leased.event.created_at,
        attempt: Attempt {
            delivery_id: d.id.clone(),
            number: d.attempt_count + 1,
            started_at: now(),
            duration_ms: 12,
            outcome,
            status_code: Some(code),
            error: error.map(str::to_owned),
            request: Some(Captured {
                headers: headers.clone(),
                body: r#"{"id":"x"}"#.into(),
            }),
            response: Some(Captured {
                headers,
                body: "ünïcode ok".into(),
            }),
            receipt: (status == DeliveryStatus::Delivered).then(|| {
                ferry_core::attempt::Receipt::of([
                    ("status", serde_json::json!(code)),
                    ("request_id", serde_json::json!("req-ünï-42")),
                ])
            }),
        },
        settled: match status {
            DeliveryStatus::Delivered => Settled::Delivered,
            DeliveryStatus::Retrying => Settled::Retry {
                at: next_attempt_at.unwrap_or_else(now),
                counted,
                error: error.unwrap_or_default().to_owned(),
            },
            DeliveryStatus::Dead => Settled::Dead {
                error: error.unwrap_or_default().to_owned(),
            },
            other => panic!("an attempt cannot settle a delivery as {other}"),
        },
        audit,
    }
}

/// A delivery as the store has it now.
pub async fn delivery(b: &Backend, org: &OrgId, id: &DeliveryId) -> Delivery {
    b.store
        .get_delivery(org, id)
        .await
        .unwrap()
        .expect("delivery exists")
        .0
}

pub fn ids(leased: &[Leased]) -> Vec<DeliveryId> {
    leased.iter().map(|l| l.delivery.id.clone()).collect()
}

pub fn page(limit: u32) -> PageRequest {
    PageRequest { limit, after: None }
}

pub fn api_key(org: &OrgId, hash: [u8; 32]) -> ApiKey {
    ApiKey {
        id: ApiKeyId::generate(),
        org_id: org.clone(),
        name: "ci".into(),
        prefix: "fk_abcdefg".into(),
        hash,
        scopes: vec![Scope::Ingest, Scope::Read],
        created_at: now(),
        last_used_at: None,
    }
}
