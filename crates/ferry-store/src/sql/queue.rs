//! The delivery queue kept in the deliveries table, for both backends:
//! leasing (claim after ingest, due, one destination's probe), completing
//! attempts in batches, and giving leases back (release, expiry, takeover).
//! The statements' text is each backend's ([`QueueStatements`]: SQLite has
//! one writer, PostgreSQL leases with `FOR UPDATE SKIP LOCKED`); they take
//! the same binds in the same order, and everything around them is here.
//!
//! A lease is `status = 'delivering'` with `lease_owner` and
//! `lease_expires_at`. A completion moves a delivery only while its lease is
//! still held by the completing owner; the attempt is recorded either way.
//! A delivery given back (released or reclaimed) is due at the earlier of
//! its previous due time and now, so it keeps its place in the queue; one
//! whose destination was deleted meanwhile fails instead (`crate::deleted`).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use ferry_core::StoreError;
use ferry_core::audit::AuditRecord;
use ferry_core::delivery::{Captured, DeliveryStatus, Leased};
use ferry_core::error::StoreResult;
use ferry_core::event::Event;
use ferry_core::ids::{DeliveryId, DestinationId, EventId};
use ferry_core::ports::{Completion, Lease, Reclaim};
use sqlx::{Database, Encode, Executor, IntoArguments, Type};

use super::decode::{self, Columns};
use super::{Backend, Tables};
use crate::deleted;
use crate::values::{micros, to_json};

/// A backend's queue statements. Binds, in order:
///
/// - `claim`: owner, lease end, now, the ids (a list); returns `id`.
/// - `lease_due`: owner, lease end, now, limit; with `_excluding`, then the
///   excluded destinations (a list). `lease_destination`: owner, lease end,
///   now, destination, limit. All three return the delivery columns.
/// - `release`: now, the ids (a list), owner. `reclaim_expired`: now, the
///   expiry. `reclaim_foreign`: now, the owner that keeps its leases. All
///   three return `seq, id, destination_id, next_attempt_at, status`.
/// - `extend`: lease end, the ids (a list), owner.
/// - `next_due`: nothing; with `_excluding`, the excluded destinations. One
///   row with `due`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueStatements {
    pub claim: &'static str,
    pub lease_due: &'static str,
    pub lease_due_excluding: &'static str,
    pub lease_destination: &'static str,
    pub release: &'static str,
    pub reclaim_expired: &'static str,
    pub reclaim_foreign: &'static str,
    pub extend: &'static str,
    pub next_due: &'static str,
    pub next_due_excluding: &'static str,
}

/// Where a completion may move a delivery (`Settled::status`).
#[cfg(test)]
const COMPLETION_TARGETS: [DeliveryStatus; 3] = [
    DeliveryStatus::Delivered,
    DeliveryStatus::Retrying,
    DeliveryStatus::Dead,
];

/// A delivery waiting for an attempt (`pending` or `retrying`, not leased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// Its position in the deliveries table (for paging).
    pub seq: i64,
    pub id: DeliveryId,
    pub destination_id: DestinationId,
    /// When it is due.
    pub due_at: DateTime<Utc>,
}

impl Waiting {
    /// Decodes a row of `seq, id, destination_id, next_attempt_at`.
    pub(crate) fn decode(row: &impl Columns) -> StoreResult<Self> {
        Ok(Self {
            seq: decode::seq(row)?,
            id: decode::parsed(row, "id")?,
            destination_id: decode::parsed(row, "destination_id")?,
            due_at: decode::time(row, "next_attempt_at")?,
        })
    }
}

/// An attempt as its row is written: the completion with its captures
/// encoded.
pub(crate) struct AttemptRow<'a> {
    pub completion: &'a Completion,
    pub request: Option<String>,
    pub response: Option<String>,
    pub receipt: Option<String>,
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
    (String,): for<'r> sqlx::FromRow<'r, <B::DB as Database>::Row>,
{
    pub(crate) async fn claim(
        &self,
        ids: &[DeliveryId],
        lease: &Lease,
    ) -> StoreResult<Vec<DeliveryId>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.0.write_relaxed().await?;
        let claimed: Vec<String> = sqlx::query_scalar(B::QUEUE.claim)
            .bind(lease.owner.as_str())
            .bind(micros(lease.until))
            .bind(micros(lease.now))
            .bind(B::text_list(ids))
            .fetch_all(&mut *tx)
            .await
            .map_err(B::db_error)?;
        tx.commit().await.map_err(B::db_error)?;
        let claimed: HashSet<String> = claimed.into_iter().collect();
        // In the caller's order, each id once.
        let mut seen = HashSet::with_capacity(claimed.len());
        Ok(ids
            .iter()
            .filter(|id| claimed.contains(id.as_str()) && seen.insert(id.as_str()))
            .cloned()
            .collect())
    }

    /// Leases due oldest due first. With exclusions, each other destination
    /// contributes its own oldest `limit` due deliveries and the oldest
    /// `limit` of those win: an ordered walk of the due index would step
    /// over every due delivery of an excluded (paused or saturated)
    /// destination, however long its backlog.
    pub(crate) async fn lease_due(
        &self,
        limit: u32,
        lease: &Lease,
        exclude: &[DestinationId],
    ) -> StoreResult<Vec<Leased>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let sql = if exclude.is_empty() {
            B::QUEUE.lease_due
        } else {
            B::QUEUE.lease_due_excluding
        };
        let mut query = sqlx::query(sql)
            .bind(lease.owner.as_str())
            .bind(micros(lease.until))
            .bind(micros(lease.now))
            .bind(i64::from(limit));
        if !exclude.is_empty() {
            query = query.bind(B::text_list(exclude));
        }
        let mut tx = self.0.write_relaxed().await?;
        let rows = query.fetch_all(&mut *tx).await.map_err(B::db_error)?;
        tx.commit().await.map_err(B::db_error)?;
        self.with_events(&rows).await
    }

    pub(crate) async fn lease_destination(
        &self,
        id: &DestinationId,
        limit: u32,
        lease: &Lease,
    ) -> StoreResult<Vec<Leased>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.0.write_relaxed().await?;
        let rows = sqlx::query(B::QUEUE.lease_destination)
            .bind(lease.owner.as_str())
            .bind(micros(lease.until))
            .bind(micros(lease.now))
            .bind(id.as_str())
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await
            .map_err(B::db_error)?;
        tx.commit().await.map_err(B::db_error)?;
        self.with_events(&rows).await
    }

    /// Pairs freshly leased rows with their events (one shared `Arc` per
    /// event), oldest due first. Events are immutable, so they are read
    /// after the lease committed, keeping the writer free; if that read
    /// fails, the leases simply expire and are reclaimed.
    pub(crate) async fn with_events(
        &self,
        rows: &[<B::DB as Database>::Row],
    ) -> StoreResult<Vec<Leased>> {
        let mut leased = rows
            .iter()
            .map(decode::delivery)
            .collect::<StoreResult<Vec<_>>>()?;
        leased.sort_by_key(|(seq, d)| (d.next_attempt_at, *seq));
        let mut ids: Vec<&str> = leased.iter().map(|(_, d)| d.event_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let events: HashMap<EventId, Arc<Event>> = self
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

    /// Records a batch of attempts and moves their deliveries on, in one
    /// transaction; returns the status each delivery that moved was moved
    /// to (a delivery whose lease was lost does not move; one whose
    /// destination was deleted may fail).
    pub(crate) async fn complete(
        &self,
        batch: &[Completion],
    ) -> StoreResult<HashMap<DeliveryId, DeliveryStatus>> {
        if batch.is_empty() {
            return Ok(HashMap::new());
        }
        let attempts = batch
            .iter()
            .map(|c| {
                let capture = |v: Option<&Captured>, what| v.map(|v| to_json(v, what)).transpose();
                Ok(AttemptRow {
                    completion: c,
                    request: capture(c.attempt.request.as_ref(), "request")?,
                    response: capture(c.attempt.response.as_ref(), "response")?,
                    receipt: c
                        .attempt
                        .receipt
                        .as_ref()
                        .map(|r| to_json(r, "receipt"))
                        .transpose()?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;

        let mut tx = self.0.write_relaxed().await?;
        let moved = B::move_completed(&mut tx, batch)
            .await?
            .into_iter()
            .map(|(id, status)| {
                let status: DeliveryStatus = status
                    .parse()
                    .map_err(|e| StoreError::Corrupt(format!("delivery {id}: {e}")))?;
                Ok((id, status))
            })
            .collect::<StoreResult<HashMap<String, DeliveryStatus>>>()?;
        // Every attempt is recorded, also those whose lease was lost.
        B::insert_attempts(&mut tx, &attempts).await?;

        // The audit tells what changed: only completions that moved a
        // delivery.
        let records: Vec<Cow<'_, AuditRecord>> = batch
            .iter()
            .filter_map(|c| {
                let to = moved.get(c.delivery_id.as_str())?;
                Some(deleted::completion_audit(c, *to))
            })
            .collect();
        let records: Vec<&AuditRecord> = records.iter().map(|r| &**r).collect();
        B::insert_audit(&mut tx, &records).await?;
        tx.commit().await.map_err(B::db_error)?;
        Ok(batch
            .iter()
            .filter_map(|c| Some((c.delivery_id.clone(), *moved.get(c.delivery_id.as_str())?)))
            .collect())
    }

    /// Gives leases still held by `owner` back; returns how many were given
    /// back and those now waiting (the others failed: their destination
    /// was deleted).
    pub(crate) async fn release(
        &self,
        ids: &[DeliveryId],
        owner: &str,
    ) -> StoreResult<(u64, Vec<Waiting>)> {
        if ids.is_empty() {
            return Ok((0, Vec::new()));
        }
        let query = sqlx::query(B::QUEUE.release)
            .bind(micros(Utc::now()))
            .bind(B::text_list(ids))
            .bind(owner);
        let mut tx = self.0.write_relaxed().await?;
        let rows = query.fetch_all(&mut *tx).await.map_err(B::db_error)?;
        self.give_back(tx, &rows).await
    }

    /// Takes leases back (see `Queue::reclaim`); returns how many were
    /// taken back and those now waiting.
    pub(crate) async fn reclaim(&self, which: &Reclaim) -> StoreResult<(u64, Vec<Waiting>)> {
        let query = match which {
            // The caller's clock says when: expired leases are due from then.
            Reclaim::ExpiredBefore(at) => sqlx::query(B::QUEUE.reclaim_expired)
                .bind(micros(*at))
                .bind(micros(*at)),
            Reclaim::NotOwnedBy(owner) => sqlx::query(B::QUEUE.reclaim_foreign)
                .bind(micros(Utc::now()))
                .bind(owner.as_str()),
        };
        let mut tx = self.0.write_relaxed().await?;
        let rows = query.fetch_all(&mut *tx).await.map_err(B::db_error)?;
        let given = self.give_back(tx, &rows).await?;
        // Every worker reclaims periodically.
        self.0.upkeep().await?;
        Ok(given)
    }

    /// Commits a give-back that returned `rows`, telling other workers.
    async fn give_back(
        &self,
        mut tx: sqlx::Transaction<'static, B::DB>,
        rows: &[<B::DB as Database>::Row],
    ) -> StoreResult<(u64, Vec<Waiting>)> {
        if !rows.is_empty() {
            self.0.signal_work(&mut tx).await?;
        }
        tx.commit().await.map_err(B::db_error)?;
        let mut waiting = Vec::with_capacity(rows.len());
        for row in rows {
            let status: DeliveryStatus = decode::parsed(row, "status")?;
            if status == DeliveryStatus::Pending {
                waiting.push(Waiting::decode(row)?);
            }
        }
        Ok((rows.len() as u64, waiting))
    }

    pub(crate) async fn extend_leases(
        &self,
        ids: &[DeliveryId],
        lease: &Lease,
    ) -> StoreResult<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let query = sqlx::query_scalar::<_, String>(B::QUEUE.extend)
            .bind(micros(lease.until))
            .bind(B::text_list(ids))
            .bind(lease.owner.as_str());
        let mut tx = self.0.write_relaxed().await?;
        let extended = query.fetch_all(&mut *tx).await.map_err(B::db_error)?;
        tx.commit().await.map_err(B::db_error)?;
        Ok(extended.len() as u64)
    }

    pub(crate) async fn next_due_at(
        &self,
        exclude: &[DestinationId],
    ) -> StoreResult<Option<DateTime<Utc>>> {
        let row = if exclude.is_empty() {
            sqlx::query(B::QUEUE.next_due)
                .fetch_one(self.0.reader())
                .await
        } else {
            sqlx::query(B::QUEUE.next_due_excluding)
                .bind(B::text_list(exclude))
                .fetch_one(self.0.reader())
                .await
        }
        .map_err(B::db_error)?;
        row.opt_int("due")?
            .map(|v| decode::from_micros(v, "next_attempt_at"))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use ferry_core::delivery::DeliveryStatus::{self, *};
    use ferry_core::state::Transition;

    /// The SQL names statuses literally; these are the sets it uses.
    #[test]
    fn status_sets_in_sql_match_the_state_machine() {
        let sources = DeliveryStatus::sources_of;
        // Leasing takes `pending`/`retrying` (`deliveries_due*` indexes).
        assert_eq!(sources(Transition::Lease), [Pending, Retrying]);
        // Release, expiry and takeover give back `delivering`.
        assert_eq!(sources(Transition::Release), [Delivering]);
        // Deleting a destination abandons these.
        assert_eq!(
            sources(Transition::Abandon),
            [Pending, Delivering, Retrying]
        );
        // (Requeue binds `sources_of(Requeue)` itself; `Dead(filter)` only
        // takes `dead`, which must stay one of them.)
        assert!(sources(Transition::Requeue).contains(&Dead));
        // A completion moves `delivering` to one of these.
        let targets: Vec<_> = [
            Transition::Succeed,
            Transition::ScheduleRetry,
            Transition::Kill,
        ]
        .into_iter()
        .map(|t| Delivering.apply(t).unwrap())
        .collect();
        assert_eq!(targets, super::COMPLETION_TARGETS);
    }
}
