//! Standard Webhooks signing: `whsec_` secrets and the `webhook-signature`
//! header, `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::secret::Secret;

const PREFIX: &str = "whsec_";
/// Random bytes in a generated secret (the specification asks for 24–64).
const GENERATED_LEN: usize = 32;
const MIN_LEN: usize = 24;
const MAX_LEN: usize = 64;

/// A webhook signing secret (`whsec_<base64>`). `Debug` prints `***`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SigningSecret {
    text: Secret<String>,
    key: Secret<Vec<u8>>,
}

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("whsec_***")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a signing secret must start with `whsec_`")]
    Prefix,
    #[error("a signing secret must be `whsec_` followed by base64")]
    Base64,
    #[error("a signing secret must hold between {MIN_LEN} and {MAX_LEN} bytes")]
    Length,
}

impl SigningSecret {
    pub fn generate() -> Self {
        let mut key = vec![0u8; GENERATED_LEN];
        rand::rng().fill_bytes(&mut key);
        let text = format!("{PREFIX}{}", STANDARD.encode(&key));
        Self {
            text: Secret::new(text),
            key: Secret::new(key),
        }
    }

    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let encoded = text.strip_prefix(PREFIX).ok_or(SecretError::Prefix)?;
        let key = STANDARD.decode(encoded).map_err(|_| SecretError::Base64)?;
        if !(MIN_LEN..=MAX_LEN).contains(&key.len()) {
            return Err(SecretError::Length);
        }
        Ok(Self {
            text: Secret::new(text.to_owned()),
            key: Secret::new(key),
        })
    }

    /// The `whsec_…` text, to show once at creation.
    pub fn expose(&self) -> &str {
        self.text.expose()
    }

    /// The raw HMAC key.
    pub(crate) fn key_bytes(&self) -> &[u8] {
        self.key.expose()
    }

    /// `v1,<signature>` of one message.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        // Invariant: HMAC accepts keys of any length.
        let mut mac =
            Hmac::<Sha256>::new_from_slice(self.key.expose()).expect("HMAC takes any key length");
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

impl TryFrom<String> for SigningSecret {
    type Error = SecretError;
    fn try_from(s: String) -> Result<Self, SecretError> {
        Self::parse(&s)
    }
}

impl From<SigningSecret> for String {
    fn from(s: SigningSecret) -> String {
        s.text.expose().clone()
    }
}

/// The `webhook-signature` header value: one space-separated entry per secret.
pub fn signature_header<'a>(
    secrets: impl IntoIterator<Item = &'a SigningSecret>,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .into_iter()
        .map(|s| s.sign(msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector published with the Standard Webhooks specification.
    #[test]
    fn specification_test_vector() {
        let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = secret.sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn generated_secrets_verify_with_the_reference_library() {
        let secret = SigningSecret::generate();
        let other = SigningSecret::generate();
        let body = br#"{"id":"evt_1","type":"t","timestamp":"2026-01-01T00:00:00Z","data":{}}"#;
        let ts = chrono::Utc::now().timestamp();
        let header = signature_header([&other, &secret], "evt_1", ts, body);
        let mut headers = http_headers("evt_1", ts, &header);
        for s in [&secret, &other] {
            let wh = standardwebhooks::Webhook::new(s.expose()).unwrap();
            wh.verify(body, &headers).unwrap();
        }
        headers.insert("webhook-signature", "v1,AAAA".parse().unwrap());
        let wh = standardwebhooks::Webhook::new(secret.expose()).unwrap();
        assert!(wh.verify(body, &headers).is_err());
    }

    fn http_headers(id: &str, ts: i64, sig: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert("webhook-id", id.parse().unwrap());
        h.insert("webhook-timestamp", ts.to_string().parse().unwrap());
        h.insert("webhook-signature", sig.parse().unwrap());
        h
    }

    #[test]
    fn malformed_secrets_are_rejected_with_a_reason() {
        assert_eq!(SigningSecret::parse("abc"), Err(SecretError::Prefix));
        assert_eq!(SigningSecret::parse("whsec_!!!"), Err(SecretError::Base64));
        assert_eq!(SigningSecret::parse("whsec_AAAA"), Err(SecretError::Length));
        assert!(format!("{:?}", SigningSecret::generate()).contains("***"));
    }
}
