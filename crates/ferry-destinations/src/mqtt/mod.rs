//! The `mqtt` kind: each event is published over MQTT 5 with QoS 1 or 2 and
//! is delivered on the broker's PUBACK (QoS 1) or PUBCOMP (QoS 2). The
//! payload is the Standard Webhooks body `{"id","type","timestamp","data"}`
//! (its `id` is the event id, for consumers to de-duplicate on); the
//! metadata (`webhook-id`, `idempotency-key`, `ferry-event-type`,
//! `ferry-delivery-id`, `ferry-attempt`) goes in user properties, with
//! `content-type: application/json`.
//!
//! ```json
//! {"url": "mqtts://broker.example.com:8883", "topic": "events/{type}",
//!  "qos": 1, "retain": false, "client_id": null, "timeout_ms": 10000,
//!  "tls": {"ca_certificate": "-----BEGIN CERTIFICATE-----\n…"}}
//! ```
//!
//! `topic` is a template (`{id}`, `{type}`, `{org}`, `{date}`,
//! `{timestamp}`) without wildcards. Without `client_id` each connection
//! takes a fresh one, so that several Ferry processes never take over each
//! other's session; a fixed `client_id` must be allowed to the broker and
//! used by one process only. Credentials come from `auth`: `basic`
//! (username and password) or `client_certificate` (TLS client
//! certificate, with an optional username and password).
//!
//! One connection per destination carries every delivery (its event loop
//! runs in a task of its own); after it ends, the next delivery connects
//! again, with backoff. Connection failures, timeouts, a busy broker and a
//! quota exceeded are retried; refused credentials, a banned client and a
//! message the broker rejects (not authorized, invalid topic or payload)
//! are permanent.

mod config;
mod deliverer;

pub use config::MqttConfig;
pub use deliverer::{MqttAdapter, MqttDeliverer, classify};

#[cfg(test)]
mod tests;
