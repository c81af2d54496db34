//! The `email` kind: one message per event through an SMTP server (lettre),
//! its subject and body rendered from minijinja templates.
//!
//! ```json
//! {"kind": "email",
//!  "config": {"host": "smtp.example.com", "port": 587, "tls": "starttls",
//!             "from": "Ferry <ferry@example.com>", "to": ["ops@example.com"],
//!             "subject": "[{{ type }}] order {{ data.order_id }}",
//!             "body": "Order {{ data.order_id }} totals {{ data.total }}.",
//!             "attach_payload": true},
//!  "auth": {"type": "basic", "username": "ferry", "password": "…"}}
//! ```
//!
//! `tls` is `implicit` (SMTPS, default port 465), `starttls` (required,
//! default, port 587) or `none` (loopback relays only, port 25). `to`, `cc`
//! and `bcc` are lists of addresses. Templates see `id`, `type`,
//! `timestamp`, `org`, `data` and `metadata`; an unknown variable is refused
//! when the destination is created, and a field the event's data lacks
//! fails that delivery permanently, naming the template. `attach_payload`
//! attaches the body `{"id","type","timestamp","data"}` as `<id>.json`.
//! `auth` is `basic` (PLAIN or LOGIN), `xoauth2` (a bearer token) or none.
//!
//! `Message-ID` is `<event id@sender's domain>` on every attempt, and the
//! headers `Webhook-Id`, `Idempotency-Key`, `Ferry-Event-Type`,
//! `Ferry-Delivery-Id` and `Ferry-Attempt` name the event. Refused
//! credentials and rejected mailboxes (5xx) are permanent failures; 4xx
//! answers, timeouts and connection failures are retried. Each destination
//! keeps a small pool of SMTP connections.

mod config;
mod deliverer;
mod mail;
mod render;

pub use config::{DEFAULT_BODY, DEFAULT_SUBJECT, EmailConfig, TlsMode};
pub use deliverer::{EmailAdapter, EmailDeliverer, classify};

#[cfg(test)]
mod tests;
