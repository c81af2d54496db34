//! `POST /v1/events`, `POST /v1/events/batch`, `GET /v1/events/{id}` and
//! `POST /v1/events/{id}/replay`.

use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use ferry_core::audit::AuditRecord;
use ferry_core::delivery::Delivery;
use ferry_core::event::{
    Event, InsertOutcome, MAX_KEY_LEN, MAX_TYPE_LEN, NewEvent, canonical_json,
};
use ferry_core::org::Scope;
use ferry_core::ports::RequeueSelector;
use ferry_core::{DestinationId, EventId, FieldError, OrgId};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, parse_optional_json};
use super::views;
use crate::metrics as m;
use crate::routing;
use crate::state::AppState;

/// Most events in one batch request.
pub const MAX_BATCH: usize = 1_000;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/v1/events", post(create))
        .route("/v1/events/batch", post(create_batch))
        .route("/v1/events/{id}", get(show))
        .route("/v1/events/{id}/replay", post(replay))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventInput {
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    #[serde(default)]
    pub data: Value,
    pub id: Option<String>,
    pub destinations: Option<Vec<String>>,
    pub metadata: Option<Value>,
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(input): ApiJson<EventInput>,
) -> ApiResult<Response> {
    let clock = Instant::now();
    caller.require(Scope::Ingest)?;
    if state.is_shutting_down() {
        return Err(ApiError::ShuttingDown);
    }
    state.inner().limiter.check(&caller.key.id, 1)?;
    let key = idempotency_header(&headers)?;
    let new = prepare(&state, caller.org(), input, key).await?;
    let response = accept(&state, new).await;
    metrics::histogram!(m::INGEST_LATENCY).record(clock.elapsed().as_secs_f64());
    let (status, body) = response?;
    Ok((status, Json(body)).into_response())
}

fn idempotency_header(headers: &HeaderMap) -> ApiResult<Option<String>> {
    headers
        .get("idempotency-key")
        .map(|v| {
            v.to_str()
                .map(str::to_owned)
                .map_err(|_| ApiError::invalid("Idempotency-Key", "must be visible ASCII"))
        })
        .transpose()
}

/// Validates an event, decides its id and its deliveries.
pub(crate) async fn prepare(
    state: &AppState,
    org: &OrgId,
    input: EventInput,
    header_key: Option<String>,
) -> ApiResult<NewEvent> {
    let event_type = match input.event_type {
        None => return Err(ApiError::invalid("type", "is required")),
        Some(t) if t.trim().is_empty() => {
            return Err(ApiError::invalid("type", "must not be empty"));
        }
        Some(t) if t.len() > MAX_TYPE_LEN => {
            return Err(ApiError::invalid(
                "type",
                format!("must be at most {MAX_TYPE_LEN} bytes"),
            ));
        }
        Some(t) if t.chars().any(char::is_control) => {
            return Err(ApiError::invalid(
                "type",
                "must not contain control characters",
            ));
        }
        Some(t) => t,
    };
    let metadata = match input.metadata {
        None | Some(Value::Null) => json!({}),
        Some(m @ Value::Object(_)) => m,
        Some(_) => return Err(ApiError::invalid("metadata", "must be an object")),
    };
    let key = header_key.or(input.id);
    if let Some(k) = &key
        && (k.is_empty() || k.len() > MAX_KEY_LEN)
    {
        return Err(ApiError::invalid(
            "id",
            format!("must be 1 to {MAX_KEY_LEN} bytes"),
        ));
    }
    let listed = input
        .destinations
        .map(|ids| {
            ids.iter()
                .enumerate()
                .map(|(i, s)| {
                    DestinationId::parse(s).map_err(|_| {
                        FieldError::new(
                            format!("destinations[{i}]"),
                            format!("unknown destination {s}"),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()
        .map_err(|e| ApiError::validation(vec![e]))?;
    let id = match &key {
        Some(k) => EventId::from_caller_key(org, k),
        None => EventId::from_content(org, &event_type, &canonical_json(&input.data)),
    };
    let routes = state
        .inner()
        .routes
        .routes(state.store().as_ref(), org)
        .await?;
    let targets =
        routing::resolve(&routes, &event_type, listed.as_deref()).map_err(ApiError::validation)?;
    let event = Event {
        id,
        org_id: org.clone(),
        event_type,
        data: input.data,
        metadata,
        idempotency_key: key,
        created_at: Utc::now(),
    };
    let deliveries = targets
        .into_iter()
        .map(|d| Delivery::new(&event, d))
        .collect();
    Ok(NewEvent { event, deliveries })
}

/// Submits to the group-commit writer; `202` once durable, `200` for a
/// known id.
pub(crate) async fn accept(state: &AppState, new: NewEvent) -> ApiResult<(StatusCode, Value)> {
    let id = new.event.id.clone();
    let deliveries = new.deliveries.clone();
    let outcome = state.inner().ingest.submit(new).await?;
    Ok(respond(id, deliveries, outcome))
}

fn respond(id: EventId, deliveries: Vec<Delivery>, outcome: InsertOutcome) -> (StatusCode, Value) {
    let (status, duplicate, deliveries) = match outcome {
        InsertOutcome::Inserted => (StatusCode::ACCEPTED, false, deliveries),
        InsertOutcome::Duplicate(original) => (StatusCode::OK, true, original),
    };
    let body = json!({
        "id": id,
        "duplicate": duplicate,
        "deliveries": deliveries.iter().map(views::delivery_brief).collect::<Vec<_>>(),
    });
    (status, body)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchInput {
    events: Vec<Value>,
}

async fn create_batch(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<BatchInput>,
) -> ApiResult<Json<Value>> {
    caller.require(Scope::Ingest)?;
    if state.is_shutting_down() {
        return Err(ApiError::ShuttingDown);
    }
    if input.events.is_empty() || input.events.len() > MAX_BATCH {
        return Err(ApiError::invalid(
            "events",
            format!("must hold 1 to {MAX_BATCH} events"),
        ));
    }
    state
        .inner()
        .limiter
        .check(&caller.key.id, input.events.len())?;
    let mut results: Vec<Option<Value>> = vec![None; input.events.len()];
    let mut ready = Vec::new();
    for (i, item) in input.events.into_iter().enumerate() {
        let prepared = match serde_json::from_value::<EventInput>(item) {
            Ok(input) => prepare(&state, caller.org(), input, None).await,
            Err(e) => Err(ApiError::invalid(&format!("events[{i}]"), e.to_string())),
        };
        match prepared {
            Ok(new) => ready.push((i, new)),
            Err(error) => results[i] = Some(item_error(&error)),
        }
    }
    let meta: Vec<(usize, EventId, Vec<Delivery>)> = ready
        .iter()
        .map(|(i, n)| (*i, n.event.id.clone(), n.deliveries.clone()))
        .collect();
    let outcomes = state
        .inner()
        .ingest
        .submit_many(ready.into_iter().map(|(_, n)| n).collect())
        .await;
    for ((i, id, deliveries), outcome) in meta.into_iter().zip(outcomes) {
        results[i] = Some(match outcome {
            Ok(outcome) => {
                let (status, mut body) = respond(id, deliveries, outcome);
                body["status"] = json!(status.as_u16());
                body
            }
            Err(e) => item_error(&ApiError::from(e)),
        });
    }
    Ok(Json(json!({"results": results})))
}

fn item_error(error: &ApiError) -> Value {
    let mut body = error.body();
    body["status"] = json!(error.status().as_u16());
    body
}

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    let id = EventId::parse(&id).map_err(|_| ApiError::NotFound("event"))?;
    let (event, deliveries) = state
        .store()
        .get_event(caller.org(), &id)
        .await?
        .ok_or(ApiError::NotFound("event"))?;
    Ok(Json(views::event(&event, &deliveries)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayInput {
    destinations: Option<Vec<String>>,
}

async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require(Scope::Manage)?;
    let input: ReplayInput = parse_optional_json(&body)?;
    let id = EventId::parse(&id).map_err(|_| ApiError::NotFound("event"))?;
    let store = state.store();
    let (event, existing) = store
        .get_event(caller.org(), &id)
        .await?
        .ok_or(ApiError::NotFound("event"))?;
    let listed = match input.destinations {
        None => None,
        Some(ids) => {
            let mut parsed = Vec::new();
            let mut errors = Vec::new();
            for (i, s) in ids.iter().enumerate() {
                let found = match DestinationId::parse(s) {
                    Ok(d) => store.get_destination(caller.org(), &d).await?.map(|_| d),
                    Err(_) => None,
                };
                match found {
                    Some(d) => parsed.push(d),
                    None => errors.push(FieldError::new(
                        format!("destinations[{i}]"),
                        format!("unknown destination {s}"),
                    )),
                }
            }
            if !errors.is_empty() {
                return Err(ApiError::validation(errors));
            }
            Some(parsed)
        }
    };
    let actor = caller.actor();
    let selector = RequeueSelector::Event {
        event_id: id.clone(),
        destinations: listed.clone(),
    };
    let mut requeued = store.requeue(caller.org(), &selector, &actor).await?;
    // A listed destination that never had a delivery of this event gets one.
    let fresh: Vec<Delivery> = listed
        .unwrap_or_default()
        .into_iter()
        .filter(|d| !existing.iter().any(|e| &e.destination_id == d))
        .map(|d| Delivery::new_now(&event, d))
        .collect();
    if !fresh.is_empty() {
        let audits: Vec<AuditRecord> = fresh
            .iter()
            .map(|d| {
                AuditRecord::new(caller.org().clone(), &actor, "delivery", d.id.to_string(), "delivery.created")
                    .after(json!({"status": d.status, "event_id": d.event_id, "destination_id": d.destination_id}))
            })
            .collect();
        store.insert_deliveries(&fresh, &audits).await?;
        requeued.extend(fresh);
    }
    let audit = AuditRecord::new(
        caller.org().clone(),
        &actor,
        "event",
        id.to_string(),
        "event.replayed",
    )
    .after(json!({"deliveries": requeued.iter().map(|d| &d.id).collect::<Vec<_>>()}));
    store.append_audit(&[audit]).await?;
    state.made_waiting(&requeued).await;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "event_id": id,
            "requeued": requeued.len(),
            "deliveries": requeued.iter().map(views::delivery_brief).collect::<Vec<_>>(),
        })),
    ))
}
