//! Data exports on demand: a request is validated into an `ExportSpec`,
//! stored as a queued job (audited) and run in the background by
//! `runner`, streaming from the store to the target; the job records its
//! progress and, at the end, what it produced or why it failed. Each
//! organization runs a bounded number at once (beyond it: 429 with
//! `Retry-After`). Jobs whose process stopped are found by their silent
//! heartbeat and failed, and their unfinished output removed. Output goes
//! to a local file (`target`) or to an `s3` or `sftp` destination (through
//! its kind's `ExportOutputs`), staged until the whole export is written.
//! Schedules (`schedules`) start runs on a cron (`scheduler`).

mod metrics;
mod rows;
mod runner;
mod scheduler;
mod schedules;
mod target;

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ferry_core::FieldError;
use ferry_core::audit::{AuditRecord, SYSTEM_ACTOR};
use ferry_core::destination::DestinationKind;
use ferry_core::export::{ExportJob, ExportSource, ExportStatus, ExportTarget, RetryPolicy};
use ferry_core::ids::{DestinationId, ExportId, OrgId};
use ferry_core::org::Scope;
use ferry_core::page::{Page, PageRequest};
use ferry_core::ports::{ExportObject, ExportOutputs, ExportSink};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::warn;

use self::target::LocalFile;
use super::{App, Error, Principal, Result};
use crate::oplog::LogFiles;
use crate::views;
use ferry_core::export::request;
pub use ferry_core::export::request::{ExportRequest, columns};
pub(crate) use scheduler::EXPORT_FAILED;

/// How exports run on this server.
#[derive(Debug, Clone)]
pub struct ExportSettings {
    /// Queued and running exports an organization may have at once.
    pub max_concurrent_per_org: u64,
    /// The directories local exports (and `file` destinations) write under.
    pub file_roots: Vec<PathBuf>,
    /// This process's operational log, for the `log` source (none when
    /// it keeps none).
    pub log: Option<LogFiles>,
    /// How failed scheduled runs are retried.
    pub schedule_retry: RetryPolicy,
    /// How old a record must be for an incremental run to take it.
    pub incremental_settle: Duration,
}

/// The exports running in this process, so that a cancel or a shutdown
/// reaches them at once (a cancel from another process is noticed at the
/// next progress write).
pub(crate) struct Runs {
    settings: ExportSettings,
    tracker: TaskTracker,
    running: Mutex<HashMap<ExportId, CancellationToken>>,
}

impl Runs {
    pub(crate) fn new(settings: ExportSettings) -> Self {
        Self {
            settings,
            tracker: TaskTracker::new(),
            running: Mutex::new(HashMap::new()),
        }
    }

    fn token(&self, id: &ExportId) -> CancellationToken {
        let token = CancellationToken::new();
        self.lock().insert(id.clone(), token.clone());
        token
    }

    fn cancel(&self, id: &ExportId) {
        if let Some(token) = self.lock().get(id) {
            token.cancel();
        }
    }

    fn done(&self, id: &ExportId) {
        self.lock().remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ExportId, CancellationToken>> {
        // A panic while holding this map leaves it usable: it only maps ids
        // to tokens.
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A finished local export, ready to stream.
#[derive(Debug, Clone)]
pub struct Download {
    pub path: PathBuf,
    /// The name to save it under.
    pub file_name: String,
    pub content_type: &'static str,
    pub sha256: String,
}

/// An export job as audit records keep it.
fn snapshot(job: &ExportJob) -> Value {
    views::snapshot(views::ExportView::from(job))
}

impl App {
    /// Validates `request`, stores it as a queued job and starts it.
    pub async fn create_export(
        &self,
        principal: &Principal,
        request: ExportRequest,
    ) -> Result<ExportJob> {
        principal.require(Scope::Manage)?;
        let mut spec = request::parse(request).map_err(Error::Malformed)?;
        self.check_export_access(principal, &spec, "").await?;
        let id = ExportId::generate();
        let org = principal.org().clone();
        let incremental_key = spec.incremental.then(|| spec.digest());
        if let Some(key) = &incremental_key {
            self.set_increment(&org, key, &mut spec).await?;
        }
        spec.target = self
            .checked_target(&org, &id, &spec)
            .await
            .map_err(|e| Error::Invalid(vec![e]))?;
        let runs = &self.0.export_runs;
        let limit = runs.settings.max_concurrent_per_org;
        if self.0.exports.active_exports(&org).await? >= limit {
            return Err(Error::RateLimited {
                message: format!(
                    "this organization already has {limit} exports queued or running; retry when one has finished"
                ),
                retry_after_s: 5,
            });
        }
        let job = ExportJob {
            incremental_key,
            ..ExportJob::queued(id, org, spec)
        };
        let audit = AuditRecord::new(
            job.org_id.clone(),
            principal.actor(),
            "export",
            job.id.to_string(),
            "export.created",
        )
        .after(snapshot(&job));
        self.0.exports.insert_export(&job, &audit).await?;
        self.start_export(job.clone());
        Ok(job)
    }

    /// Whether `principal` may export what `spec` reads: another
    /// organization's records only for an admin, the log only for an admin
    /// of a server that keeps one. `prefix` goes before the field names.
    async fn check_export_access(
        &self,
        principal: &Principal,
        spec: &ferry_core::export::ExportSpec,
        prefix: &str,
    ) -> Result<()> {
        if let Some(org) = &spec.filter.org_id {
            self.named_org(principal, Some(org.as_str()), || {
                Error::invalid(format!("{prefix}filter.org_id"), "unknown organization")
            })
            .await?;
        }
        if spec.source == ExportSource::Config {
            // The configuration spans organizations.
            principal.require(Scope::Admin)?;
        }
        if spec.source == ExportSource::Log {
            // The log is the process's, across organizations.
            principal.require(Scope::Admin)?;
            if self.0.export_runs.settings.log.is_none() {
                return Err(Error::invalid(
                    format!("{prefix}source"),
                    "this server keeps no operational log (log.enabled is false)",
                ));
            }
        }
        Ok(())
    }

    /// Sets an incremental export's window: from where the last
    /// successful run with `key` ended (everything before, for the first)
    /// up to a moment ago — records written in the last
    /// `incremental_settle` wait for the next run, so that a write still
    /// committing when this run reads is never passed over.
    async fn set_increment(
        &self,
        org: &OrgId,
        key: &str,
        spec: &mut ferry_core::export::ExportSpec,
    ) -> Result<()> {
        let last = self.0.exports.last_incremental(org, key).await?;
        let settle = chrono::Duration::from_std(self.0.export_runs.settings.incremental_settle)
            .unwrap_or_default();
        spec.filter.changed_after = last.and_then(|job| job.spec.filter.changed_until);
        spec.filter.changed_until = Some(Utc::now() - settle);
        Ok(())
    }

    /// Runs a stored, queued job in the background.
    fn start_export(&self, job: ExportJob) {
        let runs = &self.0.export_runs;
        let token = runs.token(&job.id);
        let app = self.clone();
        runs.tracker.spawn(async move {
            let id = job.id.clone();
            runner::run(app.clone(), job, token).await;
            app.0.export_runs.done(&id);
        });
    }

    /// The organization's export jobs, newest first.
    pub async fn exports(
        &self,
        principal: &Principal,
        page: PageRequest,
    ) -> Result<Page<ExportJob>> {
        principal.require(Scope::Read)?;
        Ok(self.0.exports.list_exports(principal.org(), page).await?)
    }

    pub async fn export(&self, principal: &Principal, id: &ExportId) -> Result<ExportJob> {
        principal.require(Scope::Read)?;
        self.0
            .exports
            .get_export(principal.org(), id)
            .await?
            .ok_or(Error::NotFound("export"))
    }

    /// Cancels a queued or running job: nothing it wrote stays at the
    /// target. A finished job cannot be cancelled (409).
    pub async fn cancel_export(&self, principal: &Principal, id: &ExportId) -> Result<ExportJob> {
        principal.require(Scope::Manage)?;
        let mut job = self.export(principal, id).await?;
        if !job.status.is_active() {
            return Err(Error::Conflict(format!(
                "the export has already {}",
                job.status.as_str()
            )));
        }
        job.status = ExportStatus::Cancelled;
        job.finished_at = Some(Utc::now());
        let audit = AuditRecord::new(
            job.org_id.clone(),
            principal.actor(),
            "export",
            job.id.to_string(),
            "export.cancelled",
        )
        .after(snapshot(&job));
        if !self.0.exports.transition_export(&job, Some(&audit)).await? {
            let now = self.export(principal, id).await?;
            return Err(Error::Conflict(format!(
                "the export has already {}",
                now.status.as_str()
            )));
        }
        self.0.export_runs.cancel(id);
        Ok(job)
    }

    /// A succeeded export's file, to stream.
    pub async fn export_download(&self, principal: &Principal, id: &ExportId) -> Result<Download> {
        let job = self.export(principal, id).await?;
        let output = match (&job.status, &job.output) {
            (ExportStatus::Succeeded, Some(output)) => output,
            (status, _) => {
                return Err(Error::Conflict(format!(
                    "only a succeeded export can be downloaded; this one is {}",
                    status.as_str()
                )));
            }
        };
        if let Some(at) = job.output_removed_at {
            return Err(Error::Conflict(format!(
                "the export's output was removed by its schedule's retention at {}",
                at.to_rfc3339()
            )));
        }
        if matches!(job.spec.target, ExportTarget::Destination { .. }) {
            return Err(Error::Conflict(format!(
                "this export was written to {}; read it from there",
                output.location
            )));
        }
        let path = PathBuf::from(&output.location);
        if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Err(Error::Conflict(
                "the export's file is no longer at its target".into(),
            ));
        }
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| job.id.to_string());
        let content_type = content_type(&job.spec);
        Ok(Download {
            path,
            file_name,
            content_type,
            sha256: output.sha256.clone(),
        })
    }

    /// Opens a job's output at its target, checked now (a destination may
    /// have changed since the job was created).
    async fn open_export_output(&self, job: &ExportJob) -> Result<Box<dyn ExportSink>, String> {
        let target = self
            .checked_target(&job.org_id, &job.id, &job.spec)
            .await
            .map_err(|e| e.message)?;
        match target {
            ExportTarget::File { file } => {
                match LocalFile::create(PathBuf::from(file), &job.id).await {
                    Ok(file) => Ok(Box::new(file)),
                    Err(e) => Err(format!("cannot create the export file: {e}")),
                }
            }
            ExportTarget::Destination {
                destination_id,
                path,
            } => {
                let outputs = self.export_outputs(&job.org_id, &destination_id).await?;
                outputs.create(export_object(job, &path)).await
            }
        }
    }

    /// Where exports go on a destination, its credentials reused.
    async fn export_outputs(
        &self,
        org: &OrgId,
        id: &DestinationId,
    ) -> Result<Arc<dyn ExportOutputs>, String> {
        let destination = self
            .0
            .store
            .get_destination(org, id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("destination {id} no longer exists"))?;
        self.0.catalog.export_outputs(&destination)
    }

    /// Removes a job's output, or what an interrupted run of it staged
    /// (best effort: a failure is logged).
    async fn remove_export_output(&self, job: &ExportJob, committed: bool) {
        match &job.spec.target {
            ExportTarget::File { file } if committed => {
                if let Err(error) = tokio::fs::remove_file(file).await {
                    warn!(export_id = %job.id, %error, "Could not remove an export's file.");
                }
            }
            ExportTarget::File { file } => LocalFile::clean_up(Path::new(file), &job.id).await,
            ExportTarget::Destination {
                destination_id,
                path,
            } => match self.export_outputs(&job.org_id, destination_id).await {
                Ok(outputs) if committed => {
                    if let Err(error) = outputs.delete(export_object(job, path)).await {
                        warn!(export_id = %job.id, %error, "Could not remove an export's output.");
                    }
                }
                Ok(outputs) => outputs.clean_up(export_object(job, path)).await,
                Err(error) => {
                    warn!(export_id = %job.id, %error, "Could not reach an export's target to remove its output.");
                }
            },
        }
    }

    /// The spec's target checked: a local file resolved to an absolute
    /// path (the default name when it names none), or an `s3` or `sftp`
    /// destination with the path in it (the default name when empty).
    async fn checked_target(
        &self,
        org: &OrgId,
        id: &ExportId,
        spec: &ferry_core::export::ExportSpec,
    ) -> Result<ExportTarget, FieldError> {
        let roots = &self.0.export_runs.settings.file_roots;
        let default_name = || {
            format!(
                "exports/{}-{id}.{}{}",
                spec.source.as_str(),
                spec.format.extension(),
                spec.compression.suffix()
            )
        };
        let path = match &spec.target {
            ExportTarget::File { file } if file.is_empty() => {
                request::resolve_file(&default_name(), roots)?
            }
            ExportTarget::File { file } => request::resolve_file(file, roots)?,
            ExportTarget::Destination {
                destination_id,
                path,
            } => {
                let field = "target.destination_id";
                let path = if path.is_empty() {
                    default_name()
                } else {
                    path.clone()
                };
                let d = self
                    .0
                    .store
                    .get_destination(org, destination_id)
                    .await
                    .map_err(|e| FieldError::new(field, e.to_string()))?
                    .ok_or_else(|| FieldError::new(field, "no such destination"))?;
                if d.kind != DestinationKind::File {
                    relative_under(Path::new(""), &path)?;
                    self.0
                        .catalog
                        .export_outputs(&d)
                        .map_err(|e| FieldError::new(field, e))?;
                    return Ok(ExportTarget::Destination {
                        destination_id: destination_id.clone(),
                        path,
                    });
                }
                let directory = d
                    .config
                    .get("directory")
                    .and_then(Value::as_str)
                    .ok_or_else(|| FieldError::new(field, "the destination has no directory"))?;
                relative_under(Path::new(directory), &path)?
            }
        };
        Ok(ExportTarget::File {
            file: path.display().to_string(),
        })
    }

    /// Cancels the exports running here and waits (up to `grace`) for them
    /// to remove what they wrote; they are recorded as failed ("Ferry
    /// stopped"), to be run again.
    pub async fn stop_exports(&self, grace: Duration) {
        let runs = &self.0.export_runs;
        runs.tracker.close();
        for token in runs.lock().values() {
            token.cancel();
        }
        if tokio::time::timeout(grace, runs.tracker.wait())
            .await
            .is_err()
        {
            warn!("Exports did not stop in time; they are failed when found stale.");
        }
    }

    /// Fails the active jobs whose runner has not reported since `before`
    /// (its process stopped) and removes their unfinished output; returns
    /// how many.
    pub async fn fail_stale_exports(&self, before: DateTime<Utc>) -> Result<usize> {
        let stale = self.0.exports.stale_exports(before).await?;
        let mut failed = 0;
        for mut job in stale {
            if self.0.export_runs.lock().contains_key(&job.id) {
                continue;
            }
            job.status = ExportStatus::Failed;
            job.error = Some("Ferry stopped while this export ran; run it again".into());
            job.finished_at = Some(Utc::now());
            let audit = AuditRecord::new(
                job.org_id.clone(),
                SYSTEM_ACTOR,
                "export",
                job.id.to_string(),
                "export.failed",
            )
            .after(snapshot(&job));
            if self.0.exports.transition_export(&job, Some(&audit)).await? {
                self.remove_export_output(&job, false).await;
                self.scheduled_run_ended(&job).await;
                failed += 1;
            }
        }
        Ok(failed)
    }
}

/// What an export's output is opened as at a destination.
fn export_object<'a>(job: &'a ExportJob, path: &'a str) -> ExportObject<'a> {
    ExportObject {
        path,
        export_id: job.id.as_str(),
        content_type: content_type(&job.spec),
    }
}

/// The content type of an export's output.
fn content_type(spec: &ferry_core::export::ExportSpec) -> &'static str {
    spec.compression
        .content_type()
        .unwrap_or_else(|| spec.format.content_type())
}

/// `path` (relative, no `.`/`..`) under `directory`.
fn relative_under(directory: &Path, path: &str) -> Result<PathBuf, FieldError> {
    let field = "target.path";
    let p = Path::new(path);
    if path.is_empty()
        || path.ends_with('/')
        || path.contains('\0')
        || path.len() > 1024
        || !p.components().all(|c| matches!(c, Component::Normal(_)))
    {
        return Err(FieldError::new(
            field,
            "must be a relative file name without `.` or `..` parts (at most 1024 bytes)",
        ));
    }
    Ok(directory.join(p))
}
