//! What a queue kept outside PostgreSQL (the Redis Streams queue) needs
//! from the deliveries table, which stays the source of truth: leasing
//! deliveries by id, taking back expired leases with their ids, and finding
//! the waiting deliveries that a queue which lost its entries must be given
//! again.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use ferry_core::delivery::{DeliveryStatus, Leased};
use ferry_core::error::StoreResult;
use ferry_core::ids::{DeliveryId, DestinationId};
use ferry_core::ports::{Completion, Lease, Reclaim};

use super::{PgStore, db_error, id_array};
use crate::sql::queue::Waiting;
use crate::sql::{Backend, Tables};
use crate::values::micros;

mod sql {
    use crate::rows::delivery_columns;

    /// Waiting and due, or leased by a worker whose lease has expired.
    pub const LEASE_NAMED: &str = concat!(
        "UPDATE deliveries SET status = 'delivering', lease_owner = $1, \
         lease_expires_at = $2, updated_at = $3 \
         WHERE seq = ANY(ARRAY(SELECT seq FROM deliveries WHERE id = ANY($4) \
             AND ((status IN ('pending', 'retrying') AND next_attempt_at <= $3) \
                  OR (status = 'delivering' AND lease_expires_at < $3)) \
             FOR UPDATE SKIP LOCKED)) \
         RETURNING ",
        delivery_columns!()
    );

    /// Waiting deliveries of destinations that are enabled and not paused
    /// (a paused destination's deliveries are taken by its probe; they are
    /// given to the queue again once it resumes).
    pub const WAITING: &str = "SELECT d.seq, d.id, d.destination_id, d.next_attempt_at \
         FROM deliveries d JOIN destinations t ON t.id = d.destination_id \
         WHERE d.status IN ('pending', 'retrying') AND d.seq > $1 \
         AND ($2::int8 IS NULL OR d.next_attempt_at <= $2) \
         AND t.enabled AND (t.health::jsonb ->> 'next_probe_at') IS NULL \
         ORDER BY d.seq LIMIT $3";

    /// Of the named deliveries, those waiting but not due yet.
    pub const NOT_DUE: &str = "SELECT seq, id, destination_id, next_attempt_at \
         FROM deliveries WHERE id = ANY($1) \
         AND status IN ('pending', 'retrying') AND next_attempt_at > $2";

    /// Of the named destinations, those that can take deliveries.
    pub const OPEN: &str = "SELECT id FROM destinations WHERE id = ANY($1) \
         AND enabled AND (health::jsonb ->> 'next_probe_at') IS NULL";
}

impl PgStore {
    /// Leases the named deliveries that may be attempted now: waiting and
    /// due, or leased by a worker whose lease expired. Deliveries another
    /// transaction holds, that are leased, finished or not yet due are left
    /// alone. Returned with their events, oldest due first.
    pub async fn lease_named(&self, ids: &[DeliveryId], lease: &Lease) -> StoreResult<Vec<Leased>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.write_relaxed().await?;
        let rows = sqlx::query(sql::LEASE_NAMED)
            .bind(lease.owner.as_str())
            .bind(micros(lease.until))
            .bind(micros(lease.now))
            .bind(id_array(ids))
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Tables(self).with_events(&rows).await
    }

    /// Of the named deliveries, those waiting for an attempt that is not due
    /// at `now` (an entry read before its delivery's due time, as seen by
    /// this host's clock).
    pub async fn not_due(
        &self,
        ids: &[DeliveryId],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Waiting>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(sql::NOT_DUE)
            .bind(id_array(ids))
            .bind(micros(now))
            .fetch_all(self.pool())
            .await
            .map_err(db_error)?;
        rows.iter().map(Waiting::decode).collect()
    }

    /// Records attempts as `Queue::complete` does and returns the status
    /// each delivery that moved was moved to (a delivery whose lease was
    /// lost does not move; one whose destination was deleted may fail).
    pub async fn complete_moved(
        &self,
        batch: &[Completion],
    ) -> StoreResult<HashMap<DeliveryId, DeliveryStatus>> {
        Tables(self).complete(batch).await
    }

    /// Takes leases back as `Queue::reclaim` does and returns the
    /// deliveries given back.
    pub async fn reclaim_waiting(&self, which: &Reclaim) -> StoreResult<Vec<Waiting>> {
        Ok(Tables(self).reclaim(which).await?.1)
    }

    /// Gives leases back as `Queue::release` does and returns the
    /// deliveries given back.
    pub async fn release_waiting(
        &self,
        ids: &[DeliveryId],
        owner: &str,
    ) -> StoreResult<Vec<Waiting>> {
        Ok(Tables(self).release(ids, owner).await?.1)
    }

    /// Tells listening workers that work may be due (after it was added to
    /// a queue outside PostgreSQL).
    pub async fn notify_work(&self) -> StoreResult<()> {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(self.channel())
            .execute(self.pool())
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Up to `limit` waiting deliveries after position `after` (in table
    /// order), of destinations that are enabled and not paused; with
    /// `due_before`, only those due by then.
    pub async fn waiting(
        &self,
        due_before: Option<DateTime<Utc>>,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<Waiting>> {
        let rows = sqlx::query(sql::WAITING)
            .bind(after)
            .bind(due_before.map(micros))
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await
            .map_err(db_error)?;
        rows.iter().map(Waiting::decode).collect()
    }

    /// Which of these destinations cannot take deliveries now: disabled,
    /// paused by the breaker, or deleted.
    pub async fn blocked_destinations(
        &self,
        ids: &[DestinationId],
    ) -> StoreResult<HashSet<DestinationId>> {
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        let open: Vec<String> = sqlx::query_scalar(sql::OPEN)
            .bind(id_array(ids))
            .fetch_all(self.pool())
            .await
            .map_err(db_error)?;
        let open: HashSet<String> = open.into_iter().collect();
        Ok(ids
            .iter()
            .filter(|id| !open.contains(id.as_str()))
            .cloned()
            .collect())
    }
}
