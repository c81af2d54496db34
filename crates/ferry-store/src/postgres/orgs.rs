//! Organizations and API keys, and the checks that storage answers
//! (`ping`) and commits (`probe_write`). Keys are found by the SHA-256 of their
//! secret (a unique BYTEA column); the secret itself is never stored.

use chrono::{DateTime, Utc};
use ferry_core::audit::AuditRecord;
use ferry_core::error::StoreResult;
use ferry_core::ids::{ApiKeyId, OrgId};
use ferry_core::org::{ApiKey, Org};
use ferry_core::page::{Page, PageRequest};

use super::rows::{self, api_key_columns, org_columns};
use super::{PgStore, audit, db_error, micros, opt_micros, page_limit, to_json};

pub(super) async fn ping(store: &PgStore) -> StoreResult<()> {
    sqlx::query("SELECT 1")
        .execute(store.pool())
        .await
        .map_err(db_error)?;
    Ok(())
}

pub(super) async fn probe_write(store: &PgStore) -> StoreResult<()> {
    let mut tx = store.write_relaxed().await?;
    sqlx::query(
        "INSERT INTO write_probe (id, probed_at) VALUES (1, $1) \
         ON CONFLICT (id) DO UPDATE SET probed_at = excluded.probed_at",
    )
    .bind(micros(Utc::now()))
    .execute(&mut *tx)
    .await
    .map_err(db_error)?;
    tx.commit().await.map_err(db_error)
}

pub(super) async fn create_org(store: &PgStore, org: &Org) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO orgs (id, name, alert_destinations, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(org.id.as_str())
    .bind(org.name.as_str())
    .bind(to_json(&org.alert_destinations, "alert destinations")?)
    .bind(micros(org.created_at))
    .execute(store.pool())
    .await
    .map_err(db_error)?;
    Ok(())
}

pub(super) async fn update_org(
    store: &PgStore,
    org: &Org,
    audit_record: &AuditRecord,
) -> StoreResult<bool> {
    let mut tx = store.write().await?;
    let changed = sqlx::query("UPDATE orgs SET name = $1, alert_destinations = $2 WHERE id = $3")
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

pub(super) async fn get_org(store: &PgStore, id: &OrgId) -> StoreResult<Option<Org>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        org_columns!(),
        " FROM orgs WHERE id = $1"
    ))
    .bind(id.as_str())
    .fetch_optional(store.pool())
    .await
    .map_err(db_error)?;
    row.map(|r| rows::org(&r).map(|(_, o)| o)).transpose()
}

pub(super) async fn list_orgs(store: &PgStore, page: PageRequest) -> StoreResult<Page<Org>> {
    let limit = page_limit(page.limit);
    let rows = sqlx::query(concat!(
        "SELECT ",
        org_columns!(),
        " FROM orgs WHERE seq < $1 ORDER BY seq DESC LIMIT $2"
    ))
    .bind(page.after.unwrap_or(i64::MAX))
    .bind(i64::from(limit) + 1)
    .fetch_all(store.pool())
    .await
    .map_err(db_error)?;
    let rows = rows
        .iter()
        .map(rows::org)
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Page::from_rows(rows, limit))
}

pub(super) async fn insert_api_key(
    store: &PgStore,
    key: &ApiKey,
    audit: &AuditRecord,
) -> StoreResult<()> {
    let scopes = to_json(&key.scopes, "api key scopes")?;
    let mut tx = store.write().await?;
    sqlx::query(
        "INSERT INTO api_keys (id, org_id, name, prefix, hash, scopes, created_at, last_used_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
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
    store: &PgStore,
    hash: &[u8; 32],
) -> StoreResult<Option<ApiKey>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        api_key_columns!(),
        " FROM api_keys WHERE hash = $1"
    ))
    .bind(&hash[..])
    .fetch_optional(store.pool())
    .await
    .map_err(db_error)?;
    row.map(|r| rows::api_key(&r).map(|(_, k)| k)).transpose()
}

pub(super) async fn list_api_keys(
    store: &PgStore,
    org: &OrgId,
    page: PageRequest,
) -> StoreResult<Page<ApiKey>> {
    let limit = page_limit(page.limit);
    let rows = sqlx::query(concat!(
        "SELECT ",
        api_key_columns!(),
        " FROM api_keys WHERE org_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
    ))
    .bind(org.as_str())
    .bind(page.after.unwrap_or(i64::MAX))
    .bind(i64::from(limit) + 1)
    .fetch_all(store.pool())
    .await
    .map_err(db_error)?;
    let rows = rows
        .iter()
        .map(rows::api_key)
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Page::from_rows(rows, limit))
}

pub(super) async fn delete_api_key(
    store: &PgStore,
    org: &OrgId,
    id: &ApiKeyId,
    audit: &AuditRecord,
) -> StoreResult<bool> {
    let mut tx = store.write().await?;
    let deleted = sqlx::query("DELETE FROM api_keys WHERE org_id = $1 AND id = $2")
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
    audit::insert_rows(&mut tx, &[audit]).await?;
    tx.commit().await.map_err(db_error)?;
    Ok(true)
}

/// One statement for the whole batch; a key used several times keeps its
/// latest use, and `last_used_at` never moves backwards (batches from
/// several processes may arrive late).
pub(super) async fn touch_api_keys(
    store: &PgStore,
    used: &[(ApiKeyId, DateTime<Utc>)],
) -> StoreResult<()> {
    if used.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = used.iter().map(|(id, _)| id.as_str()).collect();
    let ats: Vec<i64> = used.iter().map(|(_, at)| micros(*at)).collect();
    sqlx::query(
        "UPDATE api_keys k SET last_used_at = GREATEST(COALESCE(k.last_used_at, u.at), u.at) \
         FROM (SELECT id, MAX(at) AS at FROM UNNEST($1::text[], $2::int8[]) AS v (id, at) \
               GROUP BY id) AS u \
         WHERE k.id = u.id",
    )
    .bind(ids)
    .bind(ats)
    .execute(store.pool())
    .await
    .map_err(db_error)?;
    Ok(())
}
