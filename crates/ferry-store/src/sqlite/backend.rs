//! What SQLite supplies to the shared statements of `crate::sql`: its
//! transactions on the single writer, and the statements whose shape is its
//! own. Batches are multi-row `VALUES` statements chunked below the bind
//! limit and kept out of the statement cache (their text varies with the
//! batch size); lists are one JSON array expanded with `json_each`. Other
//! processes never share the file's queue, so there is no one to signal.

use chrono::{DateTime, Utc};
use ferry_core::StoreError;
use ferry_core::audit::AuditRecord;
use ferry_core::crypto::Cipher;
use ferry_core::delivery::{Delivery, DeliveryStatus};
use ferry_core::destination::Health;
use ferry_core::error::StoreResult;
use ferry_core::event::NewEvent;
use ferry_core::ids::{ApiKeyId, DestinationId};
use ferry_core::ports::Completion;
use ferry_core::trace::TraceContext;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool, Transaction};

use super::{SqliteStore, id_list, rows_per_statement};
use crate::sql::queue::{AttemptRow, QueueStatements};
use crate::sql::{Backend, RowLocks, due_at};
use crate::values::{micros, opt_micros, to_json};

impl Backend for SqliteStore {
    type DB = Sqlite;

    fn reader(&self) -> &SqlitePool {
        &self.inner.reader
    }

    fn cipher(&self) -> &Cipher {
        &self.inner.cipher
    }

    fn db_error(e: sqlx::Error) -> StoreError {
        super::db_error(e)
    }

    /// On the single writer connection: its commit is fsync'd before it
    /// returns.
    async fn write(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        self.inner
            .writer
            .begin_with("PRAGMA synchronous = FULL; BEGIN IMMEDIATE")
            .await
            .map_err(super::db_error)
    }

    /// A process crash loses nothing (the WAL is in the OS cache); a power
    /// loss may forget the last leases or attempt outcomes, which only means
    /// another attempt (at-least-once). The next durable commit fsyncs the
    /// WAL, and these frames with it.
    async fn write_relaxed(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        self.inner
            .writer
            .begin_with("PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE")
            .await
            .map_err(super::db_error)
    }

    async fn signal_work(&self, _tx: &mut Transaction<'static, Sqlite>) -> StoreResult<()> {
        Ok(())
    }

    /// `BEGIN IMMEDIATE` already keeps every other writer out.
    const REQUEUE_LOCK: &'static str = "";

    const QUEUE: QueueStatements = super::queue::STATEMENTS;

    const JSON_PAGES: bool = true;

    const ROW_LOCKS: RowLocks = RowLocks::Writer;

    type TextList = String;

    fn text_list<T: AsRef<str>>(items: &[T]) -> String {
        id_list(items)
    }

    async fn move_completed(
        conn: &mut SqliteConnection,
        batch: &[Completion],
    ) -> StoreResult<Vec<(String, String)>> {
        super::queue::move_completed(conn, batch).await
    }

    async fn insert_attempts(
        conn: &mut SqliteConnection,
        attempts: &[AttemptRow<'_>],
    ) -> StoreResult<()> {
        super::queue::insert_attempts(conn, attempts).await
    }

    async fn upkeep(&self) -> StoreResult<()> {
        Ok(())
    }

    fn push_in_texts(qb: &mut QueryBuilder<Sqlite>, column: &str, ids: &[&str]) {
        qb.push(column)
            .push(" IN (SELECT value FROM json_each(")
            .push_bind(id_list(ids))
            .push("))");
    }

    fn push_in_ints(qb: &mut QueryBuilder<Sqlite>, column: &str, values: &[i64]) {
        qb.push(column)
            .push(" IN (SELECT value FROM json_each(")
            .push_bind(serde_json::Value::from(values).to_string())
            .push("))");
    }

    async fn insert_audit(
        conn: &mut SqliteConnection,
        records: &[&AuditRecord],
    ) -> StoreResult<()> {
        const COLUMNS: usize = 9;
        for chunk in records.chunks(rows_per_statement(COLUMNS)) {
            let mut encoded = Vec::with_capacity(chunk.len());
            for r in chunk {
                let before = r
                    .before
                    .as_ref()
                    .map(|v| to_json(v, "audit before"))
                    .transpose()?;
                let after = r
                    .after
                    .as_ref()
                    .map(|v| to_json(v, "audit after"))
                    .transpose()?;
                encoded.push((*r, before, after));
            }
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO audit (id, org_id, actor, at, entity_type, entity_id, action, \
                 before, after) ",
            );
            qb.push_values(encoded, |mut b, (r, before, after)| {
                b.push_bind(r.id.as_str())
                    .push_bind(r.org_id.as_str())
                    .push_bind(r.actor.as_str())
                    .push_bind(micros(r.at))
                    .push_bind(r.entity_type.as_str())
                    .push_bind(r.entity_id.as_str())
                    .push_bind(r.action.as_str())
                    .push_bind(before)
                    .push_bind(after);
            });
            qb.build()
                .persistent(false)
                .execute(&mut *conn)
                .await
                .map_err(super::db_error)?;
        }
        Ok(())
    }

    async fn insert_events(
        conn: &mut SqliteConnection,
        batch: &[&NewEvent],
    ) -> StoreResult<Vec<String>> {
        const COLUMNS: usize = 9;
        let mut inserted = Vec::with_capacity(batch.len());
        for chunk in batch.chunks(rows_per_statement(COLUMNS)) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO events (id, org_id, event_type, data, metadata, idempotency_key, \
                 created_at, traceparent, tracestate) ",
            );
            qb.push_values(chunk, |mut b, new| {
                let e = &new.event;
                b.push_bind(e.id.as_str())
                    .push_bind(e.org_id.as_str())
                    .push_bind(e.event_type.as_str())
                    .push_bind(e.data.to_string())
                    .push_bind(e.metadata.to_string())
                    .push_bind(e.idempotency_key.as_deref())
                    .push_bind(micros(e.created_at))
                    .push_bind(e.trace.as_ref().map(TraceContext::traceparent))
                    .push_bind(e.trace.as_ref().and_then(|t| t.tracestate()));
            });
            qb.push(" ON CONFLICT (id) DO NOTHING RETURNING id");
            let ids: Vec<String> = qb
                .build_query_scalar()
                .persistent(false)
                .fetch_all(&mut *conn)
                .await
                .map_err(super::db_error)?;
            inserted.extend(ids);
        }
        Ok(inserted)
    }

    async fn insert_deliveries(
        conn: &mut SqliteConnection,
        deliveries: &[&Delivery],
    ) -> StoreResult<()> {
        const COLUMNS: usize = 12;
        for chunk in deliveries.chunks(rows_per_statement(COLUMNS)) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO deliveries (id, org_id, event_id, destination_id, event_type, \
                 status, attempt_count, failures_counted, next_attempt_at, last_error, \
                 created_at, updated_at) ",
            );
            qb.push_values(chunk, |mut b, d| {
                b.push_bind(d.id.as_str())
                    .push_bind(d.org_id.as_str())
                    .push_bind(d.event_id.as_str())
                    .push_bind(d.destination_id.as_str())
                    .push_bind(d.event_type.as_str())
                    .push_bind(d.status.as_str())
                    .push_bind(i64::from(d.attempt_count))
                    .push_bind(i64::from(d.failures_counted))
                    .push_bind(opt_micros(due_at(d)))
                    .push_bind(d.last_error.as_deref())
                    .push_bind(micros(d.created_at))
                    .push_bind(micros(d.updated_at));
            });
            qb.build()
                .persistent(false)
                .execute(&mut *conn)
                .await
                .map_err(super::db_error)?;
        }
        Ok(())
    }

    /// One short statement per destination, in order, on the single writer.
    async fn write_health(&self, updates: &[(DestinationId, Health)]) -> StoreResult<()> {
        if updates.is_empty() {
            return Ok(());
        }
        let encoded = updates
            .iter()
            .map(|(id, h)| Ok((id, to_json(h, "destination health")?)))
            .collect::<StoreResult<Vec<_>>>()?;
        let mut tx = self.write().await?;
        for (id, health) in encoded {
            sqlx::query("UPDATE destinations SET health = $1 WHERE id = $2")
                .bind(health)
                .bind(id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(super::db_error)?;
        }
        tx.commit().await.map_err(super::db_error)
    }

    async fn write_key_use(&self, used: &[(ApiKeyId, DateTime<Utc>)]) -> StoreResult<()> {
        if used.is_empty() {
            return Ok(());
        }
        let mut tx = self.write().await?;
        for (id, at) in used {
            sqlx::query(
                "UPDATE api_keys SET last_used_at = MAX(COALESCE(last_used_at, $1), $1) \
                 WHERE id = $2",
            )
            .bind(micros(*at))
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(super::db_error)?;
        }
        tx.commit().await.map_err(super::db_error)
    }

    /// One row per status, kept by triggers.
    async fn count_by_status(&self) -> StoreResult<Vec<(DeliveryStatus, u64)>> {
        let rows = sqlx::query("SELECT status, n FROM delivery_counts")
            .fetch_all(self.reader())
            .await
            .map_err(super::db_error)?;
        let mut counts = Vec::with_capacity(DeliveryStatus::ALL.len());
        for row in &rows {
            let status: &str = row.try_get("status").map_err(super::db_error)?;
            let n: i64 = row.try_get("n").map_err(super::db_error)?;
            let status = status.parse().map_err(StoreError::Corrupt)?;
            counts.push((status, u64::try_from(n).unwrap_or(0)));
        }
        counts.sort_by_key(|(s, _)| DeliveryStatus::ALL.iter().position(|a| a == s));
        Ok(counts)
    }
}
