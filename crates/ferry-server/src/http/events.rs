//! `POST /v1/events`, `POST /v1/events/batch`, `GET /v1/events/{id}` and
//! `POST /v1/events/{id}/replay`.

use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use ferry_core::EventId;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::extract::ApiJson;
use super::state::AppState;
use crate::app::ingest::{Accepted, EventInput};
use crate::app::json::parse_optional_json;
use crate::app::{self, events::ReplayInput};
use crate::metrics as m;
use crate::views;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/v1/events", post(create))
        .route("/v1/events/batch", post(create_batch))
        .route("/v1/events/{id}", get(show))
        .route("/v1/events/{id}/replay", post(replay))
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(input): ApiJson<EventInput>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let clock = Instant::now();
    let key = idempotency_header(&headers)?;
    let accepted = state.app().ingest(&caller.principal, input, key).await;
    metrics::histogram!(m::INGEST_LATENCY).record(clock.elapsed().as_secs_f64());
    Ok(accepted_response(&accepted?))
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

/// `202` for a new event, `200` for a known id, with the deliveries.
pub(super) fn accepted_response(accepted: &Accepted) -> (StatusCode, Json<Value>) {
    let status = if accepted.duplicate {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    (
        status,
        Json(json!({
            "id": accepted.event_id,
            "duplicate": accepted.duplicate,
            "deliveries": accepted.deliveries.iter().map(views::delivery_brief).collect::<Vec<_>>(),
        })),
    )
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
    let items = input
        .events
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            serde_json::from_value::<EventInput>(item)
                .map_err(|e| app::Error::malformed(&format!("events[{i}]"), e.to_string()))
        })
        .collect();
    let results = state.app().ingest_batch(&caller.principal, items).await?;
    let results: Vec<Value> = results
        .into_iter()
        .map(|result| match result {
            Ok(accepted) => {
                let (status, Json(mut body)) = accepted_response(&accepted);
                body["status"] = json!(status.as_u16());
                body
            }
            Err(error) => {
                let error = ApiError::from(error);
                let mut body = error.body();
                body["status"] = json!(error.status().as_u16());
                body
            }
        })
        .collect();
    Ok(Json(json!({"results": results})))
}

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = EventId::parse(&id).map_err(|_| ApiError::NotFound("event"))?;
    let (event, deliveries) = state.app().event(&caller.principal, &id).await?;
    Ok(Json(views::event(&event, &deliveries)))
}

async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let input: ReplayInput = parse_optional_json(&body)?;
    let id = EventId::parse(&id).map_err(|_| ApiError::NotFound("event"))?;
    let requeued = state
        .app()
        .replay_event(&caller.principal, &id, input)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "event_id": id,
            "requeued": requeued.len(),
            "deliveries": requeued.iter().map(views::delivery_brief).collect::<Vec<_>>(),
        })),
    ))
}
