//! The audit log: append-only records, written inside the transaction of
//! the change they describe (the backend's batch insert), and listed
//! newest first.

use ferry_core::audit::{AuditFilter, AuditRecord};
use ferry_core::error::StoreResult;
use ferry_core::ids::OrgId;
use ferry_core::page::{Page, PageRequest};
use sqlx::{Database, Encode, Executor, IntoArguments, QueryBuilder, Type};

use super::decode::{self, Columns};
use super::{Backend, Tables};
use crate::rows::audit_columns;
use crate::values::{micros, page_limit};

impl<B> Tables<'_, B>
where
    B: Backend,
    <B::DB as Database>::Arguments: IntoArguments<B::DB>,
    <B::DB as Database>::Row: Columns,
    for<'c> &'c mut <B::DB as Database>::Connection: Executor<'c, Database = B::DB>,
    for<'q> &'q str: Encode<'q, B::DB> + Type<B::DB>,
    for<'q> i64: Encode<'q, B::DB> + Type<B::DB>,
{
    pub(crate) async fn append_audit(&self, records: &[AuditRecord]) -> StoreResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        let refs: Vec<&AuditRecord> = records.iter().collect();
        let mut tx = self.0.write().await?;
        B::insert_audit(&mut tx, &refs).await?;
        tx.commit().await.map_err(B::db_error)
    }

    /// Newest first.
    pub(crate) async fn list_audit(
        &self,
        org: &OrgId,
        filter: &AuditFilter,
        page: PageRequest,
    ) -> StoreResult<Page<AuditRecord>> {
        let limit = page_limit(page.limit);
        let mut qb = QueryBuilder::<B::DB>::new(concat!(
            "SELECT ",
            audit_columns!(),
            " FROM audit WHERE org_id = "
        ));
        qb.push_bind(org.as_str());
        if let Some(after) = page.after {
            qb.push(" AND seq < ").push_bind(after);
        }
        if let Some(entity_id) = &filter.entity_id {
            qb.push(" AND entity_id = ").push_bind(entity_id.as_str());
        }
        if let Some(action) = &filter.action {
            qb.push(" AND action = ").push_bind(action.as_str());
        }
        if let Some(since) = filter.since {
            qb.push(" AND at >= ").push_bind(micros(since));
        }
        if let Some(until) = filter.until {
            qb.push(" AND at < ").push_bind(micros(until));
        }
        qb.push(" ORDER BY seq DESC LIMIT ")
            .push_bind(i64::from(limit) + 1);
        let rows = qb
            .build()
            .fetch_all(self.0.reader())
            .await
            .map_err(B::db_error)?;
        let rows = rows
            .iter()
            .map(decode::audit)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_rows(rows, limit))
    }
}
