//! Export schedules, the operator's side: create, list, show, change and
//! delete schedules, and list a schedule's runs. Every change is audited
//! and written against the revision it read, so a change racing the
//! scheduler's claim (or another change) is never lost: it is made again
//! on the fresh state. Running them is `scheduler`'s.

use chrono::Utc;
use ferry_core::FieldError;
use ferry_core::audit::AuditRecord;
use ferry_core::export::schedule::fill_placeholders;
use ferry_core::export::schedule_request::{self, ScheduleErrors, check_name, parse_export};
use ferry_core::export::{
    ExportJob, ExportSchedule, ExportSpec, ExportTarget, SchedulePatch, ScheduleRequest, Trigger,
};
use ferry_core::ids::{ExportId, ScheduleId};
use ferry_core::org::Scope;
use ferry_core::page::{Page, PageRequest};
use serde_json::Value;

use super::super::{App, Error, Principal, Result};
use crate::views;

/// How often a change is made again after losing a race to the scheduler.
const SAVE_TRIES: usize = 5;

fn snapshot(schedule: &ExportSchedule) -> Value {
    views::snapshot(views::ScheduleView::from(schedule))
}

fn audit(principal: &Principal, schedule: &ExportSchedule, action: &str) -> AuditRecord {
    AuditRecord::new(
        schedule.org_id.clone(),
        principal.actor(),
        "export_schedule",
        schedule.id.to_string(),
        action,
    )
}

/// The request's errors as the API answers them: unknown names first (400).
fn refused(errors: ScheduleErrors) -> Error {
    if errors.malformed.is_empty() {
        Error::Invalid(errors.invalid)
    } else {
        Error::Malformed(errors.malformed)
    }
}

impl App {
    pub async fn create_schedule(
        &self,
        principal: &Principal,
        request: ScheduleRequest,
    ) -> Result<ExportSchedule> {
        principal.require(Scope::Manage)?;
        let draft = schedule_request::parse(request).map_err(refused)?;
        self.check_schedule_export(principal, &draft.export).await?;
        let now = Utc::now();
        let next_run_at = draft
            .trigger
            .next_after(now)
            .ok_or_else(|| Error::invalid("cron", "never fires"))?;
        let schedule = ExportSchedule {
            id: ScheduleId::generate(),
            org_id: principal.org().clone(),
            name: draft.name,
            cron: draft.cron,
            timezone: draft.timezone,
            enabled: draft.enabled,
            export: draft.export,
            retention: draft.retention,
            next_run_at,
            retry: None,
            revision: 1,
            created_at: now,
            updated_at: now,
        };
        let record =
            audit(principal, &schedule, "export_schedule.created").after(snapshot(&schedule));
        self.0
            .schedules
            .insert_schedule(&schedule, &record)
            .await
            .map_err(name_taken)?;
        Ok(schedule)
    }

    pub async fn schedules(
        &self,
        principal: &Principal,
        page: PageRequest,
    ) -> Result<Page<ExportSchedule>> {
        principal.require(Scope::Read)?;
        Ok(self
            .0
            .schedules
            .list_schedules(principal.org(), page)
            .await?)
    }

    pub async fn schedule(&self, principal: &Principal, id: &ScheduleId) -> Result<ExportSchedule> {
        principal.require(Scope::Read)?;
        self.0
            .schedules
            .get_schedule(principal.org(), id)
            .await?
            .ok_or(Error::NotFound("export schedule"))
    }

    /// Applies `patch`: a new cron expression or zone, or enabling a
    /// disabled schedule, sets the next run from now.
    pub async fn update_schedule(
        &self,
        principal: &Principal,
        id: &ScheduleId,
        patch: SchedulePatch,
    ) -> Result<ExportSchedule> {
        principal.require(Scope::Manage)?;
        let mut errors = ScheduleErrors::default();
        let name = patch
            .name
            .as_deref()
            .map(check_name)
            .transpose()
            .map_err(|e| errors.invalid.push(e))
            .ok()
            .flatten();
        let export = patch.export.and_then(|e| parse_export(e, &mut errors));
        if let Some(Err(e)) = patch.retention.map(|r| r.validate()) {
            errors.invalid.push(e);
        }
        if !errors.is_empty() {
            return Err(refused(errors));
        }
        if let Some(export) = &export {
            self.check_schedule_export(principal, export).await?;
        }
        for _ in 0..SAVE_TRIES {
            let before = self.schedule(principal, id).await?;
            let mut after = before.clone();
            if let Some(name) = &name {
                after.name.clone_from(name);
            }
            if let Some(cron) = &patch.cron {
                after.cron = cron.trim().to_owned();
            }
            if let Some(zone) = &patch.timezone {
                after.timezone.clone_from(zone);
            }
            if let Some(export) = &export {
                after.export = export.clone();
            }
            if let Some(retention) = patch.retention {
                after.retention = retention;
            }
            if let Some(enabled) = patch.enabled {
                after.enabled = enabled;
            }
            let now = Utc::now();
            let timing_changed = after.cron != before.cron
                || after.timezone != before.timezone
                || (after.enabled && !before.enabled);
            if timing_changed {
                let trigger =
                    Trigger::parse(&after.cron, &after.timezone).map_err(Error::Invalid)?;
                after.next_run_at = trigger
                    .next_after(now)
                    .ok_or_else(|| Error::invalid("cron", "never fires"))?;
                after.retry = None;
            }
            after.revision = before.revision + 1;
            after.updated_at = now;
            let record = audit(principal, &after, "export_schedule.updated")
                .before(snapshot(&before))
                .after(snapshot(&after));
            let saved = self
                .0
                .schedules
                .save_schedule(&after, before.revision, None, &[record])
                .await
                .map_err(name_taken)?;
            if saved {
                return Ok(after);
            }
        }
        Err(Error::Conflict(
            "the schedule kept changing while this change was made; try again".into(),
        ))
    }

    /// Deletes a schedule; its runs and their outputs stay.
    pub async fn delete_schedule(&self, principal: &Principal, id: &ScheduleId) -> Result<()> {
        principal.require(Scope::Manage)?;
        let schedule = self.schedule(principal, id).await?;
        let record =
            audit(principal, &schedule, "export_schedule.deleted").before(snapshot(&schedule));
        if !self
            .0
            .schedules
            .delete_schedule(principal.org(), id, &record)
            .await?
        {
            return Err(Error::NotFound("export schedule"));
        }
        Ok(())
    }

    /// A schedule's runs, newest first.
    pub async fn schedule_runs(
        &self,
        principal: &Principal,
        id: &ScheduleId,
        page: PageRequest,
    ) -> Result<Page<ExportJob>> {
        self.schedule(principal, id).await?;
        Ok(self
            .0
            .schedules
            .schedule_runs(principal.org(), id, page)
            .await?)
    }

    /// What a schedule's runs will read and where they will write, checked
    /// now as an on-demand export is (the placeholders filled with a
    /// sample): a run still checks its target again when it starts.
    async fn check_schedule_export(&self, principal: &Principal, spec: &ExportSpec) -> Result<()> {
        self.check_export_access(principal, spec, "export.").await?;
        let mut sample = spec.clone();
        match &mut sample.target {
            ExportTarget::File { file: path } | ExportTarget::Destination { path, .. } => {
                *path = fill_placeholders(path, "2026-01-01", "000000", "exp_sample");
            }
        }
        self.checked_target(principal.org(), &ExportId::generate(), &sample)
            .await
            .map_err(|e| {
                Error::Invalid(vec![FieldError::new(
                    format!("export.{}", e.field),
                    e.message,
                )])
            })?;
        Ok(())
    }
}

/// A duplicate name is the caller's to fix (409).
fn name_taken(error: ferry_core::StoreError) -> Error {
    match error {
        ferry_core::StoreError::Conflict(_) => {
            Error::Conflict("this organization already has an export schedule of that name".into())
        }
        other => other.into(),
    }
}
