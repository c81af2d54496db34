//! Ferry's configuration as a document: organizations with their alert
//! settings, destinations (routing, retry policy, credentials), inbound
//! sources and export schedules — everything that makes Ferry behave as it
//! does, and nothing that is data (no events, deliveries, audit, API keys).
//! `ferry config export` writes one and `ferry config import` applies one;
//! export → import into a fresh Ferry → export gives the same document.
//!
//! Ids are kept, so an import recognises what it already holds and changes
//! only what differs (importing the same document twice changes nothing).
//! The default organization has no id in the document: it is whichever
//! Ferry's own default organization. Secrets are left out unless sealed
//! with a passphrase (`seal`): each object's secrets are then one sealed
//! value, and the document says how its key was derived.

pub mod seal;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::alerting::AlertSettings;
use crate::export::Retention;
use crate::ids::{DestinationId, OrgId, ScheduleId, SourceId};

pub use seal::{SealError, SealParams, Sealer};

/// The document format this Ferry writes and reads.
pub const FORMAT: u32 = 1;

/// A whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigDocument {
    /// The format (1).
    pub ferry_config: u32,
    /// How the secrets were sealed; absent when they were left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_with: Option<SealParams>,
    pub orgs: Vec<OrgDoc>,
}

/// An organization and everything it configures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgDoc {
    /// Absent for the default organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<OrgId>,
    /// Whether it is the default organization (the one a fresh Ferry
    /// creates; an import maps it onto the target's own).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default: bool,
    pub name: String,
    /// Where its alerts go.
    #[serde(default)]
    pub alert_destinations: Vec<DestinationId>,
    /// When its destinations count as failing and are disabled.
    #[serde(default, skip_serializing_if = "AlertSettings::is_empty")]
    pub alerts: AlertSettings,
    #[serde(default)]
    pub destinations: Vec<DestinationDoc>,
    #[serde(default)]
    pub sources: Vec<SourceDoc>,
    #[serde(default)]
    pub export_schedules: Vec<ScheduleDoc>,
}

/// A destination: its kind's configuration, routing, retry policy and
/// credentials (their secrets only sealed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationDoc {
    pub id: DestinationId,
    pub name: String,
    pub kind: String,
    pub config: Value,
    pub filter: Value,
    pub retry: Value,
    pub default: bool,
    pub enabled: bool,
    pub max_in_flight: u32,
    /// Overrides of the organization's alert settings.
    #[serde(default, skip_serializing_if = "AlertSettings::is_empty")]
    pub alerts: AlertSettings,
    /// The credentials without their secrets (for people; an import takes
    /// them from `sealed_secrets`, or keeps the ones it holds).
    pub auth: Value,
    /// How deliveries are signed (`v1` HMAC or `v1a` Ed25519), without keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing: Option<String>,
    /// The credentials and signing keys, sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_secrets: Option<String>,
}

/// An inbound source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceDoc {
    pub id: SourceId,
    pub name: String,
    /// The verification scheme without its secrets.
    pub verification: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_from: Option<String>,
    pub type_from: String,
    #[serde(default)]
    pub required: Vec<String>,
    #[serde(default)]
    pub destinations: Vec<DestinationId>,
    /// The whole verification, secrets included, sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_secrets: Option<String>,
}

/// An export schedule, its export as `POST /v1/exports` takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleDoc {
    pub id: ScheduleId,
    pub name: String,
    pub cron: String,
    pub timezone: String,
    pub enabled: bool,
    pub export: Value,
    #[serde(default)]
    pub retention: Retention,
}
