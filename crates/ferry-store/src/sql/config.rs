//! Applying a configuration import (the `ConfigStore` port): every change
//! and its audit records in one write transaction, so that an import that
//! fails halfway leaves the configuration as it was. Each change runs the
//! statement its single write runs (`orgs`, `destinations`, `sources`,
//! `schedules`), inside this transaction.
//!
//! The changes were worked out from what the importer read; a change whose
//! target is no longer stored (an update or a delete of something deleted
//! meanwhile) is a `Conflict` too, rather than an import reported as
//! applied that was not, or audit records of changes that did not happen.

use ferry_core::StoreError;
use ferry_core::audit::AuditRecord;
use ferry_core::error::StoreResult;
use ferry_core::ports::ConfigChange;
use sqlx::{Database, Encode, Executor, IntoArguments, Type};

use super::decode::Columns;
use super::{Backend, Tables};

impl<B> Tables<'_, B>
where
    B: Backend,
    <B::DB as Database>::Arguments: IntoArguments<B::DB>,
    <B::DB as Database>::Row: Columns,
    for<'c> &'c mut <B::DB as Database>::Connection: Executor<'c, Database = B::DB>,
    for<'q> &'q str: Encode<'q, B::DB> + Type<B::DB>,
    for<'q> &'q [u8]: Encode<'q, B::DB> + Type<B::DB>,
    for<'q> Option<&'q str>: Encode<'q, B::DB>,
    for<'q> String: Encode<'q, B::DB> + Type<B::DB>,
    for<'q> Option<String>: Encode<'q, B::DB>,
    for<'q> Vec<u8>: Encode<'q, B::DB> + Type<B::DB>,
    for<'q> i64: Encode<'q, B::DB> + Type<B::DB>,
    for<'q> Option<i64>: Encode<'q, B::DB>,
    for<'q> bool: Encode<'q, B::DB> + Type<B::DB>,
{
    /// Applies `changes` in order, then appends `audit`, in one transaction.
    pub(crate) async fn apply_config(
        &self,
        changes: &[ConfigChange],
        audit: &[AuditRecord],
    ) -> StoreResult<()> {
        let audit: Vec<&AuditRecord> = audit.iter().collect();
        let mut tx = self.0.write().await?;
        if let Err(e) = self.apply_changes(&mut tx, changes).await {
            // Ends the transaction now rather than when the pool next uses
            // its connection, so that its locks go at once. The change's
            // error is the one to report: a failed statement may have ended
            // the transaction already.
            let _ = tx.rollback().await;
            return Err(e);
        }
        B::insert_audit(&mut tx, &audit).await?;
        tx.commit().await.map_err(B::db_error)
    }

    async fn apply_changes(
        &self,
        conn: &mut <B::DB as Database>::Connection,
        changes: &[ConfigChange],
    ) -> StoreResult<()> {
        for change in changes {
            self.apply_change(conn, change).await?;
        }
        Ok(())
    }

    async fn apply_change(
        &self,
        conn: &mut <B::DB as Database>::Connection,
        change: &ConfigChange,
    ) -> StoreResult<()> {
        let (found, what, id) = match change {
            ConfigChange::CreateOrg(org) => return Self::create_org_in(conn, org).await,
            ConfigChange::UpdateOrg(org) => (
                Self::update_org_in(conn, org).await?,
                "organization",
                org.id.as_str(),
            ),
            ConfigChange::CreateDestination(d) => return self.insert_destination_in(conn, d).await,
            ConfigChange::UpdateDestination(d) => (
                self.update_destination_in(conn, d, true).await?,
                "destination",
                d.id.as_str(),
            ),
            ConfigChange::DeleteDestination(org, id) => (
                Self::delete_destination_in(conn, org, id).await?,
                "destination",
                id.as_str(),
            ),
            ConfigChange::CreateSource(s) => return self.insert_source_in(conn, s).await,
            ConfigChange::ReplaceSource(s) => (
                self.replace_source_in(conn, s).await?,
                "source",
                s.id.as_str(),
            ),
            ConfigChange::DeleteSource(org, id) => (
                Self::delete_source_in(conn, org, id).await?,
                "source",
                id.as_str(),
            ),
            ConfigChange::CreateSchedule(s) => return Self::insert_schedule_in(conn, s).await,
            ConfigChange::UpdateSchedule(s) => (
                Self::revise_schedule_in(conn, s).await?,
                "export schedule",
                s.id.as_str(),
            ),
            ConfigChange::DeleteSchedule(org, id) => (
                Self::delete_schedule_in(conn, org, id).await?,
                "export schedule",
                id.as_str(),
            ),
        };
        if found {
            Ok(())
        } else {
            Err(StoreError::Conflict(format!(
                "{what} {id} no longer exists or was changed meanwhile"
            )))
        }
    }
}
