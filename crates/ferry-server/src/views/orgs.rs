//! Organizations, API keys (prefixes only), audit records and the master
//! key's rotation.

use ferry_core::audit::AuditRecord;
use ferry_core::org::{ApiKey, Org, Scope};
use ferry_core::{ApiKeyId, AuditId, DestinationId, OrgId};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use chrono::{DateTime, Utc};

#[derive(Debug, Serialize, ToSchema)]
pub struct OrgView {
    pub id: OrgId,
    #[schema(examples("acme"))]
    pub name: String,
    /// Destinations that get the organization's alerts.
    pub alert_destinations: Vec<DestinationId>,
    pub created_at: DateTime<Utc>,
}

impl From<&Org> for OrgView {
    fn from(o: &Org) -> Self {
        Self {
            id: o.id.clone(),
            name: o.name.clone(),
            alert_destinations: o.alert_destinations.clone(),
            created_at: o.created_at,
        }
    }
}

/// An API key by its prefix; the secret is never shown again.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    pub id: ApiKeyId,
    #[schema(examples("ci"))]
    pub name: String,
    #[schema(examples("fk_3kq9"))]
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub org_id: OrgId,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<&ApiKey> for ApiKeyView {
    fn from(k: &ApiKey) -> Self {
        Self {
            id: k.id.clone(),
            name: k.name.clone(),
            prefix: k.prefix.clone(),
            scopes: k.scopes.clone(),
            org_id: k.org_id.clone(),
            created_at: k.created_at,
            last_used_at: k.last_used_at,
        }
    }
}

/// `201` to a new key, with the key itself, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub api_key: ApiKeyView,
    #[schema(examples("fk_3kq9v8k2m4n6p8r0t2v4x6z8a0c2e4g6"))]
    pub key: String,
}

/// One append-only audit record: who did what to which entity, with the
/// entity's public view before and after.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    pub id: AuditId,
    pub org_id: OrgId,
    /// The API key id, `system`, or `source:<id>`.
    #[schema(examples("key_01jq3v8k2m4n6p8r0t2v4x6z8a"))]
    pub actor: String,
    pub at: DateTime<Utc>,
    #[schema(examples("destination"))]
    pub entity_type: String,
    pub entity_id: String,
    #[schema(examples("destination.created"))]
    pub action: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

impl From<AuditRecord> for AuditView {
    fn from(r: AuditRecord) -> Self {
        Self {
            id: r.id,
            org_id: r.org_id,
            actor: r.actor,
            at: r.at,
            entity_type: r.entity_type,
            entity_id: r.entity_id,
            action: r.action,
            before: r.before,
            after: r.after,
        }
    }
}

/// Every sealed secret re-sealed under the new master key.
#[derive(Debug, Serialize, ToSchema)]
pub struct MasterKeyRotated {
    pub resealed: u64,
    /// Where the new key was written; `null` when the operator keeps it
    /// (`FERRY_MASTER_KEY`).
    pub key_file: Option<String>,
}
