//! `POST /v1/events`, `POST /v1/events/batch`, `GET /v1/events/{id}` and
//! `POST /v1/events/{id}/replay`.

use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use ferry_core::EventId;
use serde::Deserialize;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, trace_context};
use super::openapi::{IngestErrors, ReadErrors, WriteErrors};
use super::state::AppState;
use crate::app::ingest::EventInput;
use crate::app::json::parse_optional_json;
use crate::app::{self, events::ReplayInput};
use crate::metrics as m;
use crate::views::{Accepted, BatchItem, BatchResults, DeliveryBrief, EventView, Replayed};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(create_batch))
        .routes(routes!(show))
        .routes(routes!(replay))
}

/// Send an event.
///
/// Routed to the listed `destinations`; else to every enabled destination
/// whose filter matches `type`; else to the organization's defaults.
/// Answered once the event and its deliveries are durable.
#[utoipa::path(post, path = "/v1/events", operation_id = "sendEvent", tag = "events", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "The event's id key; wins over `id`."),
        ("traceparent" = Option<String>, Header, description = "W3C Trace Context: the event joins this trace, and every attempt of its deliveries is a span in it. One that does not parse is ignored."),
        ("tracestate" = Option<String>, Header, description = "W3C Trace Context vendor state, passed on with `traceparent`.")),
    request_body = EventInput,
    responses(
        (status = 202, description = "Accepted: the event and its deliveries are stored.", body = Accepted,
            links(("get" = (operation_id = "getEvent", parameters(("id" = "$response.body#/id")))), ("replay" = (operation_id = "replayEvent", parameters(("id" = "$response.body#/id")))), ("delivery" = (operation_id = "getDelivery", parameters(("id" = "$response.body#/deliveries/0/id")))), ("retry" = (operation_id = "retryDelivery", parameters(("id" = "$response.body#/deliveries/0/id")))))),
        (status = 200, description = "A known id: the original answer, `duplicate: true`, nothing enqueued.", body = Accepted,
            example = json!({"id": "evt_01jq3v8k2m4n6p8r0t2v4x6z8a", "duplicate": true, "deliveries": [{"id": "dlv_01jq3v8k3c5e7g9j1m3p5r7t9w", "destination_id": "dst_01jq3v2a4c6e8g0j2m4p6r8t0v", "status": "delivered"}]})),
        IngestErrors,
    ))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(input): ApiJson<EventInput>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    let clock = Instant::now();
    let key = idempotency_header(&headers)?;
    let trace = trace_context(&headers);
    let accepted = state
        .app()
        .ingest(&caller.principal, input, key, trace)
        .await;
    metrics::histogram!(m::INGEST_LATENCY).record(clock.elapsed().as_secs_f64());
    Ok(accepted_response(&accepted?))
}

pub(super) fn idempotency_header(headers: &HeaderMap) -> ApiResult<Option<String>> {
    headers
        .get("idempotency-key")
        .map(|v| {
            v.to_str()
                .map(str::to_owned)
                .map_err(|_| ApiError::invalid("Idempotency-Key", "must be visible ASCII"))
        })
        .transpose()
}

/// `202` for a new event, `200` for a known id, with the deliveries.
pub(super) fn accepted_response(accepted: &app::ingest::Accepted) -> (StatusCode, Json<Accepted>) {
    let status = if accepted.duplicate {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    (status, Json(accepted_view(accepted)))
}

fn accepted_view(accepted: &app::ingest::Accepted) -> Accepted {
    Accepted {
        id: accepted.event_id.clone(),
        duplicate: accepted.duplicate,
        deliveries: accepted
            .deliveries
            .iter()
            .map(DeliveryBrief::from)
            .collect(),
    }
}

/// Up to 1,000 events, each independent.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"events": [
    {"type": "order.created", "data": {"order_id": "o_42", "total": 99.5}},
    {"type": "order.paid", "data": {"order_id": "o_42", "paid_at": "2026-03-14T09:30:00Z"}, "id": "order-o_42-paid"}
]})))]
struct BatchInput {
    #[schema(value_type = Vec<EventInput>)]
    events: Vec<Value>,
}

/// Send up to 1,000 events.
///
/// Each item is accepted or refused on its own; the answer has a result per
/// item, in order, with the status it would have had alone.
#[utoipa::path(post, path = "/v1/events/batch", operation_id = "sendEvents", tag = "events", security(("bearer" = [])),
    params(("traceparent" = Option<String>, Header, description = "W3C Trace Context: every event of the batch joins this trace."),
        ("tracestate" = Option<String>, Header, description = "W3C Trace Context vendor state.")),
    request_body = BatchInput,
    responses((status = 200, description = "A result per item.", body = BatchResults), IngestErrors))]
async fn create_batch(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(input): ApiJson<BatchInput>,
) -> ApiResult<Json<BatchResults>> {
    let items = input
        .events
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            serde_json::from_value::<EventInput>(item)
                .map_err(|e| app::Error::malformed(&format!("events[{i}]"), e.to_string()))
        })
        .collect();
    let results = state
        .app()
        .ingest_batch(&caller.principal, items, trace_context(&headers))
        .await?;
    let results = results
        .into_iter()
        .map(|result| match result {
            Ok(accepted) => {
                let (status, Json(accepted)) = accepted_response(&accepted);
                BatchItem::Accepted {
                    accepted,
                    status: status.as_u16(),
                }
            }
            Err(error) => {
                let error = ApiError::from(error);
                BatchItem::Refused {
                    status: error.status().as_u16(),
                    error: error.body(),
                }
            }
        })
        .collect();
    Ok(Json(BatchResults { results }))
}

/// An event and its deliveries.
#[utoipa::path(get, path = "/v1/events/{id}", operation_id = "getEvent", tag = "events", security(("bearer" = [])),
    params(("id" = EventId, Path, description = "The event's id.")),
    responses((status = 200, description = "The event.", body = EventView), ReadErrors))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<EventView>> {
    let id = EventId::parse(&id).map_err(|_| ApiError::NotFound("event"))?;
    let (event, deliveries) = state.app().event(&caller.principal, &id).await?;
    Ok(Json(
        EventView::new(&event, &deliveries).linked(state.app().public_url()),
    ))
}

/// Replay an event.
///
/// Sends it again with the same id (`webhook-id`) to all its destinations,
/// or to those listed (a listed destination that never had it gets a new
/// delivery). Audited.
#[utoipa::path(post, path = "/v1/events/{id}/replay", operation_id = "replayEvent", tag = "events", security(("bearer" = [])),
    params(("id" = EventId, Path, description = "The event's id.")),
    request_body(content = Option<ReplayInput>, description = "Optional: which destinations."),
    responses((status = 202, description = "The deliveries now waiting.", body = Replayed), WriteErrors))]
async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Replayed>)> {
    let input: ReplayInput = parse_optional_json(&body)?;
    let id = EventId::parse(&id).map_err(|_| ApiError::NotFound("event"))?;
    let requeued = state
        .app()
        .replay_event(&caller.principal, &id, input)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Replayed {
            event_id: id,
            requeued: requeued.len(),
            deliveries: requeued.iter().map(DeliveryBrief::from).collect(),
        }),
    ))
}
