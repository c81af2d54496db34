//! The client of Ferry's HTTP API that the CLI and the load tool share: base
//! URL, bearer key, timeout, a bounded response read, and the decoding of the
//! API's error JSON into [`ApiError`] (printed as `error: <code>: <message>`
//! plus one line per field). Downloads are the exception to the bounded read:
//! [`ApiClient::get_stream`] hands the body over unread, to be streamed.
//! Requests and answers are JSON, except for configuration documents, which
//! travel as text ([`ApiClient::get_text`], [`ApiClient::post_text`]).

use std::fmt;
use std::time::Duration;

use anyhow::Context as _;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

use crate::exit::usage;
use crate::table::truncate;

/// Where the CLI looks for the server when neither `--url` nor `FERRY_URL` is set.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// Time allowed for one request, connect included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest response body read (a list of 1000 deliveries with their attempts fits).
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Largest error body read from a streamed request (the API's error JSON is small).
const MAX_STREAM_ERROR_BYTES: usize = 64 * 1024;

/// A non-2xx answer from the API.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    /// The machine code (`validation_failed`, …) when the body was the API's error JSON.
    pub code: Option<String>,
    pub message: String,
    /// `(field, message)` pairs from `details`.
    pub details: Vec<(String, String)>,
    pub retry_after: Option<String>,
    /// The body as received, for `--json`.
    pub body: Option<Value>,
}

impl ApiError {
    /// Decodes `{"error","message","details"}`, or keeps a cut of whatever else came.
    pub fn from_response(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Self {
        let retry_after = headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let json: Option<Value> = serde_json::from_slice(body).ok();
        let code = json
            .as_ref()
            .and_then(|j| j.get("error"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let message = match json
            .as_ref()
            .and_then(|j| j.get("message"))
            .and_then(Value::as_str)
        {
            Some(m) => m.to_owned(),
            None if code.is_some() => String::new(),
            None => {
                let text = String::from_utf8_lossy(body);
                let text = text.trim();
                if text.is_empty() {
                    status
                        .canonical_reason()
                        .unwrap_or("no reason given")
                        .to_owned()
                } else {
                    truncate(text, 300)
                }
            }
        };
        let details = json
            .as_ref()
            .and_then(|j| j.get("details"))
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .map(|d| {
                        let text = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("");
                        (text("field").to_owned(), text("message").to_owned())
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            status,
            code,
            message,
            details,
            retry_after,
            body: json,
        }
    }
}

impl fmt::Display for ApiError {
    /// `validation_failed: <message>` then `  <field>: <message>` per detail.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(code) if self.message.is_empty() => write!(f, "{code}")?,
            Some(code) => write!(f, "{code}: {}", self.message)?,
            None => write!(f, "HTTP {}: {}", self.status.as_u16(), self.message)?,
        }
        for (field, message) in &self.details {
            let line = if field.is_empty() {
                message.clone()
            } else {
                format!("{field}: {message}")
            };
            if self.message.contains(&line) {
                // The message already says it (a single-field error).
                continue;
            }
            match (field.is_empty(), message.is_empty()) {
                (true, _) => write!(f, "\n  {message}")?,
                (false, true) => write!(f, "\n  {field}")?,
                (false, false) => write!(f, "\n  {field}: {message}")?,
            }
        }
        if let Some(after) = &self.retry_after {
            write!(f, "\n  retry after {after} s")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// A 2xx answer's JSON body (`Null` when the body was empty).
#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub body: Value,
}

/// A client of one Ferry server with one API key.
#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: Url,
    api_key: String,
}

impl ApiClient {
    /// A client with its own connection pool and the default timeout.
    pub fn new(base_url: &str, api_key: &str) -> anyhow::Result<Self> {
        let http = http_builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .context("cannot build the HTTP client")?;
        Self::with_http(http, base_url, api_key)
    }

    /// A client sharing `http`'s connection pool (the load tool's).
    pub fn with_http(http: reqwest::Client, base_url: &str, api_key: &str) -> anyhow::Result<Self> {
        Ok(Self {
            http,
            base: parse_base_url(base_url)?,
            api_key: api_key.to_owned(),
        })
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// `path` (starting with `/`) under the base URL, with `query` pairs appended.
    pub fn url(&self, path: &str, query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        let joined = format!("{}{path}", url.path().trim_end_matches('/'));
        url.set_path(&joined);
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        url
    }

    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<ApiResponse> {
        self.send(Method::GET, self.url(path, query), None, &[])
            .await
    }

    /// A `GET` whose 2xx body is left unread, for the caller to stream with
    /// [`reqwest::Response::chunk`] (map its errors with
    /// [`ApiClient::transport_error`]); a non-2xx answer is an [`ApiError`].
    ///
    /// A download may take longer than [`REQUEST_TIMEOUT`] in all, so this
    /// request has no overall deadline; instead the answer's headers and
    /// each read of its body must come within [`REQUEST_TIMEOUT`]. It uses a
    /// connection pool of its own, made for the one call.
    pub async fn get_stream(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> anyhow::Result<reqwest::Response> {
        let http = http_builder()
            .read_timeout(REQUEST_TIMEOUT)
            .build()
            .context("cannot build the HTTP client")?;
        let response = http
            .get(self.url(path, query))
            .bearer_auth(&self.api_key)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let headers = response.headers().clone();
        let bytes = read_bounded(response, MAX_STREAM_ERROR_BYTES)
            .await
            .map_err(|e| self.transport_error(e))?;
        Err(ApiError::from_response(status, &headers, &bytes).into())
    }

    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<ApiResponse> {
        self.send(Method::POST, self.url(path, &[]), Some(body), &[])
            .await
    }

    pub async fn post_with_headers(
        &self,
        path: &str,
        body: &Value,
        headers: &[(&str, String)],
    ) -> anyhow::Result<ApiResponse> {
        self.send(Method::POST, self.url(path, &[]), Some(body), headers)
            .await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> anyhow::Result<ApiResponse> {
        self.send(Method::PATCH, self.url(path, &[]), Some(body), &[])
            .await
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<ApiResponse> {
        self.send(Method::DELETE, self.url(path, &[]), None, &[])
            .await
    }

    /// A `GET` whose 2xx answer is text kept as sent (a YAML document, say),
    /// with extra `headers`; a non-2xx answer is an [`ApiError`].
    pub async fn get_text(
        &self,
        path: &str,
        query: &[(&str, String)],
        headers: &[(&str, String)],
    ) -> anyhow::Result<String> {
        let request = self.request(Method::GET, self.url(path, query), headers)?;
        let (status, bytes) = self.exchange(request).await?;
        String::from_utf8(bytes)
            .map_err(|_| anyhow::anyhow!("Ferry answered {status} with a body that is not text"))
    }

    /// A `POST` of `body` sent as is with `content_type` (not JSON-encoded),
    /// with extra `headers`; the answer is read as JSON.
    pub async fn post_text(
        &self,
        path: &str,
        query: &[(&str, String)],
        (content_type, body): (&str, String),
        headers: &[(&str, String)],
    ) -> anyhow::Result<ApiResponse> {
        let request = self
            .request(Method::POST, self.url(path, query), headers)?
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        let (status, bytes) = self.exchange(request).await?;
        json_body(status, &bytes)
    }

    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        headers: &[(&str, String)],
    ) -> anyhow::Result<ApiResponse> {
        let mut request = self.request(method, url, headers)?;
        if let Some(body) = body {
            request = request.json(body);
        }
        let (status, bytes) = self.exchange(request).await?;
        json_body(status, &bytes)
    }

    /// A request with the API key and `headers`.
    fn request(
        &self,
        method: Method,
        url: Url,
        headers: &[(&str, String)],
    ) -> anyhow::Result<reqwest::RequestBuilder> {
        let mut request = self.http.request(method, url).bearer_auth(&self.api_key);
        for (name, value) in headers {
            let name = HeaderName::try_from(*name).context("invalid header name")?;
            let value = HeaderValue::try_from(value.as_str())
                .map_err(|_| usage(format!("invalid value for header {name}")))?;
            request = request.header(name, value);
        }
        Ok(request)
    }

    /// Sends `request`; a 2xx answer's status and body (read bounded), or
    /// the [`ApiError`] of any other.
    async fn exchange(
        &self,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<(StatusCode, Vec<u8>)> {
        let response = request.send().await.map_err(|e| self.transport_error(e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = read_bounded(response, MAX_RESPONSE_BYTES)
            .await
            .map_err(|e| self.transport_error(e))?;
        if !status.is_success() {
            return Err(ApiError::from_response(status, &headers, &bytes).into());
        }
        Ok((status, bytes))
    }

    /// Says which server could not be reached, and why, without reqwest's URL noise.
    pub fn transport_error(&self, error: reqwest::Error) -> anyhow::Error {
        describe_transport_error(&self.base, error)
    }
}

/// A 2xx answer's body as JSON; `Null` when empty.
fn json_body(status: StatusCode, bytes: &[u8]) -> anyhow::Result<ApiResponse> {
    let body = if bytes.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(bytes)
            .with_context(|| format!("Ferry answered {status} with a body that is not JSON"))?
    };
    Ok(ApiResponse { body })
}

/// What the CLI's HTTP clients share: their name and the connect timeout.
fn http_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("ferry-cli/", env!("CARGO_PKG_VERSION")))
}

/// `cannot reach Ferry at URL: …` or `Ferry at URL did not answer within …`.
pub fn describe_transport_error(base: &Url, error: reqwest::Error) -> anyhow::Error {
    let cause = root_cause(&error);
    let base = base.as_str().trim_end_matches('/');
    if error.is_timeout() {
        anyhow::anyhow!(
            "Ferry at {base} did not answer within {} s",
            REQUEST_TIMEOUT.as_secs()
        )
    } else if error.is_connect() {
        anyhow::anyhow!("cannot reach Ferry at {base}: {cause}")
    } else {
        anyhow::anyhow!("request to Ferry at {base} failed: {cause}")
    }
}

/// The innermost error message (e.g. `Connection refused (os error 111)`).
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// The whole body, or an error once it passes `limit` bytes.
pub async fn read_bounded(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, reqwest::Error> {
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if out.len() + chunk.len() > limit {
            // Keep what fits: the caller reports the body it could read.
            out.extend_from_slice(&chunk[..limit - out.len()]);
            break;
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Checks that the base URL is `http(s)://host[:port][/prefix]`.
pub fn parse_base_url(raw: &str) -> anyhow::Result<Url> {
    let url = Url::parse(raw.trim()).map_err(|e| {
        usage(format!(
            "invalid Ferry URL {raw:?}: {e} (set --url or FERRY_URL)"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(usage(format!(
            "invalid Ferry URL {raw:?}: expected http://host:port (set --url or FERRY_URL)"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(usage(format!(
            "invalid Ferry URL {raw:?}: no query or fragment allowed"
        )));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::UsageError;
    use serde_json::json;

    fn api_error(status: u16, body: &str) -> ApiError {
        ApiError::from_response(
            StatusCode::from_u16(status).unwrap(),
            &HeaderMap::new(),
            body.as_bytes(),
        )
    }

    #[test]
    fn validation_errors_list_each_field() {
        let body = json!({
            "error": "validation_failed",
            "message": "The destination is invalid.",
            "details": [{"field": "config.url", "message": "must be an http(s) URL"}]
        });
        let e = api_error(422, &body.to_string());
        assert_eq!(
            e.to_string(),
            "validation_failed: The destination is invalid.\n  config.url: must be an http(s) URL"
        );
        assert_eq!(e.code.as_deref(), Some("validation_failed"));
    }

    #[test]
    fn a_detail_already_in_the_message_is_not_repeated() {
        let body = json!({
            "error": "validation_failed",
            "message": "config.url: must be an http:// or https:// URL",
            "details": [{"field": "config.url", "message": "must be an http:// or https:// URL"}]
        });
        assert_eq!(
            api_error(422, &body.to_string()).to_string(),
            "validation_failed: config.url: must be an http:// or https:// URL"
        );
    }

    #[test]
    fn non_json_errors_keep_the_status_and_text() {
        assert_eq!(
            api_error(502, "bad gateway\n").to_string(),
            "HTTP 502: bad gateway"
        );
        assert_eq!(
            api_error(500, "").to_string(),
            "HTTP 500: Internal Server Error"
        );
    }

    #[test]
    fn retry_after_is_shown() {
        let mut headers = HeaderMap::new();
        headers.insert(reqwest::header::RETRY_AFTER, HeaderValue::from_static("3"));
        let e = ApiError::from_response(
            StatusCode::TOO_MANY_REQUESTS,
            &headers,
            br#"{"error":"rate_limited","message":"Slow down."}"#,
        );
        assert_eq!(e.to_string(), "rate_limited: Slow down.\n  retry after 3 s");
    }

    #[test]
    fn urls_join_paths_and_encode_queries() {
        let c = ApiClient::new("http://127.0.0.1:8080/ferry/", "fk_x").unwrap();
        let url = c.url(
            "/v1/deliveries",
            &[("event_type", "order.*".into()), ("x", "a b&c".into())],
        );
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8080/ferry/v1/deliveries?event_type=order.*&x=a+b%26c"
        );
        let c = ApiClient::new("http://localhost:9", "fk_x").unwrap();
        assert_eq!(c.url("/v1/dlq", &[]).as_str(), "http://localhost:9/v1/dlq");
    }

    #[test]
    fn bad_base_urls_are_usage_errors() {
        for bad in ["localhost:8080", "ftp://x", "http://x/?a=1", "not a url"] {
            let e = parse_base_url(bad).unwrap_err();
            assert!(e.downcast_ref::<UsageError>().is_some(), "{bad}");
        }
    }
}
