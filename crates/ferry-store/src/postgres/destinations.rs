//! Destinations. Their secrets (auth credentials and signing keys) are
//! sealed with the master key before they reach SQL (a BYTEA column) and
//! opened when a row is read: the database never holds them in plaintext.

use std::collections::HashMap;

use chrono::Utc;
use ferry_core::audit::AuditRecord;
use ferry_core::destination::{Destination, Health};
use ferry_core::error::StoreResult;
use ferry_core::ids::{DestinationId, OrgId};
use ferry_core::page::{Page, PageRequest};

use super::rows::{self, destination_columns};
use super::{PgStore, audit, db_error, micros, page_limit, to_json};
use crate::deleted;

/// A destination's columns as bound for an insert or an update.
struct Encoded {
    config: String,
    filter: String,
    retry: String,
    health: String,
    sealed: Vec<u8>,
}

fn encode(store: &PgStore, d: &Destination) -> StoreResult<Encoded> {
    let secrets = serde_json::to_vec(&d.secrets)
        .map_err(|_| ferry_core::StoreError::Corrupt("cannot encode destination secrets".into()))?;
    Ok(Encoded {
        config: to_json(&d.config, "destination config")?,
        filter: to_json(&d.filter, "destination filter")?,
        retry: to_json(&d.retry, "destination retry policy")?,
        health: to_json(&d.health, "destination health")?,
        sealed: store.cipher().seal(&secrets),
    })
}

pub(super) async fn insert(
    store: &PgStore,
    d: &Destination,
    audit: &AuditRecord,
) -> StoreResult<()> {
    let e = encode(store, d)?;
    let mut tx = store.write().await?;
    sqlx::query(
        "INSERT INTO destinations (id, org_id, name, kind, config, filter, retry, is_default, \
         enabled, max_in_flight, secrets, health, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(d.id.as_str())
    .bind(d.org_id.as_str())
    .bind(d.name.as_str())
    .bind(d.kind.as_str())
    .bind(e.config)
    .bind(e.filter)
    .bind(e.retry)
    .bind(d.is_default)
    .bind(d.enabled)
    .bind(i64::from(d.max_in_flight))
    .bind(e.sealed)
    .bind(e.health)
    .bind(micros(d.created_at))
    .bind(micros(d.updated_at))
    .execute(&mut *tx)
    .await
    .map_err(db_error)?;
    audit::insert_rows(&mut tx, &[audit]).await?;
    tx.commit().await.map_err(db_error)
}

pub(super) async fn get(
    store: &PgStore,
    org: &OrgId,
    id: &DestinationId,
) -> StoreResult<Option<Destination>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        destination_columns!(),
        " FROM destinations WHERE org_id = $1 AND id = $2"
    ))
    .bind(org.as_str())
    .bind(id.as_str())
    .fetch_optional(store.pool())
    .await
    .map_err(db_error)?;
    row.map(|r| rows::destination(&r, store.cipher()).map(|(_, d)| d))
        .transpose()
}

pub(super) async fn by_id(store: &PgStore, id: &DestinationId) -> StoreResult<Option<Destination>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        destination_columns!(),
        " FROM destinations WHERE id = $1"
    ))
    .bind(id.as_str())
    .fetch_optional(store.pool())
    .await
    .map_err(db_error)?;
    row.map(|r| rows::destination(&r, store.cipher()).map(|(_, d)| d))
        .transpose()
}

pub(super) async fn of_org(store: &PgStore, org: &OrgId) -> StoreResult<Vec<Destination>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        destination_columns!(),
        " FROM destinations WHERE org_id = $1 ORDER BY seq"
    ))
    .bind(org.as_str())
    .fetch_all(store.pool())
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|r| rows::destination(r, store.cipher()).map(|(_, d)| d))
        .collect()
}

pub(super) async fn list(
    store: &PgStore,
    org: &OrgId,
    page: PageRequest,
) -> StoreResult<Page<Destination>> {
    let limit = page_limit(page.limit);
    let rows = sqlx::query(concat!(
        "SELECT ",
        destination_columns!(),
        " FROM destinations WHERE org_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
    ))
    .bind(org.as_str())
    .bind(page.after.unwrap_or(i64::MAX))
    .bind(i64::from(limit) + 1)
    .fetch_all(store.pool())
    .await
    .map_err(db_error)?;
    let rows = rows
        .iter()
        .map(|r| rows::destination(r, store.cipher()))
        .collect::<StoreResult<_>>()?;
    Ok(Page::from_rows(rows, limit))
}

pub(super) async fn update(
    store: &PgStore,
    d: &Destination,
    audit: &AuditRecord,
) -> StoreResult<bool> {
    let e = encode(store, d)?;
    let mut tx = store.write().await?;
    let updated = sqlx::query(
        "UPDATE destinations SET name = $1, kind = $2, config = $3, filter = $4, retry = $5, \
         is_default = $6, enabled = $7, max_in_flight = $8, secrets = $9, health = $10, \
         updated_at = $11 WHERE org_id = $12 AND id = $13",
    )
    .bind(d.name.as_str())
    .bind(d.kind.as_str())
    .bind(e.config)
    .bind(e.filter)
    .bind(e.retry)
    .bind(d.is_default)
    .bind(d.enabled)
    .bind(i64::from(d.max_in_flight))
    .bind(e.sealed)
    .bind(e.health)
    .bind(micros(d.updated_at))
    .bind(d.org_id.as_str())
    .bind(d.id.as_str())
    .execute(&mut *tx)
    .await
    .map_err(db_error)?
    .rows_affected();
    if updated == 0 {
        // Ends the transaction now rather than when the pool next uses
        // the connection, so that its locks go at once.
        tx.rollback().await.map_err(db_error)?;
        return Ok(false);
    }
    audit::insert_rows(&mut tx, &[audit]).await?;
    tx.commit().await.map_err(db_error)?;
    Ok(true)
}

pub(super) async fn delete(
    store: &PgStore,
    org: &OrgId,
    id: &DestinationId,
    audit: &AuditRecord,
) -> StoreResult<bool> {
    let now = micros(Utc::now());
    let mut tx = store.write().await?;
    let deleted = sqlx::query("DELETE FROM destinations WHERE org_id = $1 AND id = $2")
        .bind(org.as_str())
        .bind(id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?
        .rows_affected();
    if deleted == 0 {
        // Ends the transaction now rather than when the pool next uses
        // the connection, so that its locks go at once.
        tx.rollback().await.map_err(db_error)?;
        return Ok(false);
    }
    // Waiting deliveries can never be attempted now (`Transition::Abandon`;
    // a unit test in `mod.rs` checks the statuses against the state
    // machine). One in flight keeps its lease: its completion, or its lease
    // given back, decides (`crate::deleted`).
    sqlx::query(
        "UPDATE deliveries SET status = 'failed', last_error = $1, next_attempt_at = NULL, \
         updated_at = $2 WHERE destination_id = $3 AND org_id = $4 \
         AND status IN ('pending', 'retrying')",
    )
    .bind(deleted::ERROR)
    .bind(now)
    .bind(id.as_str())
    .bind(org.as_str())
    .execute(&mut *tx)
    .await
    .map_err(db_error)?;
    audit::insert_rows(&mut tx, &[audit]).await?;
    tx.commit().await.map_err(db_error)?;
    Ok(true)
}

/// One statement for the whole batch; when a destination appears more than
/// once, its last update wins (as if applied in order).
pub(super) async fn save_health(
    store: &PgStore,
    updates: &[(DestinationId, Health)],
) -> StoreResult<()> {
    if updates.is_empty() {
        return Ok(());
    }
    let mut last: HashMap<&str, &Health> = HashMap::with_capacity(updates.len());
    for (id, h) in updates {
        last.insert(id.as_str(), h);
    }
    let mut ids = Vec::with_capacity(last.len());
    let mut healths = Vec::with_capacity(last.len());
    for (id, h) in last {
        ids.push(id);
        healths.push(to_json(h, "destination health")?);
    }
    sqlx::query(
        "UPDATE destinations d SET health = v.health \
         FROM UNNEST($1::text[], $2::text[]) AS v (id, health) WHERE d.id = v.id",
    )
    .bind(ids)
    .bind(healths)
    .execute(store.pool())
    .await
    .map_err(db_error)?;
    Ok(())
}
