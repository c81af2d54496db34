//! Ferry's server: the use cases (ingest with group commit, dispatch with
//! retries and the breaker, replay) and the HTTP API over them.

pub mod bootstrap;
pub mod cache;
pub mod config;
pub mod dispatch;
pub mod http;
pub mod ingest;
pub mod metrics;
pub mod routing;
pub mod server;
pub mod state;
pub mod store_health;

pub use config::Config;
pub use server::{Running, start};
