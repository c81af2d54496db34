//! Deliveries and the dead-letter queue: lists with filters, detail with
//! attempts, manual retry, DLQ list and bulk replay.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use ferry_core::delivery::{DeliveryFilter, DeliveryStatus};
use ferry_core::org::Scope;
use ferry_core::ports::RequeueSelector;
use ferry_core::{DeliveryId, DestinationId};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiQuery, PageParams, list_body, parse_optional_json};
use super::views;
use crate::state::AppState;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/v1/deliveries", get(list))
        .route("/v1/deliveries/{id}", get(show))
        .route("/v1/deliveries/{id}/retry", post(retry))
        .route("/v1/dlq", get(dlq))
        .route("/v1/dlq/replay", post(dlq_replay))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilterParams {
    status: Option<String>,
    destination_id: Option<String>,
    event_type: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

impl FilterParams {
    fn filter(&self) -> ApiResult<DeliveryFilter> {
        let status = self
            .status
            .as_deref()
            .map(|s| {
                s.parse::<DeliveryStatus>()
                    .map_err(|e| ApiError::invalid("status", e))
            })
            .transpose()?;
        let destination_id = self
            .destination_id
            .as_deref()
            .map(|s| {
                DestinationId::parse(s)
                    .map_err(|_| ApiError::invalid("destination_id", "is not a destination id"))
            })
            .transpose()?;
        Ok(DeliveryFilter {
            status,
            destination_id,
            event_type: self.event_type.clone(),
            since: views::parse_time("since", self.since.as_deref())?,
            until: views::parse_time("until", self.until.as_deref())?,
        })
    }

    fn page(&self) -> PageParams {
        PageParams {
            limit: self.limit,
            cursor: self.cursor.clone(),
        }
    }
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<FilterParams>,
) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    let page = state
        .store()
        .list_deliveries(caller.org(), &q.filter()?, q.page().page()?)
        .await?;
    Ok(Json(list_body(
        page.items.iter().map(views::delivery).collect(),
        page.next,
    )))
}

async fn dlq(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<FilterParams>,
) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    let mut filter = q.filter()?;
    if filter.status.is_some_and(|s| s != DeliveryStatus::Dead) {
        return Err(ApiError::invalid(
            "status",
            "the dead-letter queue only holds dead deliveries",
        ));
    }
    filter.status = Some(DeliveryStatus::Dead);
    let page = state
        .store()
        .list_deliveries(caller.org(), &filter, q.page().page()?)
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
    caller.require(Scope::Read)?;
    let id = DeliveryId::parse(&id).map_err(|_| ApiError::NotFound("delivery"))?;
    let (delivery, attempts) = state
        .store()
        .get_delivery(caller.org(), &id)
        .await?
        .ok_or(ApiError::NotFound("delivery"))?;
    Ok(Json(views::delivery_detail(
        &delivery,
        &attempts,
        &state.config().public_url(),
    )))
}

async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require(Scope::Manage)?;
    let id = DeliveryId::parse(&id).map_err(|_| ApiError::NotFound("delivery"))?;
    let store = state.store();
    let requeued = store
        .requeue(
            caller.org(),
            &RequeueSelector::Delivery(id.clone()),
            &caller.actor(),
        )
        .await?;
    match requeued.first() {
        Some(d) => {
            state.made_waiting(&requeued).await;
            Ok((StatusCode::ACCEPTED, Json(views::delivery(d))))
        }
        None => {
            let (d, _) = store
                .get_delivery(caller.org(), &id)
                .await?
                .ok_or(ApiError::NotFound("delivery"))?;
            Err(ApiError::Conflict(format!(
                "delivery is {}; only retrying, delivered, failed or dead deliveries can be retried",
                d.status
            )))
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayFilter {
    destination_id: Option<String>,
    event_type: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

async fn dlq_replay(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require(Scope::Manage)?;
    let input: ReplayFilter = parse_optional_json(&body)?;
    let params = FilterParams {
        destination_id: input.destination_id,
        event_type: input.event_type,
        since: input.since,
        until: input.until,
        ..FilterParams::default()
    };
    let filter = params.filter()?;
    let requeued = state
        .store()
        .requeue(
            caller.org(),
            &RequeueSelector::Dead(filter),
            &caller.actor(),
        )
        .await?;
    if !requeued.is_empty() {
        state.made_waiting(&requeued).await;
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"requeued": requeued.len()})),
    ))
}
