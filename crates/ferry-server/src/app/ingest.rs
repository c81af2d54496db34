//! Events in: validation, the event's id (the caller's key or its content),
//! fan-out, and the group-commit writer (`crate::ingest`), which answers
//! once the event and its deliveries are durable. The API's `POST
//! /v1/events`, inbound sources, the breaker's alerts and the embedded
//! library all come through here.

use chrono::Utc;
use ferry_core::delivery::Delivery;
use ferry_core::event::{
    Event, InsertOutcome, MAX_KEY_LEN, MAX_TYPE_LEN, NewEvent, canonical_json,
};
use ferry_core::org::Scope;
use ferry_core::trace::TraceContext;
use ferry_core::{DestinationId, EventId, FieldError, OrgId};
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{App, Error, Principal, Result};
use crate::routing;
use crate::traces::Traced;

/// Most events in one batch.
pub const MAX_BATCH: usize = 1_000;

/// One event to ingest: the body of `POST /v1/events`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({
    "type": "order.created",
    "data": {"order_id": "o_42", "total": 99.5, "currency": "EUR"},
    "id": "order-o_42-created",
    "destinations": ["dst_01jq3v2a4c6e8g0j2m4p6r8t0v"],
    "metadata": {"tenant": "eu-1"}
})))]
pub struct EventInput {
    /// The event type, which routing matches (`order.*`); required.
    #[serde(rename = "type")]
    #[schema(required = true, examples("order.created"))]
    pub event_type: Option<String>,
    /// Any JSON.
    #[serde(default)]
    pub data: Value,
    /// The caller's id (an idempotency key); without one the id comes
    /// from the content.
    pub id: Option<String>,
    /// Deliver to these destinations only, instead of routing.
    pub destinations: Option<Vec<String>>,
    pub metadata: Option<Value>,
}

/// Where an event goes, and so how its id is derived.
pub(super) enum Addressing {
    /// Routing decides, or the listed destinations; the id is scoped by
    /// the organization.
    Routed(Option<Vec<DestinationId>>),
    /// One destination only (an integration port); the id is scoped by it.
    Direct(DestinationId),
}

/// A validated event ready for the writer.
pub(super) struct Prepared {
    pub new: NewEvent,
    /// For a direct event: the attempts its destination's policy allows.
    pub max_attempts: Option<u32>,
}

/// A stored event: new (`duplicate: false`) or one already known by its id,
/// with the deliveries it has.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub event_id: EventId,
    pub duplicate: bool,
    pub deliveries: Vec<Delivery>,
}

impl App {
    /// Stores one event durably; answers after the commit. A known id
    /// stores nothing and answers with the original deliveries.
    /// `idempotency_key`, when given, wins over the input's `id`; `trace`
    /// is the producer's trace context, which the event joins.
    pub async fn ingest(
        &self,
        principal: &Principal,
        input: EventInput,
        idempotency_key: Option<String>,
        trace: Option<TraceContext>,
    ) -> Result<Accepted> {
        self.admit(principal)?;
        self.check_rate(principal, 1)?;
        let (mut span, trace) = self.ingest_span("ferry.ingest", principal.org(), trace);
        let result = async {
            let new = self
                .prepare(principal.org(), input, idempotency_key, trace)
                .await?;
            self.submit(new).await
        }
        .await;
        record_accepted(&mut span, &result);
        result
    }

    /// Stores many events, each on its own: an item that does not parse or
    /// validate gets its error, the others are stored (usually in one
    /// commit). `items` holds what the face could parse.
    pub async fn ingest_batch(
        &self,
        principal: &Principal,
        items: Vec<Result<EventInput>>,
        trace: Option<TraceContext>,
    ) -> Result<Vec<Result<Accepted>>> {
        self.admit(principal)?;
        if items.is_empty() || items.len() > MAX_BATCH {
            return Err(Error::malformed(
                "events",
                format!("must hold 1 to {MAX_BATCH} events"),
            ));
        }
        self.check_rate(principal, items.len())?;
        let (mut span, trace) = self.ingest_span("ferry.ingest.batch", principal.org(), trace);
        span.record(|| [KeyValue::new("ferry.events", items.len() as i64)]);
        let mut results: Vec<Option<Result<Accepted>>> = Vec::with_capacity(items.len());
        let mut ready: Vec<(usize, NewEvent)> = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            let prepared = match item {
                Ok(input) => {
                    self.prepare(principal.org(), input, None, trace.clone())
                        .await
                }
                Err(error) => Err(error),
            };
            match prepared {
                Ok(new) => {
                    ready.push((i, new));
                    results.push(None);
                }
                Err(error) => results.push(Some(Err(error))),
            }
        }
        let (slots, events): (Vec<usize>, Vec<NewEvent>) = ready.into_iter().unzip();
        let briefs: Vec<(EventId, Vec<Delivery>)> = events
            .iter()
            .map(|n| (n.event.id.clone(), n.deliveries.clone()))
            .collect();
        let outcomes = self.0.writer.submit_many(events).await;
        for ((slot, (id, deliveries)), outcome) in slots.into_iter().zip(briefs).zip(outcomes) {
            results[slot] = Some(
                outcome
                    .map(|o| accepted(id, deliveries, o))
                    .map_err(Error::from),
            );
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or(Err(Error::Internal)))
            .collect())
    }

    /// The checks before any event is taken: the scope, and a server still
    /// taking events.
    fn admit(&self, principal: &Principal) -> Result<()> {
        principal.require(Scope::Ingest)?;
        if self.is_shutting_down() {
            return Err(Error::ShuttingDown);
        }
        Ok(())
    }

    /// Takes `events` from an API key's allowance (`RateLimited` past it).
    fn check_rate(&self, principal: &Principal, events: usize) -> Result<()> {
        match principal.key_id() {
            Some(key) => self.0.limiter.check(key, events),
            None => Ok(()),
        }
    }

    /// Starts the span of one ingest request, a child of the producer's
    /// `trace`, and returns it with the context its events store: the
    /// span's own when traces are exported (the attempts become its
    /// children), else the producer's as it came.
    pub(super) fn ingest_span(
        &self,
        name: &'static str,
        org: &OrgId,
        trace: Option<TraceContext>,
    ) -> (Traced, Option<TraceContext>) {
        let span = self
            .0
            .traces
            .span(name, SpanKind::Server, trace.as_ref(), || {
                [KeyValue::new("ferry.org.id", org.to_string())]
            });
        let stored = span.context().or(trace);
        (span, stored)
    }

    /// Validates an event of `org`, decides its id and its deliveries.
    pub(super) async fn prepare(
        &self,
        org: &OrgId,
        input: EventInput,
        header_key: Option<String>,
        trace: Option<TraceContext>,
    ) -> Result<NewEvent> {
        let listed = input
            .destinations
            .as_deref()
            .map(|ids| parse_destination_ids("destinations", ids))
            .transpose()?;
        Ok(self
            .prepare_for(org, input, header_key, Addressing::Routed(listed), trace)
            .await?
            .new)
    }

    /// Validates an event of `org` for the given addressing, decides its
    /// id and its deliveries.
    pub(super) async fn prepare_for(
        &self,
        org: &OrgId,
        input: EventInput,
        header_key: Option<String>,
        addressing: Addressing,
        trace: Option<TraceContext>,
    ) -> Result<Prepared> {
        let event_type = match input.event_type {
            None => return Err(Error::malformed("type", "is required")),
            Some(t) => t,
        };
        if let Err(message) = check_type(&event_type) {
            return Err(Error::malformed("type", message));
        }
        let metadata = match input.metadata {
            None | Some(Value::Null) => json!({}),
            Some(m @ Value::Object(_)) => m,
            Some(_) => return Err(Error::malformed("metadata", "must be an object")),
        };
        let key = header_key.or(input.id);
        if let Some(k) = &key
            && (k.is_empty() || k.len() > MAX_KEY_LEN)
        {
            return Err(Error::malformed(
                "id",
                format!("must be 1 to {MAX_KEY_LEN} bytes"),
            ));
        }
        let named = match &addressing {
            Addressing::Routed(listed) => listed.as_deref().unwrap_or_default(),
            Addressing::Direct(destination) => std::slice::from_ref(destination),
        };
        let routes = self
            .0
            .routes
            .routes_with(self.0.store.as_ref(), org, named)
            .await?;
        let mut max_attempts = None;
        let (id, targets) = match addressing {
            Addressing::Routed(listed) => {
                let id = match &key {
                    Some(k) => EventId::from_caller_key(org, k),
                    None => EventId::from_content(org, &event_type, &canonical_json(&input.data)),
                };
                let targets = routing::resolve(&routes, &event_type, listed.as_deref())
                    .map_err(Error::Invalid)?;
                (id, targets)
            }
            Addressing::Direct(destination) => {
                let Some(route) = routes.iter().find(|r| r.id == destination) else {
                    return Err(Error::NotFound("destination"));
                };
                max_attempts = Some(route.max_attempts);
                let id = match &key {
                    Some(k) => EventId::for_destination(&destination, k),
                    None => EventId::for_destination_content(
                        &destination,
                        &event_type,
                        &canonical_json(&input.data),
                    ),
                };
                (id, vec![destination])
            }
        };
        let event = Event {
            id,
            org_id: org.clone(),
            event_type,
            data: input.data,
            metadata,
            idempotency_key: key,
            created_at: Utc::now(),
            trace,
        };
        let deliveries = targets
            .into_iter()
            .map(|d| Delivery::new(&event, d))
            .collect();
        Ok(Prepared {
            new: NewEvent { event, deliveries },
            max_attempts,
        })
    }

    /// Hands a prepared event to the group-commit writer.
    pub(super) async fn submit(&self, new: NewEvent) -> Result<Accepted> {
        let id = new.event.id.clone();
        let deliveries = new.deliveries.clone();
        let outcome = self.0.writer.submit(new).await?;
        Ok(accepted(id, deliveries, outcome))
    }
}

/// What an ingest request stored, on its span.
pub(super) fn record_accepted(span: &mut Traced, result: &Result<Accepted>) {
    match result {
        Ok(a) => span.record(|| {
            [
                KeyValue::new("ferry.event.id", a.event_id.to_string()),
                KeyValue::new("ferry.duplicate", a.duplicate),
                KeyValue::new("ferry.deliveries", a.deliveries.len() as i64),
            ]
        }),
        Err(error) => span.fail(|| error.to_string()),
    }
}

fn accepted(event_id: EventId, deliveries: Vec<Delivery>, outcome: InsertOutcome) -> Accepted {
    match outcome {
        InsertOutcome::Inserted => Accepted {
            event_id,
            duplicate: false,
            deliveries,
        },
        InsertOutcome::Duplicate(original) => Accepted {
            event_id,
            duplicate: true,
            deliveries: original,
        },
    }
}

/// An event type: 1 to `MAX_TYPE_LEN` bytes of printable text.
fn check_type(event_type: &str) -> Result<(), String> {
    if event_type.trim().is_empty() {
        Err("must not be empty".into())
    } else if event_type.len() > MAX_TYPE_LEN {
        Err(format!("must be at most {MAX_TYPE_LEN} bytes"))
    } else if event_type.chars().any(char::is_control) {
        Err("must not contain control characters".into())
    } else {
        Ok(())
    }
}

/// Destination ids named in `field`; one that does not parse is unknown
/// (whether it exists is checked where the org's destinations are read).
pub(super) fn parse_destination_ids(field: &str, ids: &[String]) -> Result<Vec<DestinationId>> {
    let mut parsed = Vec::with_capacity(ids.len());
    let mut errors = Vec::new();
    for (i, text) in ids.iter().enumerate() {
        match DestinationId::parse(text) {
            Ok(id) => parsed.push(id),
            Err(_) => errors.push(FieldError::new(
                format!("{field}[{i}]"),
                format!("unknown destination {text}"),
            )),
        }
    }
    Error::check(errors)?;
    Ok(parsed)
}
