//! Ferry's core: the domain vocabulary (organizations, events, destinations,
//! deliveries, attempts, audit), the delivery state machine, retry and backoff
//! math, Standard Webhooks signing, secret sealing, and the ports (`Store`,
//! `Queue`, `Deliverer`) that adapters implement. No network or database I/O
//! lives here.

pub mod alerting;
pub mod attempt;
pub mod audit;
pub mod config_doc;
pub mod crypto;
pub mod delivery;
pub mod destination;
pub mod error;
pub mod event;
pub mod export;
pub mod glob;
pub mod ids;
pub mod metrics;
pub mod org;
pub mod page;
pub mod ports;
pub mod retry;
pub mod secret;
pub mod signing;
pub mod source;
pub mod state;
pub mod trace;

pub use error::{FieldError, StoreError, StoreResult};
pub use ids::*;
