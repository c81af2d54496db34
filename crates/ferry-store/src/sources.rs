//! Inbound sources (the `SourceStore` port), written once over sqlx's
//! `Database` for both SQL backends: the SQL is the same, with `$n`
//! placeholders, which SQLite reads too. Their verification settings hold
//! the partner's secrets, so they are sealed with the master key like
//! destination secrets (`source_rows`). `store_ports!` instantiates these
//! for each backend, which adds its own audit insert and transactions.

use ferry_core::error::StoreResult;
use ferry_core::ids::{OrgId, SourceId};
use ferry_core::page::{Page, PageRequest};
use ferry_core::source::Source;
use sqlx::{
    ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Transaction, Type,
};

use crate::ownership::DbError;
use crate::source_rows::{self, source_columns};
use crate::values::{micros, page_limit};

/// The sources of one backend: its read pool, cipher and error mapping.
pub(crate) struct Sources<'a, DB: Database> {
    pub reader: &'a Pool<DB>,
    pub cipher: &'a ferry_core::crypto::Cipher,
    pub db_error: DbError,
}

impl<DB> Sources<'_, DB>
where
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB>,
    for<'q> Option<String>: Encode<'q, DB>,
    for<'q> Vec<u8>: Encode<'q, DB>,
    for<'q> i64: Encode<'q, DB>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    for<'r> Option<String>: Decode<'r, DB>,
    for<'r> Vec<u8>: Decode<'r, DB> + Type<DB>,
    for<'r> i64: Decode<'r, DB> + Type<DB>,
    for<'a> &'a str: ColumnIndex<DB::Row>,
{
    /// Inserts `source` on `tx` (the caller appends the audit record).
    pub(crate) async fn insert(
        &self,
        tx: &mut Transaction<'_, DB>,
        source: &Source,
    ) -> StoreResult<()> {
        let e = source_rows::encode(self.cipher, source)?;
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
        .execute(&mut **tx)
        .await
        .map_err(self.db_error)?;
        Ok(())
    }

    /// Deletes a source of `org` on `tx`; whether there was one.
    pub(crate) async fn delete(
        &self,
        tx: &mut Transaction<'_, DB>,
        org: &OrgId,
        id: &SourceId,
    ) -> StoreResult<bool> {
        let deleted = sqlx::query("DELETE FROM sources WHERE org_id = $1 AND id = $2 RETURNING id")
            .bind(org.as_str())
            .bind(id.as_str())
            .fetch_optional(&mut **tx)
            .await
            .map_err(self.db_error)?;
        Ok(deleted.is_some())
    }

    pub(crate) async fn get(&self, org: &OrgId, id: &SourceId) -> StoreResult<Option<Source>> {
        let sql = concat!(
            "SELECT ",
            source_columns!(),
            " FROM sources WHERE org_id = $1 AND id = $2"
        );
        let row = sqlx::query(sql)
            .bind(org.as_str())
            .bind(id.as_str())
            .fetch_optional(self.reader)
            .await
            .map_err(self.db_error)?;
        row.map(|r| source_rows::decode(self.cipher, &r).map(|(_, s)| s))
            .transpose()
    }

    pub(crate) async fn by_id(&self, id: &SourceId) -> StoreResult<Option<Source>> {
        let sql = concat!("SELECT ", source_columns!(), " FROM sources WHERE id = $1");
        let row = sqlx::query(sql)
            .bind(id.as_str())
            .fetch_optional(self.reader)
            .await
            .map_err(self.db_error)?;
        row.map(|r| source_rows::decode(self.cipher, &r).map(|(_, s)| s))
            .transpose()
    }

    /// Newest first.
    pub(crate) async fn list(&self, org: &OrgId, page: PageRequest) -> StoreResult<Page<Source>> {
        let limit = page_limit(page.limit);
        let sql = concat!(
            "SELECT ",
            source_columns!(),
            " FROM sources WHERE org_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
        );
        let rows = sqlx::query(sql)
            .bind(org.as_str())
            .bind(page.after.unwrap_or(i64::MAX))
            .bind(i64::from(limit) + 1)
            .fetch_all(self.reader)
            .await
            .map_err(self.db_error)?;
        let rows = rows
            .iter()
            .map(|r| source_rows::decode(self.cipher, r))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_rows(rows, limit))
    }
}
