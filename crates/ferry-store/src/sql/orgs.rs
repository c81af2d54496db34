//! Organizations and API keys, and the checks that storage answers
//! (`ping`) and commits (`probe_write`). Keys are found by the SHA-256 of
//! their secret (a unique binary column); the secret itself is never stored.

use chrono::Utc;
use ferry_core::audit::AuditRecord;
use ferry_core::error::StoreResult;
use ferry_core::ids::{ApiKeyId, OrgId};
use ferry_core::org::{ApiKey, Org};
use ferry_core::page::{Page, PageRequest};
use sqlx::{Database, Encode, Executor, IntoArguments, Type};

use super::decode::{self, Columns};
use super::{Backend, Tables};
use crate::rows::{api_key_columns, org_columns};
use crate::values::{micros, opt_micros, page_limit, to_json};

impl<B> Tables<'_, B>
where
    B: Backend,
    <B::DB as Database>::Arguments: IntoArguments<B::DB>,
    <B::DB as Database>::Row: Columns,
    for<'c> &'c mut <B::DB as Database>::Connection: Executor<'c, Database = B::DB>,
    for<'q> &'q str: Encode<'q, B::DB> + Type<B::DB>,
    for<'q> &'q [u8]: Encode<'q, B::DB> + Type<B::DB>,
    for<'q> String: Encode<'q, B::DB> + Type<B::DB>,
    for<'q> i64: Encode<'q, B::DB> + Type<B::DB>,
    for<'q> Option<i64>: Encode<'q, B::DB>,
{
    pub(crate) async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(self.0.reader())
            .await
            .map_err(B::db_error)?;
        Ok(())
    }

    pub(crate) async fn probe_write(&self) -> StoreResult<()> {
        let mut tx = self.0.write_relaxed().await?;
        sqlx::query(
            "INSERT INTO write_probe (id, probed_at) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET probed_at = excluded.probed_at",
        )
        .bind(micros(Utc::now()))
        .execute(&mut *tx)
        .await
        .map_err(B::db_error)?;
        tx.commit().await.map_err(B::db_error)
    }

    pub(crate) async fn create_org(&self, org: &Org) -> StoreResult<()> {
        let mut tx = self.0.write().await?;
        Self::create_org_in(&mut tx, org).await?;
        tx.commit().await.map_err(B::db_error)
    }

    /// Inserts an organization inside the caller's transaction.
    pub(super) async fn create_org_in(
        conn: &mut <B::DB as Database>::Connection,
        org: &Org,
    ) -> StoreResult<()> {
        let alerts = to_json(&org.alert_destinations, "alert destinations")?;
        let settings = to_json(&org.alerts, "alert settings")?;
        sqlx::query(
            "INSERT INTO orgs (id, name, alert_destinations, alert_settings, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(org.id.as_str())
        .bind(org.name.as_str())
        .bind(alerts)
        .bind(settings)
        .bind(micros(org.created_at))
        .execute(&mut *conn)
        .await
        .map_err(B::db_error)?;
        Ok(())
    }

    pub(crate) async fn update_org(&self, org: &Org, audit: &AuditRecord) -> StoreResult<bool> {
        let mut tx = self.0.write().await?;
        if !Self::update_org_in(&mut tx, org).await? {
            // Ends the transaction now rather than when the pool next uses
            // its connection, so that its locks go at once.
            tx.rollback().await.map_err(B::db_error)?;
            return Ok(false);
        }
        B::insert_audit(&mut tx, &[audit]).await?;
        tx.commit().await.map_err(B::db_error)?;
        Ok(true)
    }

    /// Saves an organization's name and alert settings inside the
    /// caller's transaction; whether there is one.
    pub(super) async fn update_org_in(
        conn: &mut <B::DB as Database>::Connection,
        org: &Org,
    ) -> StoreResult<bool> {
        let alerts = to_json(&org.alert_destinations, "alert destinations")?;
        let settings = to_json(&org.alerts, "alert settings")?;
        let changed = sqlx::query(
            "UPDATE orgs SET name = $1, alert_destinations = $2, alert_settings = $4 \
             WHERE id = $3 RETURNING id",
        )
        .bind(org.name.as_str())
        .bind(alerts)
        .bind(org.id.as_str())
        .bind(settings)
        .fetch_optional(&mut *conn)
        .await
        .map_err(B::db_error)?;
        Ok(changed.is_some())
    }

    pub(crate) async fn get_org(&self, id: &OrgId) -> StoreResult<Option<Org>> {
        let sql = concat!("SELECT ", org_columns!(), " FROM orgs WHERE id = $1");
        let row = sqlx::query(sql)
            .bind(id.as_str())
            .fetch_optional(self.0.reader())
            .await
            .map_err(B::db_error)?;
        row.map(|r| decode::org(&r).map(|(_, o)| o)).transpose()
    }

    /// Newest first.
    pub(crate) async fn list_orgs(&self, page: PageRequest) -> StoreResult<Page<Org>> {
        let limit = page_limit(page.limit);
        let sql = concat!(
            "SELECT ",
            org_columns!(),
            " FROM orgs WHERE seq < $1 ORDER BY seq DESC LIMIT $2"
        );
        let rows = sqlx::query(sql)
            .bind(page.after.unwrap_or(i64::MAX))
            .bind(i64::from(limit) + 1)
            .fetch_all(self.0.reader())
            .await
            .map_err(B::db_error)?;
        let rows = rows
            .iter()
            .map(decode::org)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_rows(rows, limit))
    }

    pub(crate) async fn insert_api_key(
        &self,
        key: &ApiKey,
        audit: &AuditRecord,
    ) -> StoreResult<()> {
        let scopes = to_json(&key.scopes, "api key scopes")?;
        let mut tx = self.0.write().await?;
        sqlx::query(
            "INSERT INTO api_keys (id, org_id, name, prefix, hash, scopes, created_at, \
             last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
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
        .map_err(B::db_error)?;
        B::insert_audit(&mut tx, &[audit]).await?;
        tx.commit().await.map_err(B::db_error)
    }

    pub(crate) async fn api_key_by_hash(&self, hash: &[u8; 32]) -> StoreResult<Option<ApiKey>> {
        let sql = concat!(
            "SELECT ",
            api_key_columns!(),
            " FROM api_keys WHERE hash = $1"
        );
        let row = sqlx::query(sql)
            .bind(&hash[..])
            .fetch_optional(self.0.reader())
            .await
            .map_err(B::db_error)?;
        row.map(|r| decode::api_key(&r).map(|(_, k)| k)).transpose()
    }

    /// Newest first.
    pub(crate) async fn list_api_keys(
        &self,
        org: &OrgId,
        page: PageRequest,
    ) -> StoreResult<Page<ApiKey>> {
        let sql = concat!(
            "SELECT ",
            api_key_columns!(),
            " FROM api_keys WHERE org_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
        );
        self.org_page(sql, org, page, decode::api_key).await
    }

    pub(crate) async fn delete_api_key(
        &self,
        org: &OrgId,
        id: &ApiKeyId,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        let mut tx = self.0.write().await?;
        let deleted =
            sqlx::query("DELETE FROM api_keys WHERE org_id = $1 AND id = $2 RETURNING id")
                .bind(org.as_str())
                .bind(id.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(B::db_error)?;
        if deleted.is_none() {
            tx.rollback().await.map_err(B::db_error)?;
            return Ok(false);
        }
        B::insert_audit(&mut tx, &[audit]).await?;
        tx.commit().await.map_err(B::db_error)?;
        Ok(true)
    }
}
