//! Export jobs (the `ExportStore` port's job half). A job's status moves
//! only from the states `ExportStatus::comes_from` names, checked in the
//! `UPDATE` itself, so that a cancel and a finishing runner on different
//! processes cannot both win. Progress is written relaxed (a lost progress
//! update is harmless) and doubles as the runner's heartbeat.

use chrono::{DateTime, Utc};
use ferry_core::StoreError;
use ferry_core::audit::AuditRecord;
use ferry_core::error::StoreResult;
use ferry_core::export::{ExportJob, ExportProgress};
use ferry_core::ids::{ExportId, OrgId};
use ferry_core::page::{Page, PageRequest};
use sqlx::{Database, Encode, Executor, IntoArguments, QueryBuilder, Type};

use super::decode::{self, Columns};
use super::{Backend, Tables};
use crate::rows::export_columns;
use crate::values::{micros, opt_micros};

fn count(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

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
{
    pub(crate) async fn insert_export(
        &self,
        job: &ExportJob,
        audit: &AuditRecord,
    ) -> StoreResult<()> {
        let mut tx = self.0.write().await?;
        Self::insert_job(&mut tx, job).await?;
        B::insert_audit(&mut tx, &[audit]).await?;
        tx.commit().await.map_err(B::db_error)
    }

    /// Inserts a new job inside the caller's transaction. A second job for
    /// the same run of a schedule is refused (a `Conflict`).
    pub(super) async fn insert_job(
        conn: &mut <B::DB as Database>::Connection,
        job: &ExportJob,
    ) -> StoreResult<()> {
        let spec = serde_json::to_string(&job.spec)
            .map_err(|e| StoreError::Corrupt(format!("export spec: {e}")))?;
        sqlx::query(
            "INSERT INTO exports (id, org_id, schedule_id, status, spec, rows_written, \
             bytes_written, created_at, updated_at, scheduled_for, attempt, output_removed_at, \
             incremental_key) VALUES ($1, $2, $3, $4, $5, 0, 0, $6, $6, $7, $8, $9, $10)",
        )
        .bind(job.id.as_str())
        .bind(job.org_id.as_str())
        .bind(job.schedule_id.as_ref().map(|id| id.as_str()))
        .bind(job.status.as_str())
        .bind(spec)
        .bind(micros(job.created_at))
        .bind(job.run.map(|r| micros(r.scheduled_for)))
        .bind(job.run.map(|r| i64::from(r.attempt)))
        .bind(opt_micros(job.output_removed_at))
        .bind(job.incremental_key.as_deref())
        .execute(&mut *conn)
        .await
        .map_err(B::db_error)?;
        Ok(())
    }

    pub(crate) async fn get_export(
        &self,
        org: &OrgId,
        id: &ExportId,
    ) -> StoreResult<Option<ExportJob>> {
        let sql = concat!(
            "SELECT ",
            export_columns!(),
            " FROM exports WHERE org_id = $1 AND id = $2"
        );
        let row = sqlx::query(sql)
            .bind(org.as_str())
            .bind(id.as_str())
            .fetch_optional(self.0.reader())
            .await
            .map_err(B::db_error)?;
        row.map(|r| decode::export_job(&r).map(|(_, job)| job))
            .transpose()
    }

    /// Newest first.
    pub(crate) async fn list_exports(
        &self,
        org: &OrgId,
        page: PageRequest,
    ) -> StoreResult<Page<ExportJob>> {
        let sql = concat!(
            "SELECT ",
            export_columns!(),
            " FROM exports WHERE org_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
        );
        self.org_page(sql, org, page, decode::export_job).await
    }

    /// The newest succeeded job with `key`.
    pub(crate) async fn last_incremental(
        &self,
        org: &OrgId,
        key: &str,
    ) -> StoreResult<Option<ExportJob>> {
        let sql = concat!(
            "SELECT ",
            export_columns!(),
            " FROM exports WHERE org_id = $1 AND incremental_key = $2 \
             AND status = 'succeeded' ORDER BY seq DESC LIMIT 1"
        );
        let row = sqlx::query(sql)
            .bind(org.as_str())
            .bind(key)
            .fetch_optional(self.0.reader())
            .await
            .map_err(B::db_error)?;
        row.map(|r| decode::export_job(&r).map(|(_, job)| job))
            .transpose()
    }

    pub(crate) async fn transition_export(
        &self,
        job: &ExportJob,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<bool> {
        let output = job.output.as_ref();
        let mut qb = QueryBuilder::<B::DB>::new("UPDATE exports SET status = ");
        qb.push_bind(job.status.as_str())
            .push(", rows_written = ")
            .push_bind(count(job.progress.rows))
            .push(", bytes_written = ")
            .push_bind(count(job.progress.bytes))
            .push(", total_rows = ")
            .push_bind(job.progress.total_rows.map(count))
            .push(", uncompressed_bytes = ")
            .push_bind(output.map(|o| count(o.uncompressed_bytes)))
            .push(", sha256 = ")
            .push_bind(output.map(|o| o.sha256.clone()))
            .push(", location = ")
            .push_bind(output.map(|o| o.location.clone()))
            .push(", error = ")
            .push_bind(job.error.clone())
            .push(", started_at = ")
            .push_bind(opt_micros(job.started_at))
            .push(", finished_at = ")
            .push_bind(opt_micros(job.finished_at))
            .push(", updated_at = ")
            .push_bind(micros(Utc::now()))
            .push(" WHERE id = ")
            .push_bind(job.id.as_str())
            .push(" AND status IN (");
        let mut from = qb.separated(", ");
        for status in job.status.comes_from() {
            from.push_bind(status.as_str());
        }
        qb.push(") RETURNING id");
        let mut tx = self.0.write().await?;
        let moved = qb
            .build()
            .fetch_optional(&mut *tx)
            .await
            .map_err(B::db_error)?
            .is_some();
        if !moved {
            tx.rollback().await.map_err(B::db_error)?;
            return Ok(false);
        }
        if let Some(audit) = audit {
            B::insert_audit(&mut tx, &[audit]).await?;
        }
        tx.commit().await.map_err(B::db_error)?;
        Ok(true)
    }

    pub(crate) async fn save_export_progress(
        &self,
        id: &ExportId,
        progress: &ExportProgress,
    ) -> StoreResult<bool> {
        let mut tx = self.0.write_relaxed().await?;
        let running = sqlx::query(
            "UPDATE exports SET rows_written = $1, bytes_written = $2, total_rows = $3, \
             updated_at = $4 WHERE id = $5 AND status = 'running' RETURNING id",
        )
        .bind(count(progress.rows))
        .bind(count(progress.bytes))
        .bind(progress.total_rows.map(count))
        .bind(micros(Utc::now()))
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(B::db_error)?
        .is_some();
        tx.commit().await.map_err(B::db_error)?;
        Ok(running)
    }

    pub(crate) async fn active_exports(&self, org: &OrgId) -> StoreResult<u64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM exports WHERE org_id = $1 \
             AND status IN ('queued', 'running')",
        )
        .bind(org.as_str())
        .fetch_one(self.0.reader())
        .await
        .map_err(B::db_error)?;
        Ok(u64::try_from(row.int("n")?).unwrap_or(0))
    }

    pub(crate) async fn stale_exports(&self, before: DateTime<Utc>) -> StoreResult<Vec<ExportJob>> {
        let sql = concat!(
            "SELECT ",
            export_columns!(),
            " FROM exports WHERE status IN ('queued', 'running') AND updated_at < $1 \
             ORDER BY seq"
        );
        let rows = sqlx::query(sql)
            .bind(micros(before))
            .fetch_all(self.0.reader())
            .await
            .map_err(B::db_error)?;
        rows.iter()
            .map(|r| decode::export_job(r).map(|(_, job)| job))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use ferry_core::export::ExportStatus;

    /// The SQL's status lists name the statuses the core calls active.
    #[test]
    fn active_statuses_match_the_core() {
        let active: Vec<&str> = ExportStatus::ALL
            .into_iter()
            .filter(|s| s.is_active())
            .map(ExportStatus::as_str)
            .collect();
        assert_eq!(active, ["queued", "running"]);
    }
}
