//! Ferry, the event and export delivery gateway, as a library.
//!
//! An application hands events to an [`IntegrationPort`](port::IntegrationPort)
//! and gets on with its work: `send` answers once the event is durable and
//! never waits for the destination, and Ferry delivers each event at least
//! once, with retries, a dead-letter queue and replay.
//!
//! Two ways to run it:
//!
//! - [`Ferry::embedded`] (or [`Ferry::builder`]) runs the whole engine in
//!   the application's process and tokio runtime, on an embedded store in a
//!   directory. It can also serve the HTTP API on an address of the
//!   application's choosing.
//! - [`Ferry::remote`] is a client of a Ferry server that never fails the
//!   caller when the server is unreachable: events wait in a local spool
//!   until the server takes them.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use ferry::port::{DeliveryStatus, ExternalEvent, IntegrationPort};
//! use ferry::{Ferry, NewDestination};
//! use serde_json::json;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let ferry = Ferry::builder("exports-data")   // the embedded store's directory
//!     .allow_private_networks(false)           // the SSRF guard, as in the server
//!     .open()
//!     .await?;
//! let dst = ferry
//!     .destinations()
//!     .create(NewDestination::webhook("https://analytics.example.com/hooks/evals"))
//!     .await?;
//! println!("signing secret: {}", dst.signing_secret.as_deref().unwrap_or("-"));
//! let port = ferry.port(&dst.id)?;
//! let r = port
//!     .send(ExternalEvent::new("evaluation.completed", json!({"run": 42})))
//!     .await?;
//! assert_eq!(r.status, DeliveryStatus::Pending);
//! let now = port.status(&r.event_id).await?;
//! ferry.shutdown(Duration::from_secs(10)).await?;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod destinations;
mod embedded;
mod error;
mod facade;
pub mod port;
mod remote;

pub use self::destinations::{AuditEntry, DeadLetter, Destination, Destinations, NewDestination};
pub use self::error::Error;
pub use self::facade::{Ferry, FerryBuilder, Port};
