//! The API's OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]`
//! attributes and the views' schemas (so it cannot drift from the code), served
//! at `GET /openapi.json` (and `/v1/openapi.json`), and its reference page at
//! `GET /docs`, whose script is embedded in the binary: nothing is fetched
//! from elsewhere at run time.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use serde_json::json;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{Ref, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, RefOr, Response, ResponseBuilder};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};

use crate::views::ErrorBody;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Ferry",
        description = "Ferry takes events in, acknowledges them once they are durable, and \
            delivers each one to every destination that should get it, with retries, a \
            dead-letter queue, replay and a full audit trail.\n\nAuthenticate with \
            `Authorization: Bearer <api key>`. Errors are `{\"error\", \"message\", \
            \"details\"}`; lists take `limit` (1–1000, default 50) and `cursor`.",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerKey),
    components(schemas(ErrorBody)),
    tags(
        (name = "events", description = "Sending events, reading and replaying them."),
        (name = "deliveries", description = "Deliveries, their attempts, retries and the dead-letter queue."),
        (name = "destinations", description = "Where events go: webhooks, queues, stores, files."),
        (name = "sources", description = "Inbound signed events from partners."),
        (name = "orgs", description = "Organizations and API keys."),
        (name = "config", description = "Configuration export and import: back up, restore or copy a whole setup."),
        (name = "exports", description = "Data exports: streamed, compressed, redacted, to files, S3 or SFTP; on demand or on a schedule."),
        (name = "audit", description = "The append-only audit trail, and operator actions."),
        (name = "operations", description = "Health, readiness and metrics."),
    )
)]
pub struct ApiDoc;

/// The `bearer` security scheme that every `/v1` operation names.
struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// Routes serving the document and its reference page.
pub fn router<S: Clone + Send + Sync + 'static>(doc: Document) -> axum::Router<S> {
    let doc = Arc::new(doc);
    let json = move || {
        let doc = doc.clone();
        async move { Json(doc.as_ref().clone()) }
    };
    axum::Router::new()
        .route("/openapi.json", get(json.clone()))
        .route("/v1/openapi.json", get(json))
        .route("/docs", get(|| async { Html(DOCS_PAGE) }))
        .route("/docs/redoc.standalone.js", get(redoc_script))
}

const DOCS_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Ferry API reference</title>
<style>body { margin: 0; }</style>
</head>
<body>
<redoc spec-url="/openapi.json" hide-download-button="false"></redoc>
<script src="/docs/redoc.standalone.js"></script>
</body>
</html>
"#;

/// Redoc (MIT, see `assets/redoc/`), vendored.
async fn redoc_script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        include_str!("../../assets/redoc/redoc.standalone.js"),
    )
}

/// One error answer of the API's error format, with an example of it.
fn error(kind: &ErrorDoc, retry_after: bool) -> RefOr<Response> {
    let content = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name(ErrorBody::name())))
        .example(Some(kind.example()))
        .build();
    let mut response = ResponseBuilder::new()
        .description(kind.description)
        .content("application/json", content);
    if retry_after {
        response = response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(Some(utoipa::openapi::schema::Object::with_type(
                    Type::Integer,
                )))
                .description(Some("Seconds to wait before retrying."))
                .build(),
        );
    }
    response.build().into()
}

/// A documented error status: when it happens, and a typical body.
struct ErrorDoc {
    status: &'static str,
    description: &'static str,
    code: &'static str,
    message: &'static str,
    /// The invalid field and what is wrong with it, for the codes whose
    /// `details` name fields.
    field: Option<(&'static str, &'static str)>,
}

impl ErrorDoc {
    fn example(&self) -> serde_json::Value {
        let details: Vec<_> = self
            .field
            .iter()
            .map(|(field, message)| json!({"field": field, "message": message}))
            .collect();
        json!({"error": self.code, "message": self.message, "details": details})
    }
}

const BAD_REQUEST: ErrorDoc = ErrorDoc {
    status: "400",
    description: "`invalid_json` (unparsable body) or `invalid_request` (wrong types, a bad query parameter).",
    code: "invalid_request",
    message: "type: missing field `type`",
    field: Some(("type", "missing field `type`")),
};
const UNAUTHORIZED: ErrorDoc = ErrorDoc {
    status: "401",
    description: "`unauthorized`: no or unknown API key.",
    code: "unauthorized",
    message: "missing or unknown API key",
    field: None,
};
const FORBIDDEN: ErrorDoc = ErrorDoc {
    status: "403",
    description: "`forbidden`: the key lacks the scope.",
    code: "forbidden",
    message: "this API key lacks the `manage` scope",
    field: None,
};
const NOT_FOUND: ErrorDoc = ErrorDoc {
    status: "404",
    description: "`not_found`: unknown id, or an id of another organization.",
    code: "not_found",
    message: "destination not found",
    field: None,
};
const CONFLICT: ErrorDoc = ErrorDoc {
    status: "409",
    description: "`conflict`: the change conflicts with another entity.",
    code: "conflict",
    message: "delivery is pending; only retrying, delivered, failed or dead deliveries can be retried",
    field: None,
};
const TOO_LARGE: ErrorDoc = ErrorDoc {
    status: "413",
    description: "`payload_too_large`: the body is over `max_payload_bytes`.",
    code: "payload_too_large",
    message: "request body is larger than 1048576 bytes",
    field: None,
};
const INVALID: ErrorDoc = ErrorDoc {
    status: "422",
    description: "`validation_failed`: `details` names each invalid field.",
    code: "validation_failed",
    message: "config.url: must be an http or https URL",
    field: Some(("config.url", "must be an http or https URL")),
};
const RATE_LIMITED: ErrorDoc = ErrorDoc {
    status: "429",
    description: "`rate_limited`: the key's ingest rate is exceeded.",
    code: "rate_limited",
    message: "this API key may send 1000 events per second; retry later",
    field: None,
};
const UNAVAILABLE: ErrorDoc = ErrorDoc {
    status: "503",
    description: "`unavailable`: storage cannot commit, or Ferry is shutting down; nothing was accepted.",
    code: "unavailable",
    message: "storage is unavailable; nothing was accepted, retry later",
    field: None,
};
const BAD_SIGNATURE: ErrorDoc = ErrorDoc {
    status: "401",
    description: "`invalid_signature`: a bad or stale signature, with the reason.",
    code: "invalid_signature",
    message: "the timestamp is 412 s away from now, outside the 300 s tolerance",
    field: None,
};

fn errors(list: &[&ErrorDoc]) -> BTreeMap<String, RefOr<Response>> {
    list.iter()
        .map(|kind| {
            let retry = matches!(kind.status, "429" | "503");
            (kind.status.to_owned(), error(kind, retry))
        })
        .collect()
}

/// The errors of an authenticated read.
pub struct ReadErrors;

impl IntoResponses for ReadErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        errors(&[
            &BAD_REQUEST,
            &UNAUTHORIZED,
            &FORBIDDEN,
            &NOT_FOUND,
            &UNAVAILABLE,
        ])
    }
}

/// The errors of an authenticated change.
pub struct WriteErrors;

impl IntoResponses for WriteErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        errors(&[
            &BAD_REQUEST,
            &UNAUTHORIZED,
            &FORBIDDEN,
            &NOT_FOUND,
            &CONFLICT,
            &TOO_LARGE,
            &INVALID,
            &UNAVAILABLE,
        ])
    }
}

/// The errors of ingest (`/v1/events`).
pub struct IngestErrors;

impl IntoResponses for IngestErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        errors(&[
            &BAD_REQUEST,
            &UNAUTHORIZED,
            &FORBIDDEN,
            &NOT_FOUND,
            &TOO_LARGE,
            &INVALID,
            &RATE_LIMITED,
            &UNAVAILABLE,
        ])
    }
}

/// The errors of starting an export (an organization runs a bounded number
/// at once: `429` beyond it).
pub struct ExportErrors;

impl IntoResponses for ExportErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        errors(&[
            &BAD_REQUEST,
            &UNAUTHORIZED,
            &FORBIDDEN,
            &NOT_FOUND,
            &TOO_LARGE,
            &INVALID,
            &RATE_LIMITED,
            &UNAVAILABLE,
        ])
    }
}

/// The errors of a partner's request to `/in/{id}`.
pub struct InboundErrors;

impl IntoResponses for InboundErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut list = errors(&[
            &BAD_REQUEST,
            &NOT_FOUND,
            &TOO_LARGE,
            &INVALID,
            &RATE_LIMITED,
            &UNAVAILABLE,
        ]);
        list.insert(
            BAD_SIGNATURE.status.to_owned(),
            error(&BAD_SIGNATURE, false),
        );
        list
    }
}
