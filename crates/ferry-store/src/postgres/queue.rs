//! The delivery queue, kept in the deliveries table and shared by every
//! worker process: leasing (claim after ingest, due one
//! destination's probe), completing attempts in batches, and giving leases
//! back (release, expiry, takeover).
//!
//! A lease is `status = 'delivering'` with `lease_owner` and
//! `lease_expires_at`. Leasing picks its rows with `FOR UPDATE SKIP LOCKED`:
//! concurrent workers each take rows the others have not locked, so no
//! delivery is leased twice and no worker waits for another. A claim names
//! its rows and re-checks `status = 'pending'` after any concurrent change,
//! so of two claimers only one wins. A completion moves a delivery only
//! while its lease is still held by the completing owner; the attempt is
//! recorded either way. A delivery given back (released or reclaimed) is
//! due at the earlier of its previous due time and now, so it keeps its
//! place in the queue.

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
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::{PgStore, Waiting, db_error, id_array};
use crate::deleted;
use crate::rows::delivery_columns;
use crate::sql::{Backend, Tables, decode};
use crate::values::{micros, opt_micros, to_json};

/// The queue's statements.
mod sql {
    use super::delivery_columns;
    use crate::deleted::deleted_error;

    /// Sets the lease on the rows the statement's WHERE clause picks. The
    /// leasing statements pick them as `seq = ANY(ARRAY(subquery))`: the
    /// subquery runs once and the update finds its rows by primary key.
    /// Written as `seq IN (subquery)`, a generic plan (sqlx prepares its
    /// statements, and PostgreSQL switches to a generic plan after five
    /// runs) does not know the LIMIT and may hash-join the subquery against
    /// a scan of the whole table.
    macro_rules! lease_set {
        () => {
            "UPDATE deliveries SET status = 'delivering', lease_owner = $1, \
             lease_expires_at = $2, updated_at = $3 "
        };
    }

    /// Whether the row's destination still exists.
    macro_rules! destination_exists {
        () => {
            "EXISTS (SELECT 1 FROM destinations t WHERE t.id = deliveries.destination_id)"
        };
    }

    /// Gives leases back, due at the earlier of their due time and $1; a
    /// delivery whose destination was deleted meanwhile fails instead.
    macro_rules! give_back {
        () => {
            concat!(
                "UPDATE deliveries SET status = CASE WHEN ",
                destination_exists!(),
                " THEN 'pending' ELSE 'failed' END, next_attempt_at = CASE WHEN ",
                destination_exists!(),
                " THEN LEAST(COALESCE(next_attempt_at, $1), $1) END, last_error = CASE WHEN ",
                destination_exists!(),
                " THEN last_error ELSE '",
                deleted_error!(),
                "' END, lease_owner = NULL, lease_expires_at = NULL, updated_at = $1 \
                 WHERE status = 'delivering' "
            )
        };
    }

    /// What a give-back statement returns of each delivery.
    macro_rules! given_back {
        () => {
            " RETURNING seq, id, destination_id, next_attempt_at, status"
        };
    }

    /// A completion's target status (`v.status`), or `failed` when the
    /// attempt did not deliver and the destination was deleted meanwhile.
    macro_rules! abandoned {
        () => {
            concat!(
                "(v.status <> 'delivered' AND NOT ",
                destination_exists!(),
                ")"
            )
        };
    }

    pub const CLAIM: &str = concat!(
        lease_set!(),
        "WHERE id = ANY($4) AND status = 'pending' RETURNING id"
    );

    pub const LEASE_DUE: &str = concat!(
        lease_set!(),
        "WHERE seq = ANY(ARRAY(SELECT seq FROM deliveries \
             WHERE status IN ('pending', 'retrying') AND next_attempt_at <= $3 \
             ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED)) \
         RETURNING ",
        delivery_columns!()
    );

    /// With exclusions, an ordered walk of the due index would step over
    /// every due delivery of an excluded (paused or saturated) destination,
    /// however long its backlog. Instead each other destination offers its
    /// own oldest `$4` due deliveries (index seeks, no locks) and the oldest
    /// `$4` of those that no other worker has locked are leased: the same
    /// answer at a cost bounded by destinations × limit. (A worker racing
    /// another over the same candidates may get fewer than it could; it
    /// never gets one twice.) Deliveries whose destination is gone are
    /// `failed` anyway.
    ///
    /// `destination_id` is matched as a range of one value, ordered by
    /// `(destination_id, next_attempt_at)`: written as an equality, the
    /// planner assumes deliveries spread evenly over destinations and walks
    /// `deliveries_due` filtering by destination, which on a skewed backlog
    /// (the usual case when a destination is paused) reads all of it; the
    /// range makes `deliveries_due_by_destination` the only index that
    /// yields this order.
    pub const LEASE_DUE_EXCLUDING: &str = concat!(
        lease_set!(),
        "WHERE seq = ANY(ARRAY(SELECT d.seq FROM deliveries d \
             WHERE d.seq IN (SELECT c.seq FROM destinations t CROSS JOIN LATERAL ( \
                     SELECT x.seq FROM deliveries x \
                     WHERE x.destination_id >= t.id AND x.destination_id <= t.id \
                     AND x.status IN ('pending', 'retrying') AND x.next_attempt_at <= $3 \
                     ORDER BY x.destination_id, x.next_attempt_at LIMIT $4) AS c \
                 WHERE t.id <> ALL($5)) \
             AND d.status IN ('pending', 'retrying') AND d.next_attempt_at <= $3 \
             ORDER BY d.next_attempt_at LIMIT $4 FOR UPDATE OF d SKIP LOCKED)) \
         RETURNING ",
        delivery_columns!()
    );

    pub const LEASE_DESTINATION: &str = concat!(
        lease_set!(),
        "WHERE seq = ANY(ARRAY(SELECT seq FROM deliveries \
             WHERE destination_id = $4 AND status IN ('pending', 'retrying') \
             ORDER BY next_attempt_at LIMIT $5 FOR UPDATE SKIP LOCKED)) \
         RETURNING ",
        delivery_columns!()
    );

    pub const RELEASE: &str = concat!(
        give_back!(),
        "AND id = ANY($2) AND lease_owner = $3",
        given_back!()
    );

    pub const RECLAIM_EXPIRED: &str =
        concat!(give_back!(), "AND lease_expires_at < $2", given_back!());

    pub const RECLAIM_FOREIGN: &str = concat!(
        give_back!(),
        "AND lease_owner IS DISTINCT FROM $2",
        given_back!()
    );

    pub const NEXT_DUE: &str = "SELECT MIN(next_attempt_at) AS due FROM deliveries \
         WHERE status IN ('pending', 'retrying')";

    /// As in `LEASE_DUE_EXCLUDING`: one index seek per destination instead
    /// of a walk over the excluded destinations' backlog.
    pub const NEXT_DUE_EXCLUDING: &str = "SELECT MIN(c.due) AS due \
         FROM destinations t CROSS JOIN LATERAL ( \
             SELECT x.next_attempt_at AS due FROM deliveries x \
             WHERE x.destination_id >= t.id AND x.destination_id <= t.id \
             AND x.status IN ('pending', 'retrying') \
             ORDER BY x.destination_id, x.next_attempt_at LIMIT 1) AS c \
         WHERE t.id <> ALL($1)";

    /// Moves the deliveries whose lease the completing owner still holds.
    pub const COMPLETE: &str = concat!(
        "UPDATE deliveries SET status = CASE WHEN ",
        abandoned!(),
        " THEN 'failed' ELSE v.status END, next_attempt_at = CASE WHEN ",
        abandoned!(),
        " THEN NULL ELSE v.next_attempt_at END, last_error = CASE WHEN ",
        abandoned!(),
        " THEN '",
        deleted_error!(),
        "' ELSE v.last_error END, \
         attempt_count = attempt_count + 1, failures_counted = failures_counted + v.counted, \
         lease_owner = NULL, lease_expires_at = NULL, updated_at = v.at \
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::int8[], \
                     $7::int8[]) AS v (id, owner, status, next_attempt_at, last_error, counted, at) \
         WHERE deliveries.id = v.id AND deliveries.status = 'delivering' \
         AND deliveries.lease_owner = v.owner RETURNING deliveries.id, deliveries.status"
    );

    /// Records attempts (also those whose lease was lost), in order.
    pub const ATTEMPTS: &str = "INSERT INTO attempts (delivery_id, org_id, number, started_at, \
         duration_ms, outcome, status_code, error, request, response) \
         SELECT v.delivery_id, v.org_id, v.number, v.started_at, v.duration_ms, v.outcome, \
         v.status_code, v.error, v.request, v.response \
         FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::int8[], $5::int8[], $6::text[], \
                     $7::int8[], $8::text[], $9::text[], $10::text[]) WITH ORDINALITY \
              AS v (delivery_id, org_id, number, started_at, duration_ms, outcome, status_code, \
                    error, request, response, ord) \
         ORDER BY v.ord";
}

pub(super) async fn claim(
    store: &PgStore,
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
        .bind(id_array(ids))
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

pub(super) async fn lease_due(
    store: &PgStore,
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
            .bind(id_array(exclude))
            .fetch_all(&mut *tx)
            .await
    }
    .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    with_events(store, rows).await
}

pub(super) async fn lease_destination(
    store: &PgStore,
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
/// the lease committed; if that read fails, the leases simply expire and
/// are reclaimed.
pub(super) async fn with_events(store: &PgStore, rows: Vec<PgRow>) -> StoreResult<Vec<Leased>> {
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

pub(super) async fn complete(store: &PgStore, batch: &[Completion]) -> StoreResult<()> {
    complete_moved(store, batch).await.map(drop)
}

/// Records a batch as `complete` does; returns the status each delivery
/// that moved was moved to.
pub(super) async fn complete_moved(
    store: &PgStore,
    batch: &[Completion],
) -> StoreResult<HashMap<DeliveryId, DeliveryStatus>> {
    if batch.is_empty() {
        return Ok(HashMap::new());
    }
    if let Some(c) = batch
        .iter()
        .find(|c| !COMPLETION_TARGETS.contains(&c.status))
    {
        return Err(StoreError::Conflict(format!(
            "a completion cannot move a delivery to {}",
            c.status
        )));
    }
    let n = batch.len();
    // The delivery updates.
    let mut ids = Vec::with_capacity(n);
    let mut owners = Vec::with_capacity(n);
    let mut statuses = Vec::with_capacity(n);
    let mut nexts = Vec::with_capacity(n);
    let mut errors = Vec::with_capacity(n);
    let mut counted = Vec::with_capacity(n);
    let mut ats = Vec::with_capacity(n);
    // The attempt rows.
    let mut numbers = Vec::with_capacity(n);
    let mut started = Vec::with_capacity(n);
    let mut durations = Vec::with_capacity(n);
    let mut outcomes = Vec::with_capacity(n);
    let mut codes = Vec::with_capacity(n);
    let mut attempt_errors = Vec::with_capacity(n);
    let mut requests = Vec::with_capacity(n);
    let mut responses = Vec::with_capacity(n);
    let mut attempt_ids = Vec::with_capacity(n);
    let mut orgs = Vec::with_capacity(n);
    for c in batch {
        // A retry always has a due time.
        let next = match c.status {
            DeliveryStatus::Retrying => Some(c.next_attempt_at.unwrap_or(c.audit.at)),
            _ => c.next_attempt_at,
        };
        ids.push(c.delivery_id.as_str());
        owners.push(c.owner.as_str());
        statuses.push(c.status.as_str());
        nexts.push(opt_micros(next));
        errors.push(c.last_error.as_deref());
        counted.push(i64::from(c.counted));
        ats.push(micros(c.audit.at));

        let a = &c.attempt;
        attempt_ids.push(a.delivery_id.as_str());
        orgs.push(c.org_id.as_str());
        numbers.push(i64::from(a.number));
        started.push(micros(a.started_at));
        durations.push(i64::try_from(a.duration_ms).unwrap_or(i64::MAX));
        outcomes.push(decode::outcome_str(a.outcome));
        codes.push(a.status_code.map(i64::from));
        attempt_errors.push(a.error.as_deref());
        requests.push(
            a.request
                .as_ref()
                .map(|r| to_json(r, "request"))
                .transpose()?,
        );
        responses.push(
            a.response
                .as_ref()
                .map(|r| to_json(r, "response"))
                .transpose()?,
        );
    }

    let mut tx = store.write_relaxed().await?;
    let moved: Vec<(String, String)> = sqlx::query_as(sql::COMPLETE)
        .bind(ids)
        .bind(owners)
        .bind(statuses)
        .bind(nexts)
        .bind(errors)
        .bind(counted)
        .bind(ats)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?;
    let moved = moved
        .into_iter()
        .map(|(id, status)| {
            let status: DeliveryStatus = status
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("delivery {id}: {e}")))?;
            Ok((id, status))
        })
        .collect::<StoreResult<HashMap<String, DeliveryStatus>>>()?;

    sqlx::query(sql::ATTEMPTS)
        .bind(attempt_ids)
        .bind(orgs)
        .bind(numbers)
        .bind(started)
        .bind(durations)
        .bind(outcomes)
        .bind(codes)
        .bind(attempt_errors)
        .bind(requests)
        .bind(responses)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;

    // The audit tells what changed: only completions that moved a delivery.
    let records: Vec<Cow<'_, AuditRecord>> = batch
        .iter()
        .filter_map(|c| {
            let to = moved.get(c.delivery_id.as_str())?;
            Some(deleted::completion_audit(c, *to))
        })
        .collect();
    let records: Vec<&AuditRecord> = records.iter().map(|r| &**r).collect();
    PgStore::insert_audit(&mut tx, &records).await?;
    tx.commit().await.map_err(db_error)?;
    Ok(batch
        .iter()
        .filter_map(|c| Some((c.delivery_id.clone(), *moved.get(c.delivery_id.as_str())?)))
        .collect())
}

pub(super) async fn release(store: &PgStore, ids: &[DeliveryId], owner: &str) -> StoreResult<u64> {
    Ok(release_waiting(store, ids, owner).await?.len() as u64)
}

/// Gives leases back (see `release`) and returns the deliveries given back.
pub(super) async fn release_waiting(
    store: &PgStore,
    ids: &[DeliveryId],
    owner: &str,
) -> StoreResult<Vec<Waiting>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = store.write_relaxed().await?;
    let rows = sqlx::query(sql::RELEASE)
        .bind(micros(Utc::now()))
        .bind(id_array(ids))
        .bind(owner)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?;
    if !rows.is_empty() {
        store.signal_work(&mut tx).await?;
    }
    tx.commit().await.map_err(db_error)?;
    waiting_rows(&rows)
}

/// Takes leases back; also folds the delivery count deltas, since every
/// worker calls this periodically (see `deliveries::compact_counts`).
pub(super) async fn extend_leases(
    store: &PgStore,
    ids: &[DeliveryId],
    lease: &Lease,
) -> StoreResult<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let mut tx = store.write_relaxed().await?;
    let extended = sqlx::query("UPDATE deliveries SET lease_expires_at = $1 WHERE status = 'delivering' AND id = ANY($2) AND lease_owner = $3")
        .bind(micros(lease.until))
        .bind(id_array(ids))
        .bind(lease.owner.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?
        .rows_affected();
    tx.commit().await.map_err(db_error)?;
    Ok(extended)
}

pub(super) async fn reclaim(store: &PgStore, which: &Reclaim) -> StoreResult<u64> {
    Ok(reclaim_waiting(store, which).await?.len() as u64)
}

/// Takes leases back (see `reclaim`) and returns the deliveries given back.
pub(super) async fn reclaim_waiting(store: &PgStore, which: &Reclaim) -> StoreResult<Vec<Waiting>> {
    let mut tx = store.write_relaxed().await?;
    let rows = match which {
        // The caller's clock says when: expired leases are due from then.
        Reclaim::ExpiredBefore(at) => {
            sqlx::query(sql::RECLAIM_EXPIRED)
                .bind(micros(*at))
                .bind(micros(*at))
                .fetch_all(&mut *tx)
                .await
        }
        Reclaim::NotOwnedBy(owner) => {
            sqlx::query(sql::RECLAIM_FOREIGN)
                .bind(micros(Utc::now()))
                .bind(owner.as_str())
                .fetch_all(&mut *tx)
                .await
        }
    }
    .map_err(db_error)?;
    if !rows.is_empty() {
        store.signal_work(&mut tx).await?;
    }
    tx.commit().await.map_err(db_error)?;
    store.compact_counts().await?;
    waiting_rows(&rows)
}

/// The deliveries a give-back statement made waiting again (those of a
/// deleted destination failed instead).
fn waiting_rows(given: &[PgRow]) -> StoreResult<Vec<Waiting>> {
    let mut waiting = Vec::with_capacity(given.len());
    for row in given {
        let status: DeliveryStatus = decode::parsed(row, "status")?;
        if status == DeliveryStatus::Pending {
            waiting.push(waiting_row(row)?);
        }
    }
    Ok(waiting)
}

/// A waiting delivery as the statements of this module return it.
pub(super) fn waiting_row(row: &PgRow) -> StoreResult<Waiting> {
    Ok(Waiting {
        seq: decode::seq(row)?,
        id: decode::parsed(row, "id")?,
        destination_id: decode::parsed(row, "destination_id")?,
        due_at: decode::time(row, "next_attempt_at")?,
    })
}

pub(super) async fn next_due_at(
    store: &PgStore,
    exclude: &[DestinationId],
) -> StoreResult<Option<DateTime<Utc>>> {
    let row = if exclude.is_empty() {
        sqlx::query(sql::NEXT_DUE).fetch_one(store.pool()).await
    } else {
        sqlx::query(sql::NEXT_DUE_EXCLUDING)
            .bind(id_array(exclude))
            .fetch_one(store.pool())
            .await
    }
    .map_err(db_error)?;
    let due: Option<i64> = row.try_get("due").map_err(db_error)?;
    due.map(|v| decode::from_micros(v, "next_attempt_at"))
        .transpose()
}
