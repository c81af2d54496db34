//! The ports of both backends, written once: each method hands over to the
//! shared statements of `crate::sql` (or, where a backend writes in its own
//! way, to its `Backend` implementation). `store_ports!(StoreType)`
//! instantiates them in a backend's `ports` module, since a port of
//! `ferry-core` can only be implemented for each store type of this crate,
//! not for every `Backend` at once.

macro_rules! store_ports {
    ($store:ty) => {
        use async_trait::async_trait;
        use chrono::{DateTime, Utc};
        use ferry_core::audit::{AuditFilter, AuditRecord};
        use ferry_core::delivery::{Attempt, Delivery, DeliveryFilter, DeliveryStatus, Leased};
        use ferry_core::destination::{Destination, Health};
        use ferry_core::error::StoreResult;
        use ferry_core::event::{Event, InsertOutcome, NewEvent};
        use ferry_core::export::{ExportJob, ExportProgress, ExportSchedule, Record, RecordQuery};
        use ferry_core::ids::{
            ApiKeyId, DeliveryId, DestinationId, EventId, ExportId, OrgId, ScheduleId, SourceId,
        };
        use ferry_core::metrics::{MetricsQuery, MetricsRetention, Rollup};
        use ferry_core::org::{ApiKey, Org};
        use ferry_core::page::{Page, PageRequest};
        use ferry_core::ports::{
            Completion, ConfigChange, ConfigStore, ExportStore, Lease, MetricsStore, Ownership,
            Queue, Reclaim, RequeueSelector, Resealing, ScheduleStore, SourceStore, Store,
        };
        use ferry_core::source::Source;

        use crate::sql::{Backend, Tables};

        #[async_trait]
        impl Store for $store {
            async fn ping(&self) -> StoreResult<()> {
                Tables(self).ping().await
            }

            async fn probe_write(&self) -> StoreResult<()> {
                Tables(self).probe_write().await
            }

            async fn create_org(&self, org: &Org) -> StoreResult<()> {
                Tables(self).create_org(org).await
            }

            async fn get_org(&self, id: &OrgId) -> StoreResult<Option<Org>> {
                Tables(self).get_org(id).await
            }

            async fn update_org(&self, org: &Org, audit: &AuditRecord) -> StoreResult<bool> {
                Tables(self).update_org(org, audit).await
            }

            async fn list_orgs(&self, page: PageRequest) -> StoreResult<Page<Org>> {
                Tables(self).list_orgs(page).await
            }

            async fn insert_api_key(&self, key: &ApiKey, audit: &AuditRecord) -> StoreResult<()> {
                Tables(self).insert_api_key(key, audit).await
            }

            async fn api_key_by_hash(&self, hash: &[u8; 32]) -> StoreResult<Option<ApiKey>> {
                Tables(self).api_key_by_hash(hash).await
            }

            async fn list_api_keys(
                &self,
                org: &OrgId,
                page: PageRequest,
            ) -> StoreResult<Page<ApiKey>> {
                Tables(self).list_api_keys(org, page).await
            }

            async fn delete_api_key(
                &self,
                org: &OrgId,
                id: &ApiKeyId,
                audit: &AuditRecord,
            ) -> StoreResult<bool> {
                Tables(self).delete_api_key(org, id, audit).await
            }

            async fn touch_api_keys(&self, used: &[(ApiKeyId, DateTime<Utc>)]) -> StoreResult<()> {
                Backend::write_key_use(self, used).await
            }

            async fn insert_destination(
                &self,
                d: &Destination,
                audit: &AuditRecord,
            ) -> StoreResult<()> {
                Tables(self).insert_destination(d, audit).await
            }

            async fn get_destination(
                &self,
                org: &OrgId,
                id: &DestinationId,
            ) -> StoreResult<Option<Destination>> {
                Tables(self).get_destination(org, id).await
            }

            async fn org_destinations(&self, org: &OrgId) -> StoreResult<Vec<Destination>> {
                Tables(self).org_destinations(org).await
            }

            async fn list_destinations(
                &self,
                org: &OrgId,
                page: PageRequest,
            ) -> StoreResult<Page<Destination>> {
                Tables(self).list_destinations(org, page).await
            }

            async fn update_destination(
                &self,
                d: &Destination,
                audit: &AuditRecord,
            ) -> StoreResult<bool> {
                Tables(self).update_destination(d, audit).await
            }

            async fn delete_destination(
                &self,
                org: &OrgId,
                id: &DestinationId,
                audit: &AuditRecord,
            ) -> StoreResult<bool> {
                Tables(self).delete_destination(org, id, audit).await
            }

            async fn destination_by_id(
                &self,
                id: &DestinationId,
            ) -> StoreResult<Option<Destination>> {
                Tables(self).destination_by_id(id).await
            }

            async fn save_health(&self, updates: &[(DestinationId, Health)]) -> StoreResult<()> {
                Backend::write_health(self, updates).await
            }

            async fn insert_events(&self, batch: &[NewEvent]) -> StoreResult<Vec<InsertOutcome>> {
                Tables(self).insert_events(batch).await
            }

            async fn get_event(
                &self,
                org: &OrgId,
                id: &EventId,
            ) -> StoreResult<Option<(Event, Vec<Delivery>)>> {
                Tables(self).get_event(org, id).await
            }

            async fn insert_deliveries(
                &self,
                deliveries: &[Delivery],
                audit: &[AuditRecord],
            ) -> StoreResult<()> {
                Tables(self).insert_deliveries(deliveries, audit).await
            }

            async fn get_delivery(
                &self,
                org: &OrgId,
                id: &DeliveryId,
            ) -> StoreResult<Option<(Delivery, Vec<Attempt>)>> {
                Tables(self).get_delivery(org, id).await
            }

            async fn list_deliveries(
                &self,
                org: &OrgId,
                filter: &DeliveryFilter,
                page: PageRequest,
            ) -> StoreResult<Page<Delivery>> {
                Tables(self).list_deliveries(org, filter, page).await
            }

            async fn requeue(
                &self,
                org: &OrgId,
                selector: &RequeueSelector,
                actor: &str,
            ) -> StoreResult<Vec<Delivery>> {
                Tables(self).requeue(org, selector, actor).await
            }

            async fn replay_event(
                &self,
                org: &OrgId,
                event_id: &EventId,
                destinations: Option<&[DestinationId]>,
                actor: &str,
            ) -> StoreResult<Option<Vec<Delivery>>> {
                Tables(self)
                    .replay_event(org, event_id, destinations, actor)
                    .await
            }

            async fn delivery_counts(&self) -> StoreResult<Vec<(DeliveryStatus, u64)>> {
                Backend::count_by_status(self).await
            }

            async fn append_audit(&self, records: &[AuditRecord]) -> StoreResult<()> {
                Tables(self).append_audit(records).await
            }

            async fn list_audit(
                &self,
                org: &OrgId,
                filter: &AuditFilter,
                page: PageRequest,
            ) -> StoreResult<Page<AuditRecord>> {
                Tables(self).list_audit(org, filter, page).await
            }
        }

        #[async_trait]
        impl Queue for $store {
            async fn claim(
                &self,
                ids: &[DeliveryId],
                lease: &Lease,
            ) -> StoreResult<Vec<DeliveryId>> {
                Tables(self).claim(ids, lease).await
            }

            async fn lease_due(
                &self,
                limit: u32,
                lease: &Lease,
                exclude: &[DestinationId],
            ) -> StoreResult<Vec<Leased>> {
                Tables(self).lease_due(limit, lease, exclude).await
            }

            async fn lease_destination(
                &self,
                id: &DestinationId,
                limit: u32,
                lease: &Lease,
            ) -> StoreResult<Vec<Leased>> {
                Tables(self).lease_destination(id, limit, lease).await
            }

            async fn complete(&self, batch: &[Completion]) -> StoreResult<()> {
                Tables(self).complete(batch).await.map(drop)
            }

            async fn extend_leases(&self, ids: &[DeliveryId], lease: &Lease) -> StoreResult<u64> {
                Tables(self).extend_leases(ids, lease).await
            }

            async fn release(&self, ids: &[DeliveryId], owner: &str) -> StoreResult<u64> {
                Ok(Tables(self).release(ids, owner).await?.0)
            }

            async fn reclaim(&self, which: &Reclaim) -> StoreResult<u64> {
                Ok(Tables(self).reclaim(which).await?.0)
            }

            async fn next_due_at(
                &self,
                exclude: &[DestinationId],
            ) -> StoreResult<Option<DateTime<Utc>>> {
                Tables(self).next_due_at(exclude).await
            }
        }

        #[async_trait]
        impl SourceStore for $store {
            async fn insert_source(&self, source: &Source, audit: &AuditRecord) -> StoreResult<()> {
                Tables(self).insert_source(source, audit).await
            }

            async fn get_source(&self, org: &OrgId, id: &SourceId) -> StoreResult<Option<Source>> {
                Tables(self).get_source(org, id).await
            }

            async fn source_by_id(&self, id: &SourceId) -> StoreResult<Option<Source>> {
                Tables(self).source_by_id(id).await
            }

            async fn list_sources(
                &self,
                org: &OrgId,
                page: PageRequest,
            ) -> StoreResult<Page<Source>> {
                Tables(self).list_sources(org, page).await
            }

            async fn delete_source(
                &self,
                org: &OrgId,
                id: &SourceId,
                audit: &AuditRecord,
            ) -> StoreResult<bool> {
                Tables(self).delete_source(org, id, audit).await
            }
        }

        #[async_trait]
        impl ExportStore for $store {
            async fn insert_export(&self, job: &ExportJob, audit: &AuditRecord) -> StoreResult<()> {
                Tables(self).insert_export(job, audit).await
            }

            async fn get_export(
                &self,
                org: &OrgId,
                id: &ExportId,
            ) -> StoreResult<Option<ExportJob>> {
                Tables(self).get_export(org, id).await
            }

            async fn list_exports(
                &self,
                org: &OrgId,
                page: PageRequest,
            ) -> StoreResult<Page<ExportJob>> {
                Tables(self).list_exports(org, page).await
            }

            async fn transition_export(
                &self,
                job: &ExportJob,
                audit: Option<&AuditRecord>,
            ) -> StoreResult<bool> {
                Tables(self).transition_export(job, audit).await
            }

            async fn save_export_progress(
                &self,
                id: &ExportId,
                progress: &ExportProgress,
            ) -> StoreResult<bool> {
                Tables(self).save_export_progress(id, progress).await
            }

            async fn last_incremental(
                &self,
                org: &OrgId,
                key: &str,
            ) -> StoreResult<Option<ExportJob>> {
                Tables(self).last_incremental(org, key).await
            }

            async fn active_exports(&self, org: &OrgId) -> StoreResult<u64> {
                Tables(self).active_exports(org).await
            }

            async fn stale_exports(&self, before: DateTime<Utc>) -> StoreResult<Vec<ExportJob>> {
                Tables(self).stale_exports(before).await
            }

            async fn record_page(
                &self,
                org: &OrgId,
                query: &RecordQuery,
                after: i64,
                limit: u32,
            ) -> StoreResult<Vec<(i64, Record)>> {
                Tables(self).record_page(org, query, after, limit).await
            }

            async fn count_records(&self, org: &OrgId, query: &RecordQuery) -> StoreResult<u64> {
                Tables(self).count_records(org, query).await
            }
        }

        #[async_trait]
        impl ScheduleStore for $store {
            async fn insert_schedule(
                &self,
                schedule: &ExportSchedule,
                audit: &AuditRecord,
            ) -> StoreResult<()> {
                Tables(self).insert_schedule(schedule, audit).await
            }

            async fn get_schedule(
                &self,
                org: &OrgId,
                id: &ScheduleId,
            ) -> StoreResult<Option<ExportSchedule>> {
                Tables(self).get_schedule(org, id).await
            }

            async fn list_schedules(
                &self,
                org: &OrgId,
                page: PageRequest,
            ) -> StoreResult<Page<ExportSchedule>> {
                Tables(self).list_schedules(org, page).await
            }

            async fn save_schedule(
                &self,
                schedule: &ExportSchedule,
                read_revision: i64,
                run: Option<&ExportJob>,
                audit: &[AuditRecord],
            ) -> StoreResult<bool> {
                Tables(self)
                    .save_schedule(schedule, read_revision, run, audit)
                    .await
            }

            async fn delete_schedule(
                &self,
                org: &OrgId,
                id: &ScheduleId,
                audit: &AuditRecord,
            ) -> StoreResult<bool> {
                Tables(self).delete_schedule(org, id, audit).await
            }

            async fn due_schedules(
                &self,
                now: DateTime<Utc>,
                limit: u32,
            ) -> StoreResult<Vec<ExportSchedule>> {
                Tables(self).due_schedules(now, limit).await
            }

            async fn schedule_runs(
                &self,
                org: &OrgId,
                id: &ScheduleId,
                page: PageRequest,
            ) -> StoreResult<Page<ExportJob>> {
                Tables(self).schedule_runs(org, id, page).await
            }

            async fn schedule_busy(&self, id: &ScheduleId) -> StoreResult<bool> {
                Tables(self).schedule_busy(id).await
            }

            async fn kept_outputs(&self, id: &ScheduleId) -> StoreResult<Vec<ExportJob>> {
                Tables(self).kept_outputs(id).await
            }

            async fn mark_output_removed(
                &self,
                id: &ExportId,
                at: DateTime<Utc>,
                audit: &AuditRecord,
            ) -> StoreResult<()> {
                Tables(self).mark_output_removed(id, at, audit).await
            }
        }

        #[async_trait]
        impl MetricsStore for $store {
            async fn add_rollups(&self, rows: &[Rollup]) -> StoreResult<()> {
                Tables(self).add_rollups(rows).await
            }

            async fn rollups(&self, org: &OrgId, query: &MetricsQuery) -> StoreResult<Vec<Rollup>> {
                Tables(self).rollups(org, query).await
            }

            async fn first_rollup_at(&self, org: &OrgId) -> StoreResult<Option<DateTime<Utc>>> {
                Tables(self).first_rollup_at(org).await
            }

            async fn compact_rollups(
                &self,
                now: DateTime<Utc>,
                retention: &MetricsRetention,
            ) -> StoreResult<u64> {
                Tables(self).compact_rollups(now, retention).await
            }
        }

        #[async_trait]
        impl ConfigStore for $store {
            async fn apply_config(
                &self,
                changes: &[ConfigChange],
                audit: &[AuditRecord],
            ) -> StoreResult<()> {
                Tables(self).apply_config(changes, audit).await
            }
        }

        #[async_trait]
        impl Ownership for $store {
            async fn owner_of(&self, id: &str) -> StoreResult<Option<OrgId>> {
                Tables(self).owner_of(id).await
            }
        }

        #[async_trait]
        impl Resealing for $store {
            async fn reseal_secrets(&self) -> StoreResult<u64> {
                Tables(self).reseal_secrets().await
            }
        }
    };
}
pub(crate) use store_ports;
