//! `/healthz` (the process is up), `/readyz` (storage answers and, after a
//! write failed, commits again; not shutting down) and `/metrics`
//! (Prometheus text).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::json;

use crate::state::AppState;
use crate::store_health::{Operation, Reason};

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// How long readiness waits for the store's answer; a load balancer's own
/// check usually gives up after a few seconds.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.is_shutting_down() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "shutting_down"})),
        );
    }
    let health = &state.inner().write_health;
    let check = async {
        if health.failing().is_some() {
            // The latest write failed: only a write shows that writes work
            // again (a read succeeds on a full disk).
            let probe = state.store().probe_write().await;
            match &probe {
                Ok(()) => health.succeeded(),
                Err(error) => health.failed(Operation::ReadinessProbe, error),
            }
            probe
        } else {
            state.store().ping().await
        }
    };
    let reason = match tokio::time::timeout(PROBE_TIMEOUT, check).await {
        Ok(Ok(())) => return (StatusCode::OK, Json(json!({"status": "ready"}))),
        Ok(Err(error)) => {
            tracing::warn!(%error, "Readiness check failed.");
            Reason::of(&error).map_or("stored data cannot be read", Reason::describe)
        }
        Err(_) => {
            tracing::warn!(timeout = ?PROBE_TIMEOUT, "Readiness check: the store did not answer in time.");
            "storage did not answer in time"
        }
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"status": "storage_unavailable", "reason": reason})),
    )
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.inner().metrics.render(),
    )
}
