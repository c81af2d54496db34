//! Ferry's server: the use cases (`app`), the engine under them (ingest
//! with group commit, dispatch with retries and the breaker) and the HTTP
//! API over them.

pub mod app;
pub mod bootstrap;
pub mod cache;
pub mod config;
pub mod dispatch;
pub mod engine;
pub mod http;
pub mod ingest;
pub mod metrics;
pub mod oplog;
pub mod routing;
pub mod server;
pub mod store_health;
pub mod traces;
pub mod views;

pub use config::Config;
pub use engine::{AdminKey, Engine};
pub use server::{Running, start};
