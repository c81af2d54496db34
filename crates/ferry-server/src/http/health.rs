//! `/healthz` (the process is up), `/readyz` (the use cases' readiness:
//! storage answers and commits, not shutting down) and `/metrics`
//! (Prometheus text).

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::state::AppState;
use crate::app::health::NotReady;
use crate::views::Status;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

fn status(status: &'static str, reason: Option<&str>) -> Json<Status> {
    Json(Status {
        status,
        reason: reason.map(str::to_owned),
    })
}

/// Whether the process is up.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "operations",
    responses((status = 200, description = "`ok`.", body = Status, example = json!({"status": "ok"}))))]
async fn healthz() -> Json<Status> {
    status("ok", None)
}

/// Whether Ferry accepts events: storage answers and commits, and it is
/// not shutting down.
#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "operations",
    responses(
        (status = 200, description = "`ready`.", body = Status),
        (status = 503, description = "`shutting_down`, or `storage_unavailable` with the reason.", body = Status,
            example = json!({"status": "storage_unavailable", "reason": "storage is unavailable"})),
    ))]
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Status>) {
    match state.app().readiness().await {
        Ok(()) => (StatusCode::OK, status("ready", None)),
        Err(NotReady::ShuttingDown) => (
            StatusCode::SERVICE_UNAVAILABLE,
            status("shutting_down", None),
        ),
        Err(NotReady::Storage(reason)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            status("storage_unavailable", Some(reason)),
        ),
    }
}

/// Prometheus metrics, in the text format.
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "operations",
    responses((status = 200, description = "The metrics.", body = String, content_type = "text/plain",
        example = json!("# TYPE ferry_ingest_events_total counter\nferry_ingest_events_total{outcome=\"accepted\"} 1042\n"))))]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics().render(),
    )
}
