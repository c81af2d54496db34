//! Destinations. Their secrets (auth credentials and signing keys) are
//! sealed with the master key before they reach SQL and opened when a row is
//! read: the database file never holds them in plaintext.

use chrono::Utc;
use ferry_core::audit::AuditRecord;
use ferry_core::destination::{Destination, Health};
use ferry_core::error::StoreResult;
use ferry_core::ids::{DestinationId, OrgId};
use ferry_core::page::{Page, PageRequest};

use super::rows::{self, destination_columns};
use super::{SqliteStore, audit, db_error, micros, page_limit, to_json};
use crate::deleted;

/// A destination's columns as bound for an insert or an update.
struct Encoded {
    config: String,
    filter: String,
    retry: String,
    health: String,
    sealed: Vec<u8>,
}

fn encode(store: &SqliteStore, d: &Destination) -> StoreResult<Encoded> {
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
    store: &SqliteStore,
    d: &Destination,
    audit: &AuditRecord,
) -> StoreResult<()> {
    let e = encode(store, d)?;
    let mut tx = store.write().await?;
    sqlx::query(
        "INSERT INTO destinations (id, org_id, name, kind, config, filter, retry, is_default, \
         enabled, max_in_flight, secrets, health, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
    store: &SqliteStore,
    org: &OrgId,
    id: &DestinationId,
) -> StoreResult<Option<Destination>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        destination_columns!(),
        " FROM destinations WHERE org_id = ? AND id = ?"
    ))
    .bind(org.as_str())
    .bind(id.as_str())
    .fetch_optional(store.reader())
    .await
    .map_err(db_error)?;
    row.map(|r| rows::destination(&r, store.cipher()).map(|(_, d)| d))
        .transpose()
}

pub(super) async fn by_id(
    store: &SqliteStore,
    id: &DestinationId,
) -> StoreResult<Option<Destination>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        destination_columns!(),
        " FROM destinations WHERE id = ?"
    ))
    .bind(id.as_str())
    .fetch_optional(store.reader())
    .await
    .map_err(db_error)?;
    row.map(|r| rows::destination(&r, store.cipher()).map(|(_, d)| d))
        .transpose()
}

pub(super) async fn of_org(store: &SqliteStore, org: &OrgId) -> StoreResult<Vec<Destination>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        destination_columns!(),
        " FROM destinations WHERE org_id = ? ORDER BY seq"
    ))
    .bind(org.as_str())
    .fetch_all(store.reader())
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|r| rows::destination(r, store.cipher()).map(|(_, d)| d))
        .collect()
}

pub(super) async fn list(
    store: &SqliteStore,
    org: &OrgId,
    page: PageRequest,
) -> StoreResult<Page<Destination>> {
    let limit = page_limit(page.limit);
    let rows = sqlx::query(concat!(
        "SELECT ",
        destination_columns!(),
        " FROM destinations WHERE org_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?"
    ))
    .bind(org.as_str())
    .bind(page.after.unwrap_or(i64::MAX))
    .bind(i64::from(limit) + 1)
    .fetch_all(store.reader())
    .await
    .map_err(db_error)?;
    let rows = rows
        .iter()
        .map(|r| rows::destination(r, store.cipher()))
        .collect::<StoreResult<_>>()?;
    Ok(Page::from_rows(rows, limit))
}

pub(super) async fn update(
    store: &SqliteStore,
    d: &Destination,
    audit: &AuditRecord,
) -> StoreResult<bool> {
    let e = encode(store, d)?;
    let mut tx = store.write().await?;
    let updated = sqlx::query(
        "UPDATE destinations SET name = ?, kind = ?, config = ?, filter = ?, retry = ?, \
         is_default = ?, enabled = ?, max_in_flight = ?, secrets = ?, health = ?, updated_at = ? \
         WHERE org_id = ? AND id = ?",
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
        return Ok(false);
    }
    audit::insert_rows(&mut tx, &[audit]).await?;
    tx.commit().await.map_err(db_error)?;
    Ok(true)
}

pub(super) async fn delete(
    store: &SqliteStore,
    org: &OrgId,
    id: &DestinationId,
    audit: &AuditRecord,
) -> StoreResult<bool> {
    let now = micros(Utc::now());
    let mut tx = store.write().await?;
    let deleted = sqlx::query("DELETE FROM destinations WHERE org_id = ? AND id = ?")
        .bind(org.as_str())
        .bind(id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?
        .rows_affected();
    if deleted == 0 {
        return Ok(false);
    }
    // Waiting deliveries can never be attempted now (`Transition::Abandon`;
    // a unit test in `mod.rs` checks the statuses against the state
    // machine). One in flight keeps its lease: its completion, or its lease
    // given back, decides (`crate::deleted`).
    sqlx::query(
        "UPDATE deliveries SET status = 'failed', last_error = ?1, next_attempt_at = NULL, \
         updated_at = ?2 WHERE destination_id = ?3 AND org_id = ?4 \
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

pub(super) async fn save_health(
    store: &SqliteStore,
    updates: &[(DestinationId, Health)],
) -> StoreResult<()> {
    if updates.is_empty() {
        return Ok(());
    }
    let encoded = updates
        .iter()
        .map(|(id, h)| Ok((id, to_json(h, "destination health")?)))
        .collect::<StoreResult<Vec<_>>>()?;
    let mut tx = store.write().await?;
    for (id, health) in encoded {
        sqlx::query("UPDATE destinations SET health = ? WHERE id = ?")
            .bind(health)
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
    }
    tx.commit().await.map_err(db_error)
}
