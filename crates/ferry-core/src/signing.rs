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
const ED25519_PREFIX: &str = "whsk_";
const PUBLIC_PREFIX: &str = "whpk_";
/// Random bytes in a generated secret (the specification asks for 24–64).
const GENERATED_LEN: usize = 32;
const MIN_LEN: usize = 24;
const MAX_LEN: usize = 64;

/// A webhook signing secret: symmetric (`whsec_<base64>`, signs `v1,` HMAC-
/// SHA256) or asymmetric (`whsk_<base64 Ed25519 seed>`, signs `v1a,`; its
/// public half `whpk_…` is what receivers verify with). `Debug` prints `***`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SigningSecret {
    text: Secret<String>,
    key: Key,
}

#[derive(Clone)]
enum Key {
    Hmac(Secret<Vec<u8>>),
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

impl PartialEq for SigningSecret {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for SigningSecret {}

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.key {
            Key::Hmac(_) => f.write_str("whsec_***"),
            Key::Ed25519(_) => f.write_str("whsk_***"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a signing secret must start with `whsec_` (HMAC) or `whsk_` (Ed25519)")]
    Prefix,
    #[error("a signing secret must be its prefix followed by base64")]
    Base64,
    #[error("a `whsec_` secret must hold between {MIN_LEN} and {MAX_LEN} bytes")]
    Length,
    #[error("a `whsk_` key must hold a 32-byte Ed25519 seed (or 64-byte seed and public key)")]
    Ed25519Length,
}

impl SigningSecret {
    /// A new symmetric (`v1`) secret.
    pub fn generate() -> Self {
        let mut key = vec![0u8; GENERATED_LEN];
        rand::rng().fill_bytes(&mut key);
        let text = format!("{PREFIX}{}", STANDARD.encode(&key));
        Self {
            text: Secret::new(text),
            key: Key::Hmac(Secret::new(key)),
        }
    }

    /// A new asymmetric (`v1a`, Ed25519) key.
    pub fn generate_ed25519() -> Self {
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        let text = format!("{ED25519_PREFIX}{}", STANDARD.encode(seed));
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        Self {
            text: Secret::new(text),
            key: Key::Ed25519(Box::new(key)),
        }
    }

    /// A new secret of the same scheme (for rotation).
    pub fn generate_like(&self) -> Self {
        match self.key {
            Key::Hmac(_) => Self::generate(),
            Key::Ed25519(_) => Self::generate_ed25519(),
        }
    }

    pub fn parse(text: &str) -> Result<Self, SecretError> {
        if let Some(encoded) = text.strip_prefix(ED25519_PREFIX) {
            let bytes = STANDARD.decode(encoded).map_err(|_| SecretError::Base64)?;
            let seed: [u8; 32] = match bytes.len() {
                32 | 64 => bytes[..32]
                    .try_into()
                    .map_err(|_| SecretError::Ed25519Length)?,
                _ => return Err(SecretError::Ed25519Length),
            };
            let key = ed25519_dalek::SigningKey::from_bytes(&seed);
            return Ok(Self {
                text: Secret::new(text.to_owned()),
                key: Key::Ed25519(Box::new(key)),
            });
        }
        let encoded = text.strip_prefix(PREFIX).ok_or(SecretError::Prefix)?;
        let key = STANDARD.decode(encoded).map_err(|_| SecretError::Base64)?;
        if !(MIN_LEN..=MAX_LEN).contains(&key.len()) {
            return Err(SecretError::Length);
        }
        Ok(Self {
            text: Secret::new(text.to_owned()),
            key: Key::Hmac(Secret::new(key)),
        })
    }

    /// The secret's text (`whsec_…`/`whsk_…`), to show once at creation.
    pub fn expose(&self) -> &str {
        self.text.expose()
    }

    /// The signature scheme: `v1` (HMAC) or `v1a` (Ed25519).
    pub fn scheme(&self) -> &'static str {
        match self.key {
            Key::Hmac(_) => "v1",
            Key::Ed25519(_) => "v1a",
        }
    }

    /// The public key (`whpk_…`) receivers verify `v1a` signatures with.
    pub fn public_key(&self) -> Option<String> {
        match &self.key {
            Key::Hmac(_) => None,
            Key::Ed25519(key) => Some(format!(
                "{PUBLIC_PREFIX}{}",
                STANDARD.encode(key.verifying_key().to_bytes())
            )),
        }
    }

    /// The raw HMAC key of a symmetric secret.
    pub(crate) fn hmac_key(&self) -> Option<&[u8]> {
        match &self.key {
            Key::Hmac(key) => Some(key.expose()),
            Key::Ed25519(_) => None,
        }
    }

    /// `v1,<signature>` or `v1a,<signature>` of one message.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let signed = [
            msg_id.as_bytes(),
            b".",
            timestamp.to_string().as_bytes(),
            b".",
            body,
        ]
        .concat();
        match &self.key {
            Key::Hmac(key) => {
                // Invariant: HMAC accepts keys of any length.
                let mut mac = Hmac::<Sha256>::new_from_slice(key.expose())
                    .expect("HMAC takes any key length");
                mac.update(&signed);
                format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
            }
            Key::Ed25519(key) => {
                use ed25519_dalek::Signer;
                format!("v1a,{}", STANDARD.encode(key.sign(&signed).to_bytes()))
            }
        }
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
    fn ed25519_keys_sign_v1a_verifiable_with_their_public_key() {
        let secret = SigningSecret::generate_ed25519();
        assert_eq!(secret.scheme(), "v1a");
        assert!(secret.expose().starts_with("whsk_"));
        let public = secret.public_key().unwrap();
        let sig = secret.sign("evt_1", 1_700_000_000, b"{}");
        let (scheme, b64) = sig.split_once(',').unwrap();
        assert_eq!(scheme, "v1a");
        let key: [u8; 32] = STANDARD
            .decode(public.trim_start_matches("whpk_"))
            .unwrap()
            .try_into()
            .unwrap();
        let sig = ed25519_dalek::Signature::from_slice(&STANDARD.decode(b64).unwrap()).unwrap();
        let verifying = ed25519_dalek::VerifyingKey::from_bytes(&key).unwrap();
        verifying
            .verify_strict(b"evt_1.1700000000.{}", &sig)
            .unwrap();
        assert!(
            verifying
                .verify_strict(b"evt_1.1700000000.{ }", &sig)
                .is_err()
        );
        let reparsed = SigningSecret::parse(secret.expose()).unwrap();
        assert_eq!(reparsed.public_key().unwrap(), public);
        assert_eq!(secret.generate_like().scheme(), "v1a");
        assert_eq!(format!("{secret:?}"), "whsk_***");
        assert_eq!(
            SigningSecret::parse("whsk_AAAA"),
            Err(SecretError::Ed25519Length)
        );
    }

    #[test]
    fn malformed_secrets_are_rejected_with_a_reason() {
        assert_eq!(SigningSecret::parse("abc"), Err(SecretError::Prefix));
        assert_eq!(SigningSecret::parse("whsec_!!!"), Err(SecretError::Base64));
        assert_eq!(SigningSecret::parse("whsec_AAAA"), Err(SecretError::Length));
        assert!(format!("{:?}", SigningSecret::generate()).contains("***"));
    }
}
