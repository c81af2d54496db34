//! Events and ingest's group commit: a whole batch of events with their
//! deliveries in one transaction, each table written with the backend's
//! batch insert. An id that is already stored (by this process or another
//! one, even concurrently) or that occurs earlier in the same batch stores
//! nothing and reports the original deliveries.

use std::collections::{HashMap, HashSet};

use ferry_core::delivery::Delivery;
use ferry_core::error::StoreResult;
use ferry_core::event::{Event, InsertOutcome, NewEvent};
use ferry_core::ids::{EventId, OrgId};
use sqlx::{Database, Encode, Executor, IntoArguments, QueryBuilder, Type};

use super::decode::{self, Columns};
use super::{Backend, Tables};
use crate::rows::{delivery_columns, event_columns};

impl<B> Tables<'_, B>
where
    B: Backend,
    <B::DB as Database>::Arguments: IntoArguments<B::DB>,
    <B::DB as Database>::Row: Columns,
    for<'c> &'c mut <B::DB as Database>::Connection: Executor<'c, Database = B::DB>,
    for<'q> &'q str: Encode<'q, B::DB> + Type<B::DB>,
{
    pub(crate) async fn insert_events(
        &self,
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

        let mut tx = self.0.write().await?;
        let inserted: HashSet<String> = B::insert_events(&mut tx, &unique)
            .await?
            .into_iter()
            .collect();
        let new_deliveries: Vec<&Delivery> = unique
            .iter()
            .filter(|new| inserted.contains(new.event.id.as_str()))
            .flat_map(|new| &new.deliveries)
            .collect();
        B::insert_deliveries(&mut tx, &new_deliveries).await?;

        // The deliveries of ids that were already stored, read in the same
        // transaction.
        let known: Vec<&str> = unique
            .iter()
            .map(|new| new.event.id.as_str())
            .filter(|id| !inserted.contains(*id))
            .collect();
        let mut originals: HashMap<EventId, Vec<Delivery>> = HashMap::new();
        if !known.is_empty() {
            let mut qb = QueryBuilder::<B::DB>::new(concat!(
                "SELECT ",
                delivery_columns!(),
                " FROM deliveries WHERE "
            ));
            B::push_in_texts(&mut qb, "event_id", &known);
            qb.push(" ORDER BY seq");
            let rows = qb.build().fetch_all(&mut *tx).await.map_err(B::db_error)?;
            for d in decode::deliveries(&rows)? {
                originals.entry(d.event_id.clone()).or_default().push(d);
            }
        }
        if !new_deliveries.is_empty() {
            self.0.signal_work(&mut tx).await?;
        }
        tx.commit().await.map_err(B::db_error)?;

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

    pub(crate) async fn get_event(
        &self,
        org: &OrgId,
        id: &EventId,
    ) -> StoreResult<Option<(Event, Vec<Delivery>)>> {
        let mut conn = self.0.reader().acquire().await.map_err(B::db_error)?;
        Self::event_on(&mut conn, org, id).await
    }

    /// An event of `org` with its deliveries, read on `conn` (inside the
    /// caller's transaction, if any).
    pub(super) async fn event_on(
        conn: &mut <B::DB as Database>::Connection,
        org: &OrgId,
        id: &EventId,
    ) -> StoreResult<Option<(Event, Vec<Delivery>)>> {
        let sql = concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE org_id = $1 AND id = $2"
        );
        let Some(row) = sqlx::query(sql)
            .bind(org.as_str())
            .bind(id.as_str())
            .fetch_optional(&mut *conn)
            .await
            .map_err(B::db_error)?
        else {
            return Ok(None);
        };
        let (_, event) = decode::event(&row)?;
        let sql = concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM deliveries WHERE event_id = $1 AND org_id = $2 ORDER BY seq"
        );
        let rows = sqlx::query(sql)
            .bind(id.as_str())
            .bind(org.as_str())
            .fetch_all(&mut *conn)
            .await
            .map_err(B::db_error)?;
        Ok(Some((event, decode::deliveries(&rows)?)))
    }

    /// Loads events by id (for leased deliveries); ids that do not exist are
    /// simply absent from the result.
    pub(crate) async fn events_by_ids(&self, ids: &[&str]) -> StoreResult<Vec<Event>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb =
            QueryBuilder::<B::DB>::new(concat!("SELECT ", event_columns!(), " FROM events WHERE "));
        B::push_in_texts(&mut qb, "id", ids);
        let rows = qb
            .build()
            .fetch_all(self.0.reader())
            .await
            .map_err(B::db_error)?;
        rows.iter()
            .map(|r| decode::event(r).map(|(_, e)| e))
            .collect()
    }
}
