//! Planning one object of an import: a destination, a source or an
//! export schedule checked as the API checks it, compared with the stored
//! one, and turned into a change; and, with `prune`, the removal of what
//! the document does not name.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use ferry_core::config_doc::{DestinationDoc, OrgDoc, ScheduleDoc, SourceDoc};
use ferry_core::destination::{Destination, DestinationKind, DestinationSecrets};
use ferry_core::export::schedule_request;
use ferry_core::export::{ExportSchedule, ScheduleRequest};
use ferry_core::ports::ConfigChange;
use ferry_core::source::{Source, Verification};
use ferry_core::{DestinationId, OrgId};
use serde_json::Value;

use super::super::destinations::{DestinationInput, apply, blank};
use super::super::sources::{SourceInput, check_source};
use super::super::{Error, Result};
use super::document;
use super::import::{PlanAction, Planner, differing, under};
use crate::views;

impl Planner<'_> {
    pub(super) fn destination(
        &mut self,
        at: &str,
        org: &OrgId,
        e: &DestinationDoc,
        existing: Option<Destination>,
    ) -> Result<()> {
        let secrets: Option<DestinationSecrets> =
            self.open(e.sealed_secrets.as_deref(), &format!("{at}.sealed_secrets"))?;
        let creating = existing.is_none();
        let now = Utc::now();
        let mut base = existing
            .clone()
            .unwrap_or_else(|| blank(e.id.clone(), org.clone(), now));
        if let Some(s) = &secrets {
            base.secrets = s.clone();
        }
        let input = DestinationInput {
            name: Some(e.name.clone()),
            kind: Some(e.kind.clone()),
            config: Some(e.config.clone()),
            auth: None,
            filter: Some(e.filter.clone()),
            retry: Some(e.retry.clone()),
            default: Some(e.default),
            enabled: Some(e.enabled),
            max_in_flight: Some(e.max_in_flight),
            alerts: Some(serde_json::to_value(&e.alerts).unwrap_or(Value::Null)),
            signing: None,
        };
        let (mut d, _) =
            apply(&self.app.0.catalog, base, input, creating).map_err(|err| under(at, err))?;
        if let Some(s) = secrets.clone() {
            d.secrets = s;
        }
        let mut note = None;
        // Only webhooks sign (with a key their receivers know).
        let needs_secrets = e.auth.get("type").and_then(Value::as_str) != Some("none")
            || (d.kind == DestinationKind::Webhook && e.signing.is_some());
        if creating && secrets.is_none() && needs_secrets && d.enabled {
            d.enabled = false;
            note = Some("created disabled: its secrets are not in the document; set them (PATCH /v1/destinations/{id}) and enable it".replace("{id}", d.id.as_str()));
        }
        let key = (org, d.id.to_string(), d.name.clone());
        let snap = views::snapshot(views::DestinationView::from(&d));
        match existing {
            None => {
                self.record(
                    PlanAction::Create,
                    "destination",
                    key,
                    vec![],
                    note,
                    Some(("created", snap)),
                );
                self.changes.push(ConfigChange::CreateDestination(d));
            }
            Some(before) => {
                let mut fields = differing(
                    &document::destination(&before, None),
                    &document::destination(&d, None),
                );
                if secrets.is_some_and(|s| s != before.secrets) {
                    fields.push("secrets".into());
                }
                if fields.is_empty() {
                    self.unchanged();
                } else {
                    d.updated_at = now;
                    self.record(
                        PlanAction::Change,
                        "destination",
                        key,
                        fields,
                        None,
                        Some(("updated", snap)),
                    );
                    self.changes.push(ConfigChange::UpdateDestination(d));
                }
            }
        }
        Ok(())
    }

    pub(super) fn source(
        &mut self,
        at: &str,
        org: &OrgId,
        e: &SourceDoc,
        existing: Option<Source>,
        known: &HashSet<DestinationId>,
    ) -> Result<()> {
        let sealed: Option<Verification> =
            self.open(e.sealed_secrets.as_deref(), &format!("{at}.sealed_secrets"))?;
        let key = (org, e.id.to_string(), e.name.clone());
        let verification = match (&sealed, &existing) {
            (Some(v), _) => v.clone(),
            (None, Some(s)) => s.verification.clone(),
            (None, None) => {
                self.record(
                    PlanAction::Skip,
                    "source",
                    key,
                    vec![],
                    Some("its verification secrets are not in the document; export with a passphrase to carry them".into()),
                    None,
                );
                return Ok(());
            }
        };
        let input = SourceInput {
            name: Some(e.name.clone()),
            verification: Some(serde_json::to_value(&verification).unwrap_or(Value::Null)),
            id_from: e.id_from.clone(),
            type_from: Some(e.type_from.clone()),
            required: e.required.clone(),
            destinations: e.destinations.iter().map(ToString::to_string).collect(),
        };
        let mut s = check_source(e.id.clone(), org, input, known).map_err(|err| under(at, err))?;
        let snap = views::snapshot(views::SourceView::from(&s));
        match existing {
            None => {
                self.record(
                    PlanAction::Create,
                    "source",
                    key,
                    vec![],
                    None,
                    Some(("created", snap)),
                );
                self.changes.push(ConfigChange::CreateSource(s));
            }
            Some(before) => {
                s.created_at = before.created_at;
                let mut fields = differing(
                    &document::source(&before, None),
                    &document::source(&s, None),
                );
                if sealed.is_some_and(|v| v != before.verification) {
                    fields.push("secrets".into());
                }
                if fields.is_empty() {
                    self.unchanged();
                } else {
                    self.record(
                        PlanAction::Change,
                        "source",
                        key,
                        fields,
                        None,
                        Some(("replaced", snap)),
                    );
                    self.changes.push(ConfigChange::ReplaceSource(s));
                }
            }
        }
        Ok(())
    }

    pub(super) fn schedule(
        &mut self,
        at: &str,
        org: &OrgId,
        e: &ScheduleDoc,
        existing: Option<ExportSchedule>,
    ) -> Result<()> {
        let export = serde_json::from_value(e.export.clone())
            .map_err(|err| Error::invalid(format!("{at}.export"), err.to_string()))?;
        let request = ScheduleRequest {
            name: e.name.clone(),
            cron: e.cron.clone(),
            timezone: Some(e.timezone.clone()),
            export,
            retention: e.retention,
            enabled: Some(e.enabled),
        };
        let draft = schedule_request::parse(request).map_err(|errors| {
            let mut all = errors.malformed;
            all.extend(errors.invalid);
            under(at, Error::Invalid(all))
        })?;
        let now = Utc::now();
        let same_timing = existing.as_ref().is_some_and(|s| {
            s.cron == draft.cron && s.timezone == draft.timezone && (s.enabled || !draft.enabled)
        });
        let next_run_at = match (&existing, same_timing) {
            (Some(s), true) => s.next_run_at,
            _ => draft
                .trigger
                .next_after(now)
                .ok_or_else(|| Error::invalid(format!("{at}.cron"), "never fires"))?,
        };
        let desired = ExportSchedule {
            id: e.id.clone(),
            org_id: org.clone(),
            name: draft.name,
            cron: draft.cron,
            timezone: draft.timezone,
            enabled: draft.enabled,
            export: draft.export,
            retention: draft.retention,
            next_run_at,
            retry: existing
                .as_ref()
                .filter(|_| same_timing)
                .and_then(|s| s.retry),
            revision: existing.as_ref().map_or(1, |s| s.revision + 1),
            created_at: existing.as_ref().map_or(now, |s| s.created_at),
            updated_at: now,
        };
        let key = (org, desired.id.to_string(), desired.name.clone());
        let snap = views::snapshot(views::ScheduleView::from(&desired));
        match existing {
            None => {
                self.record(
                    PlanAction::Create,
                    "export_schedule",
                    key,
                    vec![],
                    None,
                    Some(("created", snap)),
                );
                self.changes.push(ConfigChange::CreateSchedule(desired));
            }
            Some(before) => {
                let fields = differing(&document::schedule(&before), &document::schedule(&desired));
                if fields.is_empty() {
                    self.unchanged();
                } else {
                    self.record(
                        PlanAction::Change,
                        "export_schedule",
                        key,
                        fields,
                        None,
                        Some(("updated", snap)),
                    );
                    self.changes.push(ConfigChange::UpdateSchedule(desired));
                }
            }
        }
        Ok(())
    }

    /// Removes what the organization holds and the document does not name.
    pub(super) fn prune_org(
        &mut self,
        org: &OrgId,
        entry: &OrgDoc,
        destinations: &HashMap<DestinationId, Destination>,
        sources: &HashMap<ferry_core::SourceId, Source>,
        schedules: &HashMap<ferry_core::ScheduleId, ExportSchedule>,
    ) {
        fn by_id<K: ToString, V>(map: &HashMap<K, V>) -> Vec<&V> {
            let mut items: Vec<(String, &V)> =
                map.iter().map(|(k, v)| (k.to_string(), v)).collect();
            items.sort_by(|a, b| a.0.cmp(&b.0));
            items.into_iter().map(|(_, v)| v).collect()
        }
        let named_schedules: HashSet<_> = entry.export_schedules.iter().map(|s| &s.id).collect();
        for s in by_id(schedules)
            .into_iter()
            .filter(|s| !named_schedules.contains(&s.id))
        {
            let snap = views::snapshot(views::ScheduleView::from(s));
            self.record(
                PlanAction::Remove,
                "export_schedule",
                (org, s.id.to_string(), s.name.clone()),
                vec![],
                None,
                Some(("deleted", snap)),
            );
            self.changes
                .push(ConfigChange::DeleteSchedule(org.clone(), s.id.clone()));
        }
        let named_sources: HashSet<_> = entry.sources.iter().map(|s| &s.id).collect();
        for s in by_id(sources)
            .into_iter()
            .filter(|s| !named_sources.contains(&s.id))
        {
            let snap = views::snapshot(views::SourceView::from(s));
            self.record(
                PlanAction::Remove,
                "source",
                (org, s.id.to_string(), s.name.clone()),
                vec![],
                None,
                Some(("deleted", snap)),
            );
            self.changes
                .push(ConfigChange::DeleteSource(org.clone(), s.id.clone()));
        }
        let named: HashSet<_> = entry.destinations.iter().map(|d| &d.id).collect();
        for d in by_id(destinations)
            .into_iter()
            .filter(|d| !named.contains(&d.id))
        {
            let snap = views::snapshot(views::DestinationView::from(d));
            self.record(
                PlanAction::Remove,
                "destination",
                (org, d.id.to_string(), d.name.clone()),
                vec![],
                Some("its unfinished deliveries become failed".into()),
                Some(("deleted", snap)),
            );
            self.changes
                .push(ConfigChange::DeleteDestination(org.clone(), d.id.clone()));
        }
    }
}
