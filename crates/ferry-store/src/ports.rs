//! The `Store` and `Queue` ports of both backends, written once: each
//! method hands over to the backend's module that owns its tables (the
//! modules have the same names and functions in both backends).
//! `store_ports!(StoreType, Database, read_pool, row_locks)` instantiates
//! them in a backend's `ports` module, with the shared `SourceStore`,
//! `Ownership` and `Resealing` of `crate::sources`, `crate::ownership` and
//! `crate::resealing`.

macro_rules! store_ports {
    ($store:ty, $db:ty, $reader:ident, $locks:expr) => {
        use async_trait::async_trait;
        use chrono::{DateTime, Utc};
        use ferry_core::audit::{AuditFilter, AuditRecord};
        use ferry_core::delivery::{Attempt, Delivery, DeliveryFilter, DeliveryStatus, Leased};
        use ferry_core::destination::{Destination, Health};
        use ferry_core::error::StoreResult;
        use ferry_core::event::{Event, InsertOutcome, NewEvent};
        use ferry_core::ids::{ApiKeyId, DeliveryId, DestinationId, EventId, OrgId, SourceId};
        use ferry_core::org::{ApiKey, Org};
        use ferry_core::page::{Page, PageRequest};
        use ferry_core::ports::{
            Completion, Lease, Ownership, Queue, Reclaim, RequeueSelector, Resealing, SourceStore,
            Store,
        };
        use ferry_core::source::Source;

        use super::{audit, deliveries, destinations, events, orgs, queue};

        #[async_trait]
        impl Store for $store {
            async fn ping(&self) -> StoreResult<()> {
                orgs::ping(self).await
            }

            async fn probe_write(&self) -> StoreResult<()> {
                orgs::probe_write(self).await
            }

            async fn create_org(&self, org: &Org) -> StoreResult<()> {
                orgs::create_org(self, org).await
            }

            async fn get_org(&self, id: &OrgId) -> StoreResult<Option<Org>> {
                orgs::get_org(self, id).await
            }

            async fn update_org(&self, org: &Org, audit: &AuditRecord) -> StoreResult<bool> {
                orgs::update_org(self, org, audit).await
            }

            async fn list_orgs(&self, page: PageRequest) -> StoreResult<Page<Org>> {
                orgs::list_orgs(self, page).await
            }

            async fn insert_api_key(&self, key: &ApiKey, audit: &AuditRecord) -> StoreResult<()> {
                orgs::insert_api_key(self, key, audit).await
            }

            async fn api_key_by_hash(&self, hash: &[u8; 32]) -> StoreResult<Option<ApiKey>> {
                orgs::api_key_by_hash(self, hash).await
            }

            async fn list_api_keys(
                &self,
                org: &OrgId,
                page: PageRequest,
            ) -> StoreResult<Page<ApiKey>> {
                orgs::list_api_keys(self, org, page).await
            }

            async fn delete_api_key(
                &self,
                org: &OrgId,
                id: &ApiKeyId,
                audit: &AuditRecord,
            ) -> StoreResult<bool> {
                orgs::delete_api_key(self, org, id, audit).await
            }

            async fn touch_api_keys(&self, used: &[(ApiKeyId, DateTime<Utc>)]) -> StoreResult<()> {
                orgs::touch_api_keys(self, used).await
            }

            async fn insert_destination(
                &self,
                d: &Destination,
                audit: &AuditRecord,
            ) -> StoreResult<()> {
                destinations::insert(self, d, audit).await
            }

            async fn get_destination(
                &self,
                org: &OrgId,
                id: &DestinationId,
            ) -> StoreResult<Option<Destination>> {
                destinations::get(self, org, id).await
            }

            async fn org_destinations(&self, org: &OrgId) -> StoreResult<Vec<Destination>> {
                destinations::of_org(self, org).await
            }

            async fn list_destinations(
                &self,
                org: &OrgId,
                page: PageRequest,
            ) -> StoreResult<Page<Destination>> {
                destinations::list(self, org, page).await
            }

            async fn update_destination(
                &self,
                d: &Destination,
                audit: &AuditRecord,
            ) -> StoreResult<bool> {
                destinations::update(self, d, audit).await
            }

            async fn delete_destination(
                &self,
                org: &OrgId,
                id: &DestinationId,
                audit: &AuditRecord,
            ) -> StoreResult<bool> {
                destinations::delete(self, org, id, audit).await
            }

            async fn destination_by_id(
                &self,
                id: &DestinationId,
            ) -> StoreResult<Option<Destination>> {
                destinations::by_id(self, id).await
            }

            async fn save_health(&self, updates: &[(DestinationId, Health)]) -> StoreResult<()> {
                destinations::save_health(self, updates).await
            }

            async fn insert_events(&self, batch: &[NewEvent]) -> StoreResult<Vec<InsertOutcome>> {
                events::insert(self, batch).await
            }

            async fn get_event(
                &self,
                org: &OrgId,
                id: &EventId,
            ) -> StoreResult<Option<(Event, Vec<Delivery>)>> {
                events::get(self, org, id).await
            }

            async fn insert_deliveries(
                &self,
                deliveries: &[Delivery],
                audit: &[AuditRecord],
            ) -> StoreResult<()> {
                deliveries::insert(self, deliveries, audit).await
            }

            async fn get_delivery(
                &self,
                org: &OrgId,
                id: &DeliveryId,
            ) -> StoreResult<Option<(Delivery, Vec<Attempt>)>> {
                deliveries::get(self, org, id).await
            }

            async fn list_deliveries(
                &self,
                org: &OrgId,
                filter: &DeliveryFilter,
                page: PageRequest,
            ) -> StoreResult<Page<Delivery>> {
                deliveries::list(self, org, filter, page).await
            }

            async fn requeue(
                &self,
                org: &OrgId,
                selector: &RequeueSelector,
                actor: &str,
            ) -> StoreResult<Vec<Delivery>> {
                deliveries::requeue(self, org, selector, actor).await
            }

            async fn replay_event(
                &self,
                org: &OrgId,
                event_id: &EventId,
                destinations: Option<&[DestinationId]>,
                actor: &str,
            ) -> StoreResult<Option<Vec<Delivery>>> {
                deliveries::replay(self, org, event_id, destinations, actor).await
            }

            async fn delivery_counts(&self) -> StoreResult<Vec<(DeliveryStatus, u64)>> {
                deliveries::counts(self).await
            }

            async fn append_audit(&self, records: &[AuditRecord]) -> StoreResult<()> {
                audit::append(self, records).await
            }

            async fn list_audit(
                &self,
                org: &OrgId,
                filter: &AuditFilter,
                page: PageRequest,
            ) -> StoreResult<Page<AuditRecord>> {
                audit::list(self, org, filter, page).await
            }
        }

        #[async_trait]
        impl Queue for $store {
            async fn claim(
                &self,
                ids: &[DeliveryId],
                lease: &Lease,
            ) -> StoreResult<Vec<DeliveryId>> {
                queue::claim(self, ids, lease).await
            }

            async fn lease_due(
                &self,
                limit: u32,
                lease: &Lease,
                exclude: &[DestinationId],
            ) -> StoreResult<Vec<Leased>> {
                queue::lease_due(self, limit, lease, exclude).await
            }

            async fn lease_destination(
                &self,
                id: &DestinationId,
                limit: u32,
                lease: &Lease,
            ) -> StoreResult<Vec<Leased>> {
                queue::lease_destination(self, id, limit, lease).await
            }

            async fn complete(&self, batch: &[Completion]) -> StoreResult<()> {
                queue::complete(self, batch).await
            }

            async fn extend_leases(&self, ids: &[DeliveryId], lease: &Lease) -> StoreResult<u64> {
                queue::extend_leases(self, ids, lease).await
            }

            async fn release(&self, ids: &[DeliveryId], owner: &str) -> StoreResult<u64> {
                queue::release(self, ids, owner).await
            }

            async fn reclaim(&self, which: &Reclaim) -> StoreResult<u64> {
                queue::reclaim(self, which).await
            }

            async fn next_due_at(
                &self,
                exclude: &[DestinationId],
            ) -> StoreResult<Option<DateTime<Utc>>> {
                queue::next_due_at(self, exclude).await
            }
        }

        impl $store {
            fn sources(&self) -> crate::sources::Sources<'_, $db> {
                crate::sources::Sources {
                    reader: self.$reader(),
                    cipher: self.cipher(),
                    db_error: super::db_error,
                }
            }
        }

        #[async_trait]
        impl SourceStore for $store {
            async fn insert_source(&self, source: &Source, audit: &AuditRecord) -> StoreResult<()> {
                let mut tx = self.write().await?;
                self.sources().insert(&mut tx, source).await?;
                super::audit::insert_rows(&mut tx, &[audit]).await?;
                tx.commit().await.map_err(super::db_error)
            }

            async fn get_source(&self, org: &OrgId, id: &SourceId) -> StoreResult<Option<Source>> {
                self.sources().get(org, id).await
            }

            async fn source_by_id(&self, id: &SourceId) -> StoreResult<Option<Source>> {
                self.sources().by_id(id).await
            }

            async fn list_sources(
                &self,
                org: &OrgId,
                page: PageRequest,
            ) -> StoreResult<Page<Source>> {
                self.sources().list(org, page).await
            }

            async fn delete_source(
                &self,
                org: &OrgId,
                id: &SourceId,
                audit: &AuditRecord,
            ) -> StoreResult<bool> {
                let mut tx = self.write().await?;
                if !self.sources().delete(&mut tx, org, id).await? {
                    return Ok(false);
                }
                super::audit::insert_rows(&mut tx, &[audit]).await?;
                tx.commit().await.map_err(super::db_error)?;
                Ok(true)
            }
        }

        #[async_trait]
        impl Ownership for $store {
            async fn owner_of(&self, id: &str) -> StoreResult<Option<OrgId>> {
                crate::ownership::owner_of(self.$reader(), id, super::db_error).await
            }
        }

        #[async_trait]
        impl Resealing for $store {
            async fn reseal_secrets(&self) -> StoreResult<u64> {
                let mut tx = self.write().await?;
                let count =
                    crate::resealing::reseal(&mut tx, self.cipher(), $locks, super::db_error)
                        .await?;
                tx.commit().await.map_err(super::db_error)?;
                Ok(count)
            }
        }
    };
}
pub(crate) use store_ports;
