//! Events and ingest's group commit: a whole batch of events with their
//! deliveries in one transaction, with multi-row inserts. An id that is
//! already stored (or that occurs earlier in the same batch) stores nothing
//! and reports the original deliveries.

use std::collections::{HashMap, HashSet};

use ferry_core::delivery::Delivery;
use ferry_core::error::StoreResult;
use ferry_core::event::{Event, InsertOutcome, NewEvent};
use ferry_core::ids::{EventId, OrgId};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::rows::{self, delivery_columns, event_columns};
use super::{SqliteStore, db_error, deliveries, id_list, micros, rows_per_statement};

const COLUMNS: usize = 7;

pub(super) async fn insert(
    store: &SqliteStore,
    batch: &[NewEvent],
) -> StoreResult<Vec<InsertOutcome>> {
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

    let mut tx = store.write().await?;
    let mut inserted: HashSet<String> = HashSet::with_capacity(unique.len());
    for chunk in unique.chunks(rows_per_statement(COLUMNS)) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO events (id, org_id, event_type, data, metadata, idempotency_key, \
             created_at) ",
        );
        qb.push_values(chunk, |mut b, new| {
            let e = &new.event;
            b.push_bind(e.id.as_str())
                .push_bind(e.org_id.as_str())
                .push_bind(e.event_type.as_str())
                .push_bind(e.data.to_string())
                .push_bind(e.metadata.to_string())
                .push_bind(e.idempotency_key.as_deref())
                .push_bind(micros(e.created_at));
        });
        qb.push(" ON CONFLICT (id) DO NOTHING RETURNING id");
        let ids: Vec<String> = qb
            .build_query_scalar()
            .persistent(false)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error)?;
        inserted.extend(ids);
    }

    let new_deliveries: Vec<&Delivery> = unique
        .iter()
        .filter(|new| inserted.contains(new.event.id.as_str()))
        .flat_map(|new| &new.deliveries)
        .collect();
    deliveries::insert_rows(&mut tx, &new_deliveries).await?;

    // The deliveries of ids that were already stored, read in the same
    // transaction.
    let known: Vec<&str> = unique
        .iter()
        .map(|new| new.event.id.as_str())
        .filter(|id| !inserted.contains(*id))
        .collect();
    let mut originals: HashMap<EventId, Vec<Delivery>> = HashMap::new();
    if !known.is_empty() {
        let rows = sqlx::query(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM deliveries WHERE event_id IN (SELECT value FROM json_each(?)) ORDER BY seq"
        ))
        .bind(id_list(&known))
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?;
        for d in rows::deliveries(&rows)? {
            originals.entry(d.event_id.clone()).or_default().push(d);
        }
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
    store: &SqliteStore,
    org: &OrgId,
    id: &EventId,
) -> StoreResult<Option<(Event, Vec<Delivery>)>> {
    let mut conn = store.reader().acquire().await.map_err(db_error)?;
    get_on(&mut conn, org, id).await
}

/// An event of `org` with its deliveries, read on `conn` (inside the
/// caller's transaction, if any).
pub(super) async fn get_on(
    conn: &mut SqliteConnection,
    org: &OrgId,
    id: &EventId,
) -> StoreResult<Option<(Event, Vec<Delivery>)>> {
    let Some(row) = sqlx::query(concat!(
        "SELECT ",
        event_columns!(),
        " FROM events WHERE org_id = ? AND id = ?"
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
        " FROM deliveries WHERE event_id = ? AND org_id = ? ORDER BY seq"
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
pub(super) async fn by_ids(store: &SqliteStore, ids: &[&str]) -> StoreResult<Vec<Event>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(concat!(
        "SELECT ",
        event_columns!(),
        " FROM events WHERE id IN (SELECT value FROM json_each(?))"
    ))
    .bind(id_list(ids))
    .fetch_all(store.reader())
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|r| rows::event(r).map(|(_, e)| e))
        .collect()
}
