//! Inbound sources: `POST/GET/DELETE /v1/sources` to manage them, and the
//! partners' endpoint `POST /in/{source_id}`, which the use cases verify,
//! check and ingest exactly like `POST /v1/events`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use ferry_core::SourceId;
use ferry_core::source::HeaderLookup;
use serde_json::Value;

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::events::accepted_response;
use super::extract::{ApiJson, ApiQuery, PageParams, list_body};
use super::state::AppState;
use crate::app::sources::SourceInput;
use crate::views;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/v1/sources", get(list).post(create))
        .route("/v1/sources/{id}", get(show).delete(remove))
        .route("/in/{id}", post(receive))
}

fn source_id(id: &str) -> ApiResult<SourceId> {
    SourceId::parse(id).map_err(|_| ApiError::NotFound("source"))
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<SourceInput>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let source = state.app().create_source(&caller.principal, input).await?;
    Ok((StatusCode::CREATED, Json(views::source(&source))))
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(p): ApiQuery<PageParams>,
) -> ApiResult<Json<Value>> {
    let page = state.app().sources(&caller.principal, p.page()?).await?;
    Ok(Json(list_body(
        page.items.iter().map(views::source).collect(),
        page.next,
    )))
}

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let source = state
        .app()
        .source(&caller.principal, &source_id(&id)?)
        .await?;
    Ok(Json(views::source(&source)))
}

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

struct Headers<'a>(&'a HeaderMap);

impl HeaderLookup for Headers<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A partner's request: verified, checked, then ingested like an event.
async fn receive(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let id = source_id(&id)?;
    let accepted = state.app().receive(&id, &Headers(&headers), &body).await?;
    Ok(accepted_response(&accepted))
}
