//! Organizations, API keys, the audit log and the master key's rotation.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ferry_core::{ApiKeyId, OrgId};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiQuery, PageParams, list};
use super::openapi::{ReadErrors, WriteErrors};
use super::state::AppState;
use crate::app::audit::AuditQuery;
use crate::app::json::parse_optional_json;
use crate::app::orgs::{KeyInput, OrgInput, OrgUpdate};
use crate::views::{ApiKeyView, AuditView, CreatedApiKey, List, MasterKeyRotated, OrgView};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_orgs, create_org))
        .routes(routes!(show_org, update_org))
        .routes(routes!(list_keys, create_key))
        .routes(routes!(delete_key))
        .routes(routes!(list_audit))
        .routes(routes!(rotate_master_key))
}

fn org_id(id: &str) -> ApiResult<OrgId> {
    OrgId::parse(id).map_err(|_| ApiError::NotFound("organization"))
}

/// Create an organization (scope `admin`). Audited.
#[utoipa::path(post, path = "/v1/orgs", operation_id = "createOrg", tag = "orgs", security(("bearer" = [])),
    request_body = OrgInput,
    responses((status = 201, description = "Created.", body = OrgView,
        links(("get" = (operation_id = "getOrg", parameters(("id" = "$response.body#/id")))), ("update" = (operation_id = "updateOrg", parameters(("id" = "$response.body#/id")))))), WriteErrors))]
async fn create_org(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<OrgInput>,
) -> ApiResult<(StatusCode, Json<OrgView>)> {
    let org = state.app().create_org(&caller.principal, input).await?;
    Ok((
        StatusCode::CREATED,
        Json(OrgView::from(&org).linked(state.app().public_url())),
    ))
}

/// List organizations (scope `admin`; others see their own).
#[utoipa::path(get, path = "/v1/orgs", operation_id = "listOrgs", tag = "orgs", security(("bearer" = [])),
    params(PageParams),
    responses((status = 200, description = "A page of organizations.", body = List<OrgView>), ReadErrors))]
async fn list_orgs(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(p): ApiQuery<PageParams>,
) -> ApiResult<Json<List<OrgView>>> {
    let page = state.app().orgs(&caller.principal, p.page()?).await?;
    Ok(Json(list(page, |o| {
        OrgView::from(o).linked(state.app().public_url())
    })))
}

/// An organization.
#[utoipa::path(get, path = "/v1/orgs/{id}", operation_id = "getOrg", tag = "orgs", security(("bearer" = [])),
    params(("id" = OrgId, Path, description = "The organization's id.")),
    responses((status = 200, description = "The organization.", body = OrgView), ReadErrors))]
async fn show_org(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<OrgView>> {
    let org = state.app().org(&caller.principal, &org_id(&id)?).await?;
    Ok(Json(OrgView::from(&org).linked(state.app().public_url())))
}

/// Rename an organization or set its alert destinations. Audited.
#[utoipa::path(patch, path = "/v1/orgs/{id}", operation_id = "updateOrg", tag = "orgs", security(("bearer" = [])),
    params(("id" = OrgId, Path, description = "The organization's id.")),
    request_body = OrgUpdate,
    responses((status = 200, description = "The organization.", body = OrgView), WriteErrors))]
async fn update_org(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<OrgUpdate>,
) -> ApiResult<Json<OrgView>> {
    let org = state
        .app()
        .update_org(&caller.principal, &org_id(&id)?, input)
        .await?;
    Ok(Json(OrgView::from(&org).linked(state.app().public_url())))
}

/// Create an API key; the key itself is shown once. Audited.
#[utoipa::path(post, path = "/v1/api-keys", operation_id = "createApiKey", tag = "orgs", security(("bearer" = [])),
    request_body = KeyInput,
    responses((status = 201, description = "Created, with the key shown once.", body = CreatedApiKey,
        links(("revoke" = (operation_id = "revokeApiKey", parameters(("id" = "$response.body#/id")))))), WriteErrors))]
async fn create_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<KeyInput>,
) -> ApiResult<(StatusCode, Json<CreatedApiKey>)> {
    let (key, secret) = state.app().create_api_key(&caller.principal, input).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            api_key: ApiKeyView::from(&key).linked(state.app().public_url()),
            key: secret.expose().to_owned(),
        }),
    ))
}

/// The key list's query string: the page, and for an admin the
/// organization.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct KeyListParams {
    /// How many (1–1000, default 50).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Whose keys (scope `admin` for another organization; default: the
    /// caller's).
    org_id: Option<String>,
}

/// List an organization's API keys (prefixes only): the caller's, or with
/// `org_id` any organization's for an `admin` key.
#[utoipa::path(get, path = "/v1/api-keys", operation_id = "listApiKeys", tag = "orgs", security(("bearer" = [])),
    params(KeyListParams),
    responses((status = 200, description = "A page of keys.", body = List<ApiKeyView>), ReadErrors))]
async fn list_keys(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(p): ApiQuery<KeyListParams>,
) -> ApiResult<Json<List<ApiKeyView>>> {
    let page = PageParams {
        limit: p.limit,
        cursor: p.cursor,
    }
    .page()?;
    let page = state
        .app()
        .api_keys(&caller.principal, p.org_id.as_deref(), page)
        .await?;
    Ok(Json(list(page, |k| {
        ApiKeyView::from(k).linked(state.app().public_url())
    })))
}

/// Revoke an API key (an `admin` key may revoke any organization's).
/// Audited.
#[utoipa::path(delete, path = "/v1/api-keys/{id}", operation_id = "revokeApiKey", tag = "orgs", security(("bearer" = [])),
    params(("id" = ApiKeyId, Path, description = "The key's id.")),
    responses((status = 204, description = "Revoked."), WriteErrors))]
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

/// List audit records, newest first, filtered.
#[utoipa::path(get, path = "/v1/audit", operation_id = "listAudit", tag = "audit", security(("bearer" = [])),
    params(AuditQuery, PageParams),
    responses((status = 200, description = "A page of audit records.", body = List<AuditView>), ReadErrors))]
async fn list_audit(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditParams>,
) -> ApiResult<Json<List<AuditView>>> {
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
    Ok(Json(list(page, |r| AuditView::from(r.clone()))))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"new_key": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"})))]
struct RotateKeyInput {
    /// 64 hex characters; required when the key comes from `FERRY_MASTER_KEY`.
    new_key: Option<String>,
}

/// Re-seal every secret at rest under a new master key, without downtime
/// (scope `admin`). Audited.
#[utoipa::path(post, path = "/v1/admin/rotate-master-key", operation_id = "rotateMasterKey", tag = "audit", security(("bearer" = [])),
    request_body(content = Option<RotateKeyInput>, description = "Optional: the new key."),
    responses((status = 200, description = "Every secret re-sealed.", body = MasterKeyRotated), WriteErrors))]
async fn rotate_master_key(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Json<MasterKeyRotated>> {
    let input: RotateKeyInput = parse_optional_json(&body)?;
    let rotated = state
        .app()
        .rotate_master_key(&caller.principal, input.new_key.as_deref())
        .await?;
    Ok(Json(MasterKeyRotated {
        resealed: rotated.resealed,
        key_file: rotated.key_file.map(|f| f.display().to_string()),
    }))
}
