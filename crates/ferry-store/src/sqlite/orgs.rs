//! Organizations and API keys, and the checks that storage answers
//! (`ping`) and commits (`probe_write`). Keys are found by the SHA-256 of their
//! secret (a unique BLOB column); the secret itself is never stored.

use chrono::{DateTime, Utc};
use ferry_core::audit::AuditRecord;
use ferry_core::error::StoreResult;
use ferry_core::ids::{ApiKeyId, OrgId};
use ferry_core::org::{ApiKey, Org};
use ferry_core::page::{Page, PageRequest};

use super::rows::{self, api_key_columns, org_columns};
use super::{SqliteStore, audit, db_error, micros, opt_micros, page_limit, to_json};

pub(super) async fn ping(store: &SqliteStore) -> StoreResult<()> {
    sqlx::query("SELECT 1")
        .execute(store.reader())
        .await
        .map_err(db_error)?;
    Ok(())
}

pub(super) async fn probe_write(store: &SqliteStore) -> StoreResult<()> {
    let mut tx = store.write_relaxed().await?;
    sqlx::query(
        "INSERT INTO write_probe (id, probed_at) VALUES (1, ?) \
         ON CONFLICT (id) DO UPDATE SET probed_at = excluded.probed_at",
    )
    .bind(micros(Utc::now()))
    .execute(&mut *tx)
    .await
    .map_err(db_error)?;
    tx.commit().await.map_err(db_error)
}

pub(super) async fn create_org(store: &SqliteStore, org: &Org) -> StoreResult<()> {
    let mut tx = store.write().await?;
    sqlx::query("INSERT INTO orgs (id, name, alert_destinations, created_at) VALUES (?, ?, ?, ?)")
        .bind(org.id.as_str())
        .bind(org.name.as_str())
        .bind(to_json(&org.alert_destinations, "alert destinations")?)
        .bind(micros(org.created_at))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
    tx.commit().await.map_err(db_error)
}

pub(super) async fn update_org(
    store: &SqliteStore,
    org: &Org,
    audit_record: &AuditRecord,
) -> StoreResult<bool> {
    let mut tx = store.write().await?;
    let changed = sqlx::query("UPDATE orgs SET name = ?, alert_destinations = ? WHERE id = ?")
        .bind(org.name.as_str())
        .bind(to_json(&org.alert_destinations, "alert destinations")?)
        .bind(org.id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?
        .rows_affected();
    if changed == 0 {
        return Ok(false);
    }
    super::audit::insert_rows(&mut tx, &[audit_record]).await?;
    tx.commit().await.map_err(db_error)?;
    Ok(true)
}

pub(super) async fn get_org(store: &SqliteStore, id: &OrgId) -> StoreResult<Option<Org>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        org_columns!(),
        " FROM orgs WHERE id = ?"
    ))
    .bind(id.as_str())
    .fetch_optional(store.reader())
    .await
    .map_err(db_error)?;
    row.map(|r| rows::org(&r).map(|(_, o)| o)).transpose()
}

pub(super) async fn list_orgs(store: &SqliteStore, page: PageRequest) -> StoreResult<Page<Org>> {
    let limit = page_limit(page.limit);
    let rows = sqlx::query(concat!(
        "SELECT ",
        org_columns!(),
        " FROM orgs WHERE seq < ? ORDER BY seq DESC LIMIT ?"
    ))
    .bind(page.after.unwrap_or(i64::MAX))
    .bind(i64::from(limit) + 1)
    .fetch_all(store.reader())
    .await
    .map_err(db_error)?;
    let rows = rows
        .iter()
        .map(rows::org)
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Page::from_rows(rows, limit))
}

pub(super) async fn insert_api_key(
    store: &SqliteStore,
    key: &ApiKey,
    audit: &AuditRecord,
) -> StoreResult<()> {
    let scopes = to_json(&key.scopes, "api key scopes")?;
    let mut tx = store.write().await?;
    sqlx::query(
        "INSERT INTO api_keys (id, org_id, name, prefix, hash, scopes, created_at, last_used_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(key.id.as_str())
    .bind(key.org_id.as_str())
    .bind(key.name.as_str())
    .bind(key.prefix.as_str())
    .bind(&key.hash[..])
    .bind(scopes)
    .bind(micros(key.created_at))
    .bind(opt_micros(key.last_used_at))
    .execute(&mut *tx)
    .await
    .map_err(db_error)?;
    audit::insert_rows(&mut tx, &[audit]).await?;
    tx.commit().await.map_err(db_error)
}

pub(super) async fn api_key_by_hash(
    store: &SqliteStore,
    hash: &[u8; 32],
) -> StoreResult<Option<ApiKey>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        api_key_columns!(),
        " FROM api_keys WHERE hash = ?"
    ))
    .bind(&hash[..])
    .fetch_optional(store.reader())
    .await
    .map_err(db_error)?;
    row.map(|r| rows::api_key(&r).map(|(_, k)| k)).transpose()
}

pub(super) async fn list_api_keys(
    store: &SqliteStore,
    org: &OrgId,
    page: PageRequest,
) -> StoreResult<Page<ApiKey>> {
    let limit = page_limit(page.limit);
    let rows = sqlx::query(concat!(
        "SELECT ",
        api_key_columns!(),
        " FROM api_keys WHERE org_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?"
    ))
    .bind(org.as_str())
    .bind(page.after.unwrap_or(i64::MAX))
    .bind(i64::from(limit) + 1)
    .fetch_all(store.reader())
    .await
    .map_err(db_error)?;
    let rows = rows
        .iter()
        .map(rows::api_key)
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Page::from_rows(rows, limit))
}

pub(super) async fn delete_api_key(
    store: &SqliteStore,
    org: &OrgId,
    id: &ApiKeyId,
    audit: &AuditRecord,
) -> StoreResult<bool> {
    let mut tx = store.write().await?;
    let deleted = sqlx::query("DELETE FROM api_keys WHERE org_id = ? AND id = ?")
        .bind(org.as_str())
        .bind(id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?
        .rows_affected();
    if deleted == 0 {
        return Ok(false);
    }
    audit::insert_rows(&mut tx, &[audit]).await?;
    tx.commit().await.map_err(db_error)?;
    Ok(true)
}

pub(super) async fn touch_api_keys(
    store: &SqliteStore,
    used: &[(ApiKeyId, DateTime<Utc>)],
) -> StoreResult<()> {
    if used.is_empty() {
        return Ok(());
    }
    let mut tx = store.write().await?;
    for (id, at) in used {
        // Never moves `last_used_at` backwards (batches may arrive late).
        sqlx::query(
            "UPDATE api_keys SET last_used_at = MAX(COALESCE(last_used_at, ?1), ?1) WHERE id = ?2",
        )
        .bind(micros(*at))
        .bind(id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
    }
    tx.commit().await.map_err(db_error)
}
