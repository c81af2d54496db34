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
use ferry_core::audit::AuditRecord;
use serde_json::json;
use tracing::warn;

use super::auth::authenticate;
use crate::state::AppState;

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
        tokio::spawn(record(state, auth, path, ids));
    }
    response
}

async fn record(state: AppState, auth: String, path: String, ids: Vec<String>) {
    let Ok(key) = authenticate(&state, &auth).await else {
        return;
    };
    for id in ids {
        let owner = match state.inner().ownership.owner_of(&id).await {
            Ok(Some(owner)) if owner != key.org_id => owner,
            Ok(_) => continue,
            Err(error) => {
                warn!(%error, "Could not check who owns an id.");
                continue;
            }
        };
        warn!(key_id = %key.id, %path, "An API key asked for another organization's object; answered 404.");
        let audit = AuditRecord::new(
            owner,
            key.id.to_string(),
            "security",
            id,
            "security.cross_org_denied",
        )
        .after(json!({"path": path, "key_id": key.id, "key_org_id": key.org_id}));
        if let Err(error) = state.store().append_audit(&[audit]).await {
            warn!(%error, "Could not record a cross-organization attempt.");
        }
    }
}
