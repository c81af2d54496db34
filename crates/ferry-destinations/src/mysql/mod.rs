//! The `mysql` kind (MySQL and MariaDB): each event becomes one row of a
//! table, inserted and committed; the event id is the row's unique key, so
//! a retried or replayed event inserts nothing new. The insert is `INSERT …
//! ON DUPLICATE KEY UPDATE id = id` rather than `INSERT IGNORE`, which
//! would also turn a value the column refuses into a warning and a
//! silently altered row.
//!
//! ```json
//! {"url": "mysql://ferry@db.example.com:3306/app?ssl-mode=verify_identity",
//!  "table": "events",
//!  "columns": {"id": "event_id", "type": "event_type",
//!              "timestamp": "created_at", "data": "payload"},
//!  "timeout_ms": 10000,
//!  "tls": {"ca_certificate": "-----BEGIN CERTIFICATE-----\n…"}}
//! ```
//!
//! `columns` is optional: by default the row has `id`, `type`,
//! `timestamp` and `data` (JSON); a field mapped to `null` is not stored
//! (`id` always is). For example:
//!
//! ```sql
//! CREATE TABLE events (id VARCHAR(64) PRIMARY KEY, type VARCHAR(255) NOT NULL,
//!                      timestamp DATETIME(6) NOT NULL, data JSON NOT NULL);
//! ```
//!
//! The URL may carry a user name; the password comes from `auth` (`basic`,
//! or `client_certificate` for TLS client certificates with an optional
//! user and password). TLS follows the URL's `ssl-mode`.
//!
//! Each destination has a small pool (at most four connections, opened on
//! demand). Connection failures, timeouts, lock waits, deadlocks and a
//! server shutting down are retried; a refused login, an unknown database,
//! table or column, missing privileges and a row the table rejects are
//! permanent.

mod config;
mod deliverer;

pub use config::MysqlConfig;
pub use deliverer::{MysqlAdapter, MysqlDeliverer, classify};

#[cfg(test)]
mod tests;
