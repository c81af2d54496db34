//! Inbound sources (their verification settings hold the partner's secrets,
//! so they are sealed with the master key like destination secrets), and the
//! ownership lookup of any id.

use async_trait::async_trait;
use ferry_core::StoreError;
use ferry_core::audit::AuditRecord;
use ferry_core::error::StoreResult;
use ferry_core::ids::{DestinationId, OrgId, SourceId};
use ferry_core::page::{Page, PageRequest};
use ferry_core::ports::{Ownership, SourceStore};
use ferry_core::source::{Extractor, Source, Verification};
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::rows::{from_micros, seq};
use super::{PgStore, audit, db_error, micros, page_limit, to_json};

macro_rules! source_columns {
    () => {
        "seq, id, org_id, name, verification, id_from, type_from, required, destinations, created_at"
    };
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("stored source has an invalid {what}"))
}

fn decode(store: &PgStore, row: &PgRow) -> StoreResult<(i64, Source)> {
    let text = |c: &str| row.try_get::<String, _>(c).map_err(db_error);
    let sealed: Vec<u8> = row.try_get("verification").map_err(db_error)?;
    let opened = store
        .cipher()
        .open(&sealed)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let verification: Verification =
        serde_json::from_slice(&opened).map_err(|_| corrupt("verification"))?;
    let id_from = row
        .try_get::<Option<String>, _>("id_from")
        .map_err(db_error)?
        .map(|t| Extractor::parse(&t).map_err(|_| corrupt("id_from")))
        .transpose()?;
    let source = Source {
        id: SourceId::parse(&text("id")?).map_err(|_| corrupt("id"))?,
        org_id: OrgId::parse(&text("org_id")?).map_err(|_| corrupt("org_id"))?,
        name: text("name")?,
        verification,
        id_from,
        type_from: Extractor::parse(&text("type_from")?).map_err(|_| corrupt("type_from"))?,
        required: serde_json::from_str(&text("required")?).map_err(|_| corrupt("required"))?,
        destinations: serde_json::from_str::<Vec<DestinationId>>(&text("destinations")?)
            .map_err(|_| corrupt("destinations"))?,
        created_at: from_micros(row.try_get("created_at").map_err(db_error)?, "created_at")?,
    };
    Ok((seq(row)?, source))
}

#[async_trait]
impl SourceStore for PgStore {
    async fn insert_source(&self, source: &Source, audit_record: &AuditRecord) -> StoreResult<()> {
        let verification = serde_json::to_vec(&source.verification)
            .map_err(|_| StoreError::Corrupt("cannot encode source verification".into()))?;
        let sealed = self.cipher().seal(&verification);
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO sources (id, org_id, name, verification, id_from, type_from, required, \
             destinations, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(source.id.as_str())
        .bind(source.org_id.as_str())
        .bind(source.name.as_str())
        .bind(sealed)
        .bind(source.id_from.as_ref().map(Extractor::as_text))
        .bind(source.type_from.as_text())
        .bind(to_json(&source.required, "source required fields")?)
        .bind(to_json(&source.destinations, "source destinations")?)
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
            source_columns!(),
            " FROM sources WHERE org_id = $1 AND id = $2"
        );
        let row = sqlx::query(sql)
            .bind(org.as_str())
            .bind(id.as_str())
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?;
        row.map(|r| decode(self, &r).map(|(_, s)| s)).transpose()
    }

    async fn source_by_id(&self, id: &SourceId) -> StoreResult<Option<Source>> {
        let sql = concat!("SELECT ", source_columns!(), " FROM sources WHERE id = $1");
        let row = sqlx::query(sql)
            .bind(id.as_str())
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?;
        row.map(|r| decode(self, &r).map(|(_, s)| s)).transpose()
    }

    async fn list_sources(&self, org: &OrgId, page: PageRequest) -> StoreResult<Page<Source>> {
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
            .fetch_all(self.pool())
            .await
            .map_err(db_error)?;
        let rows = rows
            .iter()
            .map(|r| decode(self, r))
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

#[async_trait]
impl Ownership for PgStore {
    async fn owner_of(&self, id: &str) -> StoreResult<Option<OrgId>> {
        let sql = match id.split_once('_').map(|(prefix, _)| prefix) {
            Some("evt") => "SELECT org_id FROM events WHERE id = $1",
            Some("dlv") => "SELECT org_id FROM deliveries WHERE id = $1",
            Some("dst") => "SELECT org_id FROM destinations WHERE id = $1",
            Some("src") => "SELECT org_id FROM sources WHERE id = $1",
            Some("key") => "SELECT org_id FROM api_keys WHERE id = $1",
            Some("org") => "SELECT id FROM orgs WHERE id = $1",
            _ => return Ok(None),
        };
        let owner: Option<String> = sqlx::query_scalar(sql)
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?;
        owner
            .map(|o| OrgId::parse(&o).map_err(|_| corrupt("org_id")))
            .transpose()
    }
}
