//! Destinations, their signing keys (public parts only), tests and health.

use ferry_core::DestinationId;
use ferry_core::alerting::AlertSettings;
use ferry_core::destination::{Destination, DestinationKind, Filter, Health, HealthState};
use ferry_core::retry::RetryPolicy;
use ferry_core::signing::SigningSecret;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use chrono::{DateTime, Utc};

/// A destination, secrets redacted.
#[derive(Debug, Serialize, ToSchema)]
#[schema(examples(json!({
    "id": "dst_01jq3v2a4c6e8g0j2m4p6r8t0v", "name": "billing hook", "kind": "webhook",
    "config": {"url": "https://billing.example.com/hooks/ferry", "headers": {}, "timeout_ms": 10000},
    "auth": {"type": "bearer", "token": "***"},
    "filter": {"event_types": ["order.*"]},
    "retry": {"max_retries": 5, "initial_backoff_ms": 1000, "multiplier": 2.0, "max_backoff_ms": 3600000},
    "default": false, "enabled": true, "max_in_flight": 16, "state": "healthy",
    "alerts": {"disable_after": {"consecutive_failures": 1000}},
    "signing": {"scheme": "v1", "public_key": null, "secrets": [{"scheme": "v1", "public_key": null, "expires_at": null}]},
    "created_at": "2026-03-14T09:20:00Z", "updated_at": "2026-03-14T09:20:00Z"
})))]
pub struct DestinationView {
    pub id: DestinationId,
    #[schema(examples("billing hook"))]
    pub name: String,
    pub kind: DestinationKind,
    /// The kind's settings, defaults filled in.
    #[schema(value_type = Object)]
    pub config: Value,
    /// The credentials, redacted (`type` and non-secret fields only).
    #[schema(value_type = Object)]
    pub auth: Value,
    pub filter: Filter,
    pub retry: RetryPolicy,
    /// Gets the events that name no destination and match no filter.
    pub default: bool,
    pub enabled: bool,
    /// Most attempts in flight at once.
    pub max_in_flight: u32,
    pub state: HealthState,
    /// Its overrides of the organization's alert settings.
    pub alerts: AlertSettings,
    pub signing: SigningView,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The object's API URL and console page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub links: Option<super::Links>,
}

/// The signing keys: the current one first, then those in their grace period.
#[derive(Debug, Serialize, ToSchema)]
#[schema(examples(json!({
    "scheme": "v1", "public_key": null,
    "secrets": [
        {"scheme": "v1", "public_key": null, "expires_at": null},
        {"scheme": "v1", "public_key": null, "expires_at": "2026-03-15T09:20:00Z"}
    ]
})))]
pub struct SigningView {
    /// `v1` (HMAC-SHA256) or `v1a` (Ed25519).
    #[schema(examples("v1"))]
    pub scheme: Option<&'static str>,
    pub public_key: Option<String>,
    pub secrets: Vec<SigningKeyView>,
}

/// One signing key, by its scheme and, for Ed25519, its public half.
#[derive(Debug, Serialize, ToSchema)]
#[schema(examples(json!({"scheme": "v1", "public_key": null, "expires_at": null})))]
pub struct SigningKeyView {
    pub scheme: &'static str,
    pub public_key: Option<String>,
    /// `null` for the current key.
    pub expires_at: Option<DateTime<Utc>>,
}

impl From<&Destination> for DestinationView {
    fn from(d: &Destination) -> Self {
        let keys = &d.secrets.signing.secrets;
        Self {
            id: d.id.clone(),
            name: d.name.clone(),
            kind: d.kind,
            config: d.config.clone(),
            auth: d.secrets.auth.redacted(),
            filter: d.filter.clone(),
            retry: d.retry.clone(),
            default: d.is_default,
            enabled: d.enabled,
            max_in_flight: d.max_in_flight,
            state: d.state(),
            alerts: d.alerts.clone(),
            signing: SigningView {
                scheme: keys.first().map(|k| k.secret.scheme()),
                public_key: keys.first().and_then(|k| k.secret.public_key()),
                secrets: keys
                    .iter()
                    .map(|k| SigningKeyView {
                        scheme: k.secret.scheme(),
                        public_key: k.secret.public_key(),
                        expires_at: k.expires_at,
                    })
                    .collect(),
            },
            created_at: d.created_at,
            updated_at: d.updated_at,
            links: None,
        }
    }
}

impl DestinationView {
    /// The view with its links, as the API answers it.
    pub fn linked(self, public_url: &str) -> Self {
        let links = super::Links::new(public_url, "destinations", self.id.as_str());
        Self {
            links: Some(links),
            ..self
        }
    }
}

/// A new signing secret, shown once: an HMAC secret itself (the receiver
/// needs it), an Ed25519 key only by its public half.
#[derive(Debug, Default, Serialize, ToSchema)]
#[schema(examples(json!({"signing_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})))]
pub struct ShownOnce {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(examples("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))]
    pub signing_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_public_key: Option<String>,
}

impl ShownOnce {
    fn new(secret: Option<&SigningSecret>) -> Self {
        match secret {
            None => Self::default(),
            Some(s) => match s.public_key() {
                Some(public) => Self {
                    signing_public_key: Some(public),
                    ..Self::default()
                },
                None => Self {
                    signing_secret: Some(s.expose().to_owned()),
                    ..Self::default()
                },
            },
        }
    }
}

/// `201` to a new destination, with its signing secret shown once.
#[derive(Debug, Serialize, ToSchema)]
#[schema(examples(json!({
    "id": "dst_01jq3v2a4c6e8g0j2m4p6r8t0v", "name": "billing hook", "kind": "webhook",
    "config": {"url": "https://billing.example.com/hooks/ferry", "headers": {}, "timeout_ms": 10000},
    "auth": {"type": "bearer", "token": "***"},
    "filter": {"event_types": ["order.*"]},
    "retry": {"max_retries": 5, "initial_backoff_ms": 1000, "multiplier": 2.0, "max_backoff_ms": 3600000},
    "default": false, "enabled": true, "max_in_flight": 16, "state": "healthy", "alerts": {},
    "signing": {"scheme": "v1", "public_key": null, "secrets": [{"scheme": "v1", "public_key": null, "expires_at": null}]},
    "created_at": "2026-03-14T09:20:00Z", "updated_at": "2026-03-14T09:20:00Z",
    "signing_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
})))]
pub struct CreatedDestination {
    #[serde(flatten)]
    pub destination: DestinationView,
    #[serde(flatten)]
    pub shown_once: ShownOnce,
}

impl CreatedDestination {
    pub fn new(d: &Destination, secret: Option<&SigningSecret>) -> Self {
        Self {
            destination: d.into(),
            shown_once: ShownOnce::new(secret),
        }
    }

    /// The answer with the destination's links, as the API gives it.
    pub fn linked(self, public_url: &str) -> Self {
        Self {
            destination: self.destination.linked(public_url),
            ..self
        }
    }
}

/// A rotated signing secret: the new one shown once; the previous one
/// still signs until `previous_secret_expires_at`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(examples(json!({
    "previous_secret_expires_at": "2026-03-15T09:30:00Z",
    "signing_secret": "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
})))]
pub struct RotatedSecret {
    pub previous_secret_expires_at: DateTime<Utc>,
    #[serde(flatten)]
    pub shown_once: ShownOnce,
}

impl RotatedSecret {
    pub fn new(secret: &SigningSecret, previous_expires_at: DateTime<Utc>) -> Self {
        Self {
            previous_secret_expires_at: previous_expires_at,
            shown_once: ShownOnce::new(Some(secret)),
        }
    }
}

/// A connection test's answer.
#[derive(Debug, Serialize, ToSchema)]
#[schema(examples(json!({"ok": true, "message": "connected and authenticated"})))]
pub struct CheckView {
    pub ok: bool,
    #[schema(examples("connected and authenticated"))]
    pub message: String,
}

/// A destination's breaker state and counters.
#[derive(Debug, Serialize, ToSchema)]
#[schema(examples(json!({
    "destination_id": "dst_01jq3v2a4c6e8g0j2m4p6r8t0v", "state": "paused", "consecutive_failures": 5,
    "last_success_at": "2026-03-14T08:58:12Z", "last_failure_at": "2026-03-14T09:26:54Z",
    "last_error": "HTTP 503 Service Unavailable",
    "success_count": 1180, "failure_count": 20, "success_rate": 0.9833,
    "next_probe_at": "2026-03-14T09:31:54Z"
})))]
pub struct HealthView {
    pub destination_id: DestinationId,
    pub state: HealthState,
    pub consecutive_failures: u32,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_failure_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub success_count: u64,
    pub failure_count: u64,
    /// Successes over all attempts; `null` before the first.
    pub success_rate: Option<f64>,
    /// While paused: when the next probe may run.
    pub next_probe_at: Option<DateTime<Utc>>,
}

impl HealthView {
    pub fn new(d: &Destination, h: &Health) -> Self {
        let total = h.success_count + h.failure_count;
        let success_rate = (total > 0).then(|| h.success_count as f64 / total as f64);
        let state = if !d.enabled {
            HealthState::Disabled
        } else if h.next_probe_at.is_some() {
            HealthState::Paused
        } else {
            HealthState::Healthy
        };
        Self {
            destination_id: d.id.clone(),
            state,
            consecutive_failures: h.consecutive_failures,
            last_success_at: h.last_success_at,
            last_failure_at: h.last_failure_at,
            last_error: h.last_error.clone(),
            success_count: h.success_count,
            failure_count: h.failure_count,
            success_rate,
            next_probe_at: h.next_probe_at,
        }
    }
}
