//! An export schedule as it arrives (`ScheduleRequest` to create one,
//! `SchedulePatch` to change one) and its validation: the cron expression
//! and zone, the export it runs (checked as `POST /v1/exports` checks one,
//! field names prefixed with `export.`), the retention, and the
//! placeholders its output path may hold. Pure: the server checks the
//! target against its file roots and destinations.

use serde::Deserialize;

use super::schedule::{Retention, Trigger, check_path_template};
use super::{ExportRequest, ExportSpec, ExportTarget, request};
use crate::error::FieldError;

/// `POST /v1/export-schedules`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "name": "nightly dead letters", "cron": "0 2 * * *", "timezone": "Europe/Berlin",
    "export": {"source": "deliveries", "format": "csv", "compression": "gzip",
               "filter": {"status": "dead"}, "redact_secrets": true,
               "target": {"destination_id": "dst_01jq3v8k3c5e7g9j1m3p5r7t9w",
                          "path": "ferry/dead-{date}.csv.gz"}},
    "retention": {"keep_last": 30, "max_age_days": 90}
})))]
pub struct ScheduleRequest {
    /// Unique in the organization.
    pub name: String,
    /// Five fields (minute hour day-of-month month day-of-week), or six
    /// with seconds first: `0 2 * * *`, `*/30 * * * * *`.
    pub cron: String,
    /// An IANA time zone the cron expression is read in (default `UTC`).
    #[serde(default)]
    pub timezone: Option<String>,
    /// What each run exports, as `POST /v1/exports` takes it. The target's
    /// path may hold `{date}` (`YYYY-MM-DD`), `{time}` (`HHMMSS`, both of
    /// the run's scheduled time in the schedule's zone) and `{id}` (the
    /// run's export id); the default name holds the export id.
    pub export: ExportRequest,
    /// Which older outputs to keep (default: all).
    #[serde(default)]
    pub retention: Retention,
    /// Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// `PATCH /v1/export-schedules/{id}`: the fields given replace the stored
/// ones (`export` as a whole).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", schema(example = json!({"cron": "0 3 * * *", "enabled": false})))]
pub struct SchedulePatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub cron: Option<String>,
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub export: Option<ExportRequest>,
    #[serde(default)]
    pub retention: Option<Retention>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// A schedule request, checked.
#[derive(Debug, Clone)]
pub struct ScheduleDraft {
    pub name: String,
    pub cron: String,
    pub timezone: String,
    pub trigger: Trigger,
    pub export: ExportSpec,
    pub retention: Retention,
    pub enabled: bool,
}

/// Field errors of a schedule: those of its fields that are wrong in
/// shape (400) apart from those that are wrong in value (422), as the
/// API tells them.
#[derive(Debug, Default)]
pub struct ScheduleErrors {
    /// Unknown names in the export (source, format, field, filter).
    pub malformed: Vec<FieldError>,
    pub invalid: Vec<FieldError>,
}

impl ScheduleErrors {
    pub fn is_empty(&self) -> bool {
        self.malformed.is_empty() && self.invalid.is_empty()
    }
}

pub fn check_name(name: &str) -> Result<String, FieldError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(FieldError::new("name", "must be 1 to 200 characters"));
    }
    Ok(name.to_owned())
}

/// Checks an export the way `POST /v1/exports` does, with `export.` before
/// every field name, and the placeholders of its target's path.
pub fn parse_export(export: ExportRequest, errors: &mut ScheduleErrors) -> Option<ExportSpec> {
    let spec = match request::parse(export) {
        Ok(spec) => spec,
        Err(e) => {
            errors.malformed.extend(
                e.into_iter()
                    .map(|e| FieldError::new(format!("export.{}", e.field), e.message)),
            );
            return None;
        }
    };
    let (field, path) = match &spec.target {
        ExportTarget::File { file } => ("export.target.file", file),
        ExportTarget::Destination { path, .. } => ("export.target.path", path),
    };
    if let Err(message) = check_path_template(path) {
        errors.invalid.push(FieldError::new(field, message));
    }
    Some(spec)
}

/// Checks a whole schedule request.
pub fn parse(request: ScheduleRequest) -> Result<ScheduleDraft, ScheduleErrors> {
    let mut errors = ScheduleErrors::default();
    let name = check_name(&request.name)
        .map_err(|e| errors.invalid.push(e))
        .ok();
    let timezone = request.timezone.unwrap_or_else(|| "UTC".to_owned());
    let trigger = Trigger::parse(&request.cron, &timezone)
        .map_err(|e| errors.invalid.extend(e))
        .ok();
    let export = parse_export(request.export, &mut errors);
    if let Err(e) = request.retention.validate() {
        errors.invalid.push(e);
    }
    match (name, trigger, export) {
        (Some(name), Some(trigger), Some(export)) if errors.is_empty() => Ok(ScheduleDraft {
            name,
            cron: request.cron.trim().to_owned(),
            timezone,
            trigger,
            export,
            retention: request.retention,
            enabled: request.enabled.unwrap_or(true),
        }),
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: serde_json::Value) -> ScheduleRequest {
        serde_json::from_value(json).expect("request")
    }

    #[test]
    fn a_minimal_schedule_runs_in_utc_and_is_enabled() {
        let d = parse(request(serde_json::json!({
            "name": " hourly ", "cron": "0 * * * *", "export": {"source": "audit"}
        })))
        .unwrap();
        assert_eq!(
            (d.name.as_str(), d.timezone.as_str(), d.enabled),
            ("hourly", "UTC", true)
        );
        assert_eq!(d.retention, Retention::default());
    }

    #[test]
    fn every_wrong_field_is_named() {
        let e = parse(request(serde_json::json!({
            "name": "", "cron": "every day", "timezone": "Nowhere",
            "export": {"source": "deliveries", "format": "xml"},
            "retention": {"keep_last": 0}
        })))
        .unwrap_err();
        let invalid: Vec<&str> = e.invalid.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(invalid, ["name", "cron", "timezone", "retention.keep_last"]);
        let malformed: Vec<&str> = e.malformed.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(malformed, ["export.format"]);
        let e = parse(request(serde_json::json!({
            "name": "x", "cron": "0 * * * *",
            "export": {"source": "deliveries", "target": {"file": "out/{week}.csv"}}
        })))
        .unwrap_err();
        assert_eq!(e.invalid[0].field, "export.target.file");
        assert!(
            serde_json::from_value::<ScheduleRequest>(serde_json::json!({
                "name": "x", "cron": "0 * * * *", "export": {"source": "audit"}, "every": 1
            }))
            .is_err()
        );
    }
}
