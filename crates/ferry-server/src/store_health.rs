//! Whether the store can commit writes, as the server's own writes find
//! out. A read succeeds on a full disk, so readiness cannot learn it from a
//! query: the ingest writer and the queue's writes (leases, attempt
//! records, give-backs) report each failure and each write that committed
//! something, and once the last one failed `/readyz` runs a real write
//! (`Store::probe_write`) until one commits. Readiness thus comes back even
//! when no traffic does — a load balancer sends none to an instance that
//! is not ready.
//!
//! Only outages count (`StoreError::is_outage`): a conflict is the
//! request's fault, not the store's. A write that committed nothing (a poll
//! that found no due delivery) proves nothing either: SQLite commits an
//! empty transaction on a full disk. Every failure is counted in
//! `ferry_store_write_errors_total{operation, reason}`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ferry_core::delivery::{Delivery, Leased};
use ferry_core::ports::{Completion, Lease, Queue, Reclaim};
use ferry_core::{DeliveryId, DestinationId, StoreError, StoreResult};

use crate::metrics as m;

/// Why the store cannot commit, in words fit for an API answer (the
/// driver's message, which may name files or SQL, is only logged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The disk (or quota) holding the data is full.
    Full,
    /// Anything else that keeps storage from committing now.
    Unavailable,
}

impl Reason {
    /// The outage behind an error, if it is one.
    pub fn of(error: &StoreError) -> Option<Reason> {
        match error {
            StoreError::Full(_) => Some(Reason::Full),
            StoreError::Unavailable(_) => Some(Reason::Unavailable),
            StoreError::Conflict(_) | StoreError::Corrupt(_) => None,
        }
    }

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Reason::Full => "full",
            Reason::Unavailable => "unavailable",
        }
    }

    /// What a client or an operator is told.
    pub fn describe(self) -> &'static str {
        match self {
            Reason::Full => "storage is full",
            Reason::Unavailable => "storage is unavailable",
        }
    }
}

/// Which write failed (the metric's `operation` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Ingest,
    Claim,
    Lease,
    Complete,
    Renew,
    Release,
    Reclaim,
    ReadinessProbe,
}

impl Operation {
    pub(crate) const ALL: [Operation; 8] = [
        Operation::Ingest,
        Operation::Claim,
        Operation::Lease,
        Operation::Complete,
        Operation::Renew,
        Operation::Release,
        Operation::Reclaim,
        Operation::ReadinessProbe,
    ];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Operation::Ingest => "ingest",
            Operation::Claim => "claim",
            Operation::Lease => "lease",
            Operation::Complete => "complete",
            Operation::Renew => "renew",
            Operation::Release => "release",
            Operation::Reclaim => "reclaim",
            Operation::ReadinessProbe => "readiness_probe",
        }
    }
}

const HEALTHY: u8 = 0;
const FULL: u8 = 1;
const UNAVAILABLE: u8 = 2;

/// The outcome of the store's latest write that proved anything. Shared by
/// the writers and readiness; a relaxed atomic, since only the latest
/// report matters.
#[derive(Debug, Default)]
pub struct WriteHealth {
    state: AtomicU8,
}

impl WriteHealth {
    /// A write failed: counts it, and remembers why if it was an outage.
    pub fn failed(&self, operation: Operation, error: &StoreError) {
        let Some(reason) = Reason::of(error) else {
            return;
        };
        metrics::counter!(m::STORE_WRITE_ERRORS, "operation" => operation.label(), "reason" => reason.label())
            .increment(1);
        let state = match reason {
            Reason::Full => FULL,
            Reason::Unavailable => UNAVAILABLE,
        };
        self.state.store(state, Ordering::Relaxed);
    }

    /// A write committed something: the store can commit.
    pub fn succeeded(&self) {
        self.state.store(HEALTHY, Ordering::Relaxed);
    }

    /// Why the latest write failed, or `None` if it committed.
    pub fn failing(&self) -> Option<Reason> {
        match self.state.load(Ordering::Relaxed) {
            FULL => Some(Reason::Full),
            UNAVAILABLE => Some(Reason::Unavailable),
            _ => None,
        }
    }

    /// Reports a result: a failure, or a success when `wrote` says that
    /// something was committed.
    fn report<T>(
        &self,
        operation: Operation,
        result: &StoreResult<T>,
        wrote: impl FnOnce(&T) -> bool,
    ) {
        match result {
            Ok(value) if wrote(value) => self.succeeded(),
            Ok(_) => {}
            Err(error) => self.failed(operation, error),
        }
    }
}

/// A `Queue` that reports its writes to the store's [`WriteHealth`]: the
/// dispatcher's leases, renewals, attempt records and give-backs, whichever
/// part of it makes them.
pub struct Reporting {
    inner: Arc<dyn Queue>,
    health: Arc<WriteHealth>,
}

impl Reporting {
    /// `queue`, reporting to `health`.
    pub fn wrap(queue: Arc<dyn Queue>, health: Arc<WriteHealth>) -> Arc<dyn Queue> {
        Arc::new(Self {
            inner: queue,
            health,
        })
    }
}

#[async_trait]
impl Queue for Reporting {
    async fn claim(&self, ids: &[DeliveryId], lease: &Lease) -> StoreResult<Vec<DeliveryId>> {
        let result = self.inner.claim(ids, lease).await;
        self.health
            .report(Operation::Claim, &result, |ids| !ids.is_empty());
        result
    }

    async fn lease_due(
        &self,
        limit: u32,
        lease: &Lease,
        exclude: &[DestinationId],
    ) -> StoreResult<Vec<Leased>> {
        let result = self.inner.lease_due(limit, lease, exclude).await;
        self.health
            .report(Operation::Lease, &result, |leased| !leased.is_empty());
        result
    }

    async fn lease_destination(
        &self,
        id: &DestinationId,
        limit: u32,
        lease: &Lease,
    ) -> StoreResult<Vec<Leased>> {
        let result = self.inner.lease_destination(id, limit, lease).await;
        self.health
            .report(Operation::Lease, &result, |leased| !leased.is_empty());
        result
    }

    async fn complete(&self, batch: &[Completion]) -> StoreResult<()> {
        let result = self.inner.complete(batch).await;
        self.health
            .report(Operation::Complete, &result, |()| !batch.is_empty());
        result
    }

    async fn extend_leases(&self, ids: &[DeliveryId], lease: &Lease) -> StoreResult<u64> {
        let result = self.inner.extend_leases(ids, lease).await;
        self.health.report(Operation::Renew, &result, |n| *n > 0);
        result
    }

    async fn release(&self, ids: &[DeliveryId], owner: &str) -> StoreResult<u64> {
        let result = self.inner.release(ids, owner).await;
        self.health.report(Operation::Release, &result, |n| *n > 0);
        result
    }

    async fn reclaim(&self, which: &Reclaim) -> StoreResult<u64> {
        let result = self.inner.reclaim(which).await;
        self.health.report(Operation::Reclaim, &result, |n| *n > 0);
        result
    }

    async fn next_due_at(&self, exclude: &[DestinationId]) -> StoreResult<Option<DateTime<Utc>>> {
        self.inner.next_due_at(exclude).await
    }

    async fn enqueue(&self, deliveries: &[Delivery]) -> StoreResult<()> {
        self.inner.enqueue(deliveries).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_write_that_proves_anything_decides() {
        let health = WriteHealth::default();
        assert_eq!(health.failing(), None);
        health.failed(Operation::Ingest, &StoreError::Full("disk".into()));
        assert_eq!(health.failing(), Some(Reason::Full));
        // A conflict is the request's fault: the store is still failing.
        health.failed(Operation::Complete, &StoreError::Conflict("x".into()));
        assert_eq!(health.failing(), Some(Reason::Full));
        // An empty write commits on a full disk too: it proves nothing.
        health.report(Operation::Lease, &Ok(0u64), |n| *n > 0);
        assert_eq!(health.failing(), Some(Reason::Full));
        health.report(Operation::Lease, &Ok(3u64), |n| *n > 0);
        assert_eq!(health.failing(), None);
        health.failed(Operation::Renew, &StoreError::Unavailable("busy".into()));
        assert_eq!(health.failing(), Some(Reason::Unavailable));
    }
}
