//! Which organization owns an id (the `Ownership` port): the table its
//! prefix names.

use ferry_core::StoreError;
use ferry_core::error::StoreResult;
use ferry_core::ids::OrgId;
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Type};

use super::{Backend, Tables};

impl<B> Tables<'_, B>
where
    B: Backend,
    <B::DB as Database>::Arguments: IntoArguments<B::DB>,
    for<'c> &'c mut <B::DB as Database>::Connection: Executor<'c, Database = B::DB>,
    for<'q> &'q str: Encode<'q, B::DB> + Type<B::DB>,
    (String,): for<'r> FromRow<'r, <B::DB as Database>::Row>,
{
    pub(crate) async fn owner_of(&self, id: &str) -> StoreResult<Option<OrgId>> {
        let sql = match id.split_once('_').map(|(prefix, _)| prefix) {
            Some("evt") => "SELECT org_id FROM events WHERE id = $1",
            Some("dlv") => "SELECT org_id FROM deliveries WHERE id = $1",
            Some("dst") => "SELECT org_id FROM destinations WHERE id = $1",
            Some("src") => "SELECT org_id FROM sources WHERE id = $1",
            Some("key") => "SELECT org_id FROM api_keys WHERE id = $1",
            Some("exp") => "SELECT org_id FROM exports WHERE id = $1",
            Some("sch") => "SELECT org_id FROM export_schedules WHERE id = $1",
            Some("org") => "SELECT id FROM orgs WHERE id = $1",
            _ => return Ok(None),
        };
        let owner = sqlx::query_scalar::<B::DB, String>(sql)
            .bind(id)
            .fetch_optional(self.0.reader())
            .await
            .map_err(B::db_error)?;
        owner
            .map(|o: String| {
                OrgId::parse(&o)
                    .map_err(|_| StoreError::Corrupt(format!("{id} has an invalid owner")))
            })
            .transpose()
    }
}
