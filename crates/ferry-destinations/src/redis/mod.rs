//! The `redis` kind: each event is written to a Redis key, in one of three
//! modes:
//!
//! - `stream` (default): `XADD key [MAXLEN ~ maxlen] * id <event id>
//!   payload <json> webhook-id … idempotency-key … ferry-event-type …
//!   ferry-delivery-id … ferry-attempt …` — consumers de-duplicate on `id`;
//! - `list`: `LPUSH key <json>` (consumers `BRPOP` in arrival order);
//! - `pubsub`: `PUBLISH channel <json>` (only subscribers connected at that
//!   moment receive it; Redis keeps nothing).
//!
//! `<json>` is the Standard Webhooks body `{"id","type","timestamp","data"}`.
//! Delivered means Redis answered the command.
//!
//! ```json
//! {"url": "rediss://cache.example.com:6380/0", "mode": "stream",
//!  "key": "events:{type}", "maxlen": 1000000, "timeout_ms": 10000,
//!  "tls": {"ca_certificate": "-----BEGIN CERTIFICATE-----\n…"}}
//! ```
//!
//! `key` is a template (`{id}`, `{type}`, `{org}`, `{date}`, `{timestamp}`).
//! Credentials come from `auth`: `basic` (an ACL user, or `default` for a
//! `requirepass` password) or `client_certificate` (TLS client certificate,
//! with an optional ACL user and password); never from the URL.
//!
//! One multiplexed connection per destination carries every delivery; it is
//! made again, with backoff, after it breaks. Connection failures, timeouts,
//! `LOADING`, `BUSY`, `OOM`, `READONLY` and fail-overs are retried; refused
//! credentials, `NOPERM`, `WRONGTYPE` and other command errors are
//! permanent.

mod config;
mod deliverer;

pub use config::{Mode, RedisConfig};
pub use deliverer::{RedisAdapter, RedisDeliverer, classify};

#[cfg(test)]
mod tests;
