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
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use super::events;
use super::rows::{self, attempt_columns, delivery_columns};
use super::{
    SqliteStore, audit, db_error, id_list, micros, opt_micros, page_limit, rows_per_statement,
};
use crate::replay;

const COLUMNS: usize = 11;

/// Inserts new delivery rows on `conn` (inside the caller's transaction).
/// A waiting delivery without a due time is due when it was created.
pub(super) async fn insert_rows(
    conn: &mut SqliteConnection,
    deliveries: &[&Delivery],
) -> StoreResult<()> {
    for chunk in deliveries.chunks(rows_per_statement(COLUMNS)) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO deliveries (id, org_id, event_id, destination_id, status, \
             attempt_count, failures_counted, next_attempt_at, last_error, created_at, \
             updated_at) ",
        );
        qb.push_values(chunk, |mut b, d| {
            let waiting = matches!(d.status, DeliveryStatus::Pending | DeliveryStatus::Retrying);
            let next = match d.next_attempt_at {
                None if waiting => Some(d.created_at),
                next => next,
            };
            b.push_bind(d.id.as_str())
                .push_bind(d.org_id.as_str())
                .push_bind(d.event_id.as_str())
                .push_bind(d.destination_id.as_str())
                .push_bind(d.status.as_str())
                .push_bind(i64::from(d.attempt_count))
                .push_bind(i64::from(d.failures_counted))
                .push_bind(opt_micros(next))
                .push_bind(d.last_error.as_deref())
                .push_bind(micros(d.created_at))
                .push_bind(micros(d.updated_at));
        });
        qb.build()
            .persistent(false)
            .execute(&mut *conn)
            .await
            .map_err(db_error)?;
    }
    Ok(())
}

pub(super) async fn insert(
    store: &SqliteStore,
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
    tx.commit().await.map_err(db_error)
}

pub(super) async fn get(
    store: &SqliteStore,
    org: &OrgId,
    id: &DeliveryId,
) -> StoreResult<Option<(Delivery, Vec<Attempt>)>> {
    let Some(row) = sqlx::query(concat!(
        "SELECT ",
        delivery_columns!(),
        " FROM deliveries WHERE org_id = ? AND id = ?"
    ))
    .bind(org.as_str())
    .bind(id.as_str())
    .fetch_optional(store.reader())
    .await
    .map_err(db_error)?
    else {
        return Ok(None);
    };
    let (_, delivery) = rows::delivery(&row)?;
    let rows = sqlx::query(concat!(
        "SELECT ",
        attempt_columns!(),
        " FROM attempts WHERE delivery_id = ? ORDER BY number, seq"
    ))
    .bind(id.as_str())
    .fetch_all(store.reader())
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
fn push_filter(qb: &mut QueryBuilder<Sqlite>, filter: &DeliveryFilter) {
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
    store: &SqliteStore,
    org: &OrgId,
    filter: &DeliveryFilter,
    page: PageRequest,
) -> StoreResult<Page<Delivery>> {
    let limit = page_limit(page.limit);
    let mut qb = QueryBuilder::<Sqlite>::new(concat!(
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
    let rows = qb
        .build()
        .fetch_all(store.reader())
        .await
        .map_err(db_error)?;
    let rows = rows
        .iter()
        .map(rows::delivery)
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Page::from_rows(rows, limit))
}

pub(super) async fn counts(store: &SqliteStore) -> StoreResult<Vec<(DeliveryStatus, u64)>> {
    let rows = sqlx::query("SELECT status, n FROM delivery_counts")
        .fetch_all(store.reader())
        .await
        .map_err(db_error)?;
    let mut counts = Vec::with_capacity(DeliveryStatus::ALL.len());
    for row in &rows {
        let status: &str = row.try_get("status").map_err(db_error)?;
        let n: i64 = row.try_get("n").map_err(db_error)?;
        let status = status.parse().map_err(ferry_core::StoreError::Corrupt)?;
        counts.push((status, u64::try_from(n).unwrap_or(0)));
    }
    counts.sort_by_key(|(s, _)| DeliveryStatus::ALL.iter().position(|a| a == s));
    Ok(counts)
}

/// `AND status IN (…)` with the statuses an operator requeue moves.
fn push_requeue_sources(qb: &mut QueryBuilder<Sqlite>) {
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
    store: &SqliteStore,
    org: &OrgId,
    selector: &RequeueSelector,
    actor: &str,
) -> StoreResult<Vec<Delivery>> {
    let mut tx = store.write().await?;
    let requeued = requeue_on(&mut tx, org, selector, actor).await?;
    if !requeued.is_empty() {
        tx.commit().await.map_err(db_error)?;
    }
    Ok(requeued)
}

/// Requeues on `conn`, inside the caller's transaction (see `requeue`).
async fn requeue_on(
    conn: &mut SqliteConnection,
    org: &OrgId,
    selector: &RequeueSelector,
    actor: &str,
) -> StoreResult<Vec<Delivery>> {
    let now = Utc::now();
    // Which deliveries, with their status before: those the state machine
    // lets an operator requeue, and only while their destination exists (a
    // deleted destination's deliveries could never be attempted again).
    let mut qb =
        QueryBuilder::<Sqlite>::new("SELECT seq, id, status FROM deliveries WHERE org_id = ");
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
                qb.push(" AND destination_id IN (SELECT value FROM json_each(")
                    .push_bind(id_list(destinations))
                    .push("))");
            }
        }
        RequeueSelector::Dead(filter) => {
            qb.push(" AND status = 'dead'");
            push_filter(&mut qb, filter);
        }
    }
    qb.push(" AND EXISTS (SELECT 1 FROM destinations t WHERE t.id = deliveries.destination_id)");

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
        "UPDATE deliveries SET status = 'pending', next_attempt_at = ?1, failures_counted = 0, \
         lease_owner = NULL, lease_expires_at = NULL, updated_at = ?1 \
         WHERE seq IN (SELECT value FROM json_each(?2)) RETURNING ",
        delivery_columns!()
    ))
    .bind(micros(now))
    .bind(serde_json::Value::from(seqs).to_string())
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
    store: &SqliteStore,
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
    tx.commit().await.map_err(db_error)?;
    Ok(Some(waiting))
}
