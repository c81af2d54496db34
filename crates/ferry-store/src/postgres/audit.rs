//! The audit log: append-only records, written inside the transaction of
//! the change they describe, and listed newest first.

use ferry_core::audit::{AuditFilter, AuditRecord};
use ferry_core::error::StoreResult;
use ferry_core::ids::OrgId;
use ferry_core::page::{Page, PageRequest};
use sqlx::{PgConnection, Postgres, QueryBuilder};

use super::rows::{self, audit_columns};
use super::{PgStore, db_error, micros, page_limit, to_json};

/// Inserts `records` on `conn` (inside the caller's transaction), in order,
/// with one statement.
pub(super) async fn insert_rows(
    conn: &mut PgConnection,
    records: &[&AuditRecord],
) -> StoreResult<()> {
    if records.is_empty() {
        return Ok(());
    }
    let n = records.len();
    let (mut ids, mut orgs, mut actors, mut ats) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut types, mut entities, mut actions, mut befores, mut afters) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for r in records {
        ids.push(r.id.as_str());
        orgs.push(r.org_id.as_str());
        actors.push(r.actor.as_str());
        ats.push(micros(r.at));
        types.push(r.entity_type.as_str());
        entities.push(r.entity_id.as_str());
        actions.push(r.action.as_str());
        befores.push(
            r.before
                .as_ref()
                .map(|v| to_json(v, "audit before"))
                .transpose()?,
        );
        afters.push(
            r.after
                .as_ref()
                .map(|v| to_json(v, "audit after"))
                .transpose()?,
        );
    }
    sqlx::query(
        "INSERT INTO audit (id, org_id, actor, at, entity_type, entity_id, action, before, after) \
         SELECT id, org_id, actor, at, entity_type, entity_id, action, before, after \
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::text[], \
                     $7::text[], $8::text[], $9::text[]) WITH ORDINALITY \
              AS v (id, org_id, actor, at, entity_type, entity_id, action, before, after, ord) \
         ORDER BY ord",
    )
    .bind(ids)
    .bind(orgs)
    .bind(actors)
    .bind(ats)
    .bind(types)
    .bind(entities)
    .bind(actions)
    .bind(befores)
    .bind(afters)
    .execute(&mut *conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

pub(super) async fn append(store: &PgStore, records: &[AuditRecord]) -> StoreResult<()> {
    if records.is_empty() {
        return Ok(());
    }
    let refs: Vec<&AuditRecord> = records.iter().collect();
    let mut tx = store.write().await?;
    insert_rows(&mut tx, &refs).await?;
    tx.commit().await.map_err(db_error)
}

pub(super) async fn list(
    store: &PgStore,
    org: &OrgId,
    filter: &AuditFilter,
    page: PageRequest,
) -> StoreResult<Page<AuditRecord>> {
    let limit = page_limit(page.limit);
    let mut qb = QueryBuilder::<Postgres>::new(concat!(
        "SELECT ",
        audit_columns!(),
        " FROM audit WHERE org_id = "
    ));
    qb.push_bind(org.as_str());
    if let Some(after) = page.after {
        qb.push(" AND seq < ").push_bind(after);
    }
    if let Some(entity_id) = &filter.entity_id {
        qb.push(" AND entity_id = ").push_bind(entity_id.as_str());
    }
    if let Some(action) = &filter.action {
        qb.push(" AND action = ").push_bind(action.as_str());
    }
    if let Some(since) = filter.since {
        qb.push(" AND at >= ").push_bind(micros(since));
    }
    if let Some(until) = filter.until {
        qb.push(" AND at < ").push_bind(micros(until));
    }
    qb.push(" ORDER BY seq DESC LIMIT ")
        .push_bind(i64::from(limit) + 1);
    let rows = qb.build().fetch_all(store.pool()).await.map_err(db_error)?;
    let rows = rows
        .iter()
        .map(rows::audit)
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Page::from_rows(rows, limit))
}
