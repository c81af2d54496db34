//! The delivery queue, kept in the deliveries table: leasing (claim after
//! ingest, due one destination's probe), completing attempts in
//! batches, and giving leases back (release, expiry, takeover).
//!
//! A lease is `status = 'delivering'` with `lease_owner` and
//! `lease_expires_at`. A completion moves a delivery only while its lease is
//! still held by the completing owner; the attempt is recorded either way.
//! A delivery given back (released or reclaimed) is due at the earlier of
//! its previous due time and now, so it keeps its place in the queue.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use ferry_core::StoreError;
use ferry_core::audit::AuditRecord;
use ferry_core::delivery::{DeliveryStatus, Leased};
use ferry_core::error::StoreResult;
use ferry_core::event::Event;
use ferry_core::ids::{DeliveryId, DestinationId, EventId};
use ferry_core::ports::{Completion, Lease, Reclaim};
use sqlx::{QueryBuilder, Row, Sqlite};

use super::{SqliteStore, db_error, id_list, rows_per_statement};
use crate::deleted;
use crate::rows::delivery_columns;
use crate::sql::{Backend, Tables, decode};
use crate::values::{micros, opt_micros, to_json};

/// The queue's statements, named so that a test can check their query plans.
pub(super) mod sql {
    use super::delivery_columns;
    use crate::deleted::deleted_error;

    /// Sets the lease on the rows the statement's WHERE clause picks.
    macro_rules! lease_set {
        () => {
            "UPDATE deliveries SET status = 'delivering', lease_owner = ?1, \
             lease_expires_at = ?2, updated_at = ?3 "
        };
    }

    /// Whether the row's destination still exists.
    macro_rules! destination_exists {
        () => {
            "EXISTS (SELECT 1 FROM destinations t WHERE t.id = deliveries.destination_id)"
        };
    }

    /// Gives leases back, due at the earlier of their due time and ?1; a
    /// delivery whose destination was deleted meanwhile fails instead.
    macro_rules! give_back {
        () => {
            concat!(
                "UPDATE deliveries SET status = CASE WHEN ",
                destination_exists!(),
                " THEN 'pending' ELSE 'failed' END, next_attempt_at = CASE WHEN ",
                destination_exists!(),
                " THEN MIN(COALESCE(next_attempt_at, ?1), ?1) END, last_error = CASE WHEN ",
                destination_exists!(),
                " THEN last_error ELSE '",
                deleted_error!(),
                "' END, lease_owner = NULL, lease_expires_at = NULL, updated_at = ?1 \
                 WHERE status = 'delivering' "
            )
        };
    }

    /// A completion's target status (`v.column3`), or `failed` when the
    /// attempt did not deliver and the destination was deleted meanwhile.
    macro_rules! abandoned {
        () => {
            concat!(
                "(v.column3 <> 'delivered' AND NOT ",
                destination_exists!(),
                ")"
            )
        };
    }

    pub const COMPLETE_SET: &str = concat!(
        "UPDATE deliveries SET status = CASE WHEN ",
        abandoned!(),
        " THEN 'failed' ELSE v.column3 END, next_attempt_at = CASE WHEN ",
        abandoned!(),
        " THEN NULL ELSE v.column4 END, last_error = CASE WHEN ",
        abandoned!(),
        " THEN '",
        deleted_error!(),
        "' ELSE v.column5 END, attempt_count = attempt_count + 1, \
         failures_counted = failures_counted + v.column6, lease_owner = NULL, \
         lease_expires_at = NULL, updated_at = v.column7 FROM ("
    );

    pub const CLAIM: &str = concat!(
        lease_set!(),
        "WHERE id IN (SELECT value FROM json_each(?4)) AND status = 'pending' RETURNING id"
    );

    pub const LEASE_DUE: &str = concat!(
        lease_set!(),
        "WHERE seq IN (SELECT seq FROM deliveries \
             WHERE status IN ('pending', 'retrying') AND next_attempt_at <= ?3 \
             ORDER BY next_attempt_at LIMIT ?4) \
         RETURNING ",
        delivery_columns!()
    );

    pub const LEASE_DUE_EXCLUDING: &str = concat!(
        lease_set!(),
        "WHERE seq IN (SELECT d.seq FROM destinations t JOIN deliveries d ON d.seq IN ( \
                 SELECT x.seq FROM deliveries x WHERE x.destination_id = t.id \
                 AND x.status IN ('pending', 'retrying') AND x.next_attempt_at <= ?3 \
                 ORDER BY x.next_attempt_at LIMIT ?4) \
             WHERE t.id NOT IN (SELECT value FROM json_each(?5)) \
             ORDER BY d.next_attempt_at LIMIT ?4) \
         RETURNING ",
        delivery_columns!()
    );

    pub const LEASE_DESTINATION: &str = concat!(
        lease_set!(),
        "WHERE seq IN (SELECT seq FROM deliveries \
             WHERE destination_id = ?4 AND status IN ('pending', 'retrying') \
             ORDER BY next_attempt_at LIMIT ?5) \
         RETURNING ",
        delivery_columns!()
    );

    pub const RELEASE: &str = concat!(
        give_back!(),
        "AND id IN (SELECT value FROM json_each(?2)) AND lease_owner = ?3"
    );

    pub const RECLAIM_EXPIRED: &str = concat!(give_back!(), "AND lease_expires_at < ?2");

    pub const RECLAIM_FOREIGN: &str = concat!(give_back!(), "AND lease_owner IS NOT ?2");

    pub const NEXT_DUE: &str = "SELECT MIN(next_attempt_at) AS due FROM deliveries \
         WHERE status IN ('pending', 'retrying')";

    pub const NEXT_DUE_EXCLUDING: &str = "SELECT MIN((SELECT MIN(d.next_attempt_at) \
             FROM deliveries d \
             WHERE d.destination_id = t.id AND d.status IN ('pending', 'retrying'))) AS due \
         FROM destinations t WHERE t.id NOT IN (SELECT value FROM json_each(?1))";
}

pub(super) async fn claim(
    store: &SqliteStore,
    ids: &[DeliveryId],
    lease: &Lease,
) -> StoreResult<Vec<DeliveryId>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = store.write_relaxed().await?;
    let claimed: Vec<String> = sqlx::query_scalar(sql::CLAIM)
        .bind(lease.owner.as_str())
        .bind(micros(lease.until))
        .bind(micros(lease.now))
        .bind(id_list(ids))
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    let claimed: HashSet<String> = claimed.into_iter().collect();
    // In the caller's order, each id once.
    let mut seen = HashSet::with_capacity(claimed.len());
    Ok(ids
        .iter()
        .filter(|id| claimed.contains(id.as_str()) && seen.insert(id.as_str()))
        .cloned()
        .collect())
}

/// Leases due oldest due first. Without exclusions one ordered
/// walk of the due index suffices. With exclusions, that walk would step
/// over every due delivery of an excluded (paused or saturated) destination,
/// however long its backlog; instead each other destination contributes its
/// own oldest `limit` due deliveries and the oldest `limit` of those win —
/// the same answer at a cost bounded by destinations × limit.
pub(super) async fn lease_due(
    store: &SqliteStore,
    limit: u32,
    lease: &Lease,
    exclude: &[DestinationId],
) -> StoreResult<Vec<Leased>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let mut tx = store.write_relaxed().await?;
    let rows = if exclude.is_empty() {
        sqlx::query(sql::LEASE_DUE)
            .bind(lease.owner.as_str())
            .bind(micros(lease.until))
            .bind(micros(lease.now))
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await
    } else {
        sqlx::query(sql::LEASE_DUE_EXCLUDING)
            .bind(lease.owner.as_str())
            .bind(micros(lease.until))
            .bind(micros(lease.now))
            .bind(i64::from(limit))
            .bind(id_list(exclude))
            .fetch_all(&mut *tx)
            .await
    }
    .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    with_events(store, rows).await
}

pub(super) async fn lease_destination(
    store: &SqliteStore,
    id: &DestinationId,
    limit: u32,
    lease: &Lease,
) -> StoreResult<Vec<Leased>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let mut tx = store.write_relaxed().await?;
    let rows = sqlx::query(sql::LEASE_DESTINATION)
        .bind(lease.owner.as_str())
        .bind(micros(lease.until))
        .bind(micros(lease.now))
        .bind(id.as_str())
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    with_events(store, rows).await
}

/// Pairs freshly leased rows with their events (one shared `Arc` per
/// event), oldest due first. Events are immutable, so they are read after
/// the lease committed, on a read connection, keeping the writer free; if
/// that read fails, the leases simply expire and are reclaimed.
async fn with_events(
    store: &SqliteStore,
    rows: Vec<sqlx::sqlite::SqliteRow>,
) -> StoreResult<Vec<Leased>> {
    let mut leased = rows
        .iter()
        .map(decode::delivery)
        .collect::<StoreResult<Vec<_>>>()?;
    leased.sort_by_key(|(seq, d)| (d.next_attempt_at, *seq));
    let mut ids: Vec<&str> = leased.iter().map(|(_, d)| d.event_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let events: HashMap<EventId, Arc<Event>> = Tables(store)
        .events_by_ids(&ids)
        .await?
        .into_iter()
        .map(|e| (e.id.clone(), Arc::new(e)))
        .collect();
    leased
        .into_iter()
        .map(|(_, delivery)| {
            // Invariant kept by the foreign key on deliveries.event_id.
            let event = events.get(&delivery.event_id).cloned().ok_or_else(|| {
                StoreError::Corrupt(format!("delivery {} has no event", delivery.id))
            })?;
            Ok(Leased { delivery, event })
        })
        .collect()
}

/// Where a completion may move a delivery.
pub(super) const COMPLETION_TARGETS: [DeliveryStatus; 3] = [
    DeliveryStatus::Delivered,
    DeliveryStatus::Retrying,
    DeliveryStatus::Dead,
];

/// Binds per row of the completion update.
const UPDATE_COLUMNS: usize = 7;
/// Binds per attempt row.
const ATTEMPT_COLUMNS: usize = 11;

/// An attempt's JSON-encoded captures.
type Captures = (Option<String>, Option<String>);

pub(super) async fn complete(store: &SqliteStore, batch: &[Completion]) -> StoreResult<()> {
    if batch.is_empty() {
        return Ok(());
    }
    // An attempt ends in `Succeed`, `ScheduleRetry` or `Kill` (the targets
    // are checked against the state machine by a unit test).
    if let Some(c) = batch
        .iter()
        .find(|c| !COMPLETION_TARGETS.contains(&c.status))
    {
        return Err(StoreError::Conflict(format!(
            "a completion cannot move a delivery to {}",
            c.status
        )));
    }
    let captures = batch
        .iter()
        .map(|c| {
            let request = c
                .attempt
                .request
                .as_ref()
                .map(|r| to_json(r, "request"))
                .transpose()?;
            let response = c
                .attempt
                .response
                .as_ref()
                .map(|r| to_json(r, "response"))
                .transpose()?;
            Ok((request, response))
        })
        .collect::<StoreResult<Vec<Captures>>>()?;

    let mut tx = store.write_relaxed().await?;
    // Move the deliveries whose lease is still held by the completing owner.
    let mut moved: HashMap<String, DeliveryStatus> = HashMap::with_capacity(batch.len());
    for chunk in batch.chunks(rows_per_statement(UPDATE_COLUMNS)) {
        let mut qb = QueryBuilder::<Sqlite>::new(sql::COMPLETE_SET);
        qb.push_values(chunk, |mut b, c| {
            // A retry always has a due time.
            let next = match c.status {
                DeliveryStatus::Retrying => Some(c.next_attempt_at.unwrap_or(c.audit.at)),
                _ => c.next_attempt_at,
            };
            b.push_bind(c.delivery_id.as_str())
                .push_bind(c.owner.as_str())
                .push_bind(c.status.as_str())
                .push_bind(opt_micros(next))
                .push_bind(c.last_error.as_deref())
                .push_bind(i64::from(c.counted))
                .push_bind(micros(c.audit.at));
        });
        qb.push(
            ") AS v WHERE deliveries.id = v.column1 AND deliveries.status = 'delivering' \
             AND deliveries.lease_owner = v.column2 RETURNING deliveries.id, deliveries.status",
        );
        let rows: Vec<(String, String)> = qb
            .build_query_as()
            .persistent(false)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error)?;
        for (id, status) in rows {
            let status = status
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("delivery {id}: {e}")))?;
            moved.insert(id, status);
        }
    }

    // Every attempt is recorded, also those whose lease was lost.
    let attempts: Vec<(&Completion, Captures)> = batch.iter().zip(captures).collect();
    for chunk in attempts.chunks(rows_per_statement(ATTEMPT_COLUMNS)) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO attempts (delivery_id, org_id, number, started_at, duration_ms, \
             outcome, status_code, error, request, response) ",
        );
        qb.push_values(chunk, |mut b, (c, (request, response))| {
            let a = &c.attempt;
            b.push_bind(a.delivery_id.as_str())
                .push_bind(c.org_id.as_str())
                .push_bind(i64::from(a.number))
                .push_bind(micros(a.started_at))
                .push_bind(i64::try_from(a.duration_ms).unwrap_or(i64::MAX))
                .push_bind(decode::outcome_str(a.outcome))
                .push_bind(a.status_code.map(i64::from))
                .push_bind(a.error.as_deref())
                .push_bind(request.as_deref())
                .push_bind(response.as_deref());
        });
        qb.build()
            .persistent(false)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
    }

    // The audit tells what changed: only completions that moved a delivery.
    let records: Vec<Cow<'_, AuditRecord>> = batch
        .iter()
        .filter_map(|c| {
            let to = moved.get(c.delivery_id.as_str())?;
            Some(deleted::completion_audit(c, *to))
        })
        .collect();
    let records: Vec<&AuditRecord> = records.iter().map(|r| &**r).collect();
    SqliteStore::insert_audit(&mut tx, &records).await?;
    tx.commit().await.map_err(db_error)
}

pub(super) async fn release(
    store: &SqliteStore,
    ids: &[DeliveryId],
    owner: &str,
) -> StoreResult<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let mut tx = store.write_relaxed().await?;
    let released = sqlx::query(sql::RELEASE)
        .bind(micros(Utc::now()))
        .bind(id_list(ids))
        .bind(owner)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?
        .rows_affected();
    tx.commit().await.map_err(db_error)?;
    Ok(released)
}

pub(super) async fn extend_leases(
    store: &SqliteStore,
    ids: &[DeliveryId],
    lease: &Lease,
) -> StoreResult<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let mut tx = store.write_relaxed().await?;
    let extended = sqlx::query("UPDATE deliveries SET lease_expires_at = ?1 WHERE status = 'delivering' AND id IN (SELECT value FROM json_each(?2)) AND lease_owner = ?3")
        .bind(micros(lease.until))
        .bind(id_list(ids))
        .bind(lease.owner.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?
        .rows_affected();
    tx.commit().await.map_err(db_error)?;
    Ok(extended)
}

pub(super) async fn reclaim(store: &SqliteStore, which: &Reclaim) -> StoreResult<u64> {
    let mut tx = store.write_relaxed().await?;
    let result = match which {
        // The caller's clock says when: expired leases are due from then.
        Reclaim::ExpiredBefore(at) => {
            sqlx::query(sql::RECLAIM_EXPIRED)
                .bind(micros(*at))
                .bind(micros(*at))
                .execute(&mut *tx)
                .await
        }
        Reclaim::NotOwnedBy(owner) => {
            sqlx::query(sql::RECLAIM_FOREIGN)
                .bind(micros(Utc::now()))
                .bind(owner.as_str())
                .execute(&mut *tx)
                .await
        }
    }
    .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    Ok(result.rows_affected())
}

pub(super) async fn next_due_at(
    store: &SqliteStore,
    exclude: &[DestinationId],
) -> StoreResult<Option<DateTime<Utc>>> {
    // As in `lease_due`: with exclusions, one index seek per destination
    // instead of a walk over the excluded destinations' backlog.
    let row = if exclude.is_empty() {
        sqlx::query(sql::NEXT_DUE).fetch_one(store.reader()).await
    } else {
        sqlx::query(sql::NEXT_DUE_EXCLUDING)
            .bind(id_list(exclude))
            .fetch_one(store.reader())
            .await
    }
    .map_err(db_error)?;
    let due: Option<i64> = row.try_get("due").map_err(db_error)?;
    due.map(|v| decode::from_micros(v, "next_attempt_at"))
        .transpose()
}
