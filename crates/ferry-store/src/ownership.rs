//! Which organization owns an id (the `Ownership` port), written once over
//! sqlx's `Database` for both SQL backends: the SQL is the same, with `$n`
//! placeholders, which SQLite reads too. `store_ports!` instantiates it for
//! each backend's read pool.

use ferry_core::StoreError;
use ferry_core::error::StoreResult;
use ferry_core::ids::OrgId;
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Type};

/// Maps the backend's driver errors (its `db_error`).
pub(crate) type DbError = fn(sqlx::Error) -> StoreError;

/// The organization that owns `id`, from the table its prefix names.
pub(crate) async fn owner_of<DB>(
    reader: &sqlx::Pool<DB>,
    id: &str,
    db_error: DbError,
) -> StoreResult<Option<OrgId>>
where
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    (String,): for<'r> FromRow<'r, DB::Row>,
{
    let sql = match id.split_once('_').map(|(prefix, _)| prefix) {
        Some("evt") => "SELECT org_id FROM events WHERE id = $1",
        Some("dlv") => "SELECT org_id FROM deliveries WHERE id = $1",
        Some("dst") => "SELECT org_id FROM destinations WHERE id = $1",
        Some("src") => "SELECT org_id FROM sources WHERE id = $1",
        Some("key") => "SELECT org_id FROM api_keys WHERE id = $1",
        Some("org") => "SELECT id FROM orgs WHERE id = $1",
        _ => return Ok(None),
    };
    let owner = sqlx::query_scalar::<DB, String>(sql)
        .bind(id)
        .fetch_optional(reader)
        .await
        .map_err(db_error)?;
    owner
        .map(|o: String| {
            OrgId::parse(&o).map_err(|_| StoreError::Corrupt(format!("{id} has an invalid owner")))
        })
        .transpose()
}
