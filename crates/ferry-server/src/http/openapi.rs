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

/// One error answer of the API's error format.
fn error(description: &str, retry_after: bool) -> RefOr<Response> {
    let content = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name(ErrorBody::name())))
        .build();
    let mut response = ResponseBuilder::new()
        .description(description)
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

const BAD_REQUEST: (&str, &str) = (
    "400",
    "`invalid_json` (unparsable body) or `invalid_request` (wrong types, a bad query parameter).",
);
const UNAUTHORIZED: (&str, &str) = ("401", "`unauthorized`: no or unknown API key.");
const FORBIDDEN: (&str, &str) = ("403", "`forbidden`: the key lacks the scope.");
const NOT_FOUND: (&str, &str) = (
    "404",
    "`not_found`: unknown id, or an id of another organization.",
);
const CONFLICT: (&str, &str) = (
    "409",
    "`conflict`: the change conflicts with another entity.",
);
const TOO_LARGE: (&str, &str) = (
    "413",
    "`payload_too_large`: the body is over `max_payload_bytes`.",
);
const INVALID: (&str, &str) = (
    "422",
    "`validation_failed`: `details` names each invalid field.",
);
const RATE_LIMITED: (&str, &str) = ("429", "`rate_limited`: the key's ingest rate is exceeded.");
const UNAVAILABLE: (&str, &str) = (
    "503",
    "`unavailable`: storage cannot commit, or Ferry is shutting down; nothing was accepted.",
);

fn errors(list: &[(&str, &str)]) -> BTreeMap<String, RefOr<Response>> {
    list.iter()
        .map(|(status, description)| {
            let retry = matches!(*status, "429" | "503");
            ((*status).to_owned(), error(description, retry))
        })
        .collect()
}

/// The errors of an authenticated read.
pub struct ReadErrors;

impl IntoResponses for ReadErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        errors(&[BAD_REQUEST, UNAUTHORIZED, FORBIDDEN, NOT_FOUND, UNAVAILABLE])
    }
}

/// The errors of an authenticated change.
pub struct WriteErrors;

impl IntoResponses for WriteErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        errors(&[
            BAD_REQUEST,
            UNAUTHORIZED,
            FORBIDDEN,
            NOT_FOUND,
            CONFLICT,
            TOO_LARGE,
            INVALID,
            UNAVAILABLE,
        ])
    }
}

/// The errors of ingest (`/v1/events`).
pub struct IngestErrors;

impl IntoResponses for IngestErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        errors(&[
            BAD_REQUEST,
            UNAUTHORIZED,
            FORBIDDEN,
            NOT_FOUND,
            TOO_LARGE,
            INVALID,
            RATE_LIMITED,
            UNAVAILABLE,
        ])
    }
}

/// The errors of a partner's request to `/in/{id}`.
pub struct InboundErrors;

impl IntoResponses for InboundErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut list = errors(&[
            BAD_REQUEST,
            NOT_FOUND,
            TOO_LARGE,
            INVALID,
            RATE_LIMITED,
            UNAVAILABLE,
        ]);
        list.insert(
            "401".to_owned(),
            error(
                "`invalid_signature`: a bad or stale signature, with the reason.",
                false,
            ),
        );
        list
    }
}
