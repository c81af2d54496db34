//! Re-sealing every secret at rest after the master key changed (the
//! `Resealing` port), in one durable transaction: all of them or none.
//! Only how rows are kept from changing meanwhile differs by backend.

use ferry_core::StoreError;
use ferry_core::error::StoreResult;
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Type};

use super::{Backend, Tables};

/// How a backend keeps the rows it re-seals from changing meanwhile.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RowLocks {
    /// The transaction already excludes every other writer (SQLite's
    /// `BEGIN IMMEDIATE`).
    Writer,
    /// Each row read is locked until the commit (`FOR UPDATE`).
    ForUpdate,
}

impl<B> Tables<'_, B>
where
    B: Backend,
    <B::DB as Database>::Arguments: IntoArguments<B::DB>,
    for<'c> &'c mut <B::DB as Database>::Connection: Executor<'c, Database = B::DB>,
    for<'q> &'q str: Encode<'q, B::DB> + Type<B::DB>,
    for<'q> Vec<u8>: Encode<'q, B::DB> + Type<B::DB>,
    (String, Vec<u8>): for<'r> FromRow<'r, <B::DB as Database>::Row>,
{
    /// Opens every sealed column (with any key of the cipher's ring) and
    /// seals it again with the current key. Returns how many values were
    /// rewritten.
    pub(crate) async fn reseal_secrets(&self) -> StoreResult<u64> {
        let cipher = self.0.cipher();
        let mut tx = self.0.write().await?;
        let statements = match B::ROW_LOCKS {
            RowLocks::Writer => [
                (
                    "SELECT id, secrets FROM destinations",
                    "UPDATE destinations SET secrets = $1 WHERE id = $2",
                ),
                (
                    "SELECT id, verification FROM sources",
                    "UPDATE sources SET verification = $1 WHERE id = $2",
                ),
            ],
            RowLocks::ForUpdate => [
                (
                    "SELECT id, secrets FROM destinations FOR UPDATE",
                    "UPDATE destinations SET secrets = $1 WHERE id = $2",
                ),
                (
                    "SELECT id, verification FROM sources FOR UPDATE",
                    "UPDATE sources SET verification = $1 WHERE id = $2",
                ),
            ],
        };
        let mut count = 0;
        for (select, update) in statements {
            let rows = sqlx::query_as::<B::DB, (String, Vec<u8>)>(select)
                .fetch_all(&mut *tx)
                .await
                .map_err(B::db_error)?;
            for (id, sealed) in rows {
                let plain = cipher
                    .open(&sealed)
                    .map_err(|e| StoreError::Corrupt(format!("{id}: {e}")))?;
                sqlx::query(update)
                    .bind(cipher.seal(&plain))
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(B::db_error)?;
                count += 1;
            }
        }
        tx.commit().await.map_err(B::db_error)?;
        Ok(count)
    }
}
