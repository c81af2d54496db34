//! An export job: what it exports (`ExportSpec`), where it stands
//! (`ExportStatus`, progress) and what it produced. Its states move one way:
//! `queued → running → succeeded | failed | cancelled`, or `queued →
//! cancelled`; the store writes a change only from the states it may come
//! from, so a cancel and a finishing run cannot both win.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::compress::Compression;
use super::format::Format;
use crate::delivery::{Attempt, Delivery, DeliveryStatus};
use crate::event::Event;
use crate::ids::{DestinationId, ExportId, OrgId, ScheduleId};

/// What an export reads.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportSource {
    /// One row per destination, with its health.
    Destinations,
    Events,
    Deliveries,
    Attempts,
    Audit,
    /// Ferry's own operational log (of the process that runs the export).
    Log,
    /// Delivery metrics: one row per destination and time bucket.
    Metrics,
    /// Ferry's whole configuration as one document (`json` or `yaml`),
    /// secrets left out: what `GET /v1/config/export` answers.
    Config,
}

impl ExportSource {
    /// Whether an export of it can be incremental (its records have a
    /// change time).
    pub fn takes_incremental(self) -> bool {
        matches!(
            self,
            ExportSource::Events
                | ExportSource::Deliveries
                | ExportSource::Attempts
                | ExportSource::Audit
        )
    }

    pub const ALL: [ExportSource; 8] = [
        ExportSource::Destinations,
        ExportSource::Events,
        ExportSource::Deliveries,
        ExportSource::Attempts,
        ExportSource::Audit,
        ExportSource::Log,
        ExportSource::Metrics,
        ExportSource::Config,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ExportSource::Destinations => "destinations",
            ExportSource::Events => "events",
            ExportSource::Deliveries => "deliveries",
            ExportSource::Attempts => "attempts",
            ExportSource::Audit => "audit",
            ExportSource::Log => "log",
            ExportSource::Metrics => "metrics",
            ExportSource::Config => "config",
        }
    }
}

/// Where an export's status stands.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl ExportStatus {
    pub const ALL: [ExportStatus; 5] = [
        ExportStatus::Queued,
        ExportStatus::Running,
        ExportStatus::Succeeded,
        ExportStatus::Failed,
        ExportStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ExportStatus::Queued => "queued",
            ExportStatus::Running => "running",
            ExportStatus::Succeeded => "succeeded",
            ExportStatus::Failed => "failed",
            ExportStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    /// Whether the job still has work ahead (counts against the
    /// organization's concurrent exports).
    pub fn is_active(self) -> bool {
        matches!(self, ExportStatus::Queued | ExportStatus::Running)
    }

    /// The states a job may move to `self` from.
    pub fn comes_from(self) -> &'static [ExportStatus] {
        match self {
            ExportStatus::Queued => &[],
            ExportStatus::Running => &[ExportStatus::Queued, ExportStatus::Running],
            ExportStatus::Succeeded => &[ExportStatus::Running],
            ExportStatus::Failed => &[ExportStatus::Queued, ExportStatus::Running],
            ExportStatus::Cancelled => &[ExportStatus::Queued, ExportStatus::Running],
        }
    }
}

/// Which stored records an export reads; every field optional, each source
/// takes the ones that apply to it (the app checks which).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordFilter {
    /// At or after (the record's creation; an audit record's time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// Before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<DeliveryStatus>,
    /// A glob (`order.*`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_id: Option<DestinationId>,
    /// A destination kind (`webhook`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// A destination state (`enabled`, `paused`, `disabled`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_id: Option<String>,
    /// Another organization's records (admin keys only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_id: Option<OrgId>,
    /// The least severe log level (`warn` takes `error` and `warn`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// A glob over where in Ferry a log line was written
    /// (`ferry_server::dispatch*`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// The size of a metrics row's time bucket (default `hour`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<crate::metrics::Bucket>,
    /// Set by Ferry for an incremental run (never by a request): records
    /// changed after this time (the previous successful run's
    /// `changed_until`)…
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed_after: Option<DateTime<Utc>>,
    /// …and at or before this one. A record's change time is when it was
    /// created (an event), last changed (a delivery), ended (an attempt)
    /// or written (an audit record).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed_until: Option<DateTime<Utc>>,
}

/// Where an export is written.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum ExportTarget {
    /// A local file under the server's `file_roots`.
    File { file: String },
    /// An existing `s3`, `sftp` or `file` destination, at `path` (relative
    /// to its directory, or the key in its bucket; default
    /// `exports/<source>-<id>.<ext>`); its credentials are reused.
    Destination {
        destination_id: DestinationId,
        #[serde(default)]
        path: String,
    },
}

/// What one export does, as validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportSpec {
    pub source: ExportSource,
    pub format: Format,
    pub compression: Compression,
    /// The columns written, in order.
    pub fields: Vec<String>,
    pub filter: RecordFilter,
    pub redact: Vec<String>,
    pub redact_secrets: bool,
    pub incremental: bool,
    pub target: ExportTarget,
}

impl ExportSpec {
    /// What makes exports made on demand "the same export" for
    /// `incremental`: a digest of the request as validated (before its
    /// default output name is chosen).
    pub fn digest(&self) -> String {
        use sha2::Digest;
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(json)))
    }
}

/// How far a job has come.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportProgress {
    pub rows: u64,
    /// Bytes written to the target (after compression).
    pub bytes: u64,
    /// Rows expected, counted when the run started.
    pub total_rows: Option<u64>,
}

/// What a succeeded job produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportOutput {
    /// Bytes before compression.
    pub uncompressed_bytes: u64,
    /// SHA-256 of the bytes written, lower-case hex.
    pub sha256: String,
    /// Where the output is: an absolute path, `s3://bucket/key`, `sftp://host/path`.
    pub location: String,
}

/// One export run.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportJob {
    pub id: ExportId,
    pub org_id: OrgId,
    pub schedule_id: Option<ScheduleId>,
    /// The schedule's tick and attempt, for a scheduled run.
    pub run: Option<super::Run>,
    pub status: ExportStatus,
    pub spec: ExportSpec,
    pub progress: ExportProgress,
    pub output: Option<ExportOutput>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// When its schedule's retention deleted the output.
    pub output_removed_at: Option<DateTime<Utc>>,
    /// For an incremental export: what makes runs "the same export", whose
    /// last success sets where the next one starts (the schedule's id, or
    /// a digest of the request for an export made on demand).
    pub incremental_key: Option<String>,
}

impl ExportJob {
    /// A new job waiting to run (`created_at` now), made on demand.
    pub fn queued(id: ExportId, org_id: OrgId, spec: ExportSpec) -> Self {
        Self {
            id,
            org_id,
            schedule_id: None,
            run: None,
            status: ExportStatus::Queued,
            spec,
            progress: ExportProgress::default(),
            output: None,
            error: None,
            created_at: Utc::now(),
            started_at: None,
            finished_at: None,
            output_removed_at: None,
            incremental_key: None,
        }
    }
}

/// Which records one page of an export reads.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordQuery {
    pub source: ExportSource,
    pub filter: RecordFilter,
}

/// One stored record as an export reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Event(Event),
    Delivery(Delivery),
    /// An attempt with its delivery's event and destination.
    Attempt(Attempt, AttemptContext),
    Audit(crate::audit::AuditRecord),
}

/// What an exported attempt row carries of its delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptContext {
    pub event_id: crate::ids::EventId,
    pub event_type: String,
    pub destination_id: DestinationId,
}
