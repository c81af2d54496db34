//! The audit log: append-only records of every change and operator action,
//! read newest first with filters. Records are written by the use case that
//! makes the change, in the same transaction where the store allows it.

use ferry_core::audit::{AuditFilter, AuditRecord};
use ferry_core::org::Scope;
use ferry_core::page::{Page, PageRequest};
use serde::Deserialize;

use super::deliveries::parse_time;
use super::{App, Principal, Result};

/// Which audit records to list; every field optional.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    pub entity_id: Option<String>,
    pub action: Option<String>,
    /// RFC 3339; at or after.
    pub since: Option<String>,
    /// RFC 3339; before.
    pub until: Option<String>,
}

impl App {
    pub async fn audit(
        &self,
        principal: &Principal,
        query: &AuditQuery,
        page: PageRequest,
    ) -> Result<Page<AuditRecord>> {
        principal.require(Scope::Read)?;
        let filter = AuditFilter {
            entity_id: query.entity_id.clone(),
            action: query.action.clone(),
            since: parse_time("since", query.since.as_deref())?,
            until: parse_time("until", query.until.as_deref())?,
        };
        Ok(self
            .0
            .store
            .list_audit(principal.org(), &filter, page)
            .await?)
    }
}
