//! What PostgreSQL supplies to the shared statements of `crate::sql`: its
//! transactions, `NOTIFY` for workers in other processes, and the
//! statements whose shape is its own. Batches and lists are bound as arrays
//! and expanded with `UNNEST` (`= ANY($n)` for lists): one fixed SQL text per
//! statement whatever the batch size, so statements stay in the
//! prepared-statement cache, and no limit on binds; `WITH ORDINALITY` keeps
//! the caller's row order, and with it the order of `seq`.

use std::collections::HashMap;

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
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder, Row, Transaction};

use super::{PgStore, id_array};
use crate::sql::queue::{AttemptRow, QueueStatements};
use crate::sql::{Backend, RowLocks, due_at};
use crate::values::{micros, opt_micros, to_json};

impl Backend for PgStore {
    type DB = Postgres;

    fn reader(&self) -> &PgPool {
        &self.inner.pool
    }

    fn cipher(&self) -> &Cipher {
        &self.inner.cipher
    }

    fn db_error(e: sqlx::Error) -> StoreError {
        super::db_error(e)
    }

    /// Commits with the server's `synchronous_commit` (on by default:
    /// flushed before the commit returns).
    async fn write(&self) -> StoreResult<Transaction<'static, Postgres>> {
        self.inner.pool.begin().await.map_err(super::db_error)
    }

    /// `synchronous_commit = off`: a server crash may forget the last few,
    /// which only means another attempt (at-least-once).
    async fn write_relaxed(&self) -> StoreResult<Transaction<'static, Postgres>> {
        self.inner
            .pool
            .begin_with("BEGIN; SET LOCAL synchronous_commit = off")
            .await
            .map_err(super::db_error)
    }

    /// `pg_notify` on this schema's channel: delivered when `tx` commits.
    async fn signal_work(&self, tx: &mut Transaction<'static, Postgres>) -> StoreResult<()> {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(&self.inner.channel)
            .execute(&mut **tx)
            .await
            .map_err(super::db_error)?;
        Ok(())
    }

    /// Locked until the update, so that no worker leases one in between.
    const REQUEUE_LOCK: &'static str = " ORDER BY seq FOR UPDATE OF deliveries";

    const QUEUE: QueueStatements = super::queue::STATEMENTS;

    const JSON_PAGES: bool = false;

    const ROW_LOCKS: RowLocks = RowLocks::ForUpdate;

    type TextList = Vec<String>;

    fn text_list<T: AsRef<str>>(items: &[T]) -> Vec<String> {
        items.iter().map(|i| i.as_ref().to_owned()).collect()
    }

    async fn move_completed(
        conn: &mut PgConnection,
        batch: &[Completion],
    ) -> StoreResult<Vec<(String, String)>> {
        super::queue::move_completed(conn, batch).await
    }

    async fn insert_attempts(
        conn: &mut PgConnection,
        attempts: &[AttemptRow<'_>],
    ) -> StoreResult<()> {
        super::queue::insert_attempts(conn, attempts).await
    }

    /// Folds the delivery count deltas (see `compact_counts`).
    async fn upkeep(&self) -> StoreResult<()> {
        self.compact_counts().await
    }

    fn push_in_texts(qb: &mut QueryBuilder<Postgres>, column: &str, ids: &[&str]) {
        qb.push(column)
            .push(" = ANY(")
            .push_bind(id_array(ids))
            .push(")");
    }

    fn push_in_ints(qb: &mut QueryBuilder<Postgres>, column: &str, values: &[i64]) {
        qb.push(column)
            .push(" = ANY(")
            .push_bind(values.to_vec())
            .push(")");
    }

    /// Inserts `records` on `conn` (inside the caller's transaction), in order,
    /// with one statement.
    async fn insert_audit(conn: &mut PgConnection, records: &[&AuditRecord]) -> StoreResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        let n = records.len();
        let (mut ids, mut orgs, mut actors, mut ats) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut types, mut entities, mut actions, mut befores, mut afters) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for r in records {
            ids.push(r.id.as_str());
            orgs.push(r.org_id.as_str());
            actors.push(r.actor.as_str());
            ats.push(micros(r.at));
            types.push(r.entity_type.as_str());
            entities.push(r.entity_id.as_str());
            actions.push(r.action.as_str());
            befores.push(
                r.before
                    .as_ref()
                    .map(|v| to_json(v, "audit before"))
                    .transpose()?,
            );
            afters.push(
                r.after
                    .as_ref()
                    .map(|v| to_json(v, "audit after"))
                    .transpose()?,
            );
        }
        sqlx::query(
            "INSERT INTO audit (id, org_id, actor, at, entity_type, entity_id, action, before, after) \
             SELECT id, org_id, actor, at, entity_type, entity_id, action, before, after \
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::text[], \
                         $7::text[], $8::text[], $9::text[]) WITH ORDINALITY \
                  AS v (id, org_id, actor, at, entity_type, entity_id, action, before, after, ord) \
             ORDER BY ord",
        )
        .bind(ids)
        .bind(orgs)
        .bind(actors)
        .bind(ats)
        .bind(types)
        .bind(entities)
        .bind(actions)
        .bind(befores)
        .bind(afters)
        .execute(&mut *conn)
        .await
        .map_err(super::db_error)?;
        Ok(())
    }

    /// Inserts new delivery rows on `conn` (inside the caller's transaction), in
    /// order, with one statement. A waiting delivery without a due time is due
    /// when it was created.
    async fn insert_deliveries(
        conn: &mut PgConnection,
        deliveries: &[&Delivery],
    ) -> StoreResult<()> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let n = deliveries.len();
        let mut ids = Vec::with_capacity(n);
        let mut orgs = Vec::with_capacity(n);
        let mut events = Vec::with_capacity(n);
        let mut destinations = Vec::with_capacity(n);
        let mut types = Vec::with_capacity(n);
        let mut statuses = Vec::with_capacity(n);
        let mut attempts = Vec::with_capacity(n);
        let mut failures = Vec::with_capacity(n);
        let mut nexts = Vec::with_capacity(n);
        let mut errors = Vec::with_capacity(n);
        let mut created = Vec::with_capacity(n);
        let mut updated = Vec::with_capacity(n);
        for d in deliveries {
            let next = due_at(d);
            ids.push(d.id.as_str());
            orgs.push(d.org_id.as_str());
            events.push(d.event_id.as_str());
            destinations.push(d.destination_id.as_str());
            types.push(d.event_type.as_str());
            statuses.push(d.status.as_str());
            attempts.push(i64::from(d.attempt_count));
            failures.push(i64::from(d.failures_counted));
            nexts.push(opt_micros(next));
            errors.push(d.last_error.as_deref());
            created.push(micros(d.created_at));
            updated.push(micros(d.updated_at));
        }
        sqlx::query(
            "INSERT INTO deliveries (id, org_id, event_id, destination_id, event_type, status, \
             attempt_count, failures_counted, next_attempt_at, last_error, created_at, updated_at) \
             SELECT id, org_id, event_id, destination_id, event_type, status, attempt_count, \
             failures_counted, next_attempt_at, last_error, created_at, updated_at \
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
                         $7::int8[], $8::int8[], $9::int8[], $10::text[], $11::int8[], $12::int8[]) \
                  WITH ORDINALITY AS v (id, org_id, event_id, destination_id, event_type, status, \
                      attempt_count, failures_counted, next_attempt_at, last_error, created_at, \
                      updated_at, ord) \
             ORDER BY ord",
        )
        .bind(ids)
        .bind(orgs)
        .bind(events)
        .bind(destinations)
        .bind(types)
        .bind(statuses)
        .bind(attempts)
        .bind(failures)
        .bind(nexts)
        .bind(errors)
        .bind(created)
        .bind(updated)
        .execute(&mut *conn)
        .await
        .map_err(super::db_error)?;
        Ok(())
    }

    /// Deliveries per status: the sum of the per-statement deltas that the
    /// triggers append (see the migration), every status present.
    async fn count_by_status(&self) -> StoreResult<Vec<(DeliveryStatus, u64)>> {
        self.compact_counts().await?;
        let rows = sqlx::query(
            "SELECT status, SUM(n)::BIGINT AS n FROM delivery_count_deltas GROUP BY status",
        )
        .fetch_all(self.pool())
        .await
        .map_err(super::db_error)?;
        let mut counts: Vec<(DeliveryStatus, u64)> =
            DeliveryStatus::ALL.iter().map(|s| (*s, 0)).collect();
        for row in &rows {
            let status: &str = row.try_get("status").map_err(super::db_error)?;
            let n: i64 = row.try_get("n").map_err(super::db_error)?;
            let status: DeliveryStatus = status.parse().map_err(ferry_core::StoreError::Corrupt)?;
            if let Some(slot) = counts.iter_mut().find(|(s, _)| *s == status) {
                slot.1 = u64::try_from(n).unwrap_or(0);
            }
        }
        Ok(counts)
    }

    /// One statement for the whole batch; when a destination appears more than
    /// once, its last update wins (as if applied in order).
    async fn write_health(&self, updates: &[(DestinationId, Health)]) -> StoreResult<()> {
        if updates.is_empty() {
            return Ok(());
        }
        let mut last: HashMap<&str, &Health> = HashMap::with_capacity(updates.len());
        for (id, h) in updates {
            last.insert(id.as_str(), h);
        }
        let mut ids = Vec::with_capacity(last.len());
        let mut healths = Vec::with_capacity(last.len());
        for (id, h) in last {
            ids.push(id);
            healths.push(to_json(h, "destination health")?);
        }
        sqlx::query(
            "UPDATE destinations d SET health = v.health \
             FROM UNNEST($1::text[], $2::text[]) AS v (id, health) WHERE d.id = v.id",
        )
        .bind(ids)
        .bind(healths)
        .execute(self.pool())
        .await
        .map_err(super::db_error)?;
        Ok(())
    }

    /// One statement for the whole batch; a key used several times keeps its
    /// latest use, and `last_used_at` never moves backwards (batches from
    /// several processes may arrive late).
    async fn write_key_use(&self, used: &[(ApiKeyId, DateTime<Utc>)]) -> StoreResult<()> {
        if used.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = used.iter().map(|(id, _)| id.as_str()).collect();
        let ats: Vec<i64> = used.iter().map(|(_, at)| micros(*at)).collect();
        sqlx::query(
            "UPDATE api_keys k SET last_used_at = GREATEST(COALESCE(k.last_used_at, u.at), u.at) \
             FROM (SELECT id, MAX(at) AS at FROM UNNEST($1::text[], $2::int8[]) AS v (id, at) \
                   GROUP BY id) AS u \
             WHERE k.id = u.id",
        )
        .bind(ids)
        .bind(ats)
        .execute(self.pool())
        .await
        .map_err(super::db_error)?;
        Ok(())
    }

    async fn insert_events(
        conn: &mut PgConnection,
        batch: &[&NewEvent],
    ) -> StoreResult<Vec<String>> {
        let n = batch.len();
        let (mut ids, mut orgs, mut types, mut data) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut metadata, mut keys, mut created) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut parents, mut states) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for new in batch {
            let e = &new.event;
            ids.push(e.id.as_str());
            orgs.push(e.org_id.as_str());
            types.push(e.event_type.as_str());
            data.push(e.data.to_string());
            metadata.push(e.metadata.to_string());
            keys.push(e.idempotency_key.as_deref());
            created.push(micros(e.created_at));
            parents.push(e.trace.as_ref().map(TraceContext::traceparent));
            states.push(e.trace.as_ref().and_then(|t| t.tracestate()));
        }
        // A concurrent transaction inserting the same id makes this one wait
        // for its outcome: committed means "already stored" here. Rows go in
        // in id order, so that two batches sharing ids (the same events sent
        // to two ingest processes) wait for each other in one direction only
        // and never deadlock.
        sqlx::query_scalar(
            "INSERT INTO events (id, org_id, event_type, data, metadata, idempotency_key, \
             created_at, traceparent, tracestate) \
             SELECT id, org_id, event_type, data, metadata, idempotency_key, created_at, \
                    traceparent, tracestate \
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
                         $6::text[], $7::int8[], $8::text[], $9::text[]) \
                  AS v (id, org_id, event_type, data, metadata, idempotency_key, created_at, \
                        traceparent, tracestate) \
             ORDER BY id \
             ON CONFLICT (id) DO NOTHING RETURNING id",
        )
        .bind(ids)
        .bind(orgs)
        .bind(types)
        .bind(data)
        .bind(metadata)
        .bind(keys)
        .bind(created)
        .bind(parents)
        .bind(states)
        .fetch_all(&mut *conn)
        .await
        .map_err(super::db_error)
    }
}

impl PgStore {
    /// Folds the count deltas into one row per status. One process at a time
    /// (a transaction-scoped advisory lock; the others skip); deltas appended
    /// concurrently are not visible to the fold and stay for the next one, so
    /// the sums never change.
    pub(super) async fn compact_counts(&self) -> StoreResult<()> {
        let mut tx = self.write_relaxed().await?;
        let ours: bool = sqlx::query_scalar(
            "SELECT pg_try_advisory_xact_lock(hashtext(current_schema() || '.delivery_count_deltas'))",
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(super::db_error)?;
        if ours {
            sqlx::query(
                "WITH gone AS (DELETE FROM delivery_count_deltas RETURNING status, n) \
                 INSERT INTO delivery_count_deltas (status, n) \
                 SELECT status, SUM(n) FROM gone GROUP BY status HAVING SUM(n) <> 0",
            )
            .execute(&mut *tx)
            .await
            .map_err(super::db_error)?;
        }
        tx.commit().await.map_err(super::db_error)
    }
}
