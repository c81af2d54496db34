//! Deliveries and the dead-letter queue: lists with filters, detail with
//! attempts, manual retry, DLQ list and bulk replay.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use ferry_core::DeliveryId;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiQuery, PageParams, list_body};
use super::state::AppState;
use crate::app::deliveries::DeliveryQuery;
use crate::app::json::parse_optional_json;
use crate::views;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/v1/deliveries", get(list))
        .route("/v1/deliveries/{id}", get(show))
        .route("/v1/deliveries/{id}/retry", post(retry))
        .route("/v1/dlq", get(dlq))
        .route("/v1/dlq/replay", post(dlq_replay))
}

/// The query string of the lists: the filter and the page.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    status: Option<String>,
    destination_id: Option<String>,
    event_type: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

impl ListParams {
    fn split(self) -> (DeliveryQuery, PageParams) {
        (
            DeliveryQuery {
                status: self.status,
                destination_id: self.destination_id,
                event_type: self.event_type,
                since: self.since,
                until: self.until,
            },
            PageParams {
                limit: self.limit,
                cursor: self.cursor,
            },
        )
    }
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<Value>> {
    let (query, page) = params.split();
    let page = state
        .app()
        .deliveries(&caller.principal, &query, page.page()?)
        .await?;
    Ok(Json(list_body(
        page.items.iter().map(views::delivery).collect(),
        page.next,
    )))
}

async fn dlq(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<Value>> {
    let (query, page) = params.split();
    let page = state
        .app()
        .dead_letters(&caller.principal, &query, page.page()?)
        .await?;
    Ok(Json(list_body(
        page.items.iter().map(views::delivery).collect(),
        page.next,
    )))
}

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = DeliveryId::parse(&id).map_err(|_| ApiError::NotFound("delivery"))?;
    let (delivery, attempts) = state.app().delivery(&caller.principal, &id).await?;
    Ok(Json(views::delivery_detail(
        &delivery,
        &attempts,
        state.app().public_url(),
    )))
}

async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let id = DeliveryId::parse(&id).map_err(|_| ApiError::NotFound("delivery"))?;
    let delivery = state.app().retry_delivery(&caller.principal, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(views::delivery(&delivery))))
}

async fn dlq_replay(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let query: DeliveryQuery = parse_optional_json(&body)?;
    let requeued = state
        .app()
        .replay_dead_letters(&caller.principal, &query)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"requeued": requeued}))))
}
