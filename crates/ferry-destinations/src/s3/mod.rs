//! The `s3` kind: each event put as one object in an S3 (or S3-compatible)
//! bucket, through `object_store`.
//!
//! ```json
//! {"kind": "s3",
//!  "config": {"bucket": "acme-events", "region": "eu-west-1",
//!             "key": "{org}/{type}/{date}/{id}.json",
//!             "storage_class": "STANDARD_IA", "sse": "AES256"},
//!  "auth": {"type": "access_key", "access_key_id": "AKIA…",
//!           "secret_access_key": "…"}}
//! ```
//!
//! `endpoint` (e.g. `https://minio.internal:9000`) selects an S3-compatible
//! store (path-style requests); `content_type` defaults to
//! `application/json`; `sse` is `AES256`, `aws:kms` or
//! `aws:kms:<key id or ARN>`; `timeout_ms` bounds each request (default
//! 30 s). Without `auth` the standard provider chain supplies credentials
//! (environment, the `AWS_PROFILE` profile of `~/.aws/credentials` and
//! `~/.aws/config`, web identity, container and instance credentials; the
//! instance metadata address must then be allowed by the SSRF guard) and,
//! when the config has no `region`, the region (`AWS_REGION`, the
//! profile's, else `us-east-1`): see `chain`.
//!
//! The object's body is the event's `{"id","type","timestamp","data"}`; its
//! user metadata carries `webhook-id`, `idempotency-key`, `ferry-event-type`,
//! `ferry-delivery-id` and `ferry-attempt`. The key depends only on the
//! event, so a re-delivery overwrites the same object with the same bytes.
//! Bodies over 8 MiB go up as a multipart upload. A missing bucket, refused
//! access or bad credentials are permanent failures; connection errors,
//! timeouts, 408, 429 and 5xx are retried.
//!
//! An `s3` destination also takes exports (`export`): each is put at its
//! own key, whole or not at all.

mod chain;
mod config;
mod deliverer;
mod export;
mod ini;

pub use chain::AwsEnvironment;
pub use config::{DEFAULT_KEY, DEFAULT_REGION, S3Config};
pub use deliverer::{MULTIPART_THRESHOLD, S3Adapter, S3Deliverer, classify};

#[cfg(test)]
mod tests;
