//! Re-sealing every secret at rest after the master key changed (the
//! `Resealing` port), written once over sqlx's `Database` for both SQL
//! backends; only how rows are kept from changing meanwhile differs.
//! `store_ports!` runs it in each backend's durable write transaction.

use ferry_core::StoreError;
use ferry_core::crypto::Cipher;
use ferry_core::error::StoreResult;
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Type};

use crate::ownership::DbError;

/// How a backend keeps the rows it re-seals from changing meanwhile.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RowLocks {
    /// The transaction already excludes every other writer (SQLite's
    /// `BEGIN IMMEDIATE`).
    Writer,
    /// Each row read is locked until the commit (`FOR UPDATE`).
    ForUpdate,
}

/// Opens every sealed column (with any key of the cipher's ring) and seals
/// it again with the current key, inside the caller's transaction `tx`.
/// Returns how many values were rewritten.
pub(crate) async fn reseal<DB>(
    tx: &mut sqlx::Transaction<'_, DB>,
    cipher: &Cipher,
    locks: RowLocks,
    db_error: DbError,
) -> StoreResult<u64>
where
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Vec<u8>: Encode<'q, DB> + Type<DB>,
    (String, Vec<u8>): for<'r> FromRow<'r, DB::Row>,
{
    let statements = match locks {
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
        let rows = sqlx::query_as::<DB, (String, Vec<u8>)>(select)
            .fetch_all(&mut **tx)
            .await
            .map_err(db_error)?;
        for (id, sealed) in rows {
            let plain = cipher
                .open(&sealed)
                .map_err(|e| StoreError::Corrupt(format!("{id}: {e}")))?;
            sqlx::query(update)
                .bind(cipher.seal(&plain))
                .bind(id.as_str())
                .execute(&mut **tx)
                .await
                .map_err(db_error)?;
            count += 1;
        }
    }
    Ok(count)
}
