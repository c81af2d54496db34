//! Inbound sources: endpoints where partners post signed events. A source
//! says how to verify a request (the scheme and its secrets), where the event
//! id and type are found, which fields are required, and where the events go.
//! Verification and extraction are pure functions of headers, body and time.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Sha256, Sha512};

use crate::error::FieldError;
use crate::ids::{DestinationId, OrgId, SourceId};
use crate::secret::Secret;
use crate::signing::SigningSecret;

/// Default freshness window of timestamped schemes, both directions.
pub const DEFAULT_TOLERANCE_S: u64 = 300;
const MAX_TOLERANCE_S: u64 = 86_400;
const MAX_SECRETS: usize = 10;

#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub id: SourceId,
    pub org_id: OrgId,
    pub name: String,
    pub verification: Verification,
    /// Where the event id is found; without it, the id is a content hash.
    pub id_from: Option<Extractor>,
    /// Where the event type is found.
    pub type_from: Extractor,
    /// JSON pointers that must be present in the body.
    pub required: Vec<String>,
    /// Where its events go; empty: the organization's routing.
    pub destinations: Vec<DestinationId>,
    pub created_at: DateTime<Utc>,
}

/// How a source's requests are verified. The secrets are sealed at rest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "scheme", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Verification {
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp` and
    /// `webhook-signature` with `v1,` (HMAC, `whsec_` secrets) or `v1a,`
    /// (Ed25519, `whpk_` public keys) entries.
    StandardWebhooks {
        secrets: Vec<Secret<String>>,
        #[serde(default = "default_tolerance")]
        tolerance_s: u64,
    },
    /// HMAC-SHA256 of the raw body in a header, hex or base64, with an
    /// optional prefix such as `sha256=`.
    HmacSha256(BodyHmac),
    /// HMAC-SHA512 of the raw body.
    HmacSha512(BodyHmac),
    /// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "{t}.{body}">`.
    TimestampedHmac {
        header: String,
        secrets: Vec<Secret<String>>,
        #[serde(default = "default_tolerance")]
        tolerance_s: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BodyHmac {
    pub header: String,
    #[serde(default)]
    pub encoding: Encoding,
    #[serde(default)]
    pub prefix: Option<String>,
    pub secrets: Vec<Secret<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    #[default]
    Hex,
    Base64,
}

fn default_tolerance() -> u64 {
    DEFAULT_TOLERANCE_S
}

/// Where a value is taken from: a header or a JSON pointer into the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extractor {
    Header(String),
    Pointer(String),
}

impl Extractor {
    /// Parses `header:NAME` or a JSON pointer (`/a/b`).
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(name) = text.strip_prefix("header:") {
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err("must name a header: `header:NAME`".into());
            }
            Ok(Extractor::Header(name.to_ascii_lowercase()))
        } else if text.starts_with('/') {
            Ok(Extractor::Pointer(text.to_owned()))
        } else {
            Err("must be a JSON pointer (`/type`) or `header:NAME`".into())
        }
    }

    pub fn as_text(&self) -> String {
        match self {
            Extractor::Header(name) => format!("header:{name}"),
            Extractor::Pointer(p) => p.clone(),
        }
    }

    /// The value as a string: strings as they are, numbers as digits.
    pub fn extract(&self, headers: &dyn HeaderLookup, body: &Value) -> Option<String> {
        match self {
            Extractor::Header(name) => headers.get(name).map(str::to_owned),
            Extractor::Pointer(p) => match body.pointer(p)? {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            },
        }
        .filter(|s| !s.is_empty())
    }
}

/// Read access to request headers (lower-case names).
pub trait HeaderLookup {
    fn get(&self, name: &str) -> Option<&str>;
}

impl HeaderLookup for Vec<(String, String)> {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request was refused: its own words reach the partner.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("missing the {0} header")]
    MissingHeader(String),
    #[error("the {0} header is malformed")]
    MalformedHeader(String),
    #[error("the timestamp is {0} s away from now, outside the {1} s tolerance")]
    Stale(i64, u64),
    #[error("no signature matches: wrong secret or tampered body")]
    Mismatch,
}

impl Verification {
    /// Checks a scheme's settings; secrets are checked for shape.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let (secrets, tolerance, header) = match self {
            Verification::StandardWebhooks {
                secrets,
                tolerance_s,
            } => (secrets, Some(*tolerance_s), None),
            Verification::HmacSha256(b) | Verification::HmacSha512(b) => {
                (&b.secrets, None, Some(&b.header))
            }
            Verification::TimestampedHmac {
                header,
                secrets,
                tolerance_s,
            } => (secrets, Some(*tolerance_s), Some(header)),
        };
        if secrets.is_empty() || secrets.len() > MAX_SECRETS {
            errors.push(FieldError::new(
                "verification.secrets",
                format!("must hold 1 to {MAX_SECRETS} secrets"),
            ));
        }
        for (i, secret) in secrets.iter().enumerate() {
            let problem = match self {
                Verification::StandardWebhooks { .. } => standard_key(secret.expose()).err(),
                _ if secret.expose().is_empty() => Some("must not be empty".to_owned()),
                _ => None,
            };
            if let Some(message) = problem {
                errors.push(FieldError::new(
                    format!("verification.secrets[{i}]"),
                    message,
                ));
            }
        }
        if tolerance.is_some_and(|t| t == 0 || t > MAX_TOLERANCE_S) {
            errors.push(FieldError::new(
                "verification.tolerance_s",
                format!("must be between 1 and {MAX_TOLERANCE_S}"),
            ));
        }
        if let Some(h) = header
            && (h.is_empty()
                || !h
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        {
            errors.push(FieldError::new(
                "verification.header",
                "must be a header name",
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The scheme with its secrets replaced by `***`, for API answers.
    pub fn redacted(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Some(secrets) = v.get_mut("secrets").and_then(Value::as_array_mut) {
            for s in secrets {
                *s = Value::String("***".into());
            }
        }
        v
    }

    /// Verifies a request at `now`.
    pub fn verify(
        &self,
        headers: &dyn HeaderLookup,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), Rejection> {
        match self {
            Verification::StandardWebhooks {
                secrets,
                tolerance_s,
            } => {
                let id = require(headers, "webhook-id")?;
                let ts_text = require(headers, "webhook-timestamp")?;
                let ts: i64 = ts_text
                    .trim()
                    .parse()
                    .map_err(|_| Rejection::MalformedHeader("webhook-timestamp".into()))?;
                fresh(ts, now, *tolerance_s)?;
                let header = require(headers, "webhook-signature")?;
                let signed = [id.as_bytes(), b".", ts.to_string().as_bytes(), b".", body].concat();
                let matched = secrets
                    .iter()
                    .filter_map(|s| standard_key(s.expose()).ok())
                    .any(|key| {
                        header
                            .split_whitespace()
                            .any(|entry| match (&key, entry.split_once(',')) {
                                (StandardKey::Hmac(secret), Some(("v1", sig))) => {
                                    secret.hmac_key().is_some_and(|key| {
                                        STANDARD.decode(sig).is_ok_and(|sig| {
                                            hmac_verify(Algo::Sha256, key, &signed, &sig)
                                        })
                                    })
                                }
                                (StandardKey::Ed25519(public), Some(("v1a", sig))) => STANDARD
                                    .decode(sig)
                                    .ok()
                                    .and_then(|sig| ed25519_dalek::Signature::from_slice(&sig).ok())
                                    .is_some_and(|sig| public.verify_strict(&signed, &sig).is_ok()),
                                _ => false,
                            })
                    });
                if matched {
                    Ok(())
                } else {
                    Err(Rejection::Mismatch)
                }
            }
            Verification::HmacSha256(b) => body_hmac(Algo::Sha256, b, headers, body),
            Verification::HmacSha512(b) => body_hmac(Algo::Sha512, b, headers, body),
            Verification::TimestampedHmac {
                header,
                secrets,
                tolerance_s,
            } => {
                let value = require(headers, header)?;
                let mut ts = None;
                let mut sigs = Vec::new();
                for part in value.split(',') {
                    match part.trim().split_once('=') {
                        Some(("t", t)) => ts = t.parse::<i64>().ok(),
                        Some(("v1", s)) => sigs.extend(hex::decode(s).ok()),
                        _ => {}
                    }
                }
                let ts = ts.ok_or_else(|| Rejection::MalformedHeader(header.clone()))?;
                if sigs.is_empty() {
                    return Err(Rejection::MalformedHeader(header.clone()));
                }
                fresh(ts, now, *tolerance_s)?;
                let signed = [ts.to_string().as_bytes(), b".", body].concat();
                let matched = secrets.iter().any(|s| {
                    sigs.iter()
                        .any(|sig| hmac_verify(Algo::Sha256, s.expose().as_bytes(), &signed, sig))
                });
                if matched {
                    Ok(())
                } else {
                    Err(Rejection::Mismatch)
                }
            }
        }
    }
}

enum StandardKey {
    Hmac(SigningSecret),
    Ed25519(ed25519_dalek::VerifyingKey),
}

fn standard_key(text: &str) -> Result<StandardKey, String> {
    if let Some(public) = text.strip_prefix("whpk_") {
        let bytes = STANDARD
            .decode(public)
            .map_err(|_| "a `whpk_` key must be base64".to_owned())?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "a `whpk_` key must hold 32 bytes".to_owned())?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map(StandardKey::Ed25519)
            .map_err(|_| "not an Ed25519 public key".to_owned())
    } else {
        match SigningSecret::parse(text) {
            Ok(secret) if secret.hmac_key().is_some() => Ok(StandardKey::Hmac(secret)),
            Ok(_) => Err(
                "a partner's Ed25519 key is its public `whpk_` key, not a `whsk_` secret"
                    .to_owned(),
            ),
            Err(e) => Err(format!("{e} (or `whpk_` for Ed25519)")),
        }
    }
}

fn require<'a>(headers: &'a dyn HeaderLookup, name: &str) -> Result<&'a str, Rejection> {
    headers
        .get(name)
        .ok_or_else(|| Rejection::MissingHeader(name.to_owned()))
}

fn fresh(ts: i64, now: DateTime<Utc>, tolerance_s: u64) -> Result<(), Rejection> {
    let skew = now.timestamp().saturating_sub(ts);
    if skew.unsigned_abs() > tolerance_s {
        Err(Rejection::Stale(skew, tolerance_s))
    } else {
        Ok(())
    }
}

fn body_hmac(
    algo: Algo,
    b: &BodyHmac,
    headers: &dyn HeaderLookup,
    body: &[u8],
) -> Result<(), Rejection> {
    let value = require(headers, &b.header)?.trim();
    let value = match &b.prefix {
        Some(prefix) => value
            .strip_prefix(prefix.as_str())
            .ok_or_else(|| Rejection::MalformedHeader(b.header.clone()))?,
        None => value,
    };
    let sig = match b.encoding {
        Encoding::Hex => hex::decode(value).ok(),
        Encoding::Base64 => STANDARD.decode(value).ok(),
    }
    .ok_or_else(|| Rejection::MalformedHeader(b.header.clone()))?;
    if b.secrets
        .iter()
        .any(|s| hmac_verify(algo, s.expose().as_bytes(), body, &sig))
    {
        Ok(())
    } else {
        Err(Rejection::Mismatch)
    }
}

#[derive(Clone, Copy)]
enum Algo {
    Sha256,
    Sha512,
}

/// Constant-time HMAC check.
fn hmac_verify(algo: Algo, key: &[u8], message: &[u8], expected: &[u8]) -> bool {
    fn check<M: Mac + hmac::digest::KeyInit>(key: &[u8], message: &[u8], expected: &[u8]) -> bool {
        let Ok(mut mac) = <M as hmac::digest::KeyInit>::new_from_slice(key) else {
            return false;
        };
        mac.update(message);
        mac.verify_slice(expected).is_ok()
    }
    match algo {
        Algo::Sha256 => check::<Hmac<Sha256>>(key, message, expected),
        Algo::Sha512 => check::<Hmac<Sha512>>(key, message, expected),
    }
}

#[cfg(test)]
mod tests;
