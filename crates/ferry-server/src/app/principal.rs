//! Who asks: an organization, what it may do there, and the actor name its
//! audit records carry. The API and the console get one from an API key;
//! an application embedding Ferry makes one for itself.

use ferry_core::org::{ApiKey, Scope};
use ferry_core::{ApiKeyId, OrgId};

use super::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    org: OrgId,
    scopes: Vec<Scope>,
    actor: String,
    key: Option<ApiKeyId>,
}

impl Principal {
    /// The holder of an API key: its organization and scopes; the key id is
    /// the audit actor.
    pub fn from_key(key: &ApiKey) -> Self {
        Self {
            org: key.org_id.clone(),
            scopes: key.scopes.clone(),
            actor: key.id.to_string(),
            key: Some(key.id.clone()),
        }
    }

    /// An application working in its own organization in-process (the
    /// embedded library): it may send, read and manage there, not
    /// administer Ferry. `actor` names it in audit records.
    pub fn in_process(org: OrgId, actor: impl Into<String>) -> Self {
        Self {
            org,
            scopes: vec![Scope::Manage, Scope::Ingest, Scope::Read],
            actor: actor.into(),
            key: None,
        }
    }

    pub fn org(&self) -> &OrgId {
        &self.org
    }

    /// The name audit records give to what this principal does.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// The API key, when the principal is one.
    pub fn key_id(&self) -> Option<&ApiKeyId> {
        self.key.as_ref()
    }

    /// Whether the principal may do what `scope` covers.
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.iter().any(|have| have.grants(scope))
    }

    /// `Forbidden` unless the principal has `scope`.
    pub fn require(&self, scope: Scope) -> Result<()> {
        if self.allows(scope) {
            Ok(())
        } else {
            Err(Error::Forbidden(scope))
        }
    }
}
