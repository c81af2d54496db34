//! Noticing a key that probes another organization's objects. The answer is
//! the same `404` as for an id that does not exist (nothing is revealed);
//! afterwards, off the request path so that timing reveals nothing either,
//! the owning organization's audit log gets a `security.cross_org_denied`
//! record with the key id and the path.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;

use super::auth::authenticate;
use super::state::AppState;

/// Id prefixes whose owner can be looked up.
const OWNED: [&str; 6] = ["evt_", "dlv_", "dst_", "src_", "key_", "org_"];

pub async fn audit_cross_org(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    // Most requests (ingest above all) name no id: they pay nothing here.
    let ids: Vec<String> = request
        .uri()
        .path()
        .split('/')
        .filter(|s| OWNED.iter().any(|p| s.starts_with(p)))
        .map(str::to_owned)
        .collect();
    if ids.is_empty() {
        return next.run(request).await;
    }
    let path = request.uri().path().to_owned();
    let auth = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let response = next.run(request).await;
    if response.status() == StatusCode::NOT_FOUND
        && let Some(auth) = auth
    {
        tokio::spawn(async move {
            if let Ok(key) = authenticate(&state, &auth).await {
                state.app().record_cross_org(&key, &path, &ids).await;
            }
        });
    }
    response
}
