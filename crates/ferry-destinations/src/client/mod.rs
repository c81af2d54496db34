//! What the kinds that connect to a broker or database server with a
//! client of its protocol (amqp, mqtt, nats, redis, postgres, mysql) share
//! besides their adapter (see [`crate::client_adapter`]): the auth types
//! they take ([`auth`]), how they report attempts and connection tests
//! ([`report`]) and how they name certificate problems
//! ([`certificate_failure`]).

pub mod auth;
pub mod report;
mod tls_failure;

pub use tls_failure::certificate_failure;
