//! Deliveries as the operator sees them: adding them to existing events,
//! reading one with its attempts, filtered lists, and the operator's
//! requeue (retry, replay, DLQ replay), which is audited.

use chrono::Utc;
use ferry_core::audit::AuditRecord;
use ferry_core::delivery::{Attempt, Delivery, DeliveryFilter, DeliveryStatus};
use ferry_core::error::StoreResult;
use ferry_core::ids::{DeliveryId, DestinationId, EventId, OrgId};
use ferry_core::page::{Page, PageRequest};
use ferry_core::ports::RequeueSelector;
use ferry_core::state::Transition;
use serde_json::json;
use sqlx::{Database, Encode, Executor, IntoArguments, QueryBuilder, Type};

use super::decode::{self, Columns};
use super::{Backend, Tables};
use crate::replay;
use crate::rows::{attempt_columns, delivery_columns};
use crate::values::{micros, page_limit};

/// The audit action of an operator requeue.
const REQUEUED: &str = "delivery.requeued";

impl<B> Tables<'_, B>
where
    B: Backend,
    <B::DB as Database>::Arguments: IntoArguments<B::DB>,
    <B::DB as Database>::Row: Columns,
    for<'c> &'c mut <B::DB as Database>::Connection: Executor<'c, Database = B::DB>,
    for<'q> &'q str: Encode<'q, B::DB> + Type<B::DB>,
    for<'q> i64: Encode<'q, B::DB> + Type<B::DB>,
{
    pub(crate) async fn insert_deliveries(
        &self,
        deliveries: &[Delivery],
        audit: &[AuditRecord],
    ) -> StoreResult<()> {
        if deliveries.is_empty() && audit.is_empty() {
            return Ok(());
        }
        let deliveries: Vec<&Delivery> = deliveries.iter().collect();
        let audit: Vec<&AuditRecord> = audit.iter().collect();
        let mut tx = self.0.write().await?;
        B::insert_deliveries(&mut tx, &deliveries).await?;
        B::insert_audit(&mut tx, &audit).await?;
        if !deliveries.is_empty() {
            self.0.signal_work(&mut tx).await?;
        }
        tx.commit().await.map_err(B::db_error)
    }

    pub(crate) async fn get_delivery(
        &self,
        org: &OrgId,
        id: &DeliveryId,
    ) -> StoreResult<Option<(Delivery, Vec<Attempt>)>> {
        let sql = concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM deliveries WHERE org_id = $1 AND id = $2"
        );
        let Some(row) = sqlx::query(sql)
            .bind(org.as_str())
            .bind(id.as_str())
            .fetch_optional(self.0.reader())
            .await
            .map_err(B::db_error)?
        else {
            return Ok(None);
        };
        let (_, delivery) = decode::delivery(&row)?;
        let sql = concat!(
            "SELECT ",
            attempt_columns!(),
            " FROM attempts WHERE delivery_id = $1 ORDER BY number, seq"
        );
        let rows = sqlx::query(sql)
            .bind(id.as_str())
            .fetch_all(self.0.reader())
            .await
            .map_err(B::db_error)?;
        let attempts = rows
            .iter()
            .map(decode::attempt)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Some((delivery, attempts)))
    }

    /// Newest first.
    pub(crate) async fn list_deliveries(
        &self,
        org: &OrgId,
        filter: &DeliveryFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Delivery>> {
        let limit = page_limit(page.limit);
        let mut qb = QueryBuilder::<B::DB>::new(concat!(
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
            .fetch_all(self.0.reader())
            .await
            .map_err(B::db_error)?;
        let rows = rows
            .iter()
            .map(decode::delivery)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_rows(rows, limit))
    }

    pub(crate) async fn requeue(
        &self,
        org: &OrgId,
        selector: &RequeueSelector,
        actor: &str,
    ) -> StoreResult<Vec<Delivery>> {
        let mut tx = self.0.write().await?;
        let requeued = Self::requeue_on(&mut tx, org, selector, actor).await?;
        if requeued.is_empty() {
            tx.rollback().await.map_err(B::db_error)?;
            return Ok(requeued);
        }
        self.0.signal_work(&mut tx).await?;
        tx.commit().await.map_err(B::db_error)?;
        Ok(requeued)
    }

    /// Requeues on `conn`, inside the caller's transaction (see `requeue`).
    async fn requeue_on(
        conn: &mut <B::DB as Database>::Connection,
        org: &OrgId,
        selector: &RequeueSelector,
        actor: &str,
    ) -> StoreResult<Vec<Delivery>> {
        let now = Utc::now();
        // Which deliveries, with their status before: those the state
        // machine lets an operator requeue, and only while their destination
        // exists (a deleted destination's deliveries could never be
        // attempted again).
        let mut qb =
            QueryBuilder::<B::DB>::new("SELECT seq, id, status FROM deliveries WHERE org_id = ");
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
                    let ids: Vec<&str> = destinations.iter().map(DestinationId::as_str).collect();
                    qb.push(" AND ");
                    B::push_in_texts(&mut qb, "destination_id", &ids);
                }
            }
            RequeueSelector::Dead(filter) => {
                qb.push(" AND status = 'dead'");
                push_filter(&mut qb, filter);
            }
        }
        qb.push(
            " AND EXISTS (SELECT 1 FROM destinations t WHERE t.id = deliveries.destination_id)",
        );
        qb.push(B::REQUEUE_LOCK);

        let selected = qb
            .build()
            .fetch_all(&mut *conn)
            .await
            .map_err(B::db_error)?;
        if selected.is_empty() {
            return Ok(Vec::new());
        }
        let mut seqs = Vec::with_capacity(selected.len());
        let mut before = Vec::with_capacity(selected.len());
        for row in &selected {
            seqs.push(decode::seq(row)?);
            before.push((row.text("id")?.to_owned(), row.text("status")?.to_owned()));
        }

        let mut qb = QueryBuilder::<B::DB>::new(
            "UPDATE deliveries SET status = 'pending', failures_counted = 0, \
             lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = ",
        );
        qb.push_bind(micros(now))
            .push(", updated_at = ")
            .push_bind(micros(now))
            .push(" WHERE ");
        B::push_in_ints(&mut qb, "seq", &seqs);
        qb.push(concat!(" RETURNING ", delivery_columns!()));
        let rows = qb
            .build()
            .fetch_all(&mut *conn)
            .await
            .map_err(B::db_error)?;
        let mut updated = rows
            .iter()
            .map(decode::delivery)
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
        B::insert_audit(conn, &refs).await?;
        Ok(updated.into_iter().map(|(_, d)| d).collect())
    }

    /// Replays an event in one transaction (`Store::replay_event`): the
    /// requeue, the deliveries to listed destinations that never had one,
    /// and the audit records of both.
    pub(crate) async fn replay_event(
        &self,
        org: &OrgId,
        event_id: &EventId,
        destinations: Option<&[DestinationId]>,
        actor: &str,
    ) -> StoreResult<Option<Vec<Delivery>>> {
        let mut tx = self.0.write().await?;
        let Some((event, existing)) = Self::event_on(&mut tx, org, event_id).await? else {
            tx.rollback().await.map_err(B::db_error)?;
            return Ok(None);
        };
        let selector = RequeueSelector::Event {
            event_id: event_id.clone(),
            destinations: destinations.map(<[_]>::to_vec),
        };
        let mut waiting = Self::requeue_on(&mut tx, org, &selector, actor).await?;
        let fresh = replay::fresh_deliveries(&event, &existing, destinations);
        B::insert_deliveries(&mut tx, &fresh.iter().collect::<Vec<_>>()).await?;
        let mut records: Vec<AuditRecord> = fresh
            .iter()
            .map(|d| replay::created(org, actor, d))
            .collect();
        waiting.extend(fresh);
        records.push(replay::replayed(org, actor, event_id, &waiting));
        B::insert_audit(&mut tx, &records.iter().collect::<Vec<_>>()).await?;
        self.0.signal_work(&mut tx).await?;
        tx.commit().await.map_err(B::db_error)?;
        Ok(Some(waiting))
    }
}

/// Appends a filter's conditions (all but `status`) to a query on
/// `deliveries`.
fn push_filter<DB>(qb: &mut QueryBuilder<DB>, filter: &DeliveryFilter)
where
    DB: Database,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    if let Some(destination_id) = &filter.destination_id {
        qb.push(" AND destination_id = ")
            .push_bind(destination_id.as_str());
    }
    if let Some(event_type) = &filter.event_type {
        qb.push(" AND event_type = ").push_bind(event_type.as_str());
    }
    if let Some(since) = filter.since {
        qb.push(" AND created_at >= ").push_bind(micros(since));
    }
    if let Some(until) = filter.until {
        qb.push(" AND created_at < ").push_bind(micros(until));
    }
}

/// `AND status IN (…)` with the statuses an operator requeue moves.
fn push_requeue_sources<DB>(qb: &mut QueryBuilder<DB>)
where
    DB: Database,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
{
    qb.push(" AND status IN (");
    let mut list = qb.separated(", ");
    for status in DeliveryStatus::sources_of(Transition::Requeue) {
        list.push_bind(status.as_str());
    }
    qb.push(")");
}
