//! The `postgres` kind: each event becomes one row of a PostgreSQL table,
//! inserted and committed; the event id is the row's unique key, so a
//! retried or replayed event inserts nothing new (`ON CONFLICT (id) DO
//! NOTHING`).
//!
//! ```json
//! {"url": "postgres://ferry@db.example.com:5432/app?sslmode=verify-full",
//!  "table": "audit.events",
//!  "columns": {"id": "event_id", "type": "event_type",
//!              "timestamp": "created_at", "data": "payload"},
//!  "timeout_ms": 10000,
//!  "tls": {"ca_certificate": "-----BEGIN CERTIFICATE-----\n…"}}
//! ```
//!
//! `columns` is optional: by default the row has `id` (text, unique),
//! `type` (text), `timestamp` (timestamptz) and `data` (jsonb); a field
//! mapped to `null` is not stored (`id` always is). For example:
//!
//! ```sql
//! CREATE TABLE events (id text PRIMARY KEY, type text NOT NULL,
//!                      timestamp timestamptz NOT NULL, data jsonb NOT NULL);
//! ```
//!
//! The URL may carry a user name; the password comes from `auth` (`basic`,
//! or `client_certificate` for TLS client certificates with an optional
//! user and password). TLS follows the URL's `sslmode`.
//!
//! Each destination has a small pool (at most four connections, opened on
//! demand). Connection failures, timeouts, a server shutting down, out of
//! connections, deadlocks and serialization failures are retried; a
//! refused login, an unknown database, table or column, missing privileges
//! and a row the table rejects are permanent.

mod config;
mod deliverer;

pub use config::PostgresConfig;
pub use deliverer::{PostgresAdapter, PostgresDeliverer};

#[cfg(test)]
mod tests;
