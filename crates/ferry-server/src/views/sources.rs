//! Inbound sources, secrets redacted.

use ferry_core::source::{Extractor, Source};
use ferry_core::{DestinationId, SourceId};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use chrono::{DateTime, Utc};

/// An inbound source: where a partner posts signed events, how they are
/// verified and read; secrets redacted.
#[derive(Debug, Serialize, ToSchema)]
#[schema(examples(json!({
    "id": "src_01jq3v8k2m4n6p8r0t2v4x6z8a", "url": "/in/src_01jq3v8k2m4n6p8r0t2v4x6z8a", "name": "courier partner",
    "verification": {"scheme": "standard-webhooks", "secrets": ["***"], "tolerance_s": 300},
    "id_from": "header:webhook-id", "type_from": "/type",
    "required": ["/type", "/shipment/id"], "destinations": ["dst_01jq3v2a4c6e8g0j2m4p6r8t0v"],
    "created_at": "2026-03-02T10:00:00Z"
})))]
pub struct SourceView {
    pub id: SourceId,
    /// Where partners post: `/in/{id}`.
    #[schema(examples("/in/src_01jq3v8k2m4n6p8r0t2v4x6z8a"))]
    pub url: String,
    #[schema(examples("courier partner"))]
    pub name: String,
    /// The scheme and its settings; secrets redacted.
    #[schema(value_type = Object)]
    pub verification: Value,
    #[schema(examples("header:webhook-id"))]
    pub id_from: Option<String>,
    #[schema(examples("/type"))]
    pub type_from: String,
    pub required: Vec<String>,
    pub destinations: Vec<DestinationId>,
    pub created_at: DateTime<Utc>,
    /// The object's API URL and console page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub links: Option<super::Links>,
}

impl From<&Source> for SourceView {
    fn from(s: &Source) -> Self {
        Self {
            id: s.id.clone(),
            url: format!("/in/{}", s.id),
            name: s.name.clone(),
            verification: s.verification.redacted(),
            id_from: s.id_from.as_ref().map(Extractor::as_text),
            type_from: s.type_from.as_text(),
            required: s.required.clone(),
            destinations: s.destinations.clone(),
            created_at: s.created_at,
            links: None,
        }
    }
}

impl SourceView {
    /// The view with its links, as the API answers it.
    pub fn linked(self, public_url: &str) -> Self {
        let links = super::Links::new(public_url, "sources", self.id.as_str());
        Self {
            links: Some(links),
            ..self
        }
    }
}
