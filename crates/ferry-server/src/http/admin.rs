//! Organizations, API keys and the audit log.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use chrono::Utc;
use ferry_core::audit::{AuditFilter, AuditRecord};
use ferry_core::org::{
    ApiKey, NewKeySecret, Org, Scope, generate_key_secret, hash_key_secret, key_prefix,
};
use ferry_core::{ApiKeyId, OrgId};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiQuery, PageParams, list_body};
use super::views;
use crate::state::AppState;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/v1/orgs", get(list_orgs).post(create_org))
        .route("/v1/orgs/{id}", get(show_org).patch(update_org))
        .route("/v1/api-keys", get(list_keys).post(create_key))
        .route("/v1/api-keys/{id}", delete(delete_key))
        .route("/v1/audit", get(list_audit))
        .route(
            "/v1/admin/rotate-master-key",
            axum::routing::post(rotate_master_key),
        )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrgInput {
    name: String,
}

async fn create_org(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<OrgInput>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require(Scope::Admin)?;
    if input.name.trim().is_empty() || input.name.len() > 200 {
        return Err(ApiError::validation(vec![ferry_core::FieldError::new(
            "name",
            "must be 1 to 200 characters",
        )]));
    }
    let org = Org {
        alert_destinations: Vec::new(),
        id: OrgId::generate(),
        name: input.name,
        created_at: Utc::now(),
    };
    state.store().create_org(&org).await?;
    let audit = AuditRecord::new(
        org.id.clone(),
        caller.actor(),
        "org",
        org.id.to_string(),
        "org.created",
    )
    .after(views::org(&org));
    state.store().append_audit(&[audit]).await?;
    Ok((StatusCode::CREATED, Json(views::org(&org))))
}

async fn list_orgs(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(p): ApiQuery<PageParams>,
) -> ApiResult<Json<Value>> {
    caller.require(Scope::Admin)?;
    let page = state.store().list_orgs(p.page()?).await?;
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
    caller.require(Scope::Read)?;
    let id = OrgId::parse(&id).map_err(|_| ApiError::NotFound("organization"))?;
    if &id != caller.org() && !caller.key.allows(Scope::Admin) {
        return Err(ApiError::NotFound("organization"));
    }
    let org = state
        .store()
        .get_org(&id)
        .await?
        .ok_or(ApiError::NotFound("organization"))?;
    Ok(Json(views::org(&org)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrgUpdate {
    name: Option<String>,
    alert_destinations: Option<Vec<String>>,
}

/// Renames an organization or sets its alert channels: `admin` for any
/// organization, `manage` for the caller's own.
async fn update_org(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<OrgUpdate>,
) -> ApiResult<Json<Value>> {
    let id = OrgId::parse(&id).map_err(|_| ApiError::NotFound("organization"))?;
    if &id == caller.org() {
        caller.require(Scope::Manage)?;
    } else {
        caller.require(Scope::Admin)?;
    }
    let before = state
        .store()
        .get_org(&id)
        .await?
        .ok_or(ApiError::NotFound("organization"))?;
    let mut after = before.clone();
    let mut errors = Vec::new();
    if let Some(name) = input.name {
        if name.trim().is_empty() || name.len() > 200 {
            errors.push(ferry_core::FieldError::new(
                "name",
                "must be 1 to 200 characters",
            ));
        }
        after.name = name;
    }
    if let Some(ids) = input.alert_destinations {
        after.alert_destinations.clear();
        for (i, text) in ids.iter().enumerate() {
            let found = match ferry_core::DestinationId::parse(text) {
                Ok(d) => state.store().get_destination(&id, &d).await?.map(|_| d),
                Err(_) => None,
            };
            match found {
                Some(d) if !after.alert_destinations.contains(&d) => {
                    after.alert_destinations.push(d)
                }
                Some(_) => {}
                None => errors.push(ferry_core::FieldError::new(
                    format!("alert_destinations[{i}]"),
                    format!("unknown destination {text}"),
                )),
            }
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let audit = AuditRecord::new(
        id.clone(),
        caller.actor(),
        "org",
        id.to_string(),
        "org.updated",
    )
    .before(views::org(&before))
    .after(views::org(&after));
    if !state.store().update_org(&after, &audit).await? {
        return Err(ApiError::NotFound("organization"));
    }
    Ok(Json(views::org(&after)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyInput {
    name: String,
    scopes: Vec<String>,
    org_id: Option<String>,
}

async fn create_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<KeyInput>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require(Scope::Manage)?;
    let mut errors = Vec::new();
    if input.name.trim().is_empty() || input.name.len() > 200 {
        errors.push(ferry_core::FieldError::new(
            "name",
            "must be 1 to 200 characters",
        ));
    }
    let mut scopes = Vec::new();
    for (i, s) in input.scopes.iter().enumerate() {
        match s.parse::<Scope>() {
            Ok(scope) if !scopes.contains(&scope) => scopes.push(scope),
            Ok(_) => {}
            Err(e) => errors.push(ferry_core::FieldError::new(format!("scopes[{i}]"), e)),
        }
    }
    if input.scopes.is_empty() {
        errors.push(ferry_core::FieldError::new(
            "scopes",
            "must name at least one scope",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let is_admin = caller.key.allows(Scope::Admin);
    if scopes.contains(&Scope::Admin) && !is_admin {
        return Err(ApiError::Forbidden("admin"));
    }
    let org_id = match input.org_id {
        None => caller.org().clone(),
        Some(s) => {
            if !is_admin {
                return Err(ApiError::Forbidden("admin"));
            }
            let id = OrgId::parse(&s).map_err(|_| {
                ApiError::validation(vec![ferry_core::FieldError::new(
                    "org_id",
                    "unknown organization",
                )])
            })?;
            state.store().get_org(&id).await?.ok_or_else(|| {
                ApiError::validation(vec![ferry_core::FieldError::new(
                    "org_id",
                    "unknown organization",
                )])
            })?;
            id
        }
    };
    let NewKeySecret(secret) = generate_key_secret();
    let key = ApiKey {
        id: ApiKeyId::generate(),
        org_id,
        name: input.name,
        prefix: key_prefix(secret.expose()),
        hash: hash_key_secret(secret.expose()),
        scopes,
        created_at: Utc::now(),
        last_used_at: None,
    };
    let audit = AuditRecord::new(
        key.org_id.clone(),
        caller.actor(),
        "api_key",
        key.id.to_string(),
        "api_key.created",
    )
    .after(views::api_key(&key));
    state.store().insert_api_key(&key, &audit).await?;
    let mut body = views::api_key(&key);
    body["key"] = json!(secret.expose());
    Ok((StatusCode::CREATED, Json(body)))
}

async fn list_keys(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(p): ApiQuery<PageParams>,
) -> ApiResult<Json<Value>> {
    caller.require(Scope::Manage)?;
    let page = state.store().list_api_keys(caller.org(), p.page()?).await?;
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
    caller.require(Scope::Manage)?;
    let id = ApiKeyId::parse(&id).map_err(|_| ApiError::NotFound("API key"))?;
    let audit = AuditRecord::new(
        caller.org().clone(),
        caller.actor(),
        "api_key",
        id.to_string(),
        "api_key.revoked",
    );
    if !state
        .store()
        .delete_api_key(caller.org(), &id, &audit)
        .await?
    {
        return Err(ApiError::NotFound("API key"));
    }
    state.inner().keys.clear();
    Ok(StatusCode::NO_CONTENT)
}

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
    caller.require(Scope::Read)?;
    let filter = AuditFilter {
        entity_id: q.entity_id,
        action: q.action,
        since: views::parse_time("since", q.since.as_deref())?,
        until: views::parse_time("until", q.until.as_deref())?,
    };
    let page = PageParams {
        limit: q.limit,
        cursor: q.cursor,
    }
    .page()?;
    let page = state
        .store()
        .list_audit(caller.org(), &filter, page)
        .await?;
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
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    caller.require(Scope::Admin)?;
    let input: RotateKeyInput = super::extract::parse_optional_json(&body)?;
    let master = &state.inner().master;
    if master.from_env() && input.new_key.is_none() {
        return Err(ApiError::Conflict(
            "the master key comes from FERRY_MASTER_KEY: pass new_key (64 hex characters) and set it in the environment before the next start".into(),
        ));
    }
    let (resealed, file) = master
        .rotate(input.new_key.as_deref())
        .await
        .map_err(|error| {
            tracing::error!(error = %format!("{error:#}"), "Master key rotation failed.");
            ApiError::validation(vec![ferry_core::FieldError::new(
                "new_key",
                format!("{error:#}"),
            )])
        })?;
    let audit = AuditRecord::new(
        caller.org().clone(),
        caller.actor(),
        "master_key",
        "master_key",
        "master_key.rotated",
    )
    .after(json!({"resealed": resealed}));
    state.store().append_audit(&[audit]).await?;
    Ok(Json(
        json!({"resealed": resealed, "key_file": file.map(|f| f.display().to_string())}),
    ))
}
