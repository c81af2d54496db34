//! Organizations and API keys.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::alerting::AlertSettings;
use crate::ids::{ApiKeyId, DestinationId, OrgId};
use crate::secret::Secret;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Org {
    pub id: OrgId,
    pub name: String,
    /// Destinations that get the organization's alerts (a destination
    /// paused by its breaker, and resumed).
    #[serde(default)]
    pub alert_destinations: Vec<DestinationId>,
    /// When its destinations count as failing and are disabled.
    #[serde(default)]
    pub alerts: AlertSettings,
    pub created_at: DateTime<Utc>,
}

/// What an API key may do.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Everything, in every organization.
    Admin,
    /// Destinations, sources, retries, replays, exports.
    Manage,
    /// Sending events.
    Ingest,
    /// Reading anything of the organization.
    Read,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Admin, Scope::Manage, Scope::Ingest, Scope::Read];

    /// Whether holding this scope allows what `needed` covers: `admin`
    /// allows everything, `manage` also reading.
    pub fn grants(self, needed: Scope) -> bool {
        self == needed || self == Scope::Admin || (self == Scope::Manage && needed == Scope::Read)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::Manage => "manage",
            Scope::Ingest => "ingest",
            Scope::Read => "read",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| format!("unknown scope `{s}` (expected admin, manage, ingest or read)"))
    }
}

/// A stored API key: only the SHA-256 of the secret is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub org_id: OrgId,
    pub name: String,
    /// The first characters of the secret, to recognize it in lists.
    pub prefix: String,
    pub hash: [u8; 32],
    pub scopes: Vec<Scope>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    /// Whether this key may act with `needed`. `admin` implies every scope;
    /// `manage` implies `read`.
    pub fn allows(&self, needed: Scope) -> bool {
        self.scopes.iter().any(|have| have.grants(needed))
    }
}

/// A freshly made API key secret (`fk_…`), shown once.
pub struct NewKeySecret(pub Secret<String>);

/// Makes a new key secret: `fk_` and 256 random bits, URL-safe base64.
pub fn generate_key_secret() -> NewKeySecret {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    NewKeySecret(Secret::new(format!("fk_{encoded}")))
}

/// The stored hash of a key secret.
pub fn hash_key_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// The part of a key secret shown in lists.
pub fn key_prefix(secret: &str) -> String {
    secret.chars().take(10).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(scopes: &[Scope]) -> ApiKey {
        ApiKey {
            id: ApiKeyId::generate(),
            org_id: OrgId::generate(),
            name: "k".into(),
            prefix: "fk_".into(),
            hash: [0; 32],
            scopes: scopes.to_vec(),
            created_at: Utc::now(),
            last_used_at: None,
        }
    }

    #[test]
    fn scopes_imply_what_they_should() {
        assert!(key(&[Scope::Admin]).allows(Scope::Manage));
        assert!(key(&[Scope::Manage]).allows(Scope::Read));
        assert!(!key(&[Scope::Manage]).allows(Scope::Ingest));
        assert!(!key(&[Scope::Ingest]).allows(Scope::Read));
        assert!(!key(&[Scope::Read]).allows(Scope::Manage));
    }

    #[test]
    fn key_secrets_are_long_and_hash_stably() {
        let NewKeySecret(secret) = generate_key_secret();
        assert!(secret.expose().starts_with("fk_") && secret.expose().len() > 40);
        assert_eq!(
            hash_key_secret(secret.expose()),
            hash_key_secret(secret.expose())
        );
    }
}
