//! The audit log: append-only records, written inside the transaction of
//! the change they describe, and listed newest first.

use ferry_core::audit::{AuditFilter, AuditRecord};
use ferry_core::error::StoreResult;
use ferry_core::ids::OrgId;
use ferry_core::page::{Page, PageRequest};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::rows::{self, audit_columns};
use super::{SqliteStore, db_error, micros, page_limit, rows_per_statement, to_json};

const COLUMNS: usize = 9;

/// Inserts `records` on `conn` (inside the caller's transaction).
pub(super) async fn insert_rows(
    conn: &mut SqliteConnection,
    records: &[&AuditRecord],
) -> StoreResult<()> {
    for chunk in records.chunks(rows_per_statement(COLUMNS)) {
        let mut encoded = Vec::with_capacity(chunk.len());
        for r in chunk {
            let before = r
                .before
                .as_ref()
                .map(|v| to_json(v, "audit before"))
                .transpose()?;
            let after = r
                .after
                .as_ref()
                .map(|v| to_json(v, "audit after"))
                .transpose()?;
            encoded.push((*r, before, after));
        }
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO audit (id, org_id, actor, at, entity_type, entity_id, action, before, \
             after) ",
        );
        qb.push_values(encoded, |mut b, (r, before, after)| {
            b.push_bind(r.id.as_str())
                .push_bind(r.org_id.as_str())
                .push_bind(r.actor.as_str())
                .push_bind(micros(r.at))
                .push_bind(r.entity_type.as_str())
                .push_bind(r.entity_id.as_str())
                .push_bind(r.action.as_str())
                .push_bind(before)
                .push_bind(after);
        });
        qb.build()
            .persistent(false)
            .execute(&mut *conn)
            .await
            .map_err(db_error)?;
    }
    Ok(())
}

pub(super) async fn append(store: &SqliteStore, records: &[AuditRecord]) -> StoreResult<()> {
    if records.is_empty() {
        return Ok(());
    }
    let refs: Vec<&AuditRecord> = records.iter().collect();
    let mut tx = store.write().await?;
    insert_rows(&mut tx, &refs).await?;
    tx.commit().await.map_err(db_error)
}

pub(super) async fn list(
    store: &SqliteStore,
    org: &OrgId,
    filter: &AuditFilter,
    page: PageRequest,
) -> StoreResult<Page<AuditRecord>> {
    let limit = page_limit(page.limit);
    let mut qb = QueryBuilder::<Sqlite>::new(concat!(
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
    let rows = qb
        .build()
        .fetch_all(store.reader())
        .await
        .map_err(db_error)?;
    let rows = rows
        .iter()
        .map(rows::audit)
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Page::from_rows(rows, limit))
}
