//! The webhook adapter (`validate`, `build`) and deliverer (`deliver`,
//! `check`), and the pure classification of an HTTP answer.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use ferry_core::attempt::Receipt;
use ferry_core::delivery::{Captured, Envelope, MAX_CAPTURED_BODY};
use ferry_core::destination::{Auth, Destination, DestinationKind, Signing};
use ferry_core::ports::{AttemptError, Delivered, Outcome};
use ferry_core::ports::{AttemptReport, CheckReport, Deliverer, DestinationAdapter};
use ferry_core::signing::signature_header;
use ferry_core::{EventId, FieldError};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use serde_json::Value;
use serde_json::json;

use super::config::WebhookConfig;
use crate::CatalogOptions;
use crate::error_chain::{describe_chain, find_cause};
use crate::kind_config::KindConfig;
use crate::message::Payload;
use crate::net_guard::{GuardedResolver, NetworkPolicy, ResolvedToRefused};

/// What a captured secret header value is replaced with.
const REDACTED: &str = "***";
/// The event type of `check()`'s test request.
const TEST_EVENT_TYPE: &str = "ferry.test";

const WEBHOOK_ID: HeaderName = HeaderName::from_static("webhook-id");
const WEBHOOK_TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
const WEBHOOK_SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");
const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const FERRY_DELIVERY_ID: HeaderName = HeaderName::from_static("ferry-delivery-id");
const FERRY_ATTEMPT: HeaderName = HeaderName::from_static("ferry-attempt");
/// The attempt's time in RFC 3339 (UTC, whole seconds): `webhook-timestamp`
/// for people and for receivers that log or compare readable times.
const FERRY_TIMESTAMP: HeaderName = HeaderName::from_static("ferry-timestamp");
/// W3C Trace Context: the receiver's spans join the event's trace.
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// The `webhook` kind. Owns the HTTP client shared by every webhook
/// destination of the process (pooled keep-alive connections, rustls, no
/// redirects followed, no proxy from the environment, the SSRF guard in its
/// DNS resolver) and the guard's policy.
pub struct WebhookAdapter {
    /// An error when the client could not be built (reported by `build`).
    client: Result<reqwest::Client, String>,
    user_agent: HeaderValue,
    connect_timeout: Duration,
    policy: Arc<NetworkPolicy>,
}

impl WebhookAdapter {
    /// The kind with its shared client; `policy` is applied by `validate`,
    /// by the client's resolver and to IP-literal URLs before each request.
    pub fn new(options: &CatalogOptions, policy: NetworkPolicy) -> Self {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(options.pool_max_idle_per_host)
            .tcp_nodelay(true)
            .connect_timeout(options.connect_timeout)
            // A proxy from the environment would bypass the SSRF guard,
            // which sits in the client's DNS resolver.
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver {
                policy: Arc::clone(&policy),
            }))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {}", describe_chain(&e)));
        if let Err(error) = &client {
            tracing::error!(%error, "Webhook destinations are unavailable.");
        }
        let user_agent = HeaderValue::from_str(&options.user_agent).unwrap_or_else(|_| {
            tracing::warn!(
                "The configured user agent is not a valid header value; using the default."
            );
            HeaderValue::from_static(concat!("ferry/", env!("CARGO_PKG_VERSION")))
        });
        Self {
            client,
            user_agent,
            connect_timeout: options.connect_timeout,
            policy,
        }
    }
}

impl DestinationAdapter for WebhookAdapter {
    fn kind(&self) -> DestinationKind {
        DestinationKind::Webhook
    }

    fn validate(&self, config: &Value, auth: &Auth) -> Result<Value, Vec<FieldError>> {
        WebhookConfig::validate(config, auth, &self.policy)
    }

    fn build(&self, destination: &Destination) -> Result<Arc<dyn Deliverer>, String> {
        if destination.kind != DestinationKind::Webhook {
            return Err(format!("not a webhook destination: {}", destination.kind));
        }
        let client = self.client.clone()?;
        let auth = &destination.secrets.auth;
        // Read again under no policy: a destination created under another
        // one is refused when it connects, not when it is built.
        let config =
            WebhookConfig::from_stored(&destination.config, auth, &NetworkPolicy::allow_all())?;
        let url = reqwest::Url::parse(&config.url).map_err(|e| format!("config.url: {e}"))?;

        // Headers that are the same on every request, and their captured view.
        let mut fixed = Fixed::default();
        fixed.set(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
            false,
        );
        fixed.set(header::USER_AGENT, self.user_agent.clone(), false);
        for (name, value) in &config.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("config.headers.{name}: not a valid header name"))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| format!("config.headers.{name}: not a valid header value"))?;
            fixed.set(name, value, false);
        }
        match auth {
            Auth::None => {}
            Auth::Bearer { token } => {
                let value = secret_value(&format!("Bearer {}", token.expose()), "auth.token")?;
                fixed.set(header::AUTHORIZATION, value, true);
            }
            Auth::Basic { username, password } => {
                let credentials = STANDARD.encode(format!("{username}:{}", password.expose()));
                let value = secret_value(&format!("Basic {credentials}"), "auth")?;
                fixed.set(header::AUTHORIZATION, value, true);
            }
            Auth::ApiKey { header, value } => {
                let name = HeaderName::from_bytes(header.as_bytes())
                    .map_err(|_| "auth.header: not a valid header name".to_owned())?;
                fixed.set(name, secret_value(value.expose(), "auth.value")?, true);
            }
            other => {
                return Err(format!(
                    "auth `{}` is not supported by webhook destinations",
                    other.type_name()
                ));
            }
        }

        Ok(Arc::new(WebhookDeliverer {
            client,
            url,
            timeout: Duration::from_millis(config.timeout_ms),
            connect_timeout: self.connect_timeout,
            policy: Arc::clone(&self.policy),
            fixed,
            signing: destination.secrets.signing.clone(),
        }))
    }
}

/// A header value that holds a secret: marked sensitive (its `Debug` hides
/// it); the error names the field, never the value.
fn secret_value(text: &str, field: &str) -> Result<HeaderValue, String> {
    let mut value =
        HeaderValue::from_str(text).map_err(|_| format!("{field}: not a valid header value"))?;
    value.set_sensitive(true);
    Ok(value)
}

/// Request headers plus the view of them kept in attempt records.
#[derive(Clone, Default)]
struct Fixed {
    headers: HeaderMap,
    captured: BTreeMap<String, String>,
}

impl Fixed {
    fn set(&mut self, name: HeaderName, value: HeaderValue, secret: bool) {
        let shown = if secret {
            REDACTED.to_owned()
        } else {
            String::from_utf8_lossy(value.as_bytes()).into_owned()
        };
        self.captured.insert(name.as_str().to_owned(), shown);
        self.headers.insert(name, value);
    }
}

/// One webhook destination, built: its URL, headers, auth and signing
/// secrets over the shared client.
pub struct WebhookDeliverer {
    client: reqwest::Client,
    url: reqwest::Url,
    timeout: Duration,
    connect_timeout: Duration,
    policy: Arc<NetworkPolicy>,
    fixed: Fixed,
    signing: Signing,
}

impl std::fmt::Debug for WebhookDeliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookDeliverer")
            .field("url", &self.url.as_str())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// What came back from one request.
struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    response: Captured,
}

impl WebhookDeliverer {
    /// Signs and sends one request; returns what was sent (captured) and
    /// the answer or a transport error.
    async fn send(
        &self,
        id: &str,
        payload: &Payload<'_>,
        extra: &[(HeaderName, String)],
    ) -> (Option<Captured>, Result<Answer, AttemptError>) {
        // reqwest connects to an IP literal without asking the resolver, so
        // the guard checks it here (the policy may have changed since the
        // destination was created).
        if let Err(refusal) = self.policy.check_ip_literal(&self.url) {
            return (None, Err(AttemptError::permanent(refusal.to_string())));
        }
        let body = match serde_json::to_vec(payload) {
            Ok(body) => body,
            Err(e) => {
                let error = format!("cannot serialize the event: {e}");
                return (None, Err(AttemptError::permanent(error)));
            }
        };
        let now = Utc::now();
        let timestamp = now.timestamp();
        let signature = signature_header(self.signing.active(now), id, timestamp, &body);

        let mut fixed = self.fixed.clone();
        let dynamic = [
            (WEBHOOK_ID, id.to_owned()),
            (WEBHOOK_TIMESTAMP, timestamp.to_string()),
            (
                FERRY_TIMESTAMP,
                now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ),
            (IDEMPOTENCY_KEY, id.to_owned()),
        ];
        let signed = (!signature.is_empty()).then_some((WEBHOOK_SIGNATURE, signature));
        for (name, value) in dynamic
            .into_iter()
            .chain(signed)
            .chain(extra.iter().cloned())
        {
            match HeaderValue::try_from(value) {
                Ok(value) => fixed.set(name, value, false),
                Err(_) => {
                    let error = format!("`{name}` is not a valid header value");
                    return (None, Err(AttemptError::permanent(error)));
                }
            }
        }
        let request = Captured {
            headers: fixed.captured,
            body: Captured::body_from_bytes(&body),
        };

        let sent = self
            .client
            .post(self.url.clone())
            .headers(fixed.headers)
            .timeout(self.timeout)
            .body(body)
            .send()
            .await;
        let answer = match sent {
            Ok(mut response) => {
                let status = response.status();
                let retry_after = response
                    .headers()
                    .get(header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let headers = capture_headers(response.headers());
                let body = read_bounded(&mut response).await;
                Ok(Answer {
                    status,
                    retry_after,
                    response: Captured {
                        headers,
                        body: Captured::body_from_bytes(&body),
                    },
                })
            }
            Err(error) => Err(self.transport_failure(error)),
        };
        (Some(request), answer)
    }

    /// Classifies a request that got no answer.
    fn transport_failure(&self, error: reqwest::Error) -> AttemptError {
        let error = error.without_url();
        if error.is_builder() {
            return AttemptError::permanent(format!("invalid request: {}", describe_chain(&error)));
        }
        // The SSRF guard refused every address of the host: retrying cannot
        // change a policy.
        if let Some(refused) = find_cause::<ResolvedToRefused>(&error) {
            return AttemptError::permanent(refused.to_string());
        }
        AttemptError::retryable(describe_transport_error(
            &error,
            self.timeout,
            self.connect_timeout,
        ))
    }
}

#[async_trait]
impl Deliverer for WebhookDeliverer {
    /// One signed `POST`, stamped and signed at the time of this attempt
    /// (`webhook-signature` is left out when no signing secret is active).
    /// The captured request shows every header except secrets (`***`); the
    /// captured answer keeps at most 64 KiB of the body.
    async fn deliver(&self, envelope: &Envelope) -> AttemptReport {
        let event = &envelope.event;
        let id = event.id.as_str();
        let payload = Payload::of(event);
        let mut extra = vec![
            (FERRY_DELIVERY_ID, envelope.delivery_id.to_string()),
            (FERRY_ATTEMPT, envelope.attempt.to_string()),
        ];
        if let Some(trace) = &envelope.trace {
            extra.push((TRACEPARENT, trace.traceparent()));
            if let Some(state) = trace.tracestate() {
                extra.push((TRACESTATE, state.to_owned()));
            }
        }
        let (request, answer) = self.send(id, &payload, &extra).await;
        match answer {
            Ok(answer) => AttemptReport {
                result: classify(
                    answer.status.as_u16(),
                    answer.retry_after.as_deref(),
                    SystemTime::now(),
                )
                .map(|delivered| with_references(delivered, &answer.response.headers)),
                status_code: Some(answer.status.as_u16()),
                request,
                response: Some(answer.response),
            },
            Err(error) => AttemptReport {
                result: Err(error),
                status_code: None,
                request,
                response: None,
            },
        }
    }

    /// Sends a signed test event (`"type": "ferry.test"`, empty `data`, a
    /// fresh id) with the destination's headers and auth. Ok only on a 2xx
    /// answer: that proves the URL, the auth and the receiver's handling;
    /// the message gives the status and the round-trip time.
    async fn check(&self) -> CheckReport {
        let id = EventId::generate();
        let now = Utc::now();
        let data = Value::Object(Default::default());
        let payload = Payload {
            id: id.as_str(),
            event_type: TEST_EVENT_TYPE,
            timestamp: &now,
            data: &data,
        };
        let started = Instant::now();
        let (_, answer) = self.send(id.as_str(), &payload, &[]).await;
        let elapsed_ms = started.elapsed().as_millis();
        match answer {
            Ok(answer) => match classify(answer.status.as_u16(), None, SystemTime::now()) {
                Ok(_) => CheckReport {
                    ok: true,
                    message: format!("{} in {elapsed_ms} ms", status_text(answer.status.as_u16())),
                },
                Err(error) => CheckReport {
                    ok: false,
                    message: format!("{error} in {elapsed_ms} ms (the endpoint must answer 2xx)"),
                },
            },
            Err(error) => CheckReport {
                ok: false,
                message: error.into_reason(),
            },
        }
    }
}

/// Response headers in which receivers name what they made of a request.
const REFERENCE_HEADERS: [(&str, &str); 5] = [
    ("x-request-id", "request_id"),
    ("request-id", "request_id"),
    ("x-amzn-requestid", "request_id"),
    ("x-correlation-id", "request_id"),
    ("location", "location"),
];

/// The receipt with the receiver's own references added: its request id
/// and the `Location` of what it made, when it answers them.
pub(super) fn with_references(
    mut delivered: Delivered,
    headers: &BTreeMap<String, String>,
) -> Delivered {
    if let Some(receipt) = &mut delivered.receipt {
        for (header, field) in REFERENCE_HEADERS {
            if let Some(value) = headers.get(header)
                && receipt.get(field).is_none()
            {
                receipt.0.insert(field.to_owned(), json!(value));
            }
        }
    }
    delivered
}

/// Classifies an HTTP answer: 2xx delivered; 408, 425, 429 and 5xx
/// retryable, honouring `Retry-After` (delta-seconds or an HTTP-date, read
/// against `now`); redirects (not followed) and every other status
/// permanent.
pub fn classify(status: u16, retry_after: Option<&str>, now: SystemTime) -> Outcome {
    let text = status_text(status);
    match status {
        200..=299 => Ok(Delivered {
            receipt: Some(Receipt::of([("status", json!(status))])),
        }),
        408 | 425 | 429 | 500..=599 => Err(AttemptError::retryable(text)
            .with_retry_after(retry_after.and_then(|value| parse_retry_after(value, now)))),
        300..=399 => Err(AttemptError::permanent(format!(
            "{text}: redirects are not followed"
        ))),
        _ => Err(AttemptError::permanent(text)),
    }
}

/// Reads a `Retry-After` value: delta-seconds (`"120"`) or an HTTP-date
/// (`"Wed, 21 Oct 2026 07:28:00 GMT"`), as a wait from `now` (zero for a
/// date already past). `None` when it is neither.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for u64: wait "forever", the engine caps it.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `HTTP 503 Service Unavailable` (or `HTTP 599` without a known reason).
fn status_text(status: u16) -> String {
    match StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
    {
        Some(reason) => format!("HTTP {status} {reason}"),
        None => format!("HTTP {status}"),
    }
}

fn capture_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut captured: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        captured
            .entry(name.as_str().to_owned())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    captured
}

/// Reads at most `MAX_CAPTURED_BODY` bytes of the answer, chunk by chunk,
/// and stops there (the rest is never read; the connection is then dropped
/// instead of reused). A body that fails or times out midway keeps what came.
async fn read_bounded(response: &mut reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < MAX_CAPTURED_BODY {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let take = chunk.len().min(MAX_CAPTURED_BODY - body.len());
                body.extend_from_slice(&chunk[..take]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    body
}

/// A human sentence for a request that got no answer: `timed out after
/// 10000 ms`, `connection refused`, `DNS lookup failed: …`. Never contains
/// the URL (it may carry tokens) nor any header.
fn describe_transport_error(
    error: &reqwest::Error,
    timeout: Duration,
    connect_timeout: Duration,
) -> String {
    if error.is_timeout() {
        return if error.is_connect() {
            format!(
                "timed out connecting after {} ms",
                timeout.min(connect_timeout).as_millis()
            )
        } else {
            format!("timed out after {} ms", timeout.as_millis())
        };
    }
    let detail = describe_chain(error);
    if error.is_dns() {
        format!("DNS lookup failed: {detail}")
    } else if error.is_connect() && !detail.starts_with("connection") {
        format!("could not connect: {detail}")
    } else {
        detail
    }
}
