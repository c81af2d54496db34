//! The HTTP API: each module owns a `router()`, `app()` assembles them so
//! tests can drive the whole API without a socket.
//!
//! A handler that panics answers `500` in the API's error format instead of
//! closing the connection without a status line (`CatchPanicLayer`): the
//! client learns that nothing went right, and the panic is logged.

pub mod admin;
pub mod auth;
pub mod config;
pub mod deliveries;
pub mod destinations;
pub mod error;
pub mod events;
pub mod exports;
pub mod extract;
pub mod health;
pub mod integrations;
pub mod openapi;
pub mod schedules;
pub mod security;
pub mod sources;
pub mod state;

use std::any::Any;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;

pub use self::state::AppState;

/// Health, readiness and metrics only: what a worker or scheduler process
/// serves (it never accepts events).
pub fn operations_app(state: AppState) -> Router {
    let (health, _) = health::router().split_for_parts();
    Router::new()
        .merge(health)
        .fallback(|| async { error::ApiError::NotFound("route") })
        .layer(CatchPanicLayer::custom(panicked))
        .with_state(state)
}

/// The whole API and its OpenAPI document, from the same handlers.
pub fn routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(events::router())
        .merge(deliveries::router())
        .merge(destinations::router())
        .merge(integrations::router())
        .merge(admin::router())
        .merge(sources::router())
        .merge(exports::router())
        .merge(schedules::router())
        .merge(config::router())
        .merge(health::router())
        .split_for_parts()
}

pub fn app(state: AppState) -> Router {
    let limit = state.config().max_payload_bytes;
    let (api, doc) = routes();
    api.merge(openapi::router(doc))
        .fallback(|| async { error::ApiError::NotFound("route") })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::audit_cross_org,
        ))
        .layer(DefaultBodyLimit::max(limit))
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::custom(panicked))
        .with_state(state)
}

/// The answer to a request whose handler panicked.
fn panicked(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    tracing::error!(
        panic = message,
        "A request handler panicked; answering 500."
    );
    error::ApiError::Internal.into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_answers_500_in_the_error_format() {
        async fn boom() -> &'static str {
            panic!("handler failed")
        }
        let app: Router = Router::new()
            .route("/boom", get(boom))
            .layer(CatchPanicLayer::custom(panicked));
        let response = app
            .oneshot(Request::get("/boom").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"], "internal", "{body}");
        assert!(!body.to_string().contains("handler failed"), "{body}");
    }
}
