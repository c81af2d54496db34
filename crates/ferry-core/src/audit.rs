//! Audit records: append-only, one per state change or operator action.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::ids::{AuditId, OrgId};

/// Who did it: an API key id, or `system` for the engine itself.
pub const SYSTEM_ACTOR: &str = "system";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    pub id: AuditId,
    pub org_id: OrgId,
    pub actor: String,
    pub at: DateTime<Utc>,
    pub entity_type: String,
    pub entity_id: String,
    pub action: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

impl AuditRecord {
    pub fn new(
        org_id: OrgId,
        actor: impl Into<String>,
        entity_type: &str,
        entity_id: impl Into<String>,
        action: &str,
    ) -> Self {
        Self {
            id: AuditId::generate(),
            org_id,
            actor: actor.into(),
            at: Utc::now(),
            entity_type: entity_type.to_owned(),
            entity_id: entity_id.into(),
            action: action.to_owned(),
            before: None,
            after: None,
        }
    }

    pub fn before(mut self, value: Value) -> Self {
        self.before = Some(value);
        self
    }

    pub fn after(mut self, value: Value) -> Self {
        self.after = Some(value);
        self
    }
}

/// Filters of `GET /v1/audit`.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub entity_id: Option<String>,
    pub action: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}
