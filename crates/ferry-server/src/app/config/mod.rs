//! Configuration export and import (admin keys): the whole configuration
//! — organizations, destinations with routing and retry policies, sources,
//! alert settings, export schedules — as one document
//! (`ferry_core::config_doc`), secrets left out or sealed with a
//! passphrase; and that document applied to this Ferry in one transaction,
//! after a plan of what it creates, changes and (with `prune`) removes,
//! which `dry_run` shows without applying. Importing the same document
//! twice changes nothing.

mod document;
mod import;
mod objects;

use std::future::Future;

use ferry_core::StoreError;
use ferry_core::audit::AuditRecord;
use ferry_core::config_doc::{ConfigDocument, FORMAT, Sealer};
use ferry_core::org::{Org, Scope};
use ferry_core::page::{Page, PageRequest};
use ferry_core::ports::ConfigChange;
use serde_json::json;

use super::{App, Error, Principal, Result};
pub use import::{ImportReport, PlanAction, PlanItem, Summary};

/// How often an import is planned again when what it read changed before
/// it was applied.
const PLAN_TRIES: u32 = 3;

/// How an import runs.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Opens the document's sealed secrets.
    pub passphrase: Option<String>,
    /// Plan only: change nothing.
    pub dry_run: bool,
    /// Also remove what the document's organizations hold and it does not
    /// name (organizations it does not name are never touched).
    pub prune: bool,
}

/// Every item of a paged list.
async fn all<T, F, Fut>(mut page: F) -> Result<Vec<T>>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: Future<Output = ferry_core::StoreResult<Page<T>>>,
{
    let mut items = Vec::new();
    let mut after = None;
    loop {
        let got = page(PageRequest { limit: 500, after }).await?;
        items.extend(got.items);
        match got.next {
            Some(next) => after = Some(next),
            None => return Ok(items),
        }
    }
}

/// The default organization: the first one made (as the server picks it
/// at start).
fn default_org(orgs: &[Org]) -> Option<&Org> {
    orgs.iter()
        .min_by_key(|o| (o.created_at, o.id.as_str().to_owned()))
}

impl App {
    async fn all_orgs(&self) -> Result<Vec<Org>> {
        all(|p| self.0.store.list_orgs(p)).await
    }

    /// The whole configuration; with `passphrase`, secrets sealed with it.
    pub async fn export_config(
        &self,
        principal: &Principal,
        passphrase: Option<&str>,
    ) -> Result<ConfigDocument> {
        principal.require(Scope::Admin)?;
        let sealer = passphrase
            .map(Sealer::new)
            .transpose()
            .map_err(|e| Error::invalid("passphrase", e.to_string()))?;
        self.config_document(sealer).await
    }

    /// The whole configuration, secrets sealed by `sealer` or left out
    /// (also what the `config` export source writes).
    pub(crate) async fn config_document(&self, sealer: Option<Sealer>) -> Result<ConfigDocument> {
        let orgs = self.all_orgs().await?;
        let default_id = default_org(&orgs).map(|o| o.id.clone());
        let mut docs = Vec::new();
        for org in &orgs {
            let destinations = self.0.store.org_destinations(&org.id).await?;
            let sources = all(|p| self.0.sources.list_sources(&org.id, p)).await?;
            let schedules = all(|p| self.0.schedules.list_schedules(&org.id, p)).await?;
            docs.push(document::org(
                org,
                Some(&org.id) == default_id.as_ref(),
                destinations
                    .iter()
                    .map(|d| document::destination(d, sealer.as_ref()))
                    .collect(),
                sources
                    .iter()
                    .map(|s| document::source(s, sealer.as_ref()))
                    .collect(),
                schedules.iter().map(document::schedule).collect(),
            ));
        }
        // The default organization first, the others in id order.
        docs.sort_by(|a, b| (!a.default, &a.id).cmp(&(!b.default, &b.id)));
        Ok(ConfigDocument {
            ferry_config: FORMAT,
            sealed_with: sealer.map(|s| s.params().clone()),
            orgs: docs,
        })
    }

    /// Plans `doc` against this Ferry and, unless `dry_run`, applies the
    /// plan in one transaction (audited, one record per change plus one
    /// for the import).
    pub async fn import_config(
        &self,
        principal: &Principal,
        doc: ConfigDocument,
        options: ImportOptions,
    ) -> Result<ImportReport> {
        principal.require(Scope::Admin)?;
        if doc.ferry_config != FORMAT {
            return Err(Error::invalid(
                "ferry_config",
                format!("this Ferry reads configuration format {FORMAT}"),
            ));
        }
        let sealer = match (&doc.sealed_with, &options.passphrase) {
            (Some(params), Some(passphrase)) => Some(
                Sealer::unlock(passphrase, params)
                    .map_err(|e| Error::invalid("passphrase", e.to_string()))?,
            ),
            _ => None,
        };
        // A plan is made from what was read; if something it changes moved
        // on before the plan was applied (a schedule claimed a run, an
        // object was changed or deleted), the store refuses the whole plan
        // and it is made again from the new state.
        let mut tries = 0;
        loop {
            tries += 1;
            let orgs = self.all_orgs().await?;
            let default_id = default_org(&orgs)
                .map(|o| o.id.clone())
                .ok_or_else(|| Error::Conflict("this Ferry has no organization yet".into()))?;
            let mut plan =
                import::Planner::new(self, principal, sealer.as_ref(), options.prune, default_id);
            if doc.sealed_with.is_some() && sealer.is_none() {
                plan.warn(
                    "the document's secrets are sealed and no passphrase was given: they are left out",
                );
            }
            let (changes, mut audit, mut report) = plan.run(&doc, &orgs).await?;
            report.dry_run = options.dry_run;
            if options.dry_run || changes.is_empty() {
                return Ok(report);
            }
            audit.push(
                AuditRecord::new(
                    principal.org().clone(),
                    principal.actor(),
                    "config",
                    "import",
                    "config.imported",
                )
                .after(json!({"summary": report.summary, "prune": options.prune})),
            );
            match self.0.config.apply_config(&changes, &audit).await {
                Ok(()) => {
                    self.after_import(&changes);
                    report.applied = true;
                    return Ok(report);
                }
                Err(StoreError::Conflict(_)) if tries < PLAN_TRIES => continue,
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Tells the router, the dispatcher and the source cache what changed.
    fn after_import(&self, changes: &[ConfigChange]) {
        for change in changes {
            match change {
                ConfigChange::CreateDestination(d) | ConfigChange::UpdateDestination(d) => {
                    self.0.routes.invalidate(&d.org_id);
                    self.0.dispatch.destination_changed(&d.id, false);
                }
                ConfigChange::DeleteDestination(org, id) => {
                    self.0.routes.invalidate(org);
                    self.0.dispatch.destination_changed(id, false);
                }
                ConfigChange::ReplaceSource(s) => self.0.source_cache.forget(&s.id),
                ConfigChange::DeleteSource(_, id) => self.0.source_cache.forget(id),
                ConfigChange::UpdateOrg(org) => self.0.routes.invalidate(&org.id),
                _ => {}
            }
        }
    }
}

/// A document as text: YAML or JSON.
pub fn render(doc: &ConfigDocument, yaml: bool) -> Result<String> {
    let written = if yaml {
        serde_saphyr::to_string(doc).map_err(|e| e.to_string())
    } else {
        serde_json::to_string_pretty(doc)
            .map(|s| s + "\n")
            .map_err(|e| e.to_string())
    };
    written.map_err(|error| {
        tracing::error!(%error, "Writing a configuration document failed.");
        Error::Internal
    })
}

/// Reads a document from JSON or YAML text; what is wrong in it is a 400
/// naming where.
pub fn parse(text: &[u8]) -> Result<ConfigDocument> {
    let text =
        std::str::from_utf8(text).map_err(|_| Error::malformed("document", "is not UTF-8 text"))?;
    if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| Error::malformed("document", e.to_string()))
    } else {
        serde_saphyr::from_str(text).map_err(|e| Error::malformed("document", e.to_string()))
    }
}
