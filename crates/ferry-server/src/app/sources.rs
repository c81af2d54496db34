//! Inbound sources: partners post signed events to `/in/{source_id}`. A
//! source says how to verify the signature, where the event's id and type
//! are in the request, which fields must be present, and where the events
//! go. `receive` verifies, checks the content, then ingests exactly like
//! `POST /v1/events`; a rejected request stores nothing and says why.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use ferry_core::audit::AuditRecord;
use ferry_core::org::Scope;
use ferry_core::page::{Page, PageRequest};
use ferry_core::source::{Extractor, HeaderLookup, Source, Verification};
use ferry_core::trace::TraceContext;
use ferry_core::{DestinationId, FieldError, OrgId, SourceId};
use opentelemetry::KeyValue;
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::info;

use super::ingest::{Accepted, EventInput};
use super::json::parse_json;
use super::{App, Error, Principal, Result};
use crate::cache::TtlCache;
use crate::views;

const MAX_NAME: usize = 200;
const MAX_REQUIRED: usize = 32;
/// How long the public endpoint trusts a cached source.
const CACHE_TTL: Duration = Duration::from_secs(5);

/// The body of `POST /v1/sources`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({
    "name": "courier partner",
    "verification": {
        "scheme": "standard-webhooks",
        "secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
        "tolerance_s": 300
    },
    "id_from": "header:webhook-id", "type_from": "/type",
    "required": ["/type", "/shipment/id"], "destinations": ["dst_01jq3v2a4c6e8g0j2m4p6r8t0v"]
})))]
pub struct SourceInput {
    pub name: Option<String>,
    /// How requests are signed: `standard-webhooks`, `hmac-sha256`,
    /// `hmac-sha512` or `timestamped-hmac`, with the secrets.
    pub verification: Option<Value>,
    /// Where the event id is: a JSON pointer or `header:NAME`.
    pub id_from: Option<String>,
    /// Where the event type is (default `/type`).
    pub type_from: Option<String>,
    /// JSON pointers that must be present and not null.
    #[serde(default)]
    pub required: Vec<String>,
    /// Where the events go (default: the organization's routing).
    #[serde(default)]
    pub destinations: Vec<String>,
}

impl App {
    pub async fn create_source(&self, principal: &Principal, input: SourceInput) -> Result<Source> {
        principal.require(Scope::Manage)?;
        let org = principal.org();
        let known: HashSet<DestinationId> = self
            .0
            .store
            .org_destinations(org)
            .await?
            .into_iter()
            .map(|d| d.id)
            .collect();
        let source = check_source(SourceId::generate(), org, input, &known)?;
        let audit = AuditRecord::new(
            source.org_id.clone(),
            principal.actor(),
            "source",
            source.id.to_string(),
            "source.created",
        )
        .after(views::snapshot(views::SourceView::from(&source)));
        self.0.sources.insert_source(&source, &audit).await?;
        Ok(source)
    }

    /// The organization's sources, newest first.
    pub async fn sources(&self, principal: &Principal, page: PageRequest) -> Result<Page<Source>> {
        principal.require(Scope::Read)?;
        Ok(self.0.sources.list_sources(principal.org(), page).await?)
    }

    pub async fn source(&self, principal: &Principal, id: &SourceId) -> Result<Source> {
        principal.require(Scope::Read)?;
        self.0
            .sources
            .get_source(principal.org(), id)
            .await?
            .ok_or(Error::NotFound("source"))
    }

    /// Deletes a source: its endpoint answers 404 from now on.
    pub async fn delete_source(&self, principal: &Principal, id: &SourceId) -> Result<()> {
        principal.require(Scope::Manage)?;
        let audit = AuditRecord::new(
            principal.org().clone(),
            principal.actor(),
            "source",
            id.to_string(),
            "source.deleted",
        );
        if !self
            .0
            .sources
            .delete_source(principal.org(), id, &audit)
            .await?
        {
            return Err(Error::NotFound("source"));
        }
        self.0.source_cache.forget(id);
        Ok(())
    }

    /// A partner's request to a source: verified, checked, then ingested
    /// like an event of the source's organization. No principal: the
    /// signature is the credential.
    pub async fn receive(
        &self,
        id: &SourceId,
        headers: &(dyn HeaderLookup + Sync),
        body: &[u8],
    ) -> Result<Accepted> {
        if self.is_shutting_down() {
            return Err(Error::ShuttingDown);
        }
        let source = self
            .0
            .source_cache
            .get(self, id)
            .await?
            .ok_or(Error::NotFound("source"))?;
        if let Err(rejection) = source.verification.verify(headers, body, Utc::now()) {
            info!(source_id = %id, reason = %rejection, "Inbound request rejected.");
            return Err(Error::Signature(rejection.to_string()));
        }
        let payload: Value = parse_json(body)?;
        let missing: Vec<FieldError> = source
            .required
            .iter()
            .filter(|p| payload.pointer(p).is_none_or(Value::is_null))
            .map(|p| FieldError::new(p.clone(), "is required"))
            .collect();
        Error::check(missing)?;
        let event_type = source.type_from.extract(headers, &payload).ok_or_else(|| {
            Error::invalid(source.type_from.as_text(), "the event type is missing")
        })?;
        let event_id = source
            .id_from
            .as_ref()
            .and_then(|e| e.extract(headers, &payload));
        // Destinations deleted since the source was made are skipped; with
        // none left, the organization's routing decides.
        let routes = self
            .0
            .routes
            .routes(self.0.store.as_ref(), &source.org_id)
            .await?;
        let listed: Vec<String> = source
            .destinations
            .iter()
            .filter(|d| routes.iter().any(|r| &r.id == *d))
            .map(ToString::to_string)
            .collect();
        let input = EventInput {
            event_type: Some(event_type),
            data: payload,
            id: event_id,
            destinations: (!listed.is_empty()).then_some(listed),
            metadata: Some(json!({"source_id": source.id})),
        };
        let (mut span, trace) = self.ingest_span(
            "ferry.source.receive",
            &source.org_id,
            TraceContext::from_headers(headers),
        );
        span.record(|| [KeyValue::new("ferry.source.id", source.id.to_string())]);
        let result = async {
            let new = self.prepare(&source.org_id, input, None, trace).await?;
            self.submit(new).await
        }
        .await;
        super::ingest::record_accepted(&mut span, &result);
        result
    }
}

/// Sources by id for the public endpoint (read on every partner request).
pub(super) struct SourceCache(TtlCache<SourceId, Arc<Source>>);

impl Default for SourceCache {
    fn default() -> Self {
        Self(TtlCache::new(CACHE_TTL))
    }
}

impl SourceCache {
    async fn get(&self, app: &App, id: &SourceId) -> Result<Option<Arc<Source>>> {
        if let Some(source) = self.0.get(id) {
            return Ok(Some(source));
        }
        let Some(source) = app.0.sources.source_by_id(id).await? else {
            return Ok(None);
        };
        let source = Arc::new(source);
        self.0.put(id.clone(), source.clone());
        Ok(Some(source))
    }

    pub(super) fn forget(&self, id: &SourceId) {
        self.0.forget(id);
    }
}

/// Checks a source request into a source `id` of `org`; `known` are the
/// organization's destinations (those its events may go to).
pub(super) fn check_source(
    id: SourceId,
    org: &OrgId,
    input: SourceInput,
    known: &HashSet<DestinationId>,
) -> Result<Source> {
    let mut errors = Vec::new();
    let name = input.name.unwrap_or_default();
    if name.trim().is_empty() || name.len() > MAX_NAME {
        errors.push(FieldError::new(
            "name",
            format!("must be 1 to {MAX_NAME} characters"),
        ));
    }
    let verification = match input
        .verification
        .map(serde_json::from_value::<Verification>)
    {
        None => {
            errors.push(FieldError::new("verification", "is required"));
            None
        }
        Some(Err(e)) => {
            errors.push(FieldError::new(
                "verification",
                format!(
                    "{e} (schemes: standard-webhooks, hmac-sha256, hmac-sha512, timestamped-hmac)"
                ),
            ));
            None
        }
        Some(Ok(v)) => {
            if let Err(e) = v.validate() {
                errors.extend(e);
            }
            Some(v)
        }
    };
    let mut extractor = |field: &str, text: &str| match Extractor::parse(text) {
        Ok(e) => Some(e),
        Err(message) => {
            errors.push(FieldError::new(field, message));
            None
        }
    };
    let id_from = input
        .id_from
        .as_deref()
        .and_then(|t| extractor("id_from", t));
    let type_from = extractor("type_from", input.type_from.as_deref().unwrap_or("/type"));
    if input.required.len() > MAX_REQUIRED {
        errors.push(FieldError::new(
            "required",
            format!("at most {MAX_REQUIRED} fields"),
        ));
    }
    for (i, p) in input.required.iter().enumerate() {
        if !p.starts_with('/') {
            errors.push(FieldError::new(
                format!("required[{i}]"),
                "must be a JSON pointer such as /shipment/id",
            ));
        }
    }
    let mut destinations = Vec::new();
    for (i, text) in input.destinations.iter().enumerate() {
        let found = DestinationId::parse(text)
            .ok()
            .filter(|id| known.contains(id));
        match found {
            Some(id) => destinations.push(id),
            None => errors.push(FieldError::new(
                format!("destinations[{i}]"),
                format!("unknown destination {text}"),
            )),
        }
    }
    let (Some(verification), Some(type_from), true) = (verification, type_from, errors.is_empty())
    else {
        return Err(Error::Invalid(errors));
    };
    Ok(Source {
        id,
        org_id: org.clone(),
        name,
        verification,
        id_from,
        type_from,
        required: input.required,
        destinations,
        created_at: Utc::now(),
    })
}
