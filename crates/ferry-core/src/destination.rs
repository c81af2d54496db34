//! Destinations: where deliveries go, with their auth, filter, retry policy,
//! signing secrets and health.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::alerting::AlertSettings;
use crate::glob;
use crate::ids::{DestinationId, OrgId};
use crate::retry::RetryPolicy;
use crate::secret::Secret;
use crate::signing::SigningSecret;

/// The kinds of destination. A kind is accepted only when its adapter is
/// compiled in (the destination catalog says which).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DestinationKind {
    Webhook,
    Amqp,
    Nats,
    Redis,
    Mqtt,
    Postgres,
    Mysql,
    S3,
    Sftp,
    Email,
    File,
}

impl DestinationKind {
    /// Every kind, in the order the documentation lists them.
    pub const ALL: [DestinationKind; 11] = [
        DestinationKind::Webhook,
        DestinationKind::Amqp,
        DestinationKind::Nats,
        DestinationKind::Redis,
        DestinationKind::Mqtt,
        DestinationKind::Postgres,
        DestinationKind::Mysql,
        DestinationKind::S3,
        DestinationKind::Sftp,
        DestinationKind::Email,
        DestinationKind::File,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DestinationKind::Webhook => "webhook",
            DestinationKind::Amqp => "amqp",
            DestinationKind::Nats => "nats",
            DestinationKind::Redis => "redis",
            DestinationKind::Mqtt => "mqtt",
            DestinationKind::Postgres => "postgres",
            DestinationKind::Mysql => "mysql",
            DestinationKind::S3 => "s3",
            DestinationKind::Sftp => "sftp",
            DestinationKind::Email => "email",
            DestinationKind::File => "file",
        }
    }
}

impl fmt::Display for DestinationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DestinationKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        DestinationKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<_> = DestinationKind::ALL.iter().map(|k| k.as_str()).collect();
                format!(
                    "unknown destination kind `{s}` (known: {})",
                    known.join(", ")
                )
            })
    }
}

/// Credentials a destination presents to its target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Auth {
    #[default]
    None,
    Bearer {
        token: Secret<String>,
    },
    Basic {
        username: String,
        password: Secret<String>,
    },
    ApiKey {
        header: String,
        value: Secret<String>,
    },
    /// S3 and S3-compatible stores.
    AccessKey {
        access_key_id: String,
        secret_access_key: Secret<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session_token: Option<Secret<String>>,
    },
    /// SSH password authentication (SFTP).
    Password {
        username: String,
        password: Secret<String>,
    },
    /// SSH public-key authentication (SFTP): an OpenSSH or PKCS#8 PEM key.
    PrivateKey {
        username: String,
        private_key: Secret<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        passphrase: Option<Secret<String>>,
    },
    /// SMTP XOAUTH2: a bearer token for a mailbox.
    Xoauth2 {
        username: String,
        token: Secret<String>,
    },
    /// TLS client certificate (PEM chain and key), optionally with a user
    /// name and password for protocols that take both.
    ClientCertificate {
        certificate: String,
        private_key: Secret<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        username: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<Secret<String>>,
    },
}

impl Auth {
    /// The `type` tag of this auth, as the API spells it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Auth::None => "none",
            Auth::Bearer { .. } => "bearer",
            Auth::Basic { .. } => "basic",
            Auth::ApiKey { .. } => "api_key",
            Auth::AccessKey { .. } => "access_key",
            Auth::Password { .. } => "password",
            Auth::PrivateKey { .. } => "private_key",
            Auth::Xoauth2 { .. } => "xoauth2",
            Auth::ClientCertificate { .. } => "client_certificate",
        }
    }

    /// The auth as shown by the API: every secret replaced by `***`.
    pub fn redacted(&self) -> Value {
        use serde_json::json;
        let hidden = |present: bool| present.then_some("***");
        match self {
            Auth::None => json!({"type": "none"}),
            Auth::Bearer { .. } => json!({"type": "bearer", "token": "***"}),
            Auth::Basic { username, .. } => {
                json!({"type": "basic", "username": username, "password": "***"})
            }
            Auth::ApiKey { header, .. } => {
                json!({"type": "api_key", "header": header, "value": "***"})
            }
            Auth::AccessKey {
                access_key_id,
                session_token,
                ..
            } => json!({
                "type": "access_key",
                "access_key_id": access_key_id,
                "secret_access_key": "***",
                "session_token": hidden(session_token.is_some()),
            }),
            Auth::Password { username, .. } => {
                json!({"type": "password", "username": username, "password": "***"})
            }
            Auth::PrivateKey {
                username,
                passphrase,
                ..
            } => json!({
                "type": "private_key",
                "username": username,
                "private_key": "***",
                "passphrase": hidden(passphrase.is_some()),
            }),
            Auth::Xoauth2 { username, .. } => {
                json!({"type": "xoauth2", "username": username, "token": "***"})
            }
            Auth::ClientCertificate {
                certificate,
                username,
                password,
                ..
            } => json!({
                "type": "client_certificate",
                "certificate": certificate,
                "private_key": "***",
                "username": username,
                "password": hidden(password.is_some()),
            }),
        }
    }
}

/// Which events a destination receives when the caller lists none.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Filter {
    #[serde(default)]
    pub event_types: Vec<String>,
}

impl Filter {
    /// Whether the filter names `event_type`. An empty filter names nothing
    /// (such a destination gets events listed explicitly or as a default).
    pub fn matches(&self, event_type: &str) -> bool {
        self.event_types
            .iter()
            .any(|p| glob::matches(p, event_type))
    }
}

/// Signing keys: the current secret and those still in their grace period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Signing {
    pub secrets: Vec<SigningKey>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKey {
    pub secret: SigningSecret,
    /// `None` for the current secret; for a rotated-out one, when it stops
    /// being used.
    pub expires_at: Option<DateTime<Utc>>,
}

impl Signing {
    /// The secrets to sign with at `now`: the current one first.
    pub fn active(&self, now: DateTime<Utc>) -> Vec<&SigningSecret> {
        self.secrets
            .iter()
            .filter(|k| k.expires_at.is_none_or(|at| at > now))
            .map(|k| &k.secret)
            .collect()
    }
}

/// Everything sealed under the master key at rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DestinationSecrets {
    #[serde(default)]
    pub auth: Auth,
    #[serde(default)]
    pub signing: Signing,
}

/// Circuit-breaker state of a destination.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    #[default]
    Healthy,
    /// Too many consecutive failures: deliveries wait, a probe retries.
    Paused,
    /// Disabled by an operator: deliveries wait until it is enabled.
    Disabled,
}

/// Health counters kept per destination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Health {
    pub consecutive_failures: u32,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_failure_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub success_count: u64,
    pub failure_count: u64,
    /// While paused: when the next probe may run.
    pub next_probe_at: Option<DateTime<Utc>>,
    /// While paused: the current probe backoff.
    pub probe_backoff_ms: u64,
    /// Failed attempts in a row, retryable or permanent (alerting counts
    /// these; the breaker counts only retryable ones).
    pub failed_in_a_row: u32,
    /// The first failed attempt since the last delivered one.
    pub failing_since: Option<DateTime<Utc>>,
    /// When the last `ferry.destination.failing` alert was raised; cleared
    /// when the destination recovers.
    pub failing_alert_at: Option<DateTime<Utc>>,
}

impl Health {
    /// What an operator enabling the destination starts again: the breaker
    /// and the failure counts that lead to disabling. A raised `failing`
    /// alert stays raised until the destination delivers (`recovered`).
    pub fn reset_on_enable(&mut self) {
        self.consecutive_failures = 0;
        self.next_probe_at = None;
        self.probe_backoff_ms = 0;
        self.failed_in_a_row = 0;
        self.failing_since = None;
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Destination {
    pub id: DestinationId,
    pub org_id: OrgId,
    pub name: String,
    pub kind: DestinationKind,
    /// Kind-specific configuration (validated by the kind's adapter).
    pub config: Value,
    pub filter: Filter,
    pub retry: RetryPolicy,
    pub is_default: bool,
    pub enabled: bool,
    /// Most deliveries of this destination in flight at once.
    pub max_in_flight: u32,
    /// Overrides of the organization's alert settings.
    pub alerts: AlertSettings,
    pub secrets: DestinationSecrets,
    pub health: Health,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Default per-destination concurrency.
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 64;

impl Destination {
    pub fn state(&self) -> HealthState {
        if !self.enabled {
            HealthState::Disabled
        } else if self.health.next_probe_at.is_some() {
            HealthState::Paused
        } else {
            HealthState::Healthy
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_parses_back_from_its_name() {
        for kind in DestinationKind::ALL {
            assert_eq!(kind.as_str().parse::<DestinationKind>(), Ok(kind));
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                Value::String(kind.as_str().into())
            );
        }
        let error = "kafka".parse::<DestinationKind>().unwrap_err();
        assert!(
            error.contains("`kafka`") && error.contains("sftp"),
            "{error}"
        );
    }

    #[test]
    fn auth_round_trips_and_redaction_hides_every_secret() {
        let samples = [
            serde_json::json!({"type": "access_key", "access_key_id": "AKIA1", "secret_access_key": "s3cr3t-a", "session_token": "s3cr3t-b"}),
            serde_json::json!({"type": "password", "username": "u", "password": "s3cr3t-c"}),
            serde_json::json!({"type": "private_key", "username": "u", "private_key": "s3cr3t-d", "passphrase": "s3cr3t-e"}),
            serde_json::json!({"type": "xoauth2", "username": "u@example.com", "token": "s3cr3t-f"}),
            serde_json::json!({"type": "client_certificate", "certificate": "-----BEGIN CERTIFICATE-----", "private_key": "s3cr3t-g", "username": "u", "password": "s3cr3t-h"}),
        ];
        for sample in samples {
            let auth: Auth = serde_json::from_value(sample.clone()).unwrap();
            assert_eq!(serde_json::to_value(&auth).unwrap(), sample);
            assert_eq!(auth.redacted()["type"], sample["type"]);
            assert_eq!(auth.type_name(), sample["type"]);
            let shown = auth.redacted().to_string();
            assert!(!shown.contains("s3cr3t"), "{shown}");
        }
    }
}
