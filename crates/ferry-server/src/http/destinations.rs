//! Destinations: CRUD, connection test, secret rotation, enable/disable,
//! health. A new signing secret is shown once (at creation or rotation);
//! secrets are redacted everywhere else.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ferry_core::DestinationId;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiQuery, PageParams, list};
use super::openapi::{ReadErrors, WriteErrors};
use super::state::AppState;
use crate::app::destinations::{DestinationInput, RotateInput};
use crate::app::json::parse_optional_json;
use crate::views::{
    CheckView, CreatedDestination, DestinationView, HealthView, List, RotatedSecret,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_destinations, create))
        .routes(routes!(show, update, remove))
        .routes(routes!(test))
        .routes(routes!(rotate_secret))
        .routes(routes!(enable))
        .routes(routes!(disable))
        .routes(routes!(health))
}

fn destination_id(id: &str) -> ApiResult<DestinationId> {
    DestinationId::parse(id).map_err(|_| ApiError::NotFound("destination"))
}

/// Create a destination.
///
/// `201` with the destination (secrets redacted) and, for webhooks, its
/// signing secret, shown once. Audited.
#[utoipa::path(post, path = "/v1/destinations", operation_id = "createDestination", tag = "destinations", security(("bearer" = [])),
    request_body = DestinationInput,
    responses((status = 201, description = "Created.", body = CreatedDestination,
        links(("get" = (operation_id = "getDestination", parameters(("id" = "$response.body#/id")))), ("update" = (operation_id = "updateDestination", parameters(("id" = "$response.body#/id")))), ("delete" = (operation_id = "deleteDestination", parameters(("id" = "$response.body#/id")))), ("test" = (operation_id = "testDestination", parameters(("id" = "$response.body#/id")))), ("rotate" = (operation_id = "rotateSigningSecret", parameters(("id" = "$response.body#/id")))), ("enable" = (operation_id = "enableDestination", parameters(("id" = "$response.body#/id")))), ("disable" = (operation_id = "disableDestination", parameters(("id" = "$response.body#/id")))), ("health" = (operation_id = "getDestinationHealth", parameters(("id" = "$response.body#/id")))))), WriteErrors))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<DestinationInput>,
) -> ApiResult<(StatusCode, Json<CreatedDestination>)> {
    let (d, secret) = state
        .app()
        .create_destination(&caller.principal, input)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedDestination::new(&d, secret.as_ref()).linked(state.app().public_url())),
    ))
}

/// List destinations.
#[utoipa::path(get, path = "/v1/destinations", operation_id = "listDestinations", tag = "destinations", security(("bearer" = [])),
    params(PageParams),
    responses((status = 200, description = "A page of destinations.", body = List<DestinationView>), ReadErrors))]
async fn list_destinations(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(p): ApiQuery<PageParams>,
) -> ApiResult<Json<List<DestinationView>>> {
    let page = state
        .app()
        .destinations(&caller.principal, p.page()?)
        .await?;
    Ok(Json(list(page, |d| {
        DestinationView::from(d).linked(state.app().public_url())
    })))
}

/// A destination.
#[utoipa::path(get, path = "/v1/destinations/{id}", operation_id = "getDestination", tag = "destinations", security(("bearer" = [])),
    params(("id" = DestinationId, Path, description = "The destination's id.")),
    responses((status = 200, description = "The destination.", body = DestinationView), ReadErrors))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<DestinationView>> {
    let d = state
        .app()
        .destination(&caller.principal, &destination_id(&id)?)
        .await?;
    Ok(Json(
        DestinationView::from(&d).linked(state.app().public_url()),
    ))
}

/// Change a destination: absent fields keep their value. Audited.
#[utoipa::path(patch, path = "/v1/destinations/{id}", operation_id = "updateDestination", tag = "destinations", security(("bearer" = [])),
    params(("id" = DestinationId, Path, description = "The destination's id.")),
    request_body(content = DestinationInput, description = "Only the fields to change.",
        example = json!({"filter": {"event_types": ["order.*", "invoice.*"]}, "retry": {"max_retries": 8}})),
    responses((status = 200, description = "The destination.", body = DestinationView), WriteErrors))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<DestinationInput>,
) -> ApiResult<Json<DestinationView>> {
    let d = state
        .app()
        .update_destination(&caller.principal, &destination_id(&id)?, input)
        .await?;
    Ok(Json(
        DestinationView::from(&d).linked(state.app().public_url()),
    ))
}

/// Delete a destination. Audited.
#[utoipa::path(delete, path = "/v1/destinations/{id}", operation_id = "deleteDestination", tag = "destinations", security(("bearer" = [])),
    params(("id" = DestinationId, Path, description = "The destination's id.")),
    responses((status = 204, description = "Deleted."), WriteErrors))]
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

/// Test a destination: connect and authenticate for real.
#[utoipa::path(post, path = "/v1/destinations/{id}/test", operation_id = "testDestination", tag = "destinations", security(("bearer" = [])),
    params(("id" = DestinationId, Path, description = "The destination's id.")),
    responses((status = 200, description = "Whether it worked, and why not.", body = CheckView), WriteErrors))]
async fn test(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<CheckView>> {
    let report = state
        .app()
        .test_destination(&caller.principal, &destination_id(&id)?)
        .await?;
    Ok(Json(CheckView {
        ok: report.ok,
        message: report.message,
    }))
}

/// Rotate a destination's signing secret.
///
/// The new secret is shown once; the previous one keeps signing (both
/// signatures are sent) until the grace period ends. Audited.
#[utoipa::path(post, path = "/v1/destinations/{id}/rotate-secret", operation_id = "rotateSigningSecret", tag = "destinations", security(("bearer" = [])),
    params(("id" = DestinationId, Path, description = "The destination's id.")),
    request_body(content = Option<RotateInput>, description = "Optional: the grace period, or your own secret."),
    responses((status = 200, description = "The new secret, shown once.", body = RotatedSecret), WriteErrors))]
async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<RotatedSecret>> {
    let input: RotateInput = parse_optional_json(&body)?;
    let rotated = state
        .app()
        .rotate_signing_secret(&caller.principal, &destination_id(&id)?, input)
        .await?;
    Ok(Json(RotatedSecret::new(
        &rotated.secret,
        rotated.previous_expires_at,
    )))
}

async fn set_enabled(
    state: AppState,
    caller: Caller,
    id: String,
    enabled: bool,
) -> ApiResult<Json<DestinationView>> {
    let d = state
        .app()
        .set_destination_enabled(&caller.principal, &destination_id(&id)?, enabled)
        .await?;
    Ok(Json(
        DestinationView::from(&d).linked(state.app().public_url()),
    ))
}

/// Enable a destination: its waiting deliveries go out again. Audited.
#[utoipa::path(post, path = "/v1/destinations/{id}/enable", operation_id = "enableDestination", tag = "destinations", security(("bearer" = [])),
    params(("id" = DestinationId, Path, description = "The destination's id.")),
    responses((status = 200, description = "The destination.", body = DestinationView), WriteErrors))]
async fn enable(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<DestinationView>> {
    set_enabled(state, caller, id, true).await
}

/// Disable a destination: deliveries wait until it is enabled. Audited.
#[utoipa::path(post, path = "/v1/destinations/{id}/disable", operation_id = "disableDestination", tag = "destinations", security(("bearer" = [])),
    params(("id" = DestinationId, Path, description = "The destination's id.")),
    responses((status = 200, description = "The destination.", body = DestinationView), WriteErrors))]
async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<DestinationView>> {
    set_enabled(state, caller, id, false).await
}

/// A destination's health: breaker state, failures, success rate.
#[utoipa::path(get, path = "/v1/destinations/{id}/health", operation_id = "getDestinationHealth", tag = "destinations", security(("bearer" = [])),
    params(("id" = DestinationId, Path, description = "The destination's id.")),
    responses((status = 200, description = "The destination's health.", body = HealthView), ReadErrors))]
async fn health(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<HealthView>> {
    let (d, health) = state
        .app()
        .destination_health(&caller.principal, &destination_id(&id)?)
        .await?;
    Ok(Json(HealthView::new(&d, &health)))
}
