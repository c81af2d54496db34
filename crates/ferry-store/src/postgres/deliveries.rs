//! Deliveries as the operator sees them: adding them to existing events,
//! reading one with its attempts, filtered lists, per-status counts, and the
//! operator's requeue (retry, replay, DLQ replay), which is audited.

use chrono::Utc;
use ferry_core::audit::AuditRecord;
use ferry_core::delivery::{Attempt, Delivery, DeliveryFilter, DeliveryStatus};
use ferry_core::error::StoreResult;
use ferry_core::ids::{DeliveryId, DestinationId, EventId, OrgId};
use ferry_core::page::{Page, PageRequest};
use ferry_core::ports::RequeueSelector;
use ferry_core::state::Transition;
use serde_json::json;
use sqlx::{PgConnection, Postgres, QueryBuilder, Row};

use super::events;
use super::rows::{self, attempt_columns, delivery_columns};
use super::{PgStore, audit, db_error, id_array, micros, opt_micros, page_limit};
use crate::replay;

/// Inserts new delivery rows on `conn` (inside the caller's transaction), in
/// order, with one statement. A waiting delivery without a due time is due
/// when it was created.
pub(super) async fn insert_rows(
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
    let mut statuses = Vec::with_capacity(n);
    let mut attempts = Vec::with_capacity(n);
    let mut failures = Vec::with_capacity(n);
    let mut nexts = Vec::with_capacity(n);
    let mut errors = Vec::with_capacity(n);
    let mut created = Vec::with_capacity(n);
    let mut updated = Vec::with_capacity(n);
    for d in deliveries {
        let waiting = matches!(d.status, DeliveryStatus::Pending | DeliveryStatus::Retrying);
        let next = match d.next_attempt_at {
            None if waiting => Some(d.created_at),
            next => next,
        };
        ids.push(d.id.as_str());
        orgs.push(d.org_id.as_str());
        events.push(d.event_id.as_str());
        destinations.push(d.destination_id.as_str());
        statuses.push(d.status.as_str());
        attempts.push(i64::from(d.attempt_count));
        failures.push(i64::from(d.failures_counted));
        nexts.push(opt_micros(next));
        errors.push(d.last_error.as_deref());
        created.push(micros(d.created_at));
        updated.push(micros(d.updated_at));
    }
    sqlx::query(
        "INSERT INTO deliveries (id, org_id, event_id, destination_id, status, attempt_count, \
         failures_counted, next_attempt_at, last_error, created_at, updated_at) \
         SELECT id, org_id, event_id, destination_id, status, attempt_count, failures_counted, \
         next_attempt_at, last_error, created_at, updated_at \
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[], \
                     $7::int8[], $8::int8[], $9::text[], $10::int8[], $11::int8[]) \
              WITH ORDINALITY AS v (id, org_id, event_id, destination_id, status, attempt_count, \
                  failures_counted, next_attempt_at, last_error, created_at, updated_at, ord) \
         ORDER BY ord",
    )
    .bind(ids)
    .bind(orgs)
    .bind(events)
    .bind(destinations)
    .bind(statuses)
    .bind(attempts)
    .bind(failures)
    .bind(nexts)
    .bind(errors)
    .bind(created)
    .bind(updated)
    .execute(&mut *conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

pub(super) async fn insert(
    store: &PgStore,
    deliveries: &[Delivery],
    audit: &[AuditRecord],
) -> StoreResult<()> {
    if deliveries.is_empty() && audit.is_empty() {
        return Ok(());
    }
    let deliveries: Vec<&Delivery> = deliveries.iter().collect();
    let audit: Vec<&AuditRecord> = audit.iter().collect();
    let mut tx = store.write().await?;
    insert_rows(&mut tx, &deliveries).await?;
    audit::insert_rows(&mut tx, &audit).await?;
    store.signal_work(&mut tx).await?;
    tx.commit().await.map_err(db_error)
}

pub(super) async fn get(
    store: &PgStore,
    org: &OrgId,
    id: &DeliveryId,
) -> StoreResult<Option<(Delivery, Vec<Attempt>)>> {
    let Some(row) = sqlx::query(concat!(
        "SELECT ",
        delivery_columns!(),
        " FROM deliveries WHERE org_id = $1 AND id = $2"
    ))
    .bind(org.as_str())
    .bind(id.as_str())
    .fetch_optional(store.pool())
    .await
    .map_err(db_error)?
    else {
        return Ok(None);
    };
    let (_, delivery) = rows::delivery(&row)?;
    let rows = sqlx::query(concat!(
        "SELECT ",
        attempt_columns!(),
        " FROM attempts WHERE delivery_id = $1 ORDER BY number, seq"
    ))
    .bind(id.as_str())
    .fetch_all(store.pool())
    .await
    .map_err(db_error)?;
    let attempts = rows
        .iter()
        .map(rows::attempt)
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Some((delivery, attempts)))
}

/// Appends a filter's conditions (all but `status`) to a query on
/// `deliveries`.
fn push_filter(qb: &mut QueryBuilder<Postgres>, filter: &DeliveryFilter) {
    if let Some(destination_id) = &filter.destination_id {
        qb.push(" AND destination_id = ")
            .push_bind(destination_id.as_str());
    }
    if let Some(event_type) = &filter.event_type {
        qb.push(
            " AND EXISTS (SELECT 1 FROM events e WHERE e.id = deliveries.event_id \
             AND e.event_type = ",
        )
        .push_bind(event_type.as_str())
        .push(")");
    }
    if let Some(since) = filter.since {
        qb.push(" AND created_at >= ").push_bind(micros(since));
    }
    if let Some(until) = filter.until {
        qb.push(" AND created_at < ").push_bind(micros(until));
    }
}

pub(super) async fn list(
    store: &PgStore,
    org: &OrgId,
    filter: &DeliveryFilter,
    page: PageRequest,
) -> StoreResult<Page<Delivery>> {
    let limit = page_limit(page.limit);
    let mut qb = QueryBuilder::<Postgres>::new(concat!(
        "SELECT ",
        delivery_columns!(),
        " FROM deliveries WHERE org_id = "
    ));
    qb.push_bind(org.as_str());
    if let Some(after) = page.after {
        qb.push(" AND seq < ").push_bind(after);
    }
    if let Some(status) = filter.status {
        qb.push(" AND status = ").push_bind(status.as_str());
    }
    push_filter(&mut qb, filter);
    qb.push(" ORDER BY seq DESC LIMIT ")
        .push_bind(i64::from(limit) + 1);
    let rows = qb.build().fetch_all(store.pool()).await.map_err(db_error)?;
    let rows = rows
        .iter()
        .map(rows::delivery)
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Page::from_rows(rows, limit))
}

/// Deliveries per status: the sum of the per-statement deltas that the
/// triggers append (see the migration), every status present.
pub(super) async fn counts(store: &PgStore) -> StoreResult<Vec<(DeliveryStatus, u64)>> {
    compact_counts(store).await?;
    let rows = sqlx::query(
        "SELECT status, SUM(n)::BIGINT AS n FROM delivery_count_deltas GROUP BY status",
    )
    .fetch_all(store.pool())
    .await
    .map_err(db_error)?;
    let mut counts: Vec<(DeliveryStatus, u64)> =
        DeliveryStatus::ALL.iter().map(|s| (*s, 0)).collect();
    for row in &rows {
        let status: &str = row.try_get("status").map_err(db_error)?;
        let n: i64 = row.try_get("n").map_err(db_error)?;
        let status: DeliveryStatus = status.parse().map_err(ferry_core::StoreError::Corrupt)?;
        if let Some(slot) = counts.iter_mut().find(|(s, _)| *s == status) {
            slot.1 = u64::try_from(n).unwrap_or(0);
        }
    }
    Ok(counts)
}

/// Folds the count deltas into one row per status. One process at a time
/// (a transaction-scoped advisory lock; the others skip); deltas appended
/// concurrently are not visible to the fold and stay for the next one, so
/// the sums never change.
pub(super) async fn compact_counts(store: &PgStore) -> StoreResult<()> {
    let mut tx = store.write_relaxed().await?;
    let ours: bool = sqlx::query_scalar(
        "SELECT pg_try_advisory_xact_lock(hashtext(current_schema() || '.delivery_count_deltas'))",
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(db_error)?;
    if ours {
        sqlx::query(
            "WITH gone AS (DELETE FROM delivery_count_deltas RETURNING status, n) \
             INSERT INTO delivery_count_deltas (status, n) \
             SELECT status, SUM(n) FROM gone GROUP BY status HAVING SUM(n) <> 0",
        )
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
    }
    tx.commit().await.map_err(db_error)
}

/// `AND status IN (…)` with the statuses an operator requeue moves.
fn push_requeue_sources(qb: &mut QueryBuilder<Postgres>) {
    qb.push(" AND status IN (");
    let mut list = qb.separated(", ");
    for status in DeliveryStatus::sources_of(Transition::Requeue) {
        list.push_bind(status.as_str());
    }
    qb.push(")");
}

/// The audit action of an operator requeue.
pub(super) const REQUEUED: &str = "delivery.requeued";

pub(super) async fn requeue(
    store: &PgStore,
    org: &OrgId,
    selector: &RequeueSelector,
    actor: &str,
) -> StoreResult<Vec<Delivery>> {
    let mut tx = store.write().await?;
    let requeued = requeue_on(&mut tx, org, selector, actor).await?;
    if requeued.is_empty() {
        // Ends the transaction now rather than when the pool next uses
        // the connection, so that its locks go at once.
        tx.rollback().await.map_err(db_error)?;
        return Ok(requeued);
    }
    store.signal_work(&mut tx).await?;
    tx.commit().await.map_err(db_error)?;
    Ok(requeued)
}

/// Requeues on `conn`, inside the caller's transaction (see `requeue`).
async fn requeue_on(
    conn: &mut PgConnection,
    org: &OrgId,
    selector: &RequeueSelector,
    actor: &str,
) -> StoreResult<Vec<Delivery>> {
    let now = Utc::now();
    // Which deliveries, with their status before: those the state machine
    // lets an operator requeue, and only while their destination exists (a
    // deleted destination's deliveries could never be attempted again).
    // Locked until the update, so that no worker leases one in between.
    let mut qb =
        QueryBuilder::<Postgres>::new("SELECT seq, id, status FROM deliveries WHERE org_id = ");
    qb.push_bind(org.as_str());
    match selector {
        RequeueSelector::Delivery(id) => {
            push_requeue_sources(&mut qb);
            qb.push(" AND id = ").push_bind(id.as_str());
        }
        RequeueSelector::Event {
            event_id,
            destinations,
        } => {
            push_requeue_sources(&mut qb);
            qb.push(" AND event_id = ").push_bind(event_id.as_str());
            if let Some(destinations) = destinations {
                qb.push(" AND destination_id = ANY(")
                    .push_bind(id_array(destinations))
                    .push(")");
            }
        }
        RequeueSelector::Dead(filter) => {
            qb.push(" AND status = 'dead'");
            push_filter(&mut qb, filter);
        }
    }
    qb.push(
        " AND EXISTS (SELECT 1 FROM destinations t WHERE t.id = deliveries.destination_id) \
         ORDER BY seq FOR UPDATE OF deliveries",
    );

    let selected = qb.build().fetch_all(&mut *conn).await.map_err(db_error)?;
    if selected.is_empty() {
        return Ok(Vec::new());
    }
    let mut seqs = Vec::with_capacity(selected.len());
    let mut before = Vec::with_capacity(selected.len());
    for row in &selected {
        seqs.push(rows::seq(row)?);
        let id: String = row.try_get("id").map_err(db_error)?;
        let status: String = row.try_get("status").map_err(db_error)?;
        before.push((id, status));
    }

    let rows = sqlx::query(concat!(
        "UPDATE deliveries SET status = 'pending', next_attempt_at = $1, failures_counted = 0, \
         lease_owner = NULL, lease_expires_at = NULL, updated_at = $1 \
         WHERE seq = ANY($2) RETURNING ",
        delivery_columns!()
    ))
    .bind(micros(now))
    .bind(seqs)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error)?;
    let mut updated = rows
        .iter()
        .map(rows::delivery)
        .collect::<StoreResult<Vec<_>>>()?;
    updated.sort_by_key(|(seq, _)| *seq);

    let records: Vec<AuditRecord> = before
        .into_iter()
        .map(|(id, status)| {
            let mut record = AuditRecord::new(org.clone(), actor, "delivery", id, REQUEUED)
                .before(json!({ "status": status }))
                .after(json!({ "status": DeliveryStatus::Pending.as_str() }));
            record.at = now;
            record
        })
        .collect();
    let refs: Vec<&AuditRecord> = records.iter().collect();
    audit::insert_rows(conn, &refs).await?;
    Ok(updated.into_iter().map(|(_, d)| d).collect())
}

/// Replays an event in one transaction (`Store::replay_event`): the
/// requeue, the deliveries to listed destinations that never had one, and
/// the audit records of both.
pub(super) async fn replay(
    store: &PgStore,
    org: &OrgId,
    event_id: &EventId,
    destinations: Option<&[DestinationId]>,
    actor: &str,
) -> StoreResult<Option<Vec<Delivery>>> {
    let mut tx = store.write().await?;
    let Some((event, existing)) = events::get_on(&mut tx, org, event_id).await? else {
        return Ok(None);
    };
    let selector = RequeueSelector::Event {
        event_id: event_id.clone(),
        destinations: destinations.map(<[_]>::to_vec),
    };
    let mut waiting = requeue_on(&mut tx, org, &selector, actor).await?;
    let fresh = replay::fresh_deliveries(&event, &existing, destinations);
    insert_rows(&mut tx, &fresh.iter().collect::<Vec<_>>()).await?;
    let mut records: Vec<AuditRecord> = fresh
        .iter()
        .map(|d| replay::created(org, actor, d))
        .collect();
    waiting.extend(fresh);
    records.push(replay::replayed(org, actor, event_id, &waiting));
    audit::insert_rows(&mut tx, &records.iter().collect::<Vec<_>>()).await?;
    store.signal_work(&mut tx).await?;
    tx.commit().await.map_err(db_error)?;
    Ok(Some(waiting))
}
