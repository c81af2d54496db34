//! Events and ingest's group commit: a whole batch of events with their
//! deliveries in one transaction, each table written with one multi-row
//! statement (`UNNEST` over arrays). An id that is already stored (by this
//! process or another one, even concurrently) or that occurs earlier in the
//! same batch stores nothing and reports the original deliveries.

use std::collections::{HashMap, HashSet};

use ferry_core::delivery::Delivery;
use ferry_core::error::StoreResult;
use ferry_core::event::{Event, InsertOutcome, NewEvent};
use ferry_core::ids::{EventId, OrgId};
use sqlx::PgConnection;

use super::rows::{self, delivery_columns, event_columns};
use super::{PgStore, db_error, deliveries, micros};

pub(super) async fn insert(store: &PgStore, batch: &[NewEvent]) -> StoreResult<Vec<InsertOutcome>> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    // The first occurrence of each id; later ones are duplicates of it.
    let mut first: HashMap<&str, usize> = HashMap::with_capacity(batch.len());
    let mut unique: Vec<&NewEvent> = Vec::with_capacity(batch.len());
    for (i, new) in batch.iter().enumerate() {
        first.entry(new.event.id.as_str()).or_insert_with(|| {
            unique.push(new);
            i
        });
    }

    let n = unique.len();
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
    for new in &unique {
        let e = &new.event;
        ids.push(e.id.as_str());
        orgs.push(e.org_id.as_str());
        types.push(e.event_type.as_str());
        data.push(e.data.to_string());
        metadata.push(e.metadata.to_string());
        keys.push(e.idempotency_key.as_deref());
        created.push(micros(e.created_at));
    }

    let mut tx = store.write().await?;
    // A concurrent transaction inserting the same id makes this one wait for
    // its outcome: committed means "already stored" here. Rows go in in id
    // order, so that two batches sharing ids (the same events sent to two
    // ingest processes) wait for each other in one direction only and never
    // deadlock.
    let inserted: Vec<String> = sqlx::query_scalar(
        "INSERT INTO events (id, org_id, event_type, data, metadata, idempotency_key, created_at) \
         SELECT id, org_id, event_type, data, metadata, idempotency_key, created_at \
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
                     $7::int8[]) \
              AS v (id, org_id, event_type, data, metadata, idempotency_key, created_at) \
         ORDER BY id \
         ON CONFLICT (id) DO NOTHING RETURNING id",
    )
    .bind(&ids)
    .bind(orgs)
    .bind(types)
    .bind(data)
    .bind(metadata)
    .bind(keys)
    .bind(created)
    .fetch_all(&mut *tx)
    .await
    .map_err(db_error)?;
    let inserted: HashSet<String> = inserted.into_iter().collect();

    let new_deliveries: Vec<&Delivery> = unique
        .iter()
        .filter(|new| inserted.contains(new.event.id.as_str()))
        .flat_map(|new| &new.deliveries)
        .collect();
    deliveries::insert_rows(&mut tx, &new_deliveries).await?;

    // The deliveries of ids that were already stored, read in the same
    // transaction.
    let known: Vec<&str> = ids
        .iter()
        .copied()
        .filter(|id| !inserted.contains(*id))
        .collect();
    let mut originals: HashMap<EventId, Vec<Delivery>> = HashMap::new();
    if !known.is_empty() {
        let rows = sqlx::query(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM deliveries WHERE event_id = ANY($1) ORDER BY seq"
        ))
        .bind(known)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?;
        for d in rows::deliveries(&rows)? {
            originals.entry(d.event_id.clone()).or_default().push(d);
        }
    }
    if batch.iter().any(|n| !n.deliveries.is_empty()) {
        store.signal_work(&mut tx).await?;
    }
    tx.commit().await.map_err(db_error)?;

    // Only deliveries of the caller's own organization are ever reported
    // (ids derived per organization cannot collide, but never leak).
    let same_org = |deliveries: &[Delivery], org: &OrgId| -> Vec<Delivery> {
        deliveries
            .iter()
            .filter(|d| &d.org_id == org)
            .cloned()
            .collect()
    };
    Ok(batch
        .iter()
        .enumerate()
        .map(|(i, new)| {
            let id = &new.event.id;
            let org = &new.event.org_id;
            let first = first.get(id.as_str()).copied().unwrap_or(i);
            if !inserted.contains(id.as_str()) {
                InsertOutcome::Duplicate(same_org(
                    originals.get(id).map(Vec::as_slice).unwrap_or_default(),
                    org,
                ))
            } else if first == i {
                InsertOutcome::Inserted
            } else {
                InsertOutcome::Duplicate(same_org(&batch[first].deliveries, org))
            }
        })
        .collect())
}

pub(super) async fn get(
    store: &PgStore,
    org: &OrgId,
    id: &EventId,
) -> StoreResult<Option<(Event, Vec<Delivery>)>> {
    let mut conn = store.pool().acquire().await.map_err(db_error)?;
    get_on(&mut conn, org, id).await
}

/// An event of `org` with its deliveries, read on `conn` (inside the
/// caller's transaction, if any).
pub(super) async fn get_on(
    conn: &mut PgConnection,
    org: &OrgId,
    id: &EventId,
) -> StoreResult<Option<(Event, Vec<Delivery>)>> {
    let Some(row) = sqlx::query(concat!(
        "SELECT ",
        event_columns!(),
        " FROM events WHERE org_id = $1 AND id = $2"
    ))
    .bind(org.as_str())
    .bind(id.as_str())
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_error)?
    else {
        return Ok(None);
    };
    let (_, event) = rows::event(&row)?;
    let rows = sqlx::query(concat!(
        "SELECT ",
        delivery_columns!(),
        " FROM deliveries WHERE event_id = $1 AND org_id = $2 ORDER BY seq"
    ))
    .bind(id.as_str())
    .bind(org.as_str())
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error)?;
    Ok(Some((event, rows::deliveries(&rows)?)))
}

/// Loads events by id (for leased deliveries); ids that do not exist are
/// simply absent from the result.
pub(super) async fn by_ids(store: &PgStore, ids: &[&str]) -> StoreResult<Vec<Event>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(concat!(
        "SELECT ",
        event_columns!(),
        " FROM events WHERE id = ANY($1)"
    ))
    .bind(ids)
    .fetch_all(store.pool())
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|r| rows::event(r).map(|(_, e)| e))
        .collect()
}
