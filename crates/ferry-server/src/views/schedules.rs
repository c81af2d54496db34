//! Export schedules as the API shows them: the cron trigger, the export
//! each run makes (in the shape `POST /v1/exports` takes, so it can be
//! sent back as it is), the retention, and when the next run is due.

use chrono::{DateTime, Utc};
use ferry_core::ScheduleId;
use ferry_core::export::{
    Compression, ExportSchedule, ExportSource, ExportSpec, ExportTarget, Format, Retention,
};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// An export schedule.
#[derive(Debug, Serialize, ToSchema)]
#[schema(examples(json!({
    "id": "sch_01jq3v8k2m4n6p8r0t2v4x6z8a", "name": "nightly dead letters",
    "cron": "0 2 * * *", "timezone": "Europe/Berlin", "enabled": true,
    "export": {"source": "deliveries", "format": "csv", "compression": "gzip",
               "fields": ["id", "event_type", "status", "last_error"],
               "filter": {"status": "dead"}, "redact": [], "redact_secrets": true,
               "incremental": false,
               "target": {"destination_id": "dst_01jq3v8k3c5e7g9j1m3p5r7t9w", "path": "ferry/dead-{date}.csv.gz"}},
    "retention": {"keep_last": 30, "max_age_days": 90},
    "next_run_at": "2026-03-03T01:00:00Z", "retry": null,
    "created_at": "2026-03-02T10:00:00Z", "updated_at": "2026-03-02T10:00:00Z",
    "links": {"self": "/v1/export-schedules/sch_01jq3v8k2m4n6p8r0t2v4x6z8a",
              "runs": "/v1/export-schedules/sch_01jq3v8k2m4n6p8r0t2v4x6z8a/runs"}
})))]
pub struct ScheduleView {
    pub id: ScheduleId,
    pub name: String,
    pub cron: String,
    pub timezone: String,
    pub enabled: bool,
    pub export: ExportSpecView,
    pub retention: Retention,
    /// The next tick (none while disabled).
    pub next_run_at: Option<DateTime<Utc>>,
    /// A retry owed after a failed run.
    pub retry: Option<RetryView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub links: ScheduleLinks,
}

/// What each run of a schedule exports, as `POST /v1/exports` takes it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportSpecView {
    pub source: ExportSource,
    pub format: Format,
    pub compression: Compression,
    pub fields: Vec<String>,
    #[schema(value_type = Object)]
    pub filter: Value,
    pub redact: Vec<String>,
    pub redact_secrets: bool,
    pub incremental: bool,
    pub target: ExportTarget,
}

/// A retry owed after a failed run.
#[derive(Debug, Serialize, ToSchema)]
pub struct RetryView {
    pub at: DateTime<Utc>,
    /// The tick it retries.
    pub scheduled_for: DateTime<Utc>,
    /// 2 for the first retry.
    pub attempt: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleLinks {
    #[serde(rename = "self")]
    pub this: String,
    pub runs: String,
    /// The schedule's page in the web console (in API answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ui: Option<String>,
}

impl ScheduleView {
    /// The view with its console page, as the API answers it.
    pub fn linked(mut self, public_url: &str) -> Self {
        self.links.ui =
            Some(super::Links::new(public_url, "export-schedules", self.id.as_str()).ui);
        self
    }
}

impl From<&ExportSpec> for ExportSpecView {
    fn from(spec: &ExportSpec) -> Self {
        Self {
            source: spec.source,
            format: spec.format,
            compression: spec.compression,
            fields: spec.fields.clone(),
            filter: serde_json::to_value(&spec.filter).unwrap_or(Value::Null),
            redact: spec.redact.clone(),
            redact_secrets: spec.redact_secrets,
            incremental: spec.incremental,
            target: spec.target.clone(),
        }
    }
}

impl From<&ExportSchedule> for ScheduleView {
    fn from(s: &ExportSchedule) -> Self {
        Self {
            id: s.id.clone(),
            name: s.name.clone(),
            cron: s.cron.clone(),
            timezone: s.timezone.clone(),
            enabled: s.enabled,
            export: ExportSpecView::from(&s.export),
            retention: s.retention,
            next_run_at: s.enabled.then_some(s.next_run_at),
            retry: s.retry.filter(|_| s.enabled).map(|(at, run)| RetryView {
                at,
                scheduled_for: run.scheduled_for,
                attempt: run.attempt,
            }),
            created_at: s.created_at,
            updated_at: s.updated_at,
            links: ScheduleLinks {
                this: format!("/v1/export-schedules/{}", s.id),
                runs: format!("/v1/export-schedules/{}/runs", s.id),
                ui: None,
            },
        }
    }
}
