//! Delivery metrics history (the `MetricsStore` port). Rows are only ever
//! inserted — one per destination and bucket in each flush — and summed
//! when read, so writers in several processes need no upsert nor lock to
//! keep every count. Compaction takes the rows it folds with `DELETE …
//! RETURNING` and writes their sums in the same transaction: a row deleted
//! by one process is not returned to another that compacts at the same time
//! (PostgreSQL re-checks a row deleted meanwhile and skips it; SQLite has
//! one writer), so nothing is counted twice.

use chrono::{DateTime, Duration, Utc};
use ferry_core::error::StoreResult;
use ferry_core::ids::OrgId;
use ferry_core::metrics::{Bucket, Histogram, MetricsQuery, MetricsRetention, Rollup, roll_up};
use sqlx::{Database, Encode, Executor, IntoArguments, Type};

use super::decode::{self, Columns, corrupt};
use super::{Backend, Tables};
use crate::values::{micros, to_json};

const COLUMNS: &str = "org_id, destination_id, bucket, bucket_start, attempts, delivered, \
     retried, dead, attempt_latency, end_to_end";

const INSERT: &str = "INSERT INTO metric_rollups (org_id, destination_id, bucket, bucket_start, \
     attempts, delivered, retried, dead, attempt_latency, end_to_end) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

/// The stored bucket sizes a read of `bucket` merges: itself and finer.
fn stored_for(bucket: Bucket) -> &'static str {
    match bucket {
        Bucket::Minute => "('minute')",
        Bucket::Hour => "('minute', 'hour')",
        Bucket::Day => "('minute', 'hour', 'day')",
    }
}

/// The read of an organization's rollups of `bucket` and finer from `$2`
/// to before `$3`; of one destination (`$4`) when `one`. Only static text
/// is formatted into it.
pub(crate) fn read_statement(bucket: Bucket, one: bool) -> String {
    let one = if one { " AND destination_id = $4" } else { "" };
    format!(
        "SELECT {COLUMNS} FROM metric_rollups WHERE org_id = $1 AND bucket IN {} \
         AND bucket_start >= $2 AND bucket_start < $3{one}",
        stored_for(bucket)
    )
}

/// Takes the rollups of one bucket size (`$1`) starting before `$2`.
pub(crate) fn fold_statement() -> String {
    format!(
        "DELETE FROM metric_rollups WHERE bucket = $1 AND bucket_start < $2 RETURNING {COLUMNS}"
    )
}

fn count(row: &impl Columns, column: &str) -> StoreResult<u64> {
    u64::try_from(row.int(column)?).map_err(|e| corrupt(column, e))
}

fn histogram(row: &impl Columns, column: &str) -> StoreResult<Histogram> {
    serde_json::from_str::<Histogram>(row.text(column)?)
        .map(Histogram::sanitized)
        .map_err(|e| corrupt(column, e))
}

fn rollup(row: &impl Columns) -> StoreResult<Rollup> {
    let bucket = row.text("bucket")?;
    Ok(Rollup {
        org_id: decode::parsed(row, "org_id")?,
        destination_id: decode::parsed(row, "destination_id")?,
        bucket: Bucket::parse(bucket).ok_or_else(|| corrupt("bucket", "unknown bucket"))?,
        start: decode::time(row, "bucket_start")?,
        attempts: count(row, "attempts")?,
        delivered: count(row, "delivered")?,
        retried: count(row, "retried")?,
        dead: count(row, "dead")?,
        attempt_latency: histogram(row, "attempt_latency")?,
        end_to_end: histogram(row, "end_to_end")?,
    })
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl<B> Tables<'_, B>
where
    B: Backend,
    <B::DB as Database>::Arguments: IntoArguments<B::DB>,
    <B::DB as Database>::Row: Columns,
    for<'c> &'c mut <B::DB as Database>::Connection: Executor<'c, Database = B::DB>,
    for<'q> &'q str: Encode<'q, B::DB> + Type<B::DB>,
    for<'q> String: Encode<'q, B::DB> + Type<B::DB>,
    for<'q> i64: Encode<'q, B::DB> + Type<B::DB>,
{
    async fn insert_rollups(
        conn: &mut <B::DB as Database>::Connection,
        rows: &[Rollup],
    ) -> StoreResult<()> {
        for r in rows {
            sqlx::query(INSERT)
                .bind(r.org_id.as_str())
                .bind(r.destination_id.as_str())
                .bind(r.bucket.as_str())
                .bind(micros(r.start))
                .bind(int(r.attempts))
                .bind(int(r.delivered))
                .bind(int(r.retried))
                .bind(int(r.dead))
                .bind(to_json(&r.attempt_latency, "histogram")?)
                .bind(to_json(&r.end_to_end, "histogram")?)
                .execute(&mut *conn)
                .await
                .map_err(B::db_error)?;
        }
        Ok(())
    }

    pub(crate) async fn add_rollups(&self, rows: &[Rollup]) -> StoreResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.0.write_relaxed().await?;
        Self::insert_rollups(&mut tx, rows).await?;
        tx.commit().await.map_err(B::db_error)
    }

    pub(crate) async fn rollups(
        &self,
        org: &OrgId,
        query: &MetricsQuery,
    ) -> StoreResult<Vec<Rollup>> {
        let size = query.bucket;
        // Whole buckets: from the one `since` falls in to the one before
        // `until` ends.
        let from = size.start_of(query.since);
        let to = size.start_of(query.until - Duration::microseconds(1)) + size.duration();
        let sql = read_statement(size, query.destination_id.is_some());
        // Only static text is formatted into the statement.
        let mut select = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(org.as_str())
            .bind(micros(from))
            .bind(micros(to));
        if let Some(id) = &query.destination_id {
            select = select.bind(id.as_str());
        }
        let rows = select
            .fetch_all(self.0.reader())
            .await
            .map_err(B::db_error)?;
        let rows = rows.iter().map(rollup).collect::<StoreResult<Vec<_>>>()?;
        let mut merged = roll_up(rows, size);
        merged.retain(|r| r.start >= from && r.start < query.until);
        Ok(merged)
    }

    pub(crate) async fn first_rollup_at(&self, org: &OrgId) -> StoreResult<Option<DateTime<Utc>>> {
        let row =
            sqlx::query("SELECT MIN(bucket_start) AS first FROM metric_rollups WHERE org_id = $1")
                .bind(org.as_str())
                .fetch_one(self.0.reader())
                .await
                .map_err(B::db_error)?;
        row.opt_int("first")?
            .map(|t| decode::from_micros(t, "first"))
            .transpose()
    }

    pub(crate) async fn compact_rollups(
        &self,
        now: DateTime<Utc>,
        retention: &MetricsRetention,
    ) -> StoreResult<u64> {
        let mut gone = 0;
        for size in [Bucket::Minute, Bucket::Hour] {
            let Some(coarser) = size.coarser() else {
                continue;
            };
            let sql = fold_statement();
            let mut tx = self.0.write_relaxed().await?;
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(size.as_str())
                .bind(micros(retention.cutoff(size, now)))
                .fetch_all(&mut *tx)
                .await
                .map_err(B::db_error)?;
            if rows.is_empty() {
                tx.rollback().await.map_err(B::db_error)?;
                continue;
            }
            gone += rows.len() as u64;
            let rows = rows.iter().map(rollup).collect::<StoreResult<Vec<_>>>()?;
            // Destination ids are unique across organizations, so each
            // folded row keeps its own organization.
            let folded = roll_up(rows, coarser);
            Self::insert_rollups(&mut tx, &folded).await?;
            tx.commit().await.map_err(B::db_error)?;
        }
        let mut tx = self.0.write_relaxed().await?;
        let deleted = sqlx::query(
            "DELETE FROM metric_rollups WHERE bucket = 'day' AND bucket_start < $1 \
             RETURNING bucket",
        )
        .bind(micros(retention.cutoff(Bucket::Day, now)))
        .fetch_all(&mut *tx)
        .await
        .map_err(B::db_error)?;
        tx.commit().await.map_err(B::db_error)?;
        Ok(gone + deleted.len() as u64)
    }
}
