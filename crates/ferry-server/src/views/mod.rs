//! The public representation of each entity, secrets redacted: what the
//! API answers (each view is a typed struct with its JSON schema, so the
//! OpenAPI document is generated from the same types the handlers return),
//! what audit records keep as `before`/`after`, and what the console shows.

mod deliveries;
mod destinations;
mod exports;
mod integrations;
mod orgs;
mod schedules;
mod sources;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

pub use self::deliveries::{
    Accepted, AttemptView, BatchItem, BatchResults, DeliveryBrief, DeliveryDetail, DeliveryLinks,
    DeliveryView, EventView, Replayed, Requeued, TraceView,
};
pub use self::destinations::{
    CheckView, CreatedDestination, DestinationView, HealthView, RotatedSecret, ShownOnce,
    SigningKeyView, SigningView,
};
pub use self::exports::{ExportLinks, ExportView, ProgressView, ResultView};
pub use self::integrations::{EventDeliveryView, LastAttemptView};
pub use self::orgs::{ApiKeyView, AuditView, CreatedApiKey, MasterKeyRotated, OrgView};
pub use self::schedules::{ExportSpecView, RetryView, ScheduleLinks, ScheduleView};
pub use self::sources::SourceView;

/// Where an object lives: its API URL and its page in the web console,
/// both from `public_url`, so that a person gets from a notification or a
/// log line to the object in one click. API answers carry them; audit
/// snapshots of the same views do not.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(examples(json!({
    "self": "https://ferry.example.com/v1/destinations/dst_01jq3v2a4c6e8g0j2m4p6r8t0v",
    "ui": "https://ferry.example.com/ui/destinations/dst_01jq3v2a4c6e8g0j2m4p6r8t0v"
})))]
pub struct Links {
    #[serde(rename = "self")]
    pub self_: String,
    pub ui: String,
}

impl Links {
    /// The links of object `id` in `collection` (`destinations`, `events` …).
    pub fn new(public_url: &str, collection: &str, id: &str) -> Self {
        let base = public_url.trim_end_matches('/');
        Links {
            self_: format!("{base}/v1/{collection}/{id}"),
            ui: format!("{base}/ui/{collection}/{id}"),
        }
    }
}

/// One page of a list: `{"data": [...], "next_cursor": ...}`; pass
/// `next_cursor` as `cursor` for the next page (`null` on the last).
#[derive(Debug, Serialize, ToSchema)]
pub struct List<T: ToSchema> {
    pub data: Vec<T>,
    #[schema(examples("djE6NDI"))]
    pub next_cursor: Option<String>,
}

impl<T: ToSchema> List<T> {
    pub fn new(data: Vec<T>, next_cursor: Option<String>) -> Self {
        Self { data, next_cursor }
    }
}

/// A view as the JSON an audit record keeps.
pub fn snapshot(view: impl Serialize) -> Value {
    serde_json::to_value(view).unwrap_or(Value::Null)
}

/// `/healthz` and `/readyz`: `ok`, `ready`, `shutting_down` or
/// `storage_unavailable` (with the reason).
#[derive(Debug, Serialize, ToSchema)]
#[schema(examples(json!({"status": "ready"})))]
pub struct Status {
    #[schema(examples("ready"))]
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Every error answer: a stable `error` code, a sentence for people, and
/// one entry per invalid field in `details`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(examples(json!({
    "error": "validation_failed",
    "message": "config.url: must be an http or https URL",
    "details": [{"field": "config.url", "message": "must be an http or https URL"}]
})))]
pub struct ErrorBody {
    #[schema(examples("validation_failed"))]
    pub error: &'static str,
    #[schema(examples("config.url: must be an http or https URL"))]
    pub message: String,
    pub details: Vec<ferry_core::FieldError>,
}
