//! TLS-speaking servers for the broker and database kinds' TLS tests, each
//! private to a test, on free loopback ports, with certificates generated
//! at test time ([`TestCertificates`]): Mosquitto ([`TlsMosquitto`]), NATS
//! with JetStream ([`TlsNats`]), MariaDB ([`TlsMariadb`]) and RabbitMQ
//! ([`TlsRabbitmq`]). Redis and
//! PostgreSQL have TLS variants of their private servers
//! ([`crate::redis::PrivateRedis::start_tls`],
//! [`crate::pg::PrivateCluster::start_tls`]).
//!
//! A missing server program fails the test with the Debian package to
//! install: nothing is skipped.

mod certs;
mod mariadb;
mod mosquitto;
mod nats;
mod rabbitmq;

pub use certs::{CLIENT_NAME, TestCertificates};
pub use mariadb::TlsMariadb;
pub use mosquitto::TlsMosquitto;
pub use nats::TlsNats;
pub use rabbitmq::TlsRabbitmq;

/// Whether a server asks clients for a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCertificates {
    /// Any client may connect over TLS; none is asked for a certificate.
    NotAsked,
    /// A client without a certificate signed by the test CA is refused.
    Required,
}
