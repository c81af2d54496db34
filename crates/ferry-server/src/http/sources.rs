//! Inbound sources: `POST/GET/DELETE /v1/sources` to manage them, and the
//! partners' endpoint `POST /in/{source_id}`, which the use cases verify,
//! check and ingest exactly like `POST /v1/events`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use ferry_core::SourceId;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::events::accepted_response;
use super::extract::{ApiJson, ApiQuery, Headers, PageParams, list};
use super::openapi::{InboundErrors, ReadErrors, WriteErrors};
use super::state::AppState;
use crate::app::sources::SourceInput;
use crate::views::{Accepted, List, SourceView};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_sources, create))
        .routes(routes!(show, remove))
        .routes(routes!(receive))
}

fn source_id(id: &str) -> ApiResult<SourceId> {
    SourceId::parse(id).map_err(|_| ApiError::NotFound("source"))
}

/// Create an inbound source: where partners post signed events. Audited.
#[utoipa::path(post, path = "/v1/sources", operation_id = "createSource", tag = "sources", security(("bearer" = [])),
    request_body = SourceInput,
    responses((status = 201, description = "Created; partners post to its `url`.", body = SourceView,
        links(("get" = (operation_id = "getSource", parameters(("id" = "$response.body#/id")))), ("delete" = (operation_id = "deleteSource", parameters(("id" = "$response.body#/id")))), ("receive" = (operation_id = "receiveSignedEvent", parameters(("id" = "$response.body#/id")))))), WriteErrors))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<SourceInput>,
) -> ApiResult<(StatusCode, Json<SourceView>)> {
    let source = state.app().create_source(&caller.principal, input).await?;
    Ok((
        StatusCode::CREATED,
        Json(SourceView::from(&source).linked(state.app().public_url())),
    ))
}

/// List inbound sources (secrets redacted).
#[utoipa::path(get, path = "/v1/sources", operation_id = "listSources", tag = "sources", security(("bearer" = [])),
    params(PageParams),
    responses((status = 200, description = "A page of sources.", body = List<SourceView>), ReadErrors))]
async fn list_sources(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(p): ApiQuery<PageParams>,
) -> ApiResult<Json<List<SourceView>>> {
    let page = state.app().sources(&caller.principal, p.page()?).await?;
    Ok(Json(list(page, |s| {
        SourceView::from(s).linked(state.app().public_url())
    })))
}

/// An inbound source (secrets redacted).
#[utoipa::path(get, path = "/v1/sources/{id}", operation_id = "getSource", tag = "sources", security(("bearer" = [])),
    params(("id" = SourceId, Path, description = "The source's id.")),
    responses((status = 200, description = "The source.", body = SourceView), ReadErrors))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<SourceView>> {
    let source = state
        .app()
        .source(&caller.principal, &source_id(&id)?)
        .await?;
    Ok(Json(
        SourceView::from(&source).linked(state.app().public_url()),
    ))
}

/// Delete an inbound source: its URL stops accepting. Audited.
#[utoipa::path(delete, path = "/v1/sources/{id}", operation_id = "deleteSource", tag = "sources", security(("bearer" = [])),
    params(("id" = SourceId, Path, description = "The source's id.")),
    responses((status = 204, description = "Deleted."), WriteErrors))]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .app()
        .delete_source(&caller.principal, &source_id(&id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A partner's signed event.
///
/// Verified against the source's scheme and secrets, checked for its
/// required fields, then ingested exactly like `POST /v1/events`
/// (duplicates included). No API key: the signature authenticates.
#[utoipa::path(post, path = "/in/{id}", operation_id = "receiveSignedEvent", tag = "sources",
    params(("id" = SourceId, Path, description = "The source's id.")),
    request_body(content = Object, description = "The partner's JSON, signed.",
        example = json!({"type": "shipment.delivered", "shipment": {"id": "shp_7781", "delivered_at": "2026-03-14T09:12:00Z"}})),
    responses(
        (status = 202, description = "Accepted: the event and its deliveries are stored.", body = Accepted),
        (status = 200, description = "A known id: the original answer, `duplicate: true`.", body = Accepted,
            example = json!({"id": "evt_01jq3v8k2m4n6p8r0t2v4x6z8a", "duplicate": true, "deliveries": [{"id": "dlv_01jq3v8k3c5e7g9j1m3p5r7t9w", "destination_id": "dst_01jq3v2a4c6e8g0j2m4p6r8t0v", "status": "delivered"}]})),
        InboundErrors,
    ))]
async fn receive(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    let id = source_id(&id)?;
    let accepted = state.app().receive(&id, &Headers(&headers), &body).await?;
    Ok(accepted_response(&accepted))
}
