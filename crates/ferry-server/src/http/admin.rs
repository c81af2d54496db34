//! Organizations, API keys, the audit log and the master key's rotation.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use ferry_core::{ApiKeyId, OrgId};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiQuery, PageParams, list_body};
use super::state::AppState;
use crate::app::audit::AuditQuery;
use crate::app::json::parse_optional_json;
use crate::app::orgs::{KeyInput, OrgInput, OrgUpdate};
use crate::views;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/v1/orgs", get(list_orgs).post(create_org))
        .route("/v1/orgs/{id}", get(show_org).patch(update_org))
        .route("/v1/api-keys", get(list_keys).post(create_key))
        .route("/v1/api-keys/{id}", delete(delete_key))
        .route("/v1/audit", get(list_audit))
        .route("/v1/admin/rotate-master-key", post(rotate_master_key))
}

fn org_id(id: &str) -> ApiResult<OrgId> {
    OrgId::parse(id).map_err(|_| ApiError::NotFound("organization"))
}

async fn create_org(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<OrgInput>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let org = state.app().create_org(&caller.principal, input).await?;
    Ok((StatusCode::CREATED, Json(views::org(&org))))
}

async fn list_orgs(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(p): ApiQuery<PageParams>,
) -> ApiResult<Json<Value>> {
    let page = state.app().orgs(&caller.principal, p.page()?).await?;
    Ok(Json(list_body(
        page.items.iter().map(views::org).collect(),
        page.next,
    )))
}

async fn show_org(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let org = state.app().org(&caller.principal, &org_id(&id)?).await?;
    Ok(Json(views::org(&org)))
}

async fn update_org(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<OrgUpdate>,
) -> ApiResult<Json<Value>> {
    let org = state
        .app()
        .update_org(&caller.principal, &org_id(&id)?, input)
        .await?;
    Ok(Json(views::org(&org)))
}

async fn create_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<KeyInput>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (key, secret) = state.app().create_api_key(&caller.principal, input).await?;
    let mut body = views::api_key(&key);
    body["key"] = json!(secret.expose());
    Ok((StatusCode::CREATED, Json(body)))
}

async fn list_keys(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(p): ApiQuery<PageParams>,
) -> ApiResult<Json<Value>> {
    let page = state.app().api_keys(&caller.principal, p.page()?).await?;
    Ok(Json(list_body(
        page.items.iter().map(views::api_key).collect(),
        page.next,
    )))
}

async fn delete_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = ApiKeyId::parse(&id).map_err(|_| ApiError::NotFound("API key"))?;
    state.app().revoke_api_key(&caller.principal, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The audit list's query string: the filter and the page.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditParams {
    entity_id: Option<String>,
    action: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

async fn list_audit(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditParams>,
) -> ApiResult<Json<Value>> {
    let page = PageParams {
        limit: q.limit,
        cursor: q.cursor,
    }
    .page()?;
    let query = AuditQuery {
        entity_id: q.entity_id,
        action: q.action,
        since: q.since,
        until: q.until,
    };
    let page = state.app().audit(&caller.principal, &query, page).await?;
    Ok(Json(list_body(page.items, page.next)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateKeyInput {
    /// 64 hex characters; required when the key comes from FERRY_MASTER_KEY.
    new_key: Option<String>,
}

/// Re-seals every secret at rest under a new master key, without downtime.
async fn rotate_master_key(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let input: RotateKeyInput = parse_optional_json(&body)?;
    let rotated = state
        .app()
        .rotate_master_key(&caller.principal, input.new_key.as_deref())
        .await?;
    Ok(Json(json!({
        "resealed": rotated.resealed,
        "key_file": rotated.key_file.map(|f| f.display().to_string()),
    })))
}
