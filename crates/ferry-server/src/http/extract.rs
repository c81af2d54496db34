//! Request extractors with the API's errors: a JSON body read under the size
//! limit, query strings, and pagination.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ferry_core::page::{DEFAULT_LIMIT, MAX_LIMIT, Page, PageRequest};
use ferry_core::source::HeaderLookup;
use ferry_core::trace::TraceContext;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::state::AppState;
use crate::app;
use crate::views::List;

/// A JSON body: 413 past the size limit (enforced while reading), 400
/// `invalid_json` when unparsable, 400 `invalid_request` on wrong types.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| body_error(e, state))?;
        Ok(ApiJson(app::json::parse_json(&bytes)?))
    }
}

fn body_error(rejection: BytesRejection, state: &AppState) -> ApiError {
    if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge(state.config().max_payload_bytes)
    } else {
        ApiError::InvalidJson(format!("could not read the request body: {rejection}"))
    }
}

/// Query parameters with the API's errors.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(query)
            .map(ApiQuery)
            .map_err(|e| ApiError::invalid("query", e.to_string()))
    }
}

/// `limit` and `cursor` of every list.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// How many (1–1000, default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageParams {
    pub fn page(&self) -> Result<PageRequest, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(ApiError::invalid(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let after = match &self.cursor {
            None => None,
            Some(c) if c.is_empty() => None,
            Some(c) => Some(decode_cursor(c).ok_or_else(|| {
                ApiError::invalid("cursor", "is not a cursor from a previous page")
            })?),
        };
        Ok(PageRequest { limit, after })
    }
}

pub fn encode_cursor(seq: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("v1:{seq}"))
}

fn decode_cursor(cursor: &str) -> Option<i64> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    std::str::from_utf8(&bytes)
        .ok()?
        .strip_prefix("v1:")?
        .parse()
        .ok()
}

/// A list response: `{"data": [...], "next_cursor": ...}`.
pub fn list<T, V: utoipa::ToSchema>(page: Page<T>, view: impl Fn(&T) -> V) -> List<V> {
    List::new(
        page.items.iter().map(view).collect(),
        page.next.map(encode_cursor),
    )
}

/// A request's headers as the use cases read them (a source's signature
/// and fields, a trace context).
pub(super) struct Headers<'a>(pub &'a HeaderMap);

impl HeaderLookup for Headers<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The producer's W3C trace context (`traceparent`, `tracestate`); one
/// that does not parse is ignored, as the recommendation says: the event
/// starts a trace of its own.
pub(super) fn trace_context(headers: &HeaderMap) -> Option<TraceContext> {
    TraceContext::from_headers(&Headers(headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_rejected() {
        assert_eq!(decode_cursor(&encode_cursor(42)), Some(42));
        assert_eq!(decode_cursor("garbage"), None);
        let bad = PageParams {
            limit: Some(5000),
            cursor: None,
        };
        assert!(bad.page().is_err());
    }
}
