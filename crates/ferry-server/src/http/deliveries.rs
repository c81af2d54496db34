//! Deliveries and the dead-letter queue: lists with filters, detail with
//! attempts, manual retry, DLQ list and bulk replay.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ferry_core::DeliveryId;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiQuery, PageParams, list};
use super::openapi::{ReadErrors, WriteErrors};
use super::state::AppState;
use crate::app::deliveries::DeliveryQuery;
use crate::app::json::parse_optional_json;
use crate::views::{DeliveryDetail, DeliveryView, List, Requeued};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_deliveries))
        .routes(routes!(show))
        .routes(routes!(retry))
        .routes(routes!(dlq))
        .routes(routes!(dlq_replay))
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

/// List deliveries, newest first, filtered.
#[utoipa::path(get, path = "/v1/deliveries", operation_id = "listDeliveries", tag = "deliveries", security(("bearer" = [])),
    params(DeliveryQuery, PageParams),
    responses((status = 200, description = "A page of deliveries.", body = List<DeliveryView>), ReadErrors))]
async fn list_deliveries(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<List<DeliveryView>>> {
    let (query, page) = params.split();
    let page = state
        .app()
        .deliveries(&caller.principal, &query, page.page()?)
        .await?;
    Ok(Json(list(page, |d| DeliveryView::from(d))))
}

/// List the dead-letter queue: deliveries that are `dead`, same filters.
#[utoipa::path(get, path = "/v1/dlq", operation_id = "listDeadLetters", tag = "deliveries", security(("bearer" = [])),
    params(DeliveryQuery, PageParams),
    responses((status = 200, description = "A page of dead deliveries.", body = List<DeliveryView>), ReadErrors))]
async fn dlq(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<List<DeliveryView>>> {
    let (query, page) = params.split();
    let page = state
        .app()
        .dead_letters(&caller.principal, &query, page.page()?)
        .await?;
    Ok(Json(list(page, |d| DeliveryView::from(d))))
}

/// A delivery with its attempts (requests and responses as captured).
#[utoipa::path(get, path = "/v1/deliveries/{id}", operation_id = "getDelivery", tag = "deliveries", security(("bearer" = [])),
    params(("id" = DeliveryId, Path, description = "The delivery's id.")),
    responses((status = 200, description = "The delivery.", body = DeliveryDetail), ReadErrors))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<DeliveryDetail>> {
    let id = DeliveryId::parse(&id).map_err(|_| ApiError::NotFound("delivery"))?;
    let (delivery, attempts) = state.app().delivery(&caller.principal, &id).await?;
    Ok(Json(DeliveryDetail::new(
        &delivery,
        &attempts,
        state.app().public_url(),
    )))
}

/// Retry a delivery now (back to `pending`). Audited.
#[utoipa::path(post, path = "/v1/deliveries/{id}/retry", operation_id = "retryDelivery", tag = "deliveries", security(("bearer" = [])),
    params(("id" = DeliveryId, Path, description = "The delivery's id.")),
    responses((status = 202, description = "The delivery, waiting again.", body = DeliveryView), WriteErrors))]
async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<DeliveryView>)> {
    let id = DeliveryId::parse(&id).map_err(|_| ApiError::NotFound("delivery"))?;
    let delivery = state.app().retry_delivery(&caller.principal, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(DeliveryView::from(&delivery))))
}

/// Requeue the dead-letter queue, or the part the filters select. Audited.
#[utoipa::path(post, path = "/v1/dlq/replay", operation_id = "replayDeadLetters", tag = "deliveries", security(("bearer" = [])),
    request_body(content = Option<DeliveryQuery>, description = "Optional: the list's filters."),
    responses((status = 202, description = "How many were requeued.", body = Requeued), WriteErrors))]
async fn dlq_replay(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Requeued>)> {
    let query: DeliveryQuery = parse_optional_json(&body)?;
    let requeued = state
        .app()
        .replay_dead_letters(&caller.principal, &query)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(Requeued { requeued })))
}
