//! Data exports: `POST /v1/exports` starts one (202 with the job), `GET`
//! lists and shows jobs with their progress, `POST …/cancel` stops one and
//! removes what it wrote, `GET …/download` streams a finished local export.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ferry_core::ExportId;
use tokio_util::io::ReaderStream;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiQuery, PageParams, list};
use super::openapi::{ExportErrors, ReadErrors, WriteErrors};
use super::state::AppState;
use crate::app::exports::ExportRequest;
use crate::views::{ExportView, List};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_exports, create))
        .routes(routes!(show))
        .routes(routes!(cancel))
        .routes(routes!(download))
}

fn export_id(id: &str) -> ApiResult<ExportId> {
    ExportId::parse(id).map_err(|_| ApiError::NotFound("export"))
}

/// Start an export.
///
/// Validates the request (an unknown source, format, field or filter is a
/// 400 naming it), stores the job and runs it in the background: poll
/// `GET /v1/exports/{id}` for its progress. The output is written under a
/// temporary name and appears at its target only once complete. Audited.
#[utoipa::path(post, path = "/v1/exports", operation_id = "createExport", tag = "exports", security(("bearer" = [])),
    request_body = ExportRequest,
    responses((status = 202, description = "Queued; it runs in the background.", body = ExportView,
        links(("get" = (operation_id = "getExport", parameters(("id" = "$response.body#/id")))),
              ("cancel" = (operation_id = "cancelExport", parameters(("id" = "$response.body#/id")))),
              ("download" = (operation_id = "downloadExport", parameters(("id" = "$response.body#/id")))))),
        ExportErrors))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<ExportRequest>,
) -> ApiResult<(StatusCode, Json<ExportView>)> {
    let job = state
        .app()
        .create_export(&caller.principal, request)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(ExportView::from(&job).linked(state.app().public_url())),
    ))
}

/// List export jobs, newest first: the export history.
#[utoipa::path(get, path = "/v1/exports", operation_id = "listExports", tag = "exports", security(("bearer" = [])),
    params(PageParams),
    responses((status = 200, description = "A page of export jobs.", body = List<ExportView>), ReadErrors))]
async fn list_exports(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(p): ApiQuery<PageParams>,
) -> ApiResult<Json<List<ExportView>>> {
    let page = state.app().exports(&caller.principal, p.page()?).await?;
    Ok(Json(list(page, |job| {
        ExportView::from(job).linked(state.app().public_url())
    })))
}

/// An export job: its status, progress (rows, bytes, percent, ETA) and
/// result (rows, bytes, compression ratio, SHA-256, location).
#[utoipa::path(get, path = "/v1/exports/{id}", operation_id = "getExport", tag = "exports", security(("bearer" = [])),
    params(("id" = ExportId, Path, description = "The export's id.")),
    responses((status = 200, description = "The export job.", body = ExportView), ReadErrors))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ExportView>> {
    let job = state
        .app()
        .export(&caller.principal, &export_id(&id)?)
        .await?;
    Ok(Json(
        ExportView::from(&job).linked(state.app().public_url()),
    ))
}

/// Cancel a queued or running export; what it wrote is removed. A finished
/// one answers 409. Audited.
#[utoipa::path(post, path = "/v1/exports/{id}/cancel", operation_id = "cancelExport", tag = "exports", security(("bearer" = [])),
    params(("id" = ExportId, Path, description = "The export's id.")),
    responses((status = 200, description = "Cancelled.", body = ExportView), WriteErrors))]
async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ExportView>> {
    let job = state
        .app()
        .cancel_export(&caller.principal, &export_id(&id)?)
        .await?;
    Ok(Json(
        ExportView::from(&job).linked(state.app().public_url()),
    ))
}

/// Download a succeeded export, streamed as it is stored (compressed if it
/// was). `x-ferry-sha256` carries its checksum.
#[utoipa::path(get, path = "/v1/exports/{id}/download", operation_id = "downloadExport", tag = "exports", security(("bearer" = [])),
    params(("id" = ExportId, Path, description = "The export's id.")),
    responses((status = 200, description = "The export's bytes, typed by its compression, else by its format.",
        content((String = "text/csv", example = "id,status\r\ndlv_01jq3v8k3c5e7g9j1m3p5r7t9w,dead\r\n"),
                (serde_json::Value = "application/json", example = json!([{"id": "dlv_01jq3v8k3c5e7g9j1m3p5r7t9w", "status": "dead"}])),
                (String = "application/x-ndjson"), (String = "application/yaml"), (String = "text/plain"),
                (Vec<u8> = "application/gzip"), (Vec<u8> = "application/zip"))),
        (status = 409, description = "Not succeeded, or its file is gone.", body = crate::views::ErrorBody),
        ReadErrors))]
async fn download(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let found = state
        .app()
        .export_download(&caller.principal, &export_id(&id)?)
        .await?;
    let file = tokio::fs::File::open(&found.path).await.map_err(|error| {
        tracing::warn!(path = %found.path.display(), %error, "Opening an export to download failed.");
        ApiError::Conflict("the export's file cannot be read".into())
    })?;
    let length = file.metadata().await.map(|m| m.len()).ok();
    let mut response = Body::from_stream(ReaderStream::new(file)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(found.content_type),
    );
    if let Some(length) = length {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    let name: String = found
        .file_name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    if let Ok(value) = HeaderValue::from_str(&found.sha256) {
        headers.insert("x-ferry-sha256", value);
    }
    Ok(response)
}
