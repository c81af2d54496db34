//! The webhook config, `{"url", "headers", "timeout_ms"}`, and its pure
//! validation together with the destination's auth.

use std::collections::{BTreeMap, HashSet};

use ferry_core::FieldError;
use ferry_core::destination::Auth;
use http::{HeaderName, HeaderValue};
use serde::Serialize;
use serde_json::{Map, Value};
use url::Url;

use crate::kind_config::KindConfig;
use crate::net_guard::NetworkPolicy;

/// Default per-request timeout.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// Largest accepted per-request timeout (five minutes).
pub const MAX_TIMEOUT_MS: u64 = crate::MAX_DELIVERY_TIMEOUT.as_millis() as u64;
const MAX_URL_LEN: usize = 4096;
const MAX_HEADERS: usize = 64;
const MAX_HEADER_VALUE_LEN: usize = 4096;

/// Headers Ferry sets itself (or that belong to the connection), which a
/// destination's `headers` may not override.
const RESERVED_HEADERS: &[&str] = &[
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "idempotency-key",
    "ferry-delivery-id",
    "ferry-attempt",
    "ferry-timestamp",
    "traceparent",
    "tracestate",
    "content-type",
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
    "expect",
];

/// A webhook destination's `config`, as stored (after [`KindConfig::validate`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookConfig {
    /// Where events are `POST`ed (http or https).
    pub url: String,
    /// Extra request headers (none may override Ferry's own).
    pub headers: BTreeMap<String, String>,
    /// Limit of one attempt, from connecting to the end of the answer.
    pub timeout_ms: u64,
}

impl KindConfig for WebhookConfig {
    type Context = NetworkPolicy;

    /// Checks a webhook config and its auth without I/O. Returns the config
    /// with defaults filled in (`headers: {}`, `timeout_ms: 10000`), or one
    /// error per invalid field (`config.url`, `config.timeout_ms`,
    /// `config.headers.<name>`, `auth.token`, `auth.header` …). Error
    /// messages never contain secrets.
    ///
    /// The SSRF guard checks the URL's host without a lookup: an IP literal
    /// `policy` refuses (`http://10.0.0.1`, `http://[::ffff:127.0.0.1]`) or
    /// a `localhost` name is a `config.url` error saying why. Other host
    /// names are checked at connect time. (Stored configs are read again
    /// under no policy: a destination created under another policy is
    /// refused when it connects, not when it is built.)
    fn parse(config: &Value, auth: &Auth, policy: &NetworkPolicy) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        validate_auth(auth, &mut errors);
        let Some(fields) = config.as_object() else {
            errors.push(FieldError::new("config", "must be an object"));
            return Err(errors);
        };
        for key in fields.keys() {
            if !matches!(key.as_str(), "url" | "headers" | "timeout_ms") {
                errors.push(FieldError::new(
                    format!("config.{key}"),
                    "unknown field (expected url, headers, timeout_ms)",
                ));
            }
        }

        let url = match fields.get("url") {
            None | Some(Value::Null) => {
                errors.push(FieldError::new("config.url", "is required"));
                None
            }
            Some(Value::String(url)) => match check_url(url, policy) {
                Ok(()) => Some(url.clone()),
                Err(message) => {
                    errors.push(FieldError::new("config.url", message));
                    None
                }
            },
            Some(_) => {
                errors.push(FieldError::new("config.url", "must be a string"));
                None
            }
        };

        let timeout_ms = match fields.get("timeout_ms") {
            None | Some(Value::Null) => Some(DEFAULT_TIMEOUT_MS),
            Some(value) => match value.as_u64() {
                Some(ms) if (1..=MAX_TIMEOUT_MS).contains(&ms) => Some(ms),
                _ => {
                    errors.push(FieldError::new(
                        "config.timeout_ms",
                        format!("must be an integer between 1 and {MAX_TIMEOUT_MS}"),
                    ));
                    None
                }
            },
        };

        let headers = match fields.get("headers") {
            None | Some(Value::Null) => Some(BTreeMap::new()),
            Some(Value::Object(headers)) => {
                let before = errors.len();
                check_headers(headers, auth, &mut errors);
                // `check_headers` refuses every value that is not a string.
                (errors.len() == before).then(|| {
                    headers
                        .iter()
                        .filter_map(|(name, value)| {
                            Some((name.clone(), value.as_str()?.to_owned()))
                        })
                        .collect()
                })
            }
            Some(_) => {
                errors.push(FieldError::new(
                    "config.headers",
                    "must be an object of header names to string values",
                ));
                None
            }
        };

        match (url, timeout_ms, headers) {
            (Some(url), Some(timeout_ms), Some(headers)) if errors.is_empty() => {
                Ok(WebhookConfig {
                    url,
                    headers,
                    timeout_ms,
                })
            }
            _ => Err(errors),
        }
    }

    fn to_json(&self) -> Value {
        // Strings and a number: serializing cannot fail.
        serde_json::to_value(self).expect("the config serializes")
    }
}

fn check_url(text: &str, policy: &NetworkPolicy) -> Result<(), String> {
    if text.len() > MAX_URL_LEN {
        return Err(format!("must be at most {MAX_URL_LEN} characters"));
    }
    let url = Url::parse(text).map_err(|e| format!("is not a valid URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http:// or https:// URL".to_owned());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials; use `auth` instead".to_owned());
    }
    policy.check_url_host(&url)
}

fn check_headers(headers: &Map<String, Value>, auth: &Auth, errors: &mut Vec<FieldError>) {
    if headers.len() > MAX_HEADERS {
        errors.push(FieldError::new(
            "config.headers",
            format!("at most {MAX_HEADERS} headers"),
        ));
        return;
    }
    let auth_header = match auth {
        Auth::Bearer { .. } | Auth::Basic { .. } => Some("authorization".to_owned()),
        Auth::ApiKey { header, .. } => Some(header.to_ascii_lowercase()),
        _ => None,
    };
    let mut seen = HashSet::new();
    for (name, value) in headers {
        let field = format!("config.headers.{name}");
        let Ok(parsed) = HeaderName::from_bytes(name.as_bytes()) else {
            errors.push(FieldError::new(field, "is not a valid HTTP header name"));
            continue;
        };
        let lower = parsed.as_str();
        if RESERVED_HEADERS.contains(&lower) {
            errors.push(FieldError::new(
                field,
                "is set by Ferry and cannot be overridden",
            ));
            continue;
        }
        if auth_header.as_deref() == Some(lower) {
            errors.push(FieldError::new(
                field,
                "is set by the destination's auth and cannot be overridden",
            ));
            continue;
        }
        if !seen.insert(lower.to_owned()) {
            errors.push(FieldError::new(
                field,
                "is given twice (header names are case-insensitive)",
            ));
            continue;
        }
        match value {
            Value::String(value) if value.len() > MAX_HEADER_VALUE_LEN => {
                errors.push(FieldError::new(
                    field,
                    format!("must be at most {MAX_HEADER_VALUE_LEN} bytes"),
                ))
            }
            Value::String(value) if HeaderValue::from_str(value).is_err() => {
                errors.push(FieldError::new(
                    field,
                    "must be visible ASCII without line breaks",
                ));
            }
            Value::String(_) => {}
            _ => errors.push(FieldError::new(field, "must be a string")),
        }
    }
}

fn validate_auth(auth: &Auth, errors: &mut Vec<FieldError>) {
    match auth {
        Auth::None => {}
        Auth::Bearer { token } => {
            let token = token.expose();
            if token.is_empty() {
                errors.push(FieldError::new("auth.token", "is required"));
            } else if !is_header_value(token) {
                errors.push(FieldError::new(
                    "auth.token",
                    "must be visible ASCII without line breaks",
                ));
            }
        }
        Auth::Basic { username, .. } => {
            if username.contains(':') {
                errors.push(FieldError::new("auth.username", "must not contain `:`"));
            } else if username.chars().any(char::is_control) {
                errors.push(FieldError::new(
                    "auth.username",
                    "must not contain control characters",
                ));
            }
        }
        Auth::ApiKey { header, value } => {
            match HeaderName::from_bytes(header.as_bytes()) {
                Err(_) => errors.push(FieldError::new(
                    "auth.header",
                    "is not a valid HTTP header name",
                )),
                Ok(name) if RESERVED_HEADERS.contains(&name.as_str()) => errors.push(
                    FieldError::new("auth.header", "is set by Ferry and cannot carry an API key"),
                ),
                Ok(_) => {}
            }
            let value = value.expose();
            if value.is_empty() {
                errors.push(FieldError::new("auth.value", "is required"));
            } else if !is_header_value(value) {
                errors.push(FieldError::new(
                    "auth.value",
                    "must be visible ASCII without line breaks",
                ));
            }
        }
        other => errors.push(FieldError::new(
            "auth.type",
            format!(
                "`{}` is not supported by webhook destinations (use none, bearer, basic or api_key)",
                other.type_name()
            ),
        )),
    }
}

fn is_header_value(text: &str) -> bool {
    text.len() <= MAX_HEADER_VALUE_LEN && HeaderValue::from_str(text).is_ok()
}
