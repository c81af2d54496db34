//! The HTTP API: each module owns a `router()`, `app()` assembles them so
//! tests can drive the whole API without a socket.

pub mod admin;
pub mod auth;
pub mod deliveries;
pub mod destinations;
pub mod error;
pub mod events;
pub mod extract;
pub mod health;
pub mod rate_limit;
pub mod security;
pub mod sources;
pub mod views;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tower_http::trace::TraceLayer;

use crate::state::AppState;

/// Health, readiness and metrics only: what a worker or scheduler process
/// serves (it never accepts events).
pub fn operations_app(state: AppState) -> Router {
    Router::new()
        .merge(health::router())
        .fallback(|| async { error::ApiError::NotFound("route") })
        .with_state(state)
}

pub fn app(state: AppState) -> Router {
    let limit = state.config().max_payload_bytes;
    Router::new()
        .merge(events::router())
        .merge(deliveries::router())
        .merge(destinations::router())
        .merge(admin::router())
        .merge(sources::router())
        .merge(health::router())
        .fallback(|| async { error::ApiError::NotFound("route") })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::audit_cross_org,
        ))
        .layer(DefaultBodyLimit::max(limit))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
