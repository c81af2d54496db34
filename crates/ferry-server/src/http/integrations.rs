//! An integration port over HTTP: `POST /v1/destinations/{id}/events` sends
//! an event to that destination only, and `GET
//! /v1/destinations/{id}/events/{event_id}` says how it stands there. The
//! event's id is scoped by the destination, so a client that spools events
//! while Ferry is unreachable knows each id before it is sent.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use ferry_core::{DestinationId, EventId};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::events::{accepted_response, idempotency_header};
use super::extract::ApiJson;
use super::openapi::{IngestErrors, ReadErrors};
use super::state::AppState;
use crate::app::integrations::DirectEventInput;
use crate::views::{Accepted, EventDeliveryView};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(send))
        .routes(routes!(show))
}

fn destination_id(id: &str) -> ApiResult<DestinationId> {
    DestinationId::parse(id).map_err(|_| ApiError::NotFound("destination"))
}

/// Send an event to one destination.
///
/// The event goes to this destination only, whatever the routing. Its id
/// comes from the destination and the caller's `id` (or `Idempotency-Key`),
/// else from the content: sending the same again is a duplicate (`200`),
/// not a second delivery. Answered once the event is durable.
#[utoipa::path(post, path = "/v1/destinations/{id}/events", operation_id = "sendToDestination", tag = "events", security(("bearer" = [])),
    params(
        ("id" = DestinationId, Path, description = "The destination's id."),
        ("Idempotency-Key" = Option<String>, Header, description = "The caller's id; wins over `id`."),
    ),
    request_body = DirectEventInput,
    responses(
        (status = 202, description = "Accepted: the event and its delivery are stored.", body = Accepted,
            links(("status" = (operation_id = "getEventAtDestination", parameters(("id" = "$request.path.id"), ("event_id" = "$response.body#/id")))))),
        (status = 200, description = "A known id: the original answer, `duplicate: true`, nothing enqueued.", body = Accepted,
            example = json!({"id": "evt_01jq3v8k2m4n6p8r0t2v4x6z8a", "duplicate": true, "deliveries": [{"id": "dlv_01jq3v8k3c5e7g9j1m3p5r7t9w", "destination_id": "dst_01jq3v2a4c6e8g0j2m4p6r8t0v", "status": "delivered"}]})),
        IngestErrors,
    ))]
async fn send(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(input): ApiJson<DirectEventInput>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    let destination = destination_id(&id)?;
    let key = idempotency_header(&headers)?;
    let sent = state
        .app()
        .send_to(&caller.principal, &destination, input, key)
        .await?;
    Ok(accepted_response(&sent.accepted))
}

/// How an event stands at one destination.
///
/// The delivery's status, its attempts against the retry budget, the next
/// attempt and the latest attempt's outcome. `404` when the event is
/// unknown or has no delivery to this destination.
#[utoipa::path(get, path = "/v1/destinations/{id}/events/{event_id}", operation_id = "getEventAtDestination", tag = "events", security(("bearer" = [])),
    params(
        ("id" = DestinationId, Path, description = "The destination's id."),
        ("event_id" = EventId, Path, description = "The event's id."),
    ),
    responses((status = 200, description = "The event's delivery there.", body = EventDeliveryView), ReadErrors))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, event_id)): Path<(String, String)>,
) -> ApiResult<Json<EventDeliveryView>> {
    let destination = destination_id(&id)?;
    let event = EventId::parse(&event_id).map_err(|_| ApiError::NotFound("event"))?;
    let found = state
        .app()
        .event_delivery(&caller.principal, &event, &destination)
        .await?
        .ok_or(ApiError::NotFound("event"))?;
    Ok(Json(EventDeliveryView::from(&found)))
}
