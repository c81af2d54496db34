//! Planning an import: each object of the document is checked the way the
//! API checks it (field errors name where in the document), compared with
//! what this Ferry holds (by id; the default organization onto this
//! Ferry's own) and becomes a change — create, change (naming the fields)
//! or nothing. Secrets come from the document's sealed values, or stay as
//! stored; a new destination whose secrets are not in the document is
//! created disabled, a new source without them cannot verify and is
//! skipped.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use ferry_core::audit::AuditRecord;
use ferry_core::config_doc::{ConfigDocument, OrgDoc, Sealer};
use ferry_core::destination::Destination;
use ferry_core::org::Org;
use ferry_core::ports::ConfigChange;
use ferry_core::{DestinationId, FieldError, OrgId};
use serde::Serialize;
use serde_json::Value;

use super::super::{App, Error, Principal, Result};
use super::all;
use crate::views;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlanAction {
    Create,
    Change,
    Remove,
    /// Not imported (the note says why).
    Skip,
}

/// One change of the plan.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PlanItem {
    pub action: PlanAction,
    /// `organization`, `destination`, `source` or `export_schedule`.
    pub entity: &'static str,
    pub id: String,
    pub name: String,
    /// For a change: the fields that differ.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, utoipa::ToSchema)]
pub struct Summary {
    pub created: usize,
    pub changed: usize,
    pub unchanged: usize,
    pub removed: usize,
    pub skipped: usize,
}

/// What an import did, or (dry run) would do.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
#[schema(examples(json!({
    "dry_run": true, "applied": false,
    "summary": {"created": 1, "changed": 1, "unchanged": 6, "removed": 0, "skipped": 0},
    "changes": [
        {"action": "create", "entity": "destination", "id": "dst_01jq3v8k3c5e7g9j1m3p5r7t9w", "name": "orders",
         "note": "created disabled: its secrets are not in the document; set them (PATCH /v1/destinations/dst_01jq3v8k3c5e7g9j1m3p5r7t9w) and enable it"},
        {"action": "change", "entity": "export_schedule", "id": "sch_01jq3v8k2m4n6p8r0t2v4x6z8a", "name": "nightly",
         "fields": ["cron"]}
    ],
    "warnings": []
})))]
pub struct ImportReport {
    pub dry_run: bool,
    /// Whether the changes were made.
    pub applied: bool,
    pub summary: Summary,
    /// Everything but what stays unchanged.
    pub changes: Vec<PlanItem>,
    pub warnings: Vec<String>,
}

pub(super) struct Planner<'a> {
    pub(super) app: &'a App,
    principal: &'a Principal,
    sealer: Option<&'a Sealer>,
    pub(super) prune: bool,
    default_org: OrgId,
    pub(super) changes: Vec<ConfigChange>,
    audit: Vec<AuditRecord>,
    report: ImportReport,
}

/// The top-level fields in which two document entries differ.
pub(super) fn differing(before: &impl Serialize, after: &impl Serialize) -> Vec<String> {
    let (Ok(Value::Object(a)), Ok(Value::Object(b))) =
        (serde_json::to_value(before), serde_json::to_value(after))
    else {
        return vec!["*".into()];
    };
    let mut keys: Vec<String> = a
        .keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// `errors` with `prefix` before each field.
pub(super) fn under(prefix: &str, error: Error) -> Error {
    match error {
        Error::Invalid(e) | Error::Malformed(e) => Error::Invalid(
            e.into_iter()
                .map(|e| FieldError::new(format!("{prefix}.{}", e.field), e.message))
                .collect(),
        ),
        other => other,
    }
}

impl<'a> Planner<'a> {
    pub(super) fn new(
        app: &'a App,
        principal: &'a Principal,
        sealer: Option<&'a Sealer>,
        prune: bool,
        default_org: OrgId,
    ) -> Self {
        Self {
            app,
            principal,
            sealer,
            prune,
            default_org,
            changes: Vec::new(),
            audit: Vec::new(),
            report: ImportReport::default(),
        }
    }

    pub(super) fn warn(&mut self, warning: &str) {
        self.report.warnings.push(warning.to_owned());
    }

    pub(super) fn record(
        &mut self,
        action: PlanAction,
        entity: &'static str,
        (org, id, name): (&OrgId, String, String),
        fields: Vec<String>,
        note: Option<String>,
        audit: Option<(&str, Value)>,
    ) {
        match action {
            PlanAction::Create => self.report.summary.created += 1,
            PlanAction::Change => self.report.summary.changed += 1,
            PlanAction::Remove => self.report.summary.removed += 1,
            PlanAction::Skip => self.report.summary.skipped += 1,
        }
        if let Some((verb, snapshot)) = audit {
            let record = AuditRecord::new(
                org.clone(),
                self.principal.actor(),
                entity,
                id.clone(),
                &format!("{entity}.{verb}"),
            );
            self.audit.push(match action {
                PlanAction::Remove => record.before(snapshot),
                _ => record.after(snapshot),
            });
        }
        self.report.changes.push(PlanItem {
            action,
            entity,
            id,
            name,
            fields,
            note,
        });
    }

    pub(super) fn unchanged(&mut self) {
        self.report.summary.unchanged += 1;
    }

    /// A sealed value opened and read as `T`.
    pub(super) fn open<T: serde::de::DeserializeOwned>(
        &self,
        sealed: Option<&str>,
        field: &str,
    ) -> Result<Option<T>> {
        let (Some(sealer), Some(sealed)) = (self.sealer, sealed) else {
            return Ok(None);
        };
        let bytes = sealer
            .open(sealed)
            .map_err(|e| Error::invalid(field, e.to_string()))?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::invalid(field, format!("the sealed value does not read: {e}")))
    }

    pub(super) async fn run(
        mut self,
        doc: &ConfigDocument,
        orgs: &[Org],
    ) -> Result<(Vec<ConfigChange>, Vec<AuditRecord>, ImportReport)> {
        let held: HashMap<&OrgId, &Org> = orgs.iter().map(|o| (&o.id, o)).collect();
        let mut seen = HashSet::new();
        if doc.orgs.iter().filter(|o| o.default).count() > 1 {
            return Err(Error::invalid(
                "orgs",
                "only one organization can be the default",
            ));
        }
        for (i, entry) in doc.orgs.iter().enumerate() {
            let at = format!("orgs[{i}]");
            let id = match (&entry.id, entry.default) {
                (_, true) => self.default_org.clone(),
                (Some(id), false) => id.clone(),
                (None, false) => {
                    return Err(Error::invalid(
                        format!("{at}.id"),
                        "is required (only the default organization has none)",
                    ));
                }
            };
            if !seen.insert(id.clone()) {
                return Err(Error::invalid(format!("{at}.id"), "appears twice"));
            }
            self.org(&at, &id, entry, held.get(&id).copied()).await?;
        }
        Ok((self.changes, self.audit, self.report))
    }

    async fn org(
        &mut self,
        at: &str,
        id: &OrgId,
        entry: &OrgDoc,
        held: Option<&Org>,
    ) -> Result<()> {
        let app = self.app;
        let name = entry.name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(Error::invalid(
                format!("{at}.name"),
                "must be 1 to 200 characters",
            ));
        }
        let stored_destinations = match held {
            Some(_) => app.0.store.org_destinations(id).await?,
            None => Vec::new(),
        };
        let mut known: HashSet<DestinationId> =
            stored_destinations.iter().map(|d| d.id.clone()).collect();
        known.extend(entry.destinations.iter().map(|d| d.id.clone()));
        for (j, d) in entry.alert_destinations.iter().enumerate() {
            if !known.contains(d) {
                return Err(Error::invalid(
                    format!("{at}.alert_destinations[{j}]"),
                    format!("{d} is not one of this organization's destinations"),
                ));
            }
        }
        let errors = entry.alerts.validate(&format!("{at}.alerts"));
        Error::check(errors)?;
        let desired = Org {
            id: id.clone(),
            name: name.to_owned(),
            alert_destinations: entry.alert_destinations.clone(),
            alerts: entry.alerts.clone(),
            created_at: held.map_or_else(Utc::now, |o| o.created_at),
        };
        let key = (id, id.to_string(), desired.name.clone());
        match held {
            None => {
                let snap = views::snapshot(views::OrgView::from(&desired));
                self.record(
                    PlanAction::Create,
                    "organization",
                    key,
                    vec![],
                    None,
                    Some(("created", snap)),
                );
                self.changes.push(ConfigChange::CreateOrg(desired));
            }
            Some(org)
                if org.name != desired.name
                    || org.alert_destinations != desired.alert_destinations
                    || org.alerts != desired.alerts =>
            {
                let mut fields = Vec::new();
                if org.name != desired.name {
                    fields.push("name".into());
                }
                if org.alert_destinations != desired.alert_destinations {
                    fields.push("alert_destinations".into());
                }
                if org.alerts != desired.alerts {
                    fields.push("alerts".into());
                }
                let snap = views::snapshot(views::OrgView::from(&desired));
                self.record(
                    PlanAction::Change,
                    "organization",
                    key,
                    fields,
                    None,
                    Some(("updated", snap)),
                );
                self.changes.push(ConfigChange::UpdateOrg(desired));
            }
            Some(_) => self.unchanged(),
        }

        let stored: HashMap<DestinationId, Destination> = stored_destinations
            .into_iter()
            .map(|d| (d.id.clone(), d))
            .collect();
        for (j, d) in entry.destinations.iter().enumerate() {
            let at = format!("{at}.destinations[{j}]");
            let existing = match stored.get(&d.id) {
                Some(d) => Some(d.clone()),
                None => match app.0.store.destination_by_id(&d.id).await? {
                    Some(_) => {
                        return Err(Error::invalid(
                            format!("{at}.id"),
                            "belongs to another organization",
                        ));
                    }
                    None => None,
                },
            };
            self.destination(&at, id, d, existing)?;
        }
        let sources = match held {
            Some(_) => all(|p| app.0.sources.list_sources(id, p)).await?,
            None => Vec::new(),
        };
        let stored_sources: HashMap<_, _> =
            sources.into_iter().map(|s| (s.id.clone(), s)).collect();
        for (j, s) in entry.sources.iter().enumerate() {
            let at = format!("{at}.sources[{j}]");
            let existing = stored_sources.get(&s.id).cloned();
            if existing.is_none() && app.0.sources.source_by_id(&s.id).await?.is_some() {
                return Err(Error::invalid(
                    format!("{at}.id"),
                    "belongs to another organization",
                ));
            }
            self.source(&at, id, s, existing, &known)?;
        }
        let schedules = match held {
            Some(_) => all(|p| app.0.schedules.list_schedules(id, p)).await?,
            None => Vec::new(),
        };
        let stored_schedules: HashMap<_, _> =
            schedules.into_iter().map(|s| (s.id.clone(), s)).collect();
        for (j, s) in entry.export_schedules.iter().enumerate() {
            let at = format!("{at}.export_schedules[{j}]");
            self.schedule(&at, id, s, stored_schedules.get(&s.id).cloned())?;
        }
        if self.prune {
            self.prune_org(id, entry, &stored, &stored_sources, &stored_schedules);
        }
        Ok(())
    }
}
