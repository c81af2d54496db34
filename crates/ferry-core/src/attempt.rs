//! How one delivery attempt ended, as the destination classified it: the
//! receipt of a delivery, or an [`AttemptError`] that says whether a retry
//! may help. Every deliverer returns this one type, so the engine's retry
//! decision (retry, honour `Retry-After`, or give up) reads the same for
//! every kind.

use std::time::Duration;

/// A delivered attempt, with what the destination answered when it says
/// something worth keeping (a message id, an object version …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub receipt: Option<Receipt>,
}

/// The destination's own reference to a delivered attempt, so an operator
/// can find it on the other side: fields named by the kind (`status` and
/// `request_id` or `location` of a webhook, `etag` and `version_id` of an
/// S3 object, `queue_id` of a mail, `sequence` or `entry_id` of a broker
/// message, `path` of a file), in one JSON object.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
#[cfg_attr(feature = "openapi", schema(value_type = Object))]
pub struct Receipt(pub serde_json::Map<String, serde_json::Value>);

impl Receipt {
    /// A receipt of these fields; a `null` one is left out.
    pub fn of<const N: usize>(fields: [(&str, serde_json::Value); N]) -> Self {
        Self(
            fields
                .into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        )
    }

    pub fn get(&self, field: &str) -> Option<&serde_json::Value> {
        self.0.get(field)
    }

    /// One line for people: `field=value` pairs.
    pub fn summary(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Why an attempt (or the connection it needed) failed. The reason is a
/// sentence for operators and never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttemptError {
    /// Network errors, timeouts, 408, 425, 429, 5xx, broker unavailable:
    /// the same attempt may pass later, not before `retry_after` when set.
    #[error("{reason}")]
    Retryable {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Anything a retry cannot fix (other 4xx, bad credentials, an unknown
    /// target, a payload refused, a policy refusal).
    #[error("{reason}")]
    Permanent { reason: String },
}

impl AttemptError {
    pub fn retryable(reason: impl Into<String>) -> Self {
        Self::Retryable {
            reason: reason.into(),
            retry_after: None,
        }
    }

    pub fn permanent(reason: impl Into<String>) -> Self {
        Self::Permanent {
            reason: reason.into(),
        }
    }

    /// The same error, retried no sooner than `retry_after` (a permanent
    /// error stays permanent).
    pub fn with_retry_after(self, after: Option<Duration>) -> Self {
        match self {
            Self::Retryable { reason, .. } => Self::Retryable {
                reason,
                retry_after: after,
            },
            permanent => permanent,
        }
    }

    /// The same error with `context: ` in front of its reason.
    pub fn context(self, context: &str) -> Self {
        self.map_reason(|reason| format!("{context}: {reason}"))
    }

    /// The same error with its reason rewritten by `f`.
    pub fn map_reason(self, f: impl FnOnce(String) -> String) -> Self {
        match self {
            Self::Retryable {
                reason,
                retry_after,
            } => Self::Retryable {
                reason: f(reason),
                retry_after,
            },
            Self::Permanent { reason } => Self::Permanent { reason: f(reason) },
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            Self::Retryable { reason, .. } | Self::Permanent { reason } => reason,
        }
    }

    /// A retry cannot help.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Permanent { .. })
    }

    pub fn into_reason(self) -> String {
        match self {
            Self::Retryable { reason, .. } | Self::Permanent { reason } => reason,
        }
    }
}

/// How one attempt ended.
pub type Outcome = Result<Delivered, AttemptError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_keeps_the_classification_and_the_retry_after() {
        let after = Some(Duration::from_secs(3));
        let error = AttemptError::retryable("refused")
            .with_retry_after(after)
            .context("connecting");
        assert_eq!(
            error,
            AttemptError::Retryable {
                reason: "connecting: refused".to_owned(),
                retry_after: after,
            }
        );
        assert_eq!(error.to_string(), "connecting: refused");
        let error = AttemptError::permanent("denied").context("login");
        assert!(error.is_permanent());
        assert_eq!(error.reason(), "login: denied");
    }
}
