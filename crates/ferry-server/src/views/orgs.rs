//! Organizations, API keys (prefixes only), audit records and the master
//! key's rotation.

use ferry_core::alerting::AlertSettings;
use ferry_core::audit::AuditRecord;
use ferry_core::org::{ApiKey, Org, Scope};
use ferry_core::{ApiKeyId, AuditId, DestinationId, OrgId};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use chrono::{DateTime, Utc};

/// An organization: the tenant that owns destinations, sources, events
/// and keys.
#[derive(Debug, Serialize, ToSchema)]
#[schema(examples(json!({
    "id": "org_01jq3t9x1z3b5d7f9h1k3m5p7r", "name": "acme", "alert_destinations": ["dst_01jq3v2a4c6e8g0j2m4p6r8t0v"],
    "alerts": {"alert_after": {"consecutive_failures": 10}, "debounce_s": 3600},
    "created_at": "2026-03-01T12:00:00Z"
})))]
pub struct OrgView {
    pub id: OrgId,
    #[schema(examples("acme"))]
    pub name: String,
    /// Destinations that get the organization's alerts.
    pub alert_destinations: Vec<DestinationId>,
    /// When its destinations count as failing and are disabled; what is
    /// left out takes the defaults.
    pub alerts: AlertSettings,
    pub created_at: DateTime<Utc>,
    /// The object's API URL and console page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub links: Option<super::Links>,
}

impl From<&Org> for OrgView {
    fn from(o: &Org) -> Self {
        Self {
            id: o.id.clone(),
            name: o.name.clone(),
            alert_destinations: o.alert_destinations.clone(),
            alerts: o.alerts.clone(),
            created_at: o.created_at,
            links: None,
        }
    }
}

impl OrgView {
    /// The view with its links, as the API answers it.
    pub fn linked(self, public_url: &str) -> Self {
        let links = super::Links::new(public_url, "orgs", self.id.as_str());
        Self {
            links: Some(links),
            ..self
        }
    }
}

/// An API key by its prefix; the secret is never shown again.
#[derive(Debug, Serialize, ToSchema)]
#[schema(examples(json!({
    "id": "key_01jq3ta2b4d6f8h0k2m4p6r8t0", "name": "ci", "prefix": "fk_3kq9", "scopes": ["ingest", "read"],
    "org_id": "org_01jq3t9x1z3b5d7f9h1k3m5p7r", "created_at": "2026-03-01T12:05:00Z",
    "last_used_at": "2026-03-14T09:26:53Z"
})))]
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
    /// The object's API URL and console page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub links: Option<super::Links>,
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
            links: None,
        }
    }
}

impl ApiKeyView {
    /// The view with its links, as the API answers it.
    pub fn linked(self, public_url: &str) -> Self {
        let links = super::Links::new(public_url, "api-keys", self.id.as_str());
        Self {
            links: Some(links),
            ..self
        }
    }
}

/// `201` to a new key, with the key itself, shown once.
#[derive(Debug, Serialize, ToSchema)]
#[schema(examples(json!({
    "id": "key_01jq3ta2b4d6f8h0k2m4p6r8t0", "name": "ci", "prefix": "fk_3kq9", "scopes": ["ingest", "read"],
    "org_id": "org_01jq3t9x1z3b5d7f9h1k3m5p7r", "created_at": "2026-03-01T12:05:00Z", "last_used_at": null,
    "key": "fk_3kq9v8k2m4n6p8r0t2v4x6z8a0c2e4g6"
})))]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub api_key: ApiKeyView,
    #[schema(examples("fk_3kq9v8k2m4n6p8r0t2v4x6z8a0c2e4g6"))]
    pub key: String,
}

/// One append-only audit record: who did what to which entity, with the
/// entity's public view before and after.
#[derive(Debug, Serialize, ToSchema)]
#[schema(examples(json!({
    "id": "aud_01jq3vb1c3e5g7j9m1p3r5t7w9", "org_id": "org_01jq3t9x1z3b5d7f9h1k3m5p7r", "actor": "key_01jq3ta2b4d6f8h0k2m4p6r8t0",
    "at": "2026-03-14T09:30:00Z", "entity_type": "destination", "entity_id": "dst_01jq3v2a4c6e8g0j2m4p6r8t0v",
    "action": "destination.disabled",
    "before": {"id": "dst_01jq3v2a4c6e8g0j2m4p6r8t0v", "name": "billing hook", "enabled": true},
    "after": {"id": "dst_01jq3v2a4c6e8g0j2m4p6r8t0v", "name": "billing hook", "enabled": false}
})))]
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
#[schema(examples(json!({"resealed": 42, "key_file": "ferry-data/master.key"})))]
pub struct MasterKeyRotated {
    pub resealed: u64,
    /// Where the new key was written; `null` when the operator keeps it
    /// (`FERRY_MASTER_KEY`).
    pub key_file: Option<String>,
}
