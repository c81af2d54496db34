//! Destinations: CRUD, connection test, secret rotation, enable/disable,
//! health. A new signing secret is shown once (at creation or rotation);
//! secrets are redacted everywhere else.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use ferry_core::DestinationId;
use ferry_core::signing::SigningSecret;
use serde_json::{Value, json};

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiQuery, PageParams, list_body};
use super::state::AppState;
use crate::app::destinations::{DestinationInput, RotateInput};
use crate::app::json::parse_optional_json;
use crate::views;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/v1/destinations", get(list).post(create))
        .route(
            "/v1/destinations/{id}",
            get(show).patch(update).delete(remove),
        )
        .route("/v1/destinations/{id}/test", post(test))
        .route("/v1/destinations/{id}/rotate-secret", post(rotate_secret))
        .route("/v1/destinations/{id}/enable", post(enable))
        .route("/v1/destinations/{id}/disable", post(disable))
        .route("/v1/destinations/{id}/health", get(health))
}

fn destination_id(id: &str) -> ApiResult<DestinationId> {
    DestinationId::parse(id).map_err(|_| ApiError::NotFound("destination"))
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<DestinationInput>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (d, secret) = state
        .app()
        .create_destination(&caller.principal, input)
        .await?;
    let mut body = views::destination(&d);
    if let Some(secret) = secret {
        show_once(&mut body, &secret);
    }
    Ok((StatusCode::CREATED, Json(body)))
}

/// A new signing secret is shown once: an HMAC secret itself (the receiver
/// needs it), an Ed25519 key only by its public half (Ferry keeps the rest).
fn show_once(body: &mut Value, secret: &SigningSecret) {
    match secret.public_key() {
        Some(public) => body["signing_public_key"] = json!(public),
        None => body["signing_secret"] = json!(secret.expose()),
    }
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(p): ApiQuery<PageParams>,
) -> ApiResult<Json<Value>> {
    let page = state
        .app()
        .destinations(&caller.principal, p.page()?)
        .await?;
    Ok(Json(list_body(
        page.items.iter().map(views::destination).collect(),
        page.next,
    )))
}

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let d = state
        .app()
        .destination(&caller.principal, &destination_id(&id)?)
        .await?;
    Ok(Json(views::destination(&d)))
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<DestinationInput>,
) -> ApiResult<Json<Value>> {
    let d = state
        .app()
        .update_destination(&caller.principal, &destination_id(&id)?, input)
        .await?;
    Ok(Json(views::destination(&d)))
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .app()
        .delete_destination(&caller.principal, &destination_id(&id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn test(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let report = state
        .app()
        .test_destination(&caller.principal, &destination_id(&id)?)
        .await?;
    Ok(Json(json!({"ok": report.ok, "message": report.message})))
}

async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let input: RotateInput = parse_optional_json(&body)?;
    let rotated = state
        .app()
        .rotate_signing_secret(&caller.principal, &destination_id(&id)?, input)
        .await?;
    let mut body = json!({"previous_secret_expires_at": rotated.previous_expires_at});
    show_once(&mut body, &rotated.secret);
    Ok(Json(body))
}

async fn set_enabled(
    state: AppState,
    caller: Caller,
    id: String,
    enabled: bool,
) -> ApiResult<Json<Value>> {
    let d = state
        .app()
        .set_destination_enabled(&caller.principal, &destination_id(&id)?, enabled)
        .await?;
    Ok(Json(views::destination(&d)))
}

async fn enable(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    set_enabled(state, caller, id, true).await
}

async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    set_enabled(state, caller, id, false).await
}

async fn health(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (d, health) = state
        .app()
        .destination_health(&caller.principal, &destination_id(&id)?)
        .await?;
    Ok(Json(views::health(&d, &health)))
}
