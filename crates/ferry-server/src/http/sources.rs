//! Inbound sources: `POST/GET/DELETE /v1/sources` to manage them, and the
//! partners' endpoint `POST /in/{source_id}`, which verifies the signature,
//! checks the content and then ingests exactly like `POST /v1/events`. A
//! rejected request stores nothing and says why.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use ferry_core::audit::AuditRecord;
use ferry_core::org::Scope;
use ferry_core::source::{Extractor, HeaderLookup, Source, Verification};
use ferry_core::{DestinationId, FieldError, SourceId};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::info;

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::events::{EventInput, accept, prepare};
use super::extract::{ApiJson, ApiQuery, PageParams, list_body, parse_json};
use crate::cache::TtlCache;
use crate::state::AppState;

const MAX_NAME: usize = 200;
const MAX_REQUIRED: usize = 32;
/// How long the public endpoint trusts a cached source.
const CACHE_TTL: Duration = Duration::from_secs(5);

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/v1/sources", get(list).post(create))
        .route("/v1/sources/{id}", get(show).delete(remove))
        .route("/in/{id}", post(receive))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceInput {
    name: Option<String>,
    verification: Option<Value>,
    id_from: Option<String>,
    type_from: Option<String>,
    #[serde(default)]
    required: Vec<String>,
    #[serde(default)]
    destinations: Vec<String>,
}

fn view(s: &Source) -> Value {
    json!({
        "id": s.id,
        "url": format!("/in/{}", s.id),
        "name": s.name,
        "verification": s.verification.redacted(),
        "id_from": s.id_from.as_ref().map(Extractor::as_text),
        "type_from": s.type_from.as_text(),
        "required": s.required,
        "destinations": s.destinations,
        "created_at": s.created_at,
    })
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<SourceInput>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require(Scope::Manage)?;
    let mut errors = Vec::new();
    let name = input.name.unwrap_or_default();
    if name.trim().is_empty() || name.len() > MAX_NAME {
        errors.push(FieldError::new(
            "name",
            format!("must be 1 to {MAX_NAME} characters"),
        ));
    }
    let verification = match input
        .verification
        .map(serde_json::from_value::<Verification>)
    {
        None => {
            errors.push(FieldError::new("verification", "is required"));
            None
        }
        Some(Err(e)) => {
            errors.push(FieldError::new(
                "verification",
                format!(
                    "{e} (schemes: standard-webhooks, hmac-sha256, hmac-sha512, timestamped-hmac)"
                ),
            ));
            None
        }
        Some(Ok(v)) => {
            if let Err(e) = v.validate() {
                errors.extend(e);
            }
            Some(v)
        }
    };
    let mut extractor = |field: &str, text: &str| match Extractor::parse(text) {
        Ok(e) => Some(e),
        Err(message) => {
            errors.push(FieldError::new(field, message));
            None
        }
    };
    let id_from = input
        .id_from
        .as_deref()
        .and_then(|t| extractor("id_from", t));
    let type_from = extractor("type_from", input.type_from.as_deref().unwrap_or("/type"));
    if input.required.len() > MAX_REQUIRED {
        errors.push(FieldError::new(
            "required",
            format!("at most {MAX_REQUIRED} fields"),
        ));
    }
    for (i, p) in input.required.iter().enumerate() {
        if !p.starts_with('/') {
            errors.push(FieldError::new(
                format!("required[{i}]"),
                "must be a JSON pointer such as /shipment/id",
            ));
        }
    }
    let mut destinations = Vec::new();
    for (i, d) in input.destinations.iter().enumerate() {
        let found = match DestinationId::parse(d) {
            Ok(id) => state
                .store()
                .get_destination(caller.org(), &id)
                .await?
                .map(|_| id),
            Err(_) => None,
        };
        match found {
            Some(id) => destinations.push(id),
            None => errors.push(FieldError::new(
                format!("destinations[{i}]"),
                format!("unknown destination {d}"),
            )),
        }
    }
    let (Some(verification), Some(type_from), true) = (verification, type_from, errors.is_empty())
    else {
        return Err(ApiError::validation(errors));
    };
    let source = Source {
        id: SourceId::generate(),
        org_id: caller.org().clone(),
        name,
        verification,
        id_from,
        type_from,
        required: input.required,
        destinations,
        created_at: Utc::now(),
    };
    let body = view(&source);
    let audit = AuditRecord::new(
        source.org_id.clone(),
        caller.actor(),
        "source",
        source.id.to_string(),
        "source.created",
    )
    .after(body.clone());
    state.inner().sources.insert_source(&source, &audit).await?;
    Ok((StatusCode::CREATED, Json(body)))
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(p): ApiQuery<PageParams>,
) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    let page = state
        .inner()
        .sources
        .list_sources(caller.org(), p.page()?)
        .await?;
    Ok(Json(list_body(
        page.items.iter().map(view).collect(),
        page.next,
    )))
}

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    let id = SourceId::parse(&id).map_err(|_| ApiError::NotFound("source"))?;
    let source = state
        .inner()
        .sources
        .get_source(caller.org(), &id)
        .await?
        .ok_or(ApiError::NotFound("source"))?;
    Ok(Json(view(&source)))
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(Scope::Manage)?;
    let id = SourceId::parse(&id).map_err(|_| ApiError::NotFound("source"))?;
    let audit = AuditRecord::new(
        caller.org().clone(),
        caller.actor(),
        "source",
        id.to_string(),
        "source.deleted",
    );
    if !state
        .inner()
        .sources
        .delete_source(caller.org(), &id, &audit)
        .await?
    {
        return Err(ApiError::NotFound("source"));
    }
    state.inner().source_cache.forget(&id);
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
) -> ApiResult<Response> {
    if state.is_shutting_down() {
        return Err(ApiError::ShuttingDown);
    }
    let id = SourceId::parse(&id).map_err(|_| ApiError::NotFound("source"))?;
    let source = state
        .inner()
        .source_cache
        .get(&state, &id)
        .await?
        .ok_or(ApiError::NotFound("source"))?;
    let lookup = Headers(&headers);
    if let Err(rejection) = source.verification.verify(&lookup, &body, Utc::now()) {
        info!(source_id = %id, reason = %rejection, "Inbound request rejected.");
        return Err(ApiError::Signature(rejection.to_string()));
    }
    let payload: Value = parse_json(&body)?;
    let missing: Vec<FieldError> = source
        .required
        .iter()
        .filter(|p| payload.pointer(p).is_none_or(Value::is_null))
        .map(|p| FieldError::new(p.clone(), "is required"))
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::validation(missing));
    }
    let event_type = source.type_from.extract(&lookup, &payload).ok_or_else(|| {
        ApiError::validation(vec![FieldError::new(
            source.type_from.as_text(),
            "the event type is missing",
        )])
    })?;
    let event_id = source
        .id_from
        .as_ref()
        .and_then(|e| e.extract(&lookup, &payload));
    // Destinations deleted since the source was made are skipped; with none
    // left, the organization's routing decides.
    let routes = state
        .inner()
        .routes
        .routes(state.store().as_ref(), &source.org_id)
        .await?;
    let listed: Vec<String> = source
        .destinations
        .iter()
        .filter(|d| routes.iter().any(|r| &r.id == *d))
        .map(ToString::to_string)
        .collect();
    let input = EventInput {
        event_type: Some(event_type),
        data: payload,
        id: event_id,
        destinations: (!listed.is_empty()).then_some(listed),
        metadata: Some(json!({"source_id": source.id})),
    };
    let new = prepare(&state, &source.org_id, input, None).await?;
    let (status, body) = accept(&state, new).await?;
    Ok((status, Json(body)).into_response())
}

/// Sources by id for the public endpoint (read on every partner request).
pub struct SourceCache(TtlCache<SourceId, Arc<Source>>);

impl Default for SourceCache {
    fn default() -> Self {
        Self(TtlCache::new(CACHE_TTL))
    }
}

impl SourceCache {
    async fn get(&self, state: &AppState, id: &SourceId) -> ApiResult<Option<Arc<Source>>> {
        if let Some(source) = self.0.get(id) {
            return Ok(Some(source));
        }
        let Some(source) = state.inner().sources.source_by_id(id).await? else {
            return Ok(None);
        };
        let source = Arc::new(source);
        self.0.put(id.clone(), source.clone());
        Ok(Some(source))
    }

    fn forget(&self, id: &SourceId) {
        self.0.forget(id);
    }
}
