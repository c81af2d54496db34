//! Re-sealing secrets at rest after the master key changed: every sealed
//! column is opened (with any key of the cipher's ring) and sealed again with
//! the current key, in one transaction.

use async_trait::async_trait;
use ferry_core::StoreError;
use ferry_core::error::StoreResult;
use ferry_core::ports::Resealing;

use super::{PgStore, db_error};

#[async_trait]
impl Resealing for PgStore {
    async fn reseal_secrets(&self) -> StoreResult<u64> {
        let mut tx = self.write().await?;
        let mut count = 0;
        for (select, update) in [
            (
                "SELECT id, secrets FROM destinations FOR UPDATE",
                "UPDATE destinations SET secrets = $1 WHERE id = $2",
            ),
            (
                "SELECT id, verification FROM sources FOR UPDATE",
                "UPDATE sources SET verification = $1 WHERE id = $2",
            ),
        ] {
            let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(select)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_error)?;
            for (id, sealed) in rows {
                let plain = self
                    .cipher()
                    .open(&sealed)
                    .map_err(|e| StoreError::Corrupt(format!("{id}: {e}")))?;
                let resealed = self.cipher().seal(&plain);
                sqlx::query(update)
                    .bind(resealed)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                count += 1;
            }
        }
        tx.commit().await.map_err(db_error)?;
        Ok(count)
    }
}
