//! Ferry's destination kinds against the real systems they deliver to: one
//! test binary for the crate. `compliance` is the suite every kind passes;
//! `tls` is the suite the broker and database kinds pass over TLS; the
//! other modules test what is particular to one kind.

#[cfg(feature = "amqp")]
mod amqp;
mod compliance;
#[cfg(feature = "email")]
mod email;
mod exports;
#[cfg(feature = "file")]
mod file;
#[cfg(feature = "mqtt")]
mod mqtt;
#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "nats")]
mod nats;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "s3")]
mod s3;
#[cfg(feature = "sftp")]
mod sftp;
mod tls;
#[cfg(feature = "webhook")]
mod webhook;
