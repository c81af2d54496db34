//! Configuration export and import (admin keys): `GET /v1/config/export`
//! writes the whole configuration as JSON or YAML, `POST
//! /v1/config/import` applies such a document (or, with `dry_run`, shows
//! what it would create, change and remove). A passphrase, when secrets
//! are sealed, travels in the `ferry-passphrase` header, never in a URL.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::extract::ApiQuery;
use super::openapi::WriteErrors;
use super::state::AppState;
use crate::app::config::{self, ImportOptions, ImportReport};

/// The header that carries the passphrase of sealed secrets.
const PASSPHRASE: &str = "ferry-passphrase";

/// A small document, for the reference page.
fn sample() -> serde_json::Value {
    serde_json::json!({"ferry_config": 1, "orgs": [{"default": true, "name": "default",
      "alert_destinations": [],
      "destinations": [{"id": "dst_01jq3v8k3c5e7g9j1m3p5r7t9w", "name": "orders", "kind": "webhook",
        "config": {"url": "https://example.com/hooks"},
        "filter": {"event_types": ["order.*"]},
        "retry": {"max_retries": 8, "initial_backoff_ms": 1000, "multiplier": 2.0, "max_backoff_ms": 3600000},
        "default": false, "enabled": true, "max_in_flight": 64,
        "auth": {"type": "bearer", "token": "***"}, "signing": "v1"}],
      "sources": [], "export_schedules": []}]})
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(export))
        .routes(routes!(import))
}

fn passphrase(headers: &HeaderMap) -> ApiResult<Option<String>> {
    headers
        .get(PASSPHRASE)
        .map(|v| {
            v.to_str().map(str::to_owned).map_err(|_| {
                ApiError::from(crate::app::Error::malformed(PASSPHRASE, "must be text"))
            })
        })
        .transpose()
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ExportParams {
    /// `json` (default) or `yaml`.
    format: Option<String>,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ImportParams {
    /// Plan only: show what would change, change nothing.
    #[serde(default)]
    dry_run: bool,
    /// Also remove what the document's organizations hold and it does not
    /// name.
    #[serde(default)]
    prune: bool,
}

/// Export the configuration: organizations, destinations (routing, retry
/// policies, credentials), sources, alert settings and export schedules —
/// nothing that is data. Secrets are left out, or sealed (Argon2id +
/// XChaCha20-Poly1305) with the passphrase in the `ferry-passphrase`
/// header. Admin keys only.
#[utoipa::path(get, path = "/v1/config/export", operation_id = "exportConfig", tag = "config", security(("bearer" = [])),
    params(ExportParams, ("ferry-passphrase" = Option<String>, Header, description = "Seal the secrets with this passphrase (at least 12 characters).")),
    responses((status = 200, description = "The configuration document.",
        content((serde_json::Value = "application/json", example = sample), (String = "application/yaml"))),
        WriteErrors))]
async fn export(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<ExportParams>,
) -> ApiResult<Response> {
    let yaml = match params.format.as_deref() {
        None | Some("json") => false,
        Some("yaml") => true,
        Some(other) => {
            return Err(crate::app::Error::malformed(
                "format",
                format!("`{other}` is not a format; use json or yaml"),
            )
            .into());
        }
    };
    let phrase = passphrase(&headers)?;
    let doc = state
        .app()
        .export_config(&caller.principal, phrase.as_deref())
        .await?;
    let text = config::render(&doc, yaml)?;
    let content_type = if yaml {
        "application/yaml"
    } else {
        "application/json"
    };
    let mut response = text.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}

/// Import a configuration document (JSON or YAML), in one transaction:
/// what it names is created or changed to match, by id (its default
/// organization onto this Ferry's own); importing it again changes
/// nothing. Sealed secrets need the passphrase in `ferry-passphrase`;
/// without them, new destinations are created disabled and new sources
/// skipped. Admin keys only; audited.
#[utoipa::path(post, path = "/v1/config/import", operation_id = "importConfig", tag = "config", security(("bearer" = [])),
    params(ImportParams, ("ferry-passphrase" = Option<String>, Header, description = "Opens the document's sealed secrets.")),
    request_body(content = serde_json::Value, description = "A document from `GET /v1/config/export`, as JSON or YAML.",
        content_type = "application/json", example = sample),
    responses((status = 200, description = "What was (or, in a dry run, would be) created, changed, removed and skipped.", body = ImportReport),
        WriteErrors))]
async fn import(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<ImportParams>,
    body: Bytes,
) -> ApiResult<Json<ImportReport>> {
    let doc = config::parse(&body)?;
    let options = ImportOptions {
        passphrase: passphrase(&headers)?,
        dry_run: params.dry_run,
        prune: params.prune,
    };
    let report = state
        .app()
        .import_config(&caller.principal, doc, options)
        .await?;
    Ok(Json(report))
}
