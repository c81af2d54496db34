//! The `nats` kind: each event is published on a NATS subject with the
//! header `Nats-Msg-Id` = the event id, the metadata headers (`webhook-id`,
//! `idempotency-key`, `ferry-event-type`, `ferry-delivery-id`,
//! `ferry-attempt`) and the Standard Webhooks body
//! `{"id","type","timestamp","data"}`.
//!
//! With `stream`, the publish goes through JetStream and is delivered on the
//! stream's publish ack; JetStream drops a second message with the same
//! `Nats-Msg-Id` within the stream's duplicate window, so retries and
//! replays store the event once. Without `stream`, it is a core NATS
//! publish, delivered once flushed to the server (core NATS has no ack:
//! only subscribers connected at that moment get it).
//!
//! ```json
//! {"servers": ["tls://nats-1.example.com:4222", "tls://nats-2.example.com:4222"],
//!  "subject": "events.{type}", "stream": "EVENTS", "timeout_ms": 10000,
//!  "tls": {"ca_certificate": "-----BEGIN CERTIFICATE-----\n…"}}
//! ```
//!
//! `subject` is a template (`{id}`, `{type}`, `{org}`, `{date}`,
//! `{timestamp}`) without wildcards. Credentials come from `auth`: `basic`
//! (user and password), `bearer` (token) or `client_certificate` (TLS
//! client certificate, with an optional user and password).
//!
//! One client per destination carries every delivery; async-nats
//! re-establishes its connection in the background, and a first connection
//! that fails is tried again with backoff. Connection failures and timeouts
//! are retried; refused credentials, a subject no stream captures (or
//! captured by another stream) and an oversized message are permanent.

mod config;
mod deliverer;

pub use config::NatsConfig;
pub use deliverer::{NatsAdapter, NatsDeliverer, classify_connect};

#[cfg(test)]
mod tests;
