//! Inbound sources: their verification settings hold the partner's secrets,
//! so they are sealed with the master key like destination secrets.

use async_trait::async_trait;
use ferry_core::audit::AuditRecord;
use ferry_core::error::StoreResult;
use ferry_core::ids::{OrgId, SourceId};
use ferry_core::page::{Page, PageRequest};
use ferry_core::ports::SourceStore;
use ferry_core::source::Source;

use crate::source_rows;

use super::{PgStore, audit, db_error, micros, page_limit};

#[async_trait]
impl SourceStore for PgStore {
    async fn insert_source(&self, source: &Source, audit_record: &AuditRecord) -> StoreResult<()> {
        let e = source_rows::encode(self.cipher(), source)?;
        let mut tx = self.write().await?;
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
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        audit::insert_rows(&mut tx, &[audit_record]).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn get_source(&self, org: &OrgId, id: &SourceId) -> StoreResult<Option<Source>> {
        let sql = concat!(
            "SELECT ",
            source_rows::source_columns!(),
            " FROM sources WHERE org_id = $1 AND id = $2"
        );
        let row = sqlx::query(sql)
            .bind(org.as_str())
            .bind(id.as_str())
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?;
        row.map(|r| source_rows::decode(self.cipher(), &r).map(|(_, s)| s))
            .transpose()
    }

    async fn source_by_id(&self, id: &SourceId) -> StoreResult<Option<Source>> {
        let sql = concat!(
            "SELECT ",
            source_rows::source_columns!(),
            " FROM sources WHERE id = $1"
        );
        let row = sqlx::query(sql)
            .bind(id.as_str())
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?;
        row.map(|r| source_rows::decode(self.cipher(), &r).map(|(_, s)| s))
            .transpose()
    }

    async fn list_sources(&self, org: &OrgId, page: PageRequest) -> StoreResult<Page<Source>> {
        let limit = page_limit(page.limit);
        let sql = concat!(
            "SELECT ",
            source_rows::source_columns!(),
            " FROM sources WHERE org_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
        );
        let rows = sqlx::query(sql)
            .bind(org.as_str())
            .bind(page.after.unwrap_or(i64::MAX))
            .bind(i64::from(limit) + 1)
            .fetch_all(self.pool())
            .await
            .map_err(db_error)?;
        let rows = rows
            .iter()
            .map(|r| source_rows::decode(self.cipher(), r))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_rows(rows, limit))
    }

    async fn delete_source(
        &self,
        org: &OrgId,
        id: &SourceId,
        audit_record: &AuditRecord,
    ) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        let deleted = sqlx::query("DELETE FROM sources WHERE org_id = $1 AND id = $2")
            .bind(org.as_str())
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?
            .rows_affected();
        if deleted == 0 {
            return Ok(false);
        }
        audit::insert_rows(&mut tx, &[audit_record]).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(true)
    }
}
