//! Export schedules (the `ScheduleStore` port). Every write of a schedule
//! is a compare-and-set on the revision its writer read, and the run it
//! starts is inserted in the same transaction: of several processes that
//! claim one tick, one writes and the others learn they lost. A unique
//! index on (schedule, tick, attempt) refuses a second job for one run even
//! so. `due_at` is stored with the schedule (NULL while disabled), so that
//! the scheduler's poll reads one range of one index.

use chrono::{DateTime, Utc};
use ferry_core::audit::AuditRecord;
use ferry_core::error::StoreResult;
use ferry_core::export::{ExportJob, ExportSchedule};
use ferry_core::ids::{ExportId, OrgId, ScheduleId};
use ferry_core::page::{Page, PageRequest};
use sqlx::query::Query;
use sqlx::{Database, Encode, Executor, IntoArguments, Type};

use super::decode::{self, Columns};
use super::{Backend, Tables};
use crate::rows::{export_columns, schedule_columns};
use crate::values::{micros, opt_micros, page_limit, to_json};

/// The enabled schedules due at `$1`, earliest first.
pub(crate) const DUE: &str = concat!(
    "SELECT ",
    schedule_columns!(),
    " FROM export_schedules WHERE due_at IS NOT NULL AND due_at <= $1 ORDER BY due_at LIMIT $2"
);

/// One page of a schedule's runs, newest first.
pub(crate) const RUNS: &str = concat!(
    "SELECT ",
    export_columns!(),
    " FROM exports WHERE schedule_id = $1 AND org_id = $2 AND seq < $3 \
     ORDER BY seq DESC LIMIT $4"
);

/// Whether a run of the schedule is active.
pub(crate) const BUSY: &str = "SELECT id FROM exports WHERE schedule_id = $1 \
     AND status IN ('queued', 'running') LIMIT 1";

/// The schedule's outputs not yet removed, newest first.
pub(crate) const KEPT: &str = concat!(
    "SELECT ",
    export_columns!(),
    " FROM exports WHERE schedule_id = $1 AND status = 'succeeded' \
     AND output_removed_at IS NULL ORDER BY seq DESC"
);

/// A new schedule: its state (`$1`…`$13`, as `bind_state` binds it), its
/// revision, then its identity.
const INSERT: &str = "INSERT INTO export_schedules (name, cron, timezone, enabled, spec, \
     keep_last, max_age_days, next_run_at, retry_at, retry_scheduled_for, retry_attempt, due_at, \
     updated_at, revision, id, org_id, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)";

/// A schedule's new state (`$1`…`$13`, as `bind_state` binds it) and
/// revision (`$14`) if its revision is still the one read (`$17`).
const SAVE: &str = "UPDATE export_schedules SET name = $1, cron = $2, timezone = $3, \
     enabled = $4, spec = $5, keep_last = $6, max_age_days = $7, next_run_at = $8, \
     retry_at = $9, retry_scheduled_for = $10, retry_attempt = $11, due_at = $12, \
     updated_at = $13, revision = $14 WHERE id = $15 AND org_id = $16 AND revision = $17 \
     RETURNING id";

type Args<DB> = <DB as Database>::Arguments;

impl<B> Tables<'_, B>
where
    B: Backend,
    <B::DB as Database>::Arguments: IntoArguments<B::DB>,
    <B::DB as Database>::Row: Columns,
    for<'c> &'c mut <B::DB as Database>::Connection: Executor<'c, Database = B::DB>,
    for<'q> &'q str: Encode<'q, B::DB> + Type<B::DB>,
    for<'q> String: Encode<'q, B::DB> + Type<B::DB>,
    for<'q> Option<String>: Encode<'q, B::DB>,
    for<'q> Option<&'q str>: Encode<'q, B::DB>,
    for<'q> i64: Encode<'q, B::DB> + Type<B::DB>,
    for<'q> Option<i64>: Encode<'q, B::DB>,
    for<'q> bool: Encode<'q, B::DB> + Type<B::DB>,
{
    /// Binds the schedule's state but its revision, `$1`…`$13` of `INSERT`,
    /// `SAVE`.
    fn bind_state<'q>(
        query: Query<'q, B::DB, Args<B::DB>>,
        s: &ExportSchedule,
    ) -> StoreResult<Query<'q, B::DB, Args<B::DB>>> {
        let retry = s.retry.map(|(at, run)| (micros(at), run));
        Ok(query
            .bind(s.name.clone())
            .bind(s.cron.clone())
            .bind(s.timezone.clone())
            .bind(s.enabled)
            .bind(to_json(&s.export, "schedule export")?)
            .bind(s.retention.keep_last.map(i64::from))
            .bind(s.retention.max_age_days.map(i64::from))
            .bind(micros(s.next_run_at))
            .bind(retry.map(|(at, _)| at))
            .bind(retry.map(|(_, run)| micros(run.scheduled_for)))
            .bind(retry.map(|(_, run)| i64::from(run.attempt)))
            .bind(opt_micros(s.due_at()))
            .bind(micros(s.updated_at)))
    }

    /// `SAVE` bound: `schedule` if the stored revision is `read_revision`.
    fn saving<'q>(
        schedule: &'q ExportSchedule,
        read_revision: i64,
    ) -> StoreResult<Query<'q, B::DB, Args<B::DB>>> {
        Ok(Self::bind_state(sqlx::query(SAVE), schedule)?
            .bind(schedule.revision)
            .bind(schedule.id.as_str())
            .bind(schedule.org_id.as_str())
            .bind(read_revision))
    }

    pub(crate) async fn insert_schedule(
        &self,
        schedule: &ExportSchedule,
        audit: &AuditRecord,
    ) -> StoreResult<()> {
        let mut tx = self.0.write().await?;
        Self::insert_schedule_in(&mut tx, schedule).await?;
        B::insert_audit(&mut tx, &[audit]).await?;
        tx.commit().await.map_err(B::db_error)
    }

    /// Inserts a schedule inside the caller's transaction. A duplicate name
    /// in the organization is a `Conflict`.
    pub(super) async fn insert_schedule_in(
        conn: &mut <B::DB as Database>::Connection,
        schedule: &ExportSchedule,
    ) -> StoreResult<()> {
        Self::bind_state(sqlx::query(INSERT), schedule)?
            .bind(schedule.revision)
            .bind(schedule.id.as_str())
            .bind(schedule.org_id.as_str())
            .bind(micros(schedule.created_at))
            .execute(&mut *conn)
            .await
            .map_err(B::db_error)?;
        Ok(())
    }

    /// Writes `schedule` inside the caller's transaction if the stored
    /// revision is still the one before its own (what its writer read);
    /// whether it did.
    pub(super) async fn revise_schedule_in(
        conn: &mut <B::DB as Database>::Connection,
        schedule: &ExportSchedule,
    ) -> StoreResult<bool> {
        let revised = Self::saving(schedule, schedule.revision - 1)?
            .fetch_optional(&mut *conn)
            .await
            .map_err(B::db_error)?;
        Ok(revised.is_some())
    }

    pub(crate) async fn get_schedule(
        &self,
        org: &OrgId,
        id: &ScheduleId,
    ) -> StoreResult<Option<ExportSchedule>> {
        let sql = concat!(
            "SELECT ",
            schedule_columns!(),
            " FROM export_schedules WHERE org_id = $1 AND id = $2"
        );
        let row = sqlx::query(sql)
            .bind(org.as_str())
            .bind(id.as_str())
            .fetch_optional(self.0.reader())
            .await
            .map_err(B::db_error)?;
        row.map(|r| decode::schedule(&r).map(|(_, s)| s))
            .transpose()
    }

    /// Newest first.
    pub(crate) async fn list_schedules(
        &self,
        org: &OrgId,
        page: PageRequest,
    ) -> StoreResult<Page<ExportSchedule>> {
        let sql = concat!(
            "SELECT ",
            schedule_columns!(),
            " FROM export_schedules WHERE org_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
        );
        self.org_page(sql, org, page, decode::schedule).await
    }

    /// Writes `schedule` if its stored revision is `read_revision`, with
    /// the run it starts and the audit records; whether it did.
    pub(crate) async fn save_schedule(
        &self,
        schedule: &ExportSchedule,
        read_revision: i64,
        run: Option<&ExportJob>,
        audit: &[AuditRecord],
    ) -> StoreResult<bool> {
        let query = Self::saving(schedule, read_revision)?;
        let mut tx = self.0.write().await?;
        let saved = query
            .fetch_optional(&mut *tx)
            .await
            .map_err(B::db_error)?
            .is_some();
        if !saved {
            tx.rollback().await.map_err(B::db_error)?;
            return Ok(false);
        }
        if let Some(job) = run {
            Self::insert_job(&mut tx, job).await?;
        }
        let audit: Vec<&AuditRecord> = audit.iter().collect();
        B::insert_audit(&mut tx, &audit).await?;
        tx.commit().await.map_err(B::db_error)?;
        Ok(true)
    }

    /// Deletes a schedule of `org`, not its runs; whether there was one.
    pub(crate) async fn delete_schedule(
        &self,
        org: &OrgId,
        id: &ScheduleId,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        let mut tx = self.0.write().await?;
        if !Self::delete_schedule_in(&mut tx, org, id).await? {
            tx.rollback().await.map_err(B::db_error)?;
            return Ok(false);
        }
        B::insert_audit(&mut tx, &[audit]).await?;
        tx.commit().await.map_err(B::db_error)?;
        Ok(true)
    }

    /// Deletes a schedule of `org`, not its runs, inside the caller's
    /// transaction; whether there was one.
    pub(super) async fn delete_schedule_in(
        conn: &mut <B::DB as Database>::Connection,
        org: &OrgId,
        id: &ScheduleId,
    ) -> StoreResult<bool> {
        let deleted =
            sqlx::query("DELETE FROM export_schedules WHERE org_id = $1 AND id = $2 RETURNING id")
                .bind(org.as_str())
                .bind(id.as_str())
                .fetch_optional(&mut *conn)
                .await
                .map_err(B::db_error)?;
        Ok(deleted.is_some())
    }

    pub(crate) async fn due_schedules(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<ExportSchedule>> {
        let rows = sqlx::query(DUE)
            .bind(micros(now))
            .bind(i64::from(limit))
            .fetch_all(self.0.reader())
            .await
            .map_err(B::db_error)?;
        rows.iter()
            .map(|r| decode::schedule(r).map(|(_, s)| s))
            .collect()
    }

    pub(crate) async fn schedule_runs(
        &self,
        org: &OrgId,
        id: &ScheduleId,
        page: PageRequest,
    ) -> StoreResult<Page<ExportJob>> {
        let limit = page_limit(page.limit);
        let rows = sqlx::query(RUNS)
            .bind(id.as_str())
            .bind(org.as_str())
            .bind(page.after.unwrap_or(i64::MAX))
            .bind(i64::from(limit) + 1)
            .fetch_all(self.0.reader())
            .await
            .map_err(B::db_error)?;
        let rows = rows
            .iter()
            .map(decode::export_job)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_rows(rows, limit))
    }

    pub(crate) async fn schedule_busy(&self, id: &ScheduleId) -> StoreResult<bool> {
        let row = sqlx::query(BUSY)
            .bind(id.as_str())
            .fetch_optional(self.0.reader())
            .await
            .map_err(B::db_error)?;
        Ok(row.is_some())
    }

    pub(crate) async fn kept_outputs(&self, id: &ScheduleId) -> StoreResult<Vec<ExportJob>> {
        let rows = sqlx::query(KEPT)
            .bind(id.as_str())
            .fetch_all(self.0.reader())
            .await
            .map_err(B::db_error)?;
        rows.iter()
            .map(|r| decode::export_job(r).map(|(_, job)| job))
            .collect()
    }

    /// Records the first removal of a job's output, with its audit record;
    /// a second one (another process applying the same retention) changes
    /// nothing and records nothing.
    pub(crate) async fn mark_output_removed(
        &self,
        id: &ExportId,
        at: DateTime<Utc>,
        audit: &AuditRecord,
    ) -> StoreResult<()> {
        let mut tx = self.0.write().await?;
        let marked = sqlx::query(
            "UPDATE exports SET output_removed_at = $1 \
             WHERE id = $2 AND output_removed_at IS NULL RETURNING id",
        )
        .bind(micros(at))
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(B::db_error)?;
        if marked.is_none() {
            tx.rollback().await.map_err(B::db_error)?;
            return Ok(());
        }
        B::insert_audit(&mut tx, &[audit]).await?;
        tx.commit().await.map_err(B::db_error)
    }
}
