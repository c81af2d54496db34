//! The `amqp` kind: each event is published to an AMQP 0-9-1 broker
//! (RabbitMQ) and is delivered when the broker's publisher confirm (ack)
//! arrives. The message carries `message_id` = the event id (the same on
//! every attempt and replay, for consumers to de-duplicate on), `type` = the
//! event type, `content_type: application/json`, the metadata headers
//! (`webhook-id`, `idempotency-key`, `ferry-event-type`,
//! `ferry-delivery-id`, `ferry-attempt`) plus the config's own `headers`,
//! and the Standard Webhooks body `{"id","type","timestamp","data"}`.
//!
//! ```json
//! {"url": "amqps://broker.example.com:5671/orders", "exchange": "events",
//!  "routing_key": "{type}", "persistent": true, "mandatory": true,
//!  "headers": {"x-team": "billing"}, "timeout_ms": 10000,
//!  "tls": {"ca_certificate": "-----BEGIN CERTIFICATE-----\n…"}}
//! ```
//!
//! `exchange` `""` (the default) is the broker's default exchange, where the
//! routing key names the queue. `routing_key` is a template (`{id}`,
//! `{type}`, `{org}`, `{date}`, `{timestamp}`). With `mandatory` (default),
//! a message no queue is bound for comes back from the broker and the
//! attempt is retried rather than silently dropped. Credentials come from
//! `auth`: `basic` (PLAIN), or `client_certificate` (TLS client
//! certificate; with a username and password it logs in with PLAIN,
//! without, with EXTERNAL); `none` logs in as the broker's default user.
//!
//! One connection with one confirm-mode channel per destination carries
//! every delivery; it is opened again, with backoff, after it breaks.
//! Connection failures, timeouts, a nack, a returned (unroutable) message
//! and a broker shutting down are retried; refused access, an unknown
//! exchange or vhost and a message the broker rejects are permanent.

mod config;
mod deliverer;

pub use config::AmqpConfig;
pub use deliverer::{AmqpAdapter, AmqpDeliverer, classify};

#[cfg(test)]
mod tests;
