//! Export jobs as the API shows them: the request as validated, where the
//! run stands (progress with percent and ETA) and what it produced.

use chrono::{DateTime, Utc};
use ferry_core::export::{
    Compression, ExportJob, ExportSource, ExportStatus, ExportTarget, Format,
};
use ferry_core::{ExportId, ScheduleId};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// An export job (one run).
#[derive(Debug, Serialize, ToSchema)]
#[schema(examples(json!({
    "id": "exp_01jq3v8k2m4n6p8r0t2v4x6z8a", "status": "succeeded",
    "source": "deliveries", "format": "csv", "compression": "gzip",
    "fields": ["id", "event_type", "status", "last_error"],
    "filter": {"status": "dead"}, "redact": ["last_error"], "redact_secrets": true,
    "incremental": false, "target": {"file": "/var/lib/ferry/files/exports/dead.csv.gz"},
    "progress": {"rows": 1200, "bytes": 20480, "total_rows": 1200, "percent": 100.0, "eta_s": 0},
    "result": {"rows": 1200, "bytes": 20480, "uncompressed_bytes": 180000,
               "compression_ratio": 8.79, "saved_percent": 88.6,
               "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
               "location": "/var/lib/ferry/files/exports/dead.csv.gz", "duration_ms": 412},
    "error": null, "schedule_id": null, "scheduled_for": null, "attempt": null,
    "output_removed_at": null,
    "created_at": "2026-03-02T10:00:00Z", "started_at": "2026-03-02T10:00:00.1Z",
    "finished_at": "2026-03-02T10:00:00.5Z",
    "links": {"download": "/v1/exports/exp_01jq3v8k2m4n6p8r0t2v4x6z8a/download"}
})))]
pub struct ExportView {
    pub id: ExportId,
    pub status: ExportStatus,
    pub source: ExportSource,
    pub format: Format,
    pub compression: Compression,
    pub fields: Vec<String>,
    /// The filters applied.
    #[schema(value_type = Object)]
    pub filter: Value,
    pub redact: Vec<String>,
    pub redact_secrets: bool,
    pub incremental: bool,
    pub target: ExportTarget,
    pub progress: ProgressView,
    /// What a succeeded run produced.
    pub result: Option<ResultView>,
    /// Why it failed.
    pub error: Option<String>,
    /// The schedule that started it, if one did.
    pub schedule_id: Option<ScheduleId>,
    /// For a scheduled run: the time it was scheduled for.
    pub scheduled_for: Option<DateTime<Utc>>,
    /// For a scheduled run: 1, then 2, 3… for the retries of its tick.
    pub attempt: Option<u32>,
    /// When its schedule's retention removed the output.
    pub output_removed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub links: ExportLinks,
}

/// How far a run has come.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProgressView {
    pub rows: u64,
    /// Bytes written to the target so far (compressed).
    pub bytes: u64,
    /// Rows expected, counted when the run started (an estimate when the
    /// filter has an event-type glob).
    pub total_rows: Option<u64>,
    pub percent: Option<f64>,
    /// Seconds left at the current pace.
    pub eta_s: Option<u64>,
}

/// What a succeeded run produced.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResultView {
    pub rows: u64,
    /// Bytes of the output (after compression).
    pub bytes: u64,
    pub uncompressed_bytes: u64,
    /// `uncompressed_bytes / bytes`.
    pub compression_ratio: f64,
    /// How much smaller compression made it, in percent.
    pub saved_percent: f64,
    /// SHA-256 of the output, lower-case hex.
    pub sha256: String,
    pub location: String,
    pub duration_ms: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExportLinks {
    /// Streams the output of a succeeded run.
    pub download: String,
    /// The export's API URL (in API answers).
    #[serde(rename = "self", skip_serializing_if = "Option::is_none")]
    pub this: Option<String>,
    /// The export's page in the web console (in API answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ui: Option<String>,
}

impl ExportView {
    /// The view with its API URL and console page, as the API answers it.
    pub fn linked(mut self, public_url: &str) -> Self {
        let links = super::Links::new(public_url, "exports", self.id.as_str());
        self.links.this = Some(links.self_);
        self.links.ui = Some(links.ui);
        self
    }
}

fn round(v: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (v * f).round() / f
}

impl From<&ExportJob> for ExportView {
    fn from(job: &ExportJob) -> Self {
        let spec = &job.spec;
        let p = job.progress;
        let duration_ms = match (job.started_at, job.finished_at) {
            (Some(s), Some(f)) => u64::try_from((f - s).num_milliseconds()).ok(),
            _ => None,
        };
        let percent = match (job.status, p.total_rows) {
            (ExportStatus::Succeeded, _) => Some(100.0),
            (_, Some(total)) if total > 0 => {
                Some(round((p.rows as f64 / total as f64 * 100.0).min(100.0), 1))
            }
            _ => None,
        };
        let eta_s = match (job.status, job.started_at, p.total_rows) {
            (ExportStatus::Running, Some(started), Some(total)) if p.rows > 0 => {
                let elapsed = (Utc::now() - started).num_milliseconds().max(0) as f64 / 1000.0;
                let left = total.saturating_sub(p.rows) as f64;
                Some((elapsed / p.rows as f64 * left).ceil() as u64)
            }
            (ExportStatus::Succeeded, _, _) => Some(0),
            _ => None,
        };
        let result = job.output.as_ref().map(|o| {
            let ratio = if p.bytes > 0 {
                o.uncompressed_bytes as f64 / p.bytes as f64
            } else {
                1.0
            };
            let saved = if o.uncompressed_bytes > 0 {
                (1.0 - p.bytes as f64 / o.uncompressed_bytes as f64) * 100.0
            } else {
                0.0
            };
            ResultView {
                rows: p.rows,
                bytes: p.bytes,
                uncompressed_bytes: o.uncompressed_bytes,
                compression_ratio: round(ratio, 2),
                saved_percent: round(saved, 1),
                sha256: o.sha256.clone(),
                location: o.location.clone(),
                duration_ms,
            }
        });
        Self {
            id: job.id.clone(),
            status: job.status,
            source: spec.source,
            format: spec.format,
            compression: spec.compression,
            fields: spec.fields.clone(),
            filter: serde_json::to_value(&spec.filter).unwrap_or(Value::Null),
            redact: spec.redact.clone(),
            redact_secrets: spec.redact_secrets,
            incremental: spec.incremental,
            target: spec.target.clone(),
            progress: ProgressView {
                rows: p.rows,
                bytes: p.bytes,
                total_rows: p.total_rows,
                percent,
                eta_s,
            },
            result,
            error: job.error.clone(),
            schedule_id: job.schedule_id.clone(),
            scheduled_for: job.run.map(|r| r.scheduled_for),
            attempt: job.run.map(|r| r.attempt),
            output_removed_at: job.output_removed_at,
            created_at: job.created_at,
            started_at: job.started_at,
            finished_at: job.finished_at,
            links: ExportLinks {
                download: format!("/v1/exports/{}/download", job.id),
                this: None,
                ui: None,
            },
        }
    }
}
