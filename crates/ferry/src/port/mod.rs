//! The integration port: how an application hands events to Ferry and
//! learns how each one stands, without depending on how Ferry runs.
//!
//! An [`IntegrationPort`] is bound to one destination. [`send`] returns as
//! soon as the event is durable — committed to the embedded store, or to the
//! local spool of a remote client — and never waits for the destination:
//! with the destination down, slow or backed up, `send` still answers in
//! about the time of one commit, and Ferry delivers the event at least once
//! later. [`status`] reads how the event stands there.
//!
//! This module holds only the contract: the trait and its value types. An
//! application's own code can depend on it alone and receive a port from
//! wherever it is assembled ([`crate::Ferry::port`]).
//!
//! ```
//! use ferry::port::{DeliveryStatus, ExternalEvent, IntegrationPort, PortError};
//! use serde_json::json;
//!
//! /// Exports one result; the caller's work never waits for the destination.
//! async fn export(port: &dyn IntegrationPort, run: u64) -> Result<(), PortError> {
//!     let event = ExternalEvent::new("evaluation.completed", json!({"run": run}))
//!         .with_id(format!("run-{run}"))
//!         .with_metadata("suite", "nightly");
//!     let result = port.send(event).await?;
//!     assert_eq!(result.status, DeliveryStatus::Pending);
//!     Ok(())
//! }
//! ```
//!
//! [`send`]: IntegrationPort::send
//! [`status`]: IntegrationPort::status

mod event;
mod result;

use std::sync::Arc;

use async_trait::async_trait;

pub use self::event::ExternalEvent;
pub use self::result::{DeliveryError, DeliveryStatus, IntegrationResult};
pub use ferry_core::{DestinationId, EventId, IdError};

/// One destination's intake, as an application sees it. Object safe:
/// hold it as `Arc<dyn IntegrationPort>` or `&dyn IntegrationPort`.
#[async_trait]
pub trait IntegrationPort: Send + Sync {
    /// Makes `event` durable for this port's destination and answers with
    /// status [`DeliveryStatus::Pending`]; delivery happens later, at least
    /// once. Sending an event whose id is already known (the same
    /// [`ExternalEvent::with_id`], or the same content without one) is a
    /// duplicate and delivers nothing twice: the embedded Ferry answers
    /// with how the first one stands, a remote one with `Pending` (it
    /// cannot ask the server without waiting for it).
    ///
    /// Fails only for what the caller can fix — an event too large, a
    /// destination that does not exist, an invalid event type — or when
    /// the store cannot write; then nothing was accepted.
    async fn send(&self, event: ExternalEvent) -> Result<IntegrationResult, PortError>;

    /// How the event with this id stands at this port's destination;
    /// `None` when it was never sent through this port. A point read.
    async fn status(&self, id: &EventId) -> Result<Option<IntegrationResult>, PortError>;
}

#[async_trait]
impl<P: IntegrationPort + ?Sized> IntegrationPort for Arc<P> {
    async fn send(&self, event: ExternalEvent) -> Result<IntegrationResult, PortError> {
        (**self).send(event).await
    }

    async fn status(&self, id: &EventId) -> Result<Option<IntegrationResult>, PortError> {
        (**self).status(id).await
    }
}

#[async_trait]
impl<P: IntegrationPort + ?Sized> IntegrationPort for Box<P> {
    async fn send(&self, event: ExternalEvent) -> Result<IntegrationResult, PortError> {
        (**self).send(event).await
    }

    async fn status(&self, id: &EventId) -> Result<Option<IntegrationResult>, PortError> {
        (**self).status(id).await
    }
}

/// Why a port refused: what the caller can fix, or a store that cannot
/// write. In every case nothing was accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PortError {
    /// The event's data and metadata, as JSON, are larger than the limit.
    #[error("the event is {size} bytes; the largest accepted is {limit} bytes")]
    TooLarge {
        /// The event's size in bytes.
        size: usize,
        /// The largest accepted.
        limit: usize,
    },
    /// The port's destination does not exist (or was deleted).
    #[error("destination {0} does not exist")]
    UnknownDestination(DestinationId),
    /// The event itself is invalid (an empty type, metadata that is not an
    /// object); the message names the field.
    #[error("invalid event: {0}")]
    Invalid(String),
    /// The store cannot write (or read) now: a full disk, a database that
    /// is down, a remote Ferry that cannot answer a status. Retry later.
    #[error("{0}")]
    Unavailable(String),
    /// The Ferry this port belongs to was shut down.
    #[error("this Ferry is shut down")]
    Closed,
}
