//! The `webhook` kind: an HTTP `POST` of each event to a URL in the Standard
//! Webhooks format — body `{"id","type","timestamp","data"}`, headers
//! `webhook-id` (the event id, the same on every attempt and replay),
//! `webhook-timestamp`, `webhook-signature` (one `v1,` entry per active
//! signing secret), `idempotency-key`, `ferry-delivery-id`,
//! `ferry-attempt` and `ferry-timestamp` (`webhook-timestamp` in RFC 3339),
//! plus the destination's own headers and auth.
//!
//! All webhook destinations share one pooled HTTP client (rustls, keep-alive,
//! no redirects followed, no proxy) whose DNS resolver applies the SSRF
//! guard ([`crate::net_guard`]): a name that resolves only to refused
//! addresses, or an IP-literal URL the guard refuses, is a permanent
//! failure. A 2xx answer is delivered; network errors,
//! timeouts, 408, 425, 429 and 5xx are retried (honouring `Retry-After`);
//! other answers, redirects included, are permanent failures.

mod config;
mod deliverer;

pub use config::{DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS, WebhookConfig};
#[cfg(test)]
use deliverer::with_references;
pub use deliverer::{WebhookAdapter, WebhookDeliverer, classify, parse_retry_after};

#[cfg(test)]
mod tests;
