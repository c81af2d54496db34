//! Export schedules: `POST /v1/export-schedules` creates one, `GET` lists
//! and shows them, `PATCH` changes one, `DELETE` removes it (its runs stay
//! in the export history), and `GET …/runs` lists the exports it started.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ferry_core::ScheduleId;
use ferry_core::export::{SchedulePatch, ScheduleRequest};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiQuery, PageParams, list};
use super::openapi::{ReadErrors, WriteErrors};
use super::state::AppState;
use crate::views::{ExportView, List, ScheduleView};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_schedules, create))
        .routes(routes!(show, update, remove))
        .routes(routes!(runs))
}

fn schedule_id(id: &str) -> ApiResult<ScheduleId> {
    ScheduleId::parse(id).map_err(|_| ApiError::NotFound("export schedule"))
}

/// Create an export schedule.
///
/// Each time the cron expression fires (in `timezone`), one run of
/// `export` starts, exactly once however many Ferry processes share the
/// store. A failed run is retried with growing waits, then alerts the
/// organization's alert destinations (`ferry.export.failed`). After each
/// successful run, `retention` removes older outputs at their target.
/// Audited.
#[utoipa::path(post, path = "/v1/export-schedules", operation_id = "createExportSchedule", tag = "exports", security(("bearer" = [])),
    request_body = ScheduleRequest,
    responses((status = 201, description = "Created.", body = ScheduleView,
        links(("get" = (operation_id = "getExportSchedule", parameters(("id" = "$response.body#/id")))),
              ("runs" = (operation_id = "listExportScheduleRuns", parameters(("id" = "$response.body#/id")))))),
        WriteErrors))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<ScheduleRequest>,
) -> ApiResult<(StatusCode, Json<ScheduleView>)> {
    let schedule = state
        .app()
        .create_schedule(&caller.principal, request)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(ScheduleView::from(&schedule).linked(state.app().public_url())),
    ))
}

/// List export schedules, newest first.
#[utoipa::path(get, path = "/v1/export-schedules", operation_id = "listExportSchedules", tag = "exports", security(("bearer" = [])),
    params(PageParams),
    responses((status = 200, description = "A page of schedules.", body = List<ScheduleView>), ReadErrors))]
async fn list_schedules(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(p): ApiQuery<PageParams>,
) -> ApiResult<Json<List<ScheduleView>>> {
    let page = state.app().schedules(&caller.principal, p.page()?).await?;
    Ok(Json(list(page, |s| {
        ScheduleView::from(s).linked(state.app().public_url())
    })))
}

/// An export schedule, with its next run.
#[utoipa::path(get, path = "/v1/export-schedules/{id}", operation_id = "getExportSchedule", tag = "exports", security(("bearer" = [])),
    params(("id" = ScheduleId, Path, description = "The schedule's id.")),
    responses((status = 200, description = "The schedule.", body = ScheduleView), ReadErrors))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ScheduleView>> {
    let schedule = state
        .app()
        .schedule(&caller.principal, &schedule_id(&id)?)
        .await?;
    Ok(Json(
        ScheduleView::from(&schedule).linked(state.app().public_url()),
    ))
}

/// Change an export schedule: the fields given replace the stored ones. A
/// new `cron` or `timezone`, or enabling it, sets the next run from now.
/// Audited.
#[utoipa::path(patch, path = "/v1/export-schedules/{id}", operation_id = "updateExportSchedule", tag = "exports", security(("bearer" = [])),
    params(("id" = ScheduleId, Path, description = "The schedule's id.")),
    request_body = SchedulePatch,
    responses((status = 200, description = "Changed.", body = ScheduleView), WriteErrors))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<SchedulePatch>,
) -> ApiResult<Json<ScheduleView>> {
    let schedule = state
        .app()
        .update_schedule(&caller.principal, &schedule_id(&id)?, patch)
        .await?;
    Ok(Json(
        ScheduleView::from(&schedule).linked(state.app().public_url()),
    ))
}

/// Delete an export schedule; its runs and their outputs stay. Audited.
#[utoipa::path(delete, path = "/v1/export-schedules/{id}", operation_id = "deleteExportSchedule", tag = "exports", security(("bearer" = [])),
    params(("id" = ScheduleId, Path, description = "The schedule's id.")),
    responses((status = 204, description = "Deleted."), WriteErrors))]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .app()
        .delete_schedule(&caller.principal, &schedule_id(&id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The exports a schedule started, newest first: each with the time it was
/// scheduled for and its attempt (retries of a tick count up from 2).
#[utoipa::path(get, path = "/v1/export-schedules/{id}/runs", operation_id = "listExportScheduleRuns", tag = "exports", security(("bearer" = [])),
    params(("id" = ScheduleId, Path, description = "The schedule's id."), PageParams),
    responses((status = 200, description = "A page of the schedule's runs.", body = List<ExportView>), ReadErrors))]
async fn runs(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<PageParams>,
) -> ApiResult<Json<List<ExportView>>> {
    let page = state
        .app()
        .schedule_runs(&caller.principal, &schedule_id(&id)?, p.page()?)
        .await?;
    Ok(Json(list(page, |job| {
        ExportView::from(job).linked(state.app().public_url())
    })))
}
