//! Destinations. Their secrets (auth credentials and signing keys) are
//! sealed with the master key before they reach SQL and opened when a row is
//! read: the database never holds them in plaintext.

use chrono::Utc;
use ferry_core::audit::AuditRecord;
use ferry_core::destination::Destination;
use ferry_core::error::StoreResult;
use ferry_core::ids::{DestinationId, OrgId};
use ferry_core::page::{Page, PageRequest};
use sqlx::{Database, Encode, Executor, IntoArguments, Type};

use super::decode::{self, Columns};
use super::{Backend, Tables};
use crate::deleted;
use crate::rows::destination_columns;
use crate::values::{micros, to_json};

/// A destination's columns as bound for an insert or an update.
struct Encoded {
    config: String,
    filter: String,
    retry: String,
    health: String,
    alerts: String,
    sealed: Vec<u8>,
}

impl<B> Tables<'_, B>
where
    B: Backend,
    <B::DB as Database>::Arguments: IntoArguments<B::DB>,
    <B::DB as Database>::Row: Columns,
    for<'c> &'c mut <B::DB as Database>::Connection: Executor<'c, Database = B::DB>,
    for<'q> &'q str: Encode<'q, B::DB> + Type<B::DB>,
    for<'q> String: Encode<'q, B::DB> + Type<B::DB>,
    for<'q> Option<String>: Encode<'q, B::DB>,
    for<'q> Vec<u8>: Encode<'q, B::DB> + Type<B::DB>,
    for<'q> i64: Encode<'q, B::DB> + Type<B::DB>,
    for<'q> bool: Encode<'q, B::DB> + Type<B::DB>,
{
    fn encode(&self, d: &Destination) -> StoreResult<Encoded> {
        let secrets = serde_json::to_vec(&d.secrets).map_err(|_| {
            ferry_core::StoreError::Corrupt("cannot encode destination secrets".into())
        })?;
        Ok(Encoded {
            config: to_json(&d.config, "destination config")?,
            filter: to_json(&d.filter, "destination filter")?,
            retry: to_json(&d.retry, "destination retry policy")?,
            health: to_json(&d.health, "destination health")?,
            alerts: to_json(&d.alerts, "destination alert settings")?,
            sealed: self.0.cipher().seal(&secrets),
        })
    }

    pub(crate) async fn insert_destination(
        &self,
        d: &Destination,
        audit: &AuditRecord,
    ) -> StoreResult<()> {
        let mut tx = self.0.write().await?;
        self.insert_destination_in(&mut tx, d).await?;
        B::insert_audit(&mut tx, &[audit]).await?;
        tx.commit().await.map_err(B::db_error)
    }

    /// Inserts a destination, its secrets sealed, inside the caller's
    /// transaction.
    pub(super) async fn insert_destination_in(
        &self,
        conn: &mut <B::DB as Database>::Connection,
        d: &Destination,
    ) -> StoreResult<()> {
        let e = self.encode(d)?;
        sqlx::query(
            "INSERT INTO destinations (id, org_id, name, kind, config, filter, retry, is_default, \
             enabled, max_in_flight, secrets, health, created_at, updated_at, alert_settings) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
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
        .bind(e.alerts)
        .execute(&mut *conn)
        .await
        .map_err(B::db_error)?;
        Ok(())
    }

    pub(crate) async fn get_destination(
        &self,
        org: &OrgId,
        id: &DestinationId,
    ) -> StoreResult<Option<Destination>> {
        let sql = concat!(
            "SELECT ",
            destination_columns!(),
            " FROM destinations WHERE org_id = $1 AND id = $2"
        );
        let row = sqlx::query(sql)
            .bind(org.as_str())
            .bind(id.as_str())
            .fetch_optional(self.0.reader())
            .await
            .map_err(B::db_error)?;
        row.map(|r| decode::destination(&r, self.0.cipher()).map(|(_, d)| d))
            .transpose()
    }

    pub(crate) async fn destination_by_id(
        &self,
        id: &DestinationId,
    ) -> StoreResult<Option<Destination>> {
        let sql = concat!(
            "SELECT ",
            destination_columns!(),
            " FROM destinations WHERE id = $1"
        );
        let row = sqlx::query(sql)
            .bind(id.as_str())
            .fetch_optional(self.0.reader())
            .await
            .map_err(B::db_error)?;
        row.map(|r| decode::destination(&r, self.0.cipher()).map(|(_, d)| d))
            .transpose()
    }

    /// Every destination of `org`, oldest first.
    pub(crate) async fn org_destinations(&self, org: &OrgId) -> StoreResult<Vec<Destination>> {
        let sql = concat!(
            "SELECT ",
            destination_columns!(),
            " FROM destinations WHERE org_id = $1 ORDER BY seq"
        );
        let rows = sqlx::query(sql)
            .bind(org.as_str())
            .fetch_all(self.0.reader())
            .await
            .map_err(B::db_error)?;
        rows.iter()
            .map(|r| decode::destination(r, self.0.cipher()).map(|(_, d)| d))
            .collect()
    }

    /// Newest first.
    pub(crate) async fn list_destinations(
        &self,
        org: &OrgId,
        page: PageRequest,
    ) -> StoreResult<Page<Destination>> {
        let sql = concat!(
            "SELECT ",
            destination_columns!(),
            " FROM destinations WHERE org_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
        );
        self.org_page(sql, org, page, |r| decode::destination(r, self.0.cipher()))
            .await
    }

    pub(crate) async fn update_destination(
        &self,
        d: &Destination,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        let mut tx = self.0.write().await?;
        if !self.update_destination_in(&mut tx, d, false).await? {
            tx.rollback().await.map_err(B::db_error)?;
            return Ok(false);
        }
        B::insert_audit(&mut tx, &[audit]).await?;
        tx.commit().await.map_err(B::db_error)?;
        Ok(true)
    }

    /// Replaces a destination's row (its secrets sealed) inside the
    /// caller's transaction, its health too unless `keep_health`; whether
    /// the org has such a destination.
    pub(super) async fn update_destination_in(
        &self,
        conn: &mut <B::DB as Database>::Connection,
        d: &Destination,
        keep_health: bool,
    ) -> StoreResult<bool> {
        let e = self.encode(d)?;
        let health = (!keep_health).then_some(e.health);
        let updated = sqlx::query(
            "UPDATE destinations SET name = $1, kind = $2, config = $3, filter = $4, retry = $5, \
             is_default = $6, enabled = $7, max_in_flight = $8, secrets = $9, \
             health = COALESCE($10, health), updated_at = $11, alert_settings = $14 \
             WHERE org_id = $12 AND id = $13 RETURNING id",
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
        .bind(health)
        .bind(micros(d.updated_at))
        .bind(d.org_id.as_str())
        .bind(d.id.as_str())
        .bind(e.alerts)
        .fetch_optional(&mut *conn)
        .await
        .map_err(B::db_error)?;
        Ok(updated.is_some())
    }

    pub(crate) async fn delete_destination(
        &self,
        org: &OrgId,
        id: &DestinationId,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        let mut tx = self.0.write().await?;
        if !Self::delete_destination_in(&mut tx, org, id).await? {
            tx.rollback().await.map_err(B::db_error)?;
            return Ok(false);
        }
        B::insert_audit(&mut tx, &[audit]).await?;
        tx.commit().await.map_err(B::db_error)?;
        Ok(true)
    }

    /// Deletes a destination of `org` and fails its waiting deliveries,
    /// inside the caller's transaction; whether there was one.
    pub(super) async fn delete_destination_in(
        conn: &mut <B::DB as Database>::Connection,
        org: &OrgId,
        id: &DestinationId,
    ) -> StoreResult<bool> {
        let deleted =
            sqlx::query("DELETE FROM destinations WHERE org_id = $1 AND id = $2 RETURNING id")
                .bind(org.as_str())
                .bind(id.as_str())
                .fetch_optional(&mut *conn)
                .await
                .map_err(B::db_error)?;
        if deleted.is_none() {
            return Ok(false);
        }
        // Waiting deliveries can never be attempted now (`Transition::Abandon`;
        // a unit test in each backend checks the statuses against the state
        // machine). One in flight keeps its lease: its completion, or its
        // lease given back, decides (`crate::deleted`).
        sqlx::query(
            "UPDATE deliveries SET status = 'failed', last_error = $1, next_attempt_at = NULL, \
             updated_at = $2 WHERE destination_id = $3 AND org_id = $4 \
             AND status IN ('pending', 'retrying')",
        )
        .bind(deleted::ERROR)
        .bind(micros(Utc::now()))
        .bind(id.as_str())
        .bind(org.as_str())
        .execute(&mut *conn)
        .await
        .map_err(B::db_error)?;
        Ok(true)
    }
}
