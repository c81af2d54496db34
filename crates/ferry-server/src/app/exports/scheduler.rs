//! Running export schedules. Each process that schedules (`--role all` or
//! `scheduler`) looks for due schedules about once a second and claims each
//! due run by writing the schedule's next state together with the run's
//! queued job, against the revision it read: of several processes sharing
//! PostgreSQL, one wins each run, and a unique index on (schedule, tick,
//! attempt) says the same in the database. The winner runs the job.
//!
//! A tick that finds the previous run still going is passed over (runs of
//! one schedule never overlap). A failed run is retried with growing
//! waits; when the retries are spent, a `ferry.export.failed` alert goes to
//! the organization's alert destinations. After a successful run, the
//! schedule's retention deletes older outputs at their targets.

use chrono::{DateTime, Utc};
use ferry_core::StoreError;
use ferry_core::audit::{AuditRecord, SYSTEM_ACTOR};
use ferry_core::export::schedule::fill_path;
use ferry_core::export::{
    AfterFailure, ExportJob, ExportSchedule, ExportStatus, ExportTarget, Run, Trigger,
};
use ferry_core::ids::ExportId;
use serde_json::json;
use tracing::{info, warn};

use super::super::{App, Result};
use super::snapshot;

/// Schedules looked at per pass.
const DUE_PER_PASS: u32 = 100;
/// Tries to record a run's end against a schedule that keeps changing.
const SAVE_TRIES: usize = 5;

/// The alert a scheduled export sends when its retries are spent.
pub(crate) const EXPORT_FAILED: &str = "ferry.export.failed";

impl App {
    /// Claims and starts the runs due at `now`; how many started.
    pub async fn run_due_schedules(&self, now: DateTime<Utc>) -> Result<usize> {
        let due = self.0.schedules.due_schedules(now, DUE_PER_PASS).await?;
        let mut started = 0;
        for schedule in due {
            if self.is_shutting_down() {
                break;
            }
            match self.claim_run(&schedule, now).await {
                Ok(true) => started += 1,
                Ok(false) => {}
                Err(error) => {
                    warn!(schedule_id = %schedule.id, %error, "Could not start a scheduled export.");
                }
            }
        }
        Ok(started)
    }

    /// Claims `schedule`'s due run and starts it; whether this process
    /// started one.
    async fn claim_run(&self, schedule: &ExportSchedule, now: DateTime<Utc>) -> Result<bool> {
        let trigger = match Trigger::parse(&schedule.cron, &schedule.timezone) {
            Ok(trigger) => trigger,
            Err(errors) => {
                warn!(schedule_id = %schedule.id, ?errors, "A stored schedule no longer parses; it is skipped.");
                return Ok(false);
            }
        };
        let Some((next, run)) = schedule.claim(&trigger, now) else {
            return Ok(false);
        };
        let store = &self.0.schedules;
        if store.schedule_busy(&schedule.id).await? {
            if run.attempt == 1 {
                // Passed over: its time is taken by the run still going.
                if store
                    .save_schedule(&next, schedule.revision, None, &[])
                    .await?
                {
                    warn!(
                        schedule_id = %schedule.id, scheduled_for = %run.scheduled_for,
                        "A scheduled export was skipped: the previous run is still going."
                    );
                }
            }
            return Ok(false);
        }
        let limit = self.0.export_runs.settings.max_concurrent_per_org;
        if self.0.exports.active_exports(&schedule.org_id).await? >= limit {
            // Stays due: started once the organization has room.
            return Ok(false);
        }
        let job = self.scheduled_job(schedule, &trigger, run).await?;
        let audit = AuditRecord::new(
            job.org_id.clone(),
            SYSTEM_ACTOR,
            "export",
            job.id.to_string(),
            "export.created",
        )
        .after(snapshot(&job));
        match store
            .save_schedule(&next, schedule.revision, Some(&job), &[audit])
            .await
        {
            Ok(true) => {}
            // Another process claimed it (the revision moved, or the run's
            // job exists already).
            Ok(false) | Err(StoreError::Conflict(_)) => return Ok(false),
            Err(error) => return Err(error.into()),
        }
        info!(
            schedule_id = %schedule.id, export_id = %job.id, scheduled_for = %run.scheduled_for,
            attempt = run.attempt, "Scheduled export started."
        );
        self.start_export(job);
        Ok(true)
    }

    /// The queued job for one run of `schedule`: its path's placeholders
    /// filled, its target checked (if the check fails now, the run fails
    /// with the reason when it starts) and, if incremental, its window set
    /// from the schedule's last successful run.
    async fn scheduled_job(
        &self,
        schedule: &ExportSchedule,
        trigger: &Trigger,
        run: Run,
    ) -> Result<ExportJob> {
        let id = ExportId::generate();
        let mut spec = schedule.export.clone();
        // Runs of a schedule are "the same export", whatever changed in it.
        let incremental_key = spec.incremental.then(|| schedule.id.to_string());
        if let Some(key) = &incremental_key {
            self.set_increment(&schedule.org_id, key, &mut spec).await?;
        }
        match &mut spec.target {
            ExportTarget::File { file: path } | ExportTarget::Destination { path, .. } => {
                *path = fill_path(path, trigger, run, id.as_str());
            }
        }
        if let Ok(target) = self.checked_target(&schedule.org_id, &id, &spec).await {
            spec.target = target;
        }
        Ok(ExportJob {
            schedule_id: Some(schedule.id.clone()),
            run: Some(run),
            incremental_key,
            ..ExportJob::queued(id, schedule.org_id.clone(), spec)
        })
    }

    /// What follows a scheduled run's end: a retry or an alert after a
    /// failure, retention after a success.
    pub(super) async fn scheduled_run_ended(&self, job: &ExportJob) {
        let (Some(schedule_id), Some(run)) = (&job.schedule_id, job.run) else {
            return;
        };
        let outcome = match job.status {
            ExportStatus::Failed => self.scheduled_run_failed(job, run).await,
            ExportStatus::Succeeded => self.apply_retention(job).await,
            _ => Ok(()),
        };
        if let Err(error) = outcome {
            warn!(%schedule_id, export_id = %job.id, %error, "Could not follow up a scheduled export.");
        }
    }

    async fn scheduled_run_failed(&self, job: &ExportJob, run: Run) -> Result<()> {
        let Some(id) = &job.schedule_id else {
            return Ok(());
        };
        let store = &self.0.schedules;
        let policy = self.0.export_runs.settings.schedule_retry;
        for _ in 0..SAVE_TRIES {
            let Some(schedule) = store.get_schedule(&job.org_id, id).await? else {
                return Ok(()); // deleted meanwhile
            };
            let now = Utc::now();
            let (next, after) = schedule.failed(run, policy, now);
            if !store
                .save_schedule(&next, schedule.revision, None, &[])
                .await?
            {
                continue;
            }
            match after {
                AfterFailure::RetryAt(at) => {
                    info!(schedule_id = %id, export_id = %job.id, retry_at = %at, "A scheduled export failed; it will be retried.");
                }
                AfterFailure::Exhausted => {
                    warn!(schedule_id = %id, export_id = %job.id, attempts = run.attempt, "A scheduled export failed after its retries; alerting.");
                    let key = format!(
                        "alert:{id}:export_failed:{}",
                        run.scheduled_for.timestamp_micros()
                    );
                    let data = json!({
                        "schedule_id": id,
                        "name": schedule.name,
                        "export_id": job.id,
                        "scheduled_for": run.scheduled_for,
                        "attempts": run.attempt,
                        "error": job.error,
                        "links": self.links("exports", job.id.as_str()),
                    });
                    self.send_alert(&job.org_id, None, EXPORT_FAILED, key, data, now)
                        .await?;
                }
            }
            return Ok(());
        }
        warn!(schedule_id = %id, "A scheduled export's failure could not be recorded: the schedule kept changing.");
        Ok(())
    }

    /// Deletes the outputs `job`'s schedule no longer keeps.
    async fn apply_retention(&self, job: &ExportJob) -> Result<()> {
        let Some(id) = &job.schedule_id else {
            return Ok(());
        };
        let store = &self.0.schedules;
        let Some(schedule) = store.get_schedule(&job.org_id, id).await? else {
            return Ok(());
        };
        let kept = store.kept_outputs(id).await?;
        let outputs: Vec<(DateTime<Utc>, &str)> = kept
            .iter()
            .filter_map(|j| {
                let output = j.output.as_ref()?;
                Some((
                    j.finished_at.unwrap_or(j.created_at),
                    output.location.as_str(),
                ))
            })
            .collect();
        let now = Utc::now();
        for i in schedule.retention.expired(&outputs, now) {
            let old = &kept[i];
            self.remove_export_output(old, true).await;
            let mut after = old.clone();
            after.output_removed_at = Some(now);
            let audit = AuditRecord::new(
                old.org_id.clone(),
                SYSTEM_ACTOR,
                "export",
                old.id.to_string(),
                "export.output_removed",
            )
            .before(snapshot(old))
            .after(snapshot(&after));
            store.mark_output_removed(&old.id, now, &audit).await?;
            info!(schedule_id = %id, export_id = %old.id, "Removed an export's output past its schedule's retention.");
        }
        Ok(())
    }
}
