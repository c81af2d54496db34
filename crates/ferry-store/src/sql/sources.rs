//! Inbound sources (the `SourceStore` port). Their verification settings
//! hold the partner's secrets, so they are sealed with the master key like
//! destination secrets (`source_rows`).

use ferry_core::audit::AuditRecord;
use ferry_core::error::StoreResult;
use ferry_core::ids::{OrgId, SourceId};
use ferry_core::page::{Page, PageRequest};
use ferry_core::source::Source;
use sqlx::{Database, Encode, Executor, IntoArguments, Type};

use super::decode::Columns;
use super::source_rows::{self, source_columns};
use super::{Backend, Tables};
use crate::values::micros;

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
{
    pub(crate) async fn insert_source(
        &self,
        source: &Source,
        audit: &AuditRecord,
    ) -> StoreResult<()> {
        let mut tx = self.0.write().await?;
        self.insert_source_in(&mut tx, source).await?;
        B::insert_audit(&mut tx, &[audit]).await?;
        tx.commit().await.map_err(B::db_error)
    }

    /// Inserts a source, its verification sealed, inside the caller's
    /// transaction.
    pub(super) async fn insert_source_in(
        &self,
        conn: &mut <B::DB as Database>::Connection,
        source: &Source,
    ) -> StoreResult<()> {
        let e = source_rows::encode(self.0.cipher(), source)?;
        sqlx::query(
            "INSERT INTO sources (id, org_id, name, verification, id_from, type_from, required, \
             destinations, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(source.id.as_str())
        .bind(source.org_id.as_str())
        .bind(source.name.as_str())
        .bind(e.verification)
        .bind(e.id_from)
        .bind(e.type_from)
        .bind(e.required)
        .bind(e.destinations)
        .bind(micros(source.created_at))
        .execute(&mut *conn)
        .await
        .map_err(B::db_error)?;
        Ok(())
    }

    /// Replaces a source's row with `source` (same id and organization, its
    /// verification sealed) inside the caller's transaction; whether the
    /// org has such a source.
    pub(super) async fn replace_source_in(
        &self,
        conn: &mut <B::DB as Database>::Connection,
        source: &Source,
    ) -> StoreResult<bool> {
        let e = source_rows::encode(self.0.cipher(), source)?;
        let replaced = sqlx::query(
            "UPDATE sources SET name = $1, verification = $2, id_from = $3, type_from = $4, \
             required = $5, destinations = $6, created_at = $7 WHERE org_id = $8 AND id = $9 \
             RETURNING id",
        )
        .bind(source.name.as_str())
        .bind(e.verification)
        .bind(e.id_from)
        .bind(e.type_from)
        .bind(e.required)
        .bind(e.destinations)
        .bind(micros(source.created_at))
        .bind(source.org_id.as_str())
        .bind(source.id.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(B::db_error)?;
        Ok(replaced.is_some())
    }

    /// Deletes a source of `org`; whether there was one.
    pub(crate) async fn delete_source(
        &self,
        org: &OrgId,
        id: &SourceId,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        let mut tx = self.0.write().await?;
        if !Self::delete_source_in(&mut tx, org, id).await? {
            tx.rollback().await.map_err(B::db_error)?;
            return Ok(false);
        }
        B::insert_audit(&mut tx, &[audit]).await?;
        tx.commit().await.map_err(B::db_error)?;
        Ok(true)
    }

    /// Deletes a source of `org` inside the caller's transaction; whether
    /// there was one.
    pub(super) async fn delete_source_in(
        conn: &mut <B::DB as Database>::Connection,
        org: &OrgId,
        id: &SourceId,
    ) -> StoreResult<bool> {
        let deleted = sqlx::query("DELETE FROM sources WHERE org_id = $1 AND id = $2 RETURNING id")
            .bind(org.as_str())
            .bind(id.as_str())
            .fetch_optional(&mut *conn)
            .await
            .map_err(B::db_error)?;
        Ok(deleted.is_some())
    }

    pub(crate) async fn get_source(
        &self,
        org: &OrgId,
        id: &SourceId,
    ) -> StoreResult<Option<Source>> {
        let sql = concat!(
            "SELECT ",
            source_columns!(),
            " FROM sources WHERE org_id = $1 AND id = $2"
        );
        let row = sqlx::query(sql)
            .bind(org.as_str())
            .bind(id.as_str())
            .fetch_optional(self.0.reader())
            .await
            .map_err(B::db_error)?;
        row.map(|r| source_rows::decode(self.0.cipher(), &r).map(|(_, s)| s))
            .transpose()
    }

    pub(crate) async fn source_by_id(&self, id: &SourceId) -> StoreResult<Option<Source>> {
        let sql = concat!("SELECT ", source_columns!(), " FROM sources WHERE id = $1");
        let row = sqlx::query(sql)
            .bind(id.as_str())
            .fetch_optional(self.0.reader())
            .await
            .map_err(B::db_error)?;
        row.map(|r| source_rows::decode(self.0.cipher(), &r).map(|(_, s)| s))
            .transpose()
    }

    /// Newest first.
    pub(crate) async fn list_sources(
        &self,
        org: &OrgId,
        page: PageRequest,
    ) -> StoreResult<Page<Source>> {
        let sql = concat!(
            "SELECT ",
            source_columns!(),
            " FROM sources WHERE org_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
        );
        self.org_page(sql, org, page, |r| source_rows::decode(self.0.cipher(), r))
            .await
    }
}
