//! An export request as it arrives (`ExportRequest`, names as strings so
//! that an unknown source, format, field or filter is refused by name), the
//! columns and filters of each source, and the request's validation into an
//! `ExportSpec`: every name and shape is checked here, without I/O (the
//! server checks the target against its file roots and destinations).

use std::path::{Component, Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value as Json};

use super::{
    Compression, ExportSource, ExportSpec, ExportTarget, Format, LogLevel, RecordFilter, Redactor,
};
use crate::delivery::DeliveryStatus;
use crate::destination::DestinationKind;
use crate::error::FieldError;
use crate::ids::{DestinationId, OrgId};
use crate::metrics::Bucket;

/// `POST /v1/exports`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "source": "deliveries", "format": "csv", "compression": "gzip",
    "fields": ["id", "event_type", "destination_id", "status", "attempt_count", "last_error"],
    "filter": {"status": "dead", "since": "2026-12-01T00:00:00Z"},
    "redact": ["last_error"], "redact_secrets": true,
    "target": {"file": "exports/dead-letters.csv.gz"}
})))]
pub struct ExportRequest {
    /// `destinations`, `events`, `deliveries`, `attempts`, `audit`, `log`
    /// or `metrics`.
    pub source: String,
    /// `csv` (default), `json`, `ndjson`, `yaml` or `text`.
    #[serde(default)]
    pub format: Option<String>,
    /// `none` (default), `gzip` or `zip`.
    #[serde(default)]
    pub compression: Option<String>,
    /// The columns to write, in order (default: all of the source's).
    #[serde(default)]
    pub fields: Option<Vec<String>>,
    /// The source's filters: `since`/`until` (RFC 3339) and, by source,
    /// `status`, `event_type` (a glob), `destination_id`, `action`,
    /// `actor`, `entity_id`, `kind`, `state`, `level`, `component`,
    /// `bucket` (`minute`, `hour` or `day`).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub filter: Option<Map<String, Json>>,
    /// Fields or JSON pointers (`/data/card/number`) to redact.
    #[serde(default)]
    pub redact: Vec<String>,
    /// Also mask values that look like credentials, wherever they are.
    #[serde(default)]
    pub redact_secrets: bool,
    /// Export only what changed since the last successful run of the same
    /// export (the same schedule; on demand, the same request): events,
    /// deliveries, attempts and audit.
    #[serde(default)]
    pub incremental: bool,
    /// `{"file": "path"}` under the server's file roots, or
    /// `{"destination_id": "dst_…", "path": "…"}` for an existing `file`,
    /// `s3` or `sftp` destination; default: `exports/<source>-<id>.<ext>`
    /// under the first file root.
    #[serde(default)]
    pub target: Option<ExportTarget>,
}

/// The columns of each source, in their default order.
pub fn columns(source: ExportSource) -> &'static [&'static str] {
    match source {
        ExportSource::Destinations => &[
            "id",
            "name",
            "kind",
            "target",
            "state",
            "is_default",
            "success_rate",
            "p50_latency_ms",
            "p99_latency_ms",
            "deliveries",
            "delivered",
            "failed_attempts",
            "consecutive_failures",
            "last_error",
            "last_success_at",
            "last_failure_at",
            "created_at",
            "updated_at",
        ],
        ExportSource::Events => &[
            "id",
            "org_id",
            "type",
            "data",
            "metadata",
            "idempotency_key",
            "created_at",
        ],
        ExportSource::Deliveries => &[
            "id",
            "org_id",
            "event_id",
            "event_type",
            "destination_id",
            "status",
            "attempt_count",
            "next_attempt_at",
            "last_error",
            "created_at",
            "updated_at",
        ],
        ExportSource::Attempts => &[
            "delivery_id",
            "event_id",
            "event_type",
            "destination_id",
            "number",
            "started_at",
            "duration_ms",
            "outcome",
            "status_code",
            "error",
            "request",
            "response",
        ],
        ExportSource::Audit => &[
            "id",
            "org_id",
            "actor",
            "at",
            "entity_type",
            "entity_id",
            "action",
            "before",
            "after",
        ],
        ExportSource::Log => &["timestamp", "level", "component", "message", "fields"],
        ExportSource::Metrics => &[
            "destination_id",
            "destination_name",
            "kind",
            "bucket",
            "start",
            "deliveries",
            "delivered",
            "retried",
            "dead",
            "success_rate",
            "p50_attempt_ms",
            "p99_attempt_ms",
            "p99_end_to_end_ms",
        ],
        // One document, not rows.
        ExportSource::Config => &[],
    }
}

/// Which filters each source takes.
pub fn filters_of(source: ExportSource) -> &'static [&'static str] {
    match source {
        ExportSource::Destinations => &["kind", "state", "org_id"],
        ExportSource::Events => &["since", "until", "event_type", "org_id"],
        ExportSource::Deliveries => &[
            "since",
            "until",
            "status",
            "event_type",
            "destination_id",
            "org_id",
        ],
        ExportSource::Attempts => &["since", "until", "event_type", "destination_id", "org_id"],
        ExportSource::Audit => &["since", "until", "action", "actor", "entity_id", "org_id"],
        ExportSource::Log => &["since", "until", "level", "component"],
        ExportSource::Metrics => &[
            "since",
            "until",
            "bucket",
            "destination_id",
            "kind",
            "org_id",
        ],
        ExportSource::Config => &[],
    }
}

fn one_of<T: Copy>(
    field: &str,
    value: &str,
    all: &[T],
    name: impl Fn(T) -> &'static str,
) -> Result<T, FieldError> {
    all.iter()
        .copied()
        .find(|v| name(*v) == value)
        .ok_or_else(|| {
            let names: Vec<&str> = all.iter().map(|v| name(*v)).collect();
            FieldError::new(
                field,
                format!(
                    "unknown {field} `{value}`; expected one of: {}",
                    names.join(", ")
                ),
            )
        })
}

fn time(field: &str, value: &str) -> Result<DateTime<Utc>, FieldError> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| FieldError::new(field, "must be an RFC 3339 time, e.g. 2026-01-31T12:00:00Z"))
}

fn parse_filter(
    source: ExportSource,
    raw: &Map<String, Json>,
    errors: &mut Vec<FieldError>,
) -> RecordFilter {
    let allowed = filters_of(source);
    let mut filter = RecordFilter::default();
    for (key, value) in raw {
        let field = format!("filter.{key}");
        if !allowed.contains(&key.as_str()) {
            errors.push(FieldError::new(
                &field,
                format!(
                    "`{key}` is not a filter of `{}`; its filters are: {}",
                    source.as_str(),
                    allowed.join(", ")
                ),
            ));
            continue;
        }
        let Some(text) = value.as_str() else {
            errors.push(FieldError::new(&field, "must be a string"));
            continue;
        };
        let parsed = match key.as_str() {
            "since" => time(&field, text).map(|t| filter.since = Some(t)),
            "until" => time(&field, text).map(|t| filter.until = Some(t)),
            "status" => text
                .parse::<DeliveryStatus>()
                .map(|s| filter.status = Some(s))
                .map_err(|m| FieldError::new(&field, m)),
            "destination_id" => DestinationId::parse(text)
                .map(|id| filter.destination_id = Some(id))
                .map_err(|e| FieldError::new(&field, e.to_string())),
            "org_id" => OrgId::parse(text)
                .map(|id| filter.org_id = Some(id))
                .map_err(|e| FieldError::new(&field, e.to_string())),
            "kind" => text
                .parse::<DestinationKind>()
                .map(|k| filter.kind = Some(k.as_str().to_owned()))
                .map_err(|e| FieldError::new(&field, e.to_string())),
            "state" => one_of(&field, text, &["enabled", "paused", "disabled"], |s| s)
                .map(|s| filter.state = Some(s.to_owned())),
            "level" => one_of(&field, &text.to_ascii_lowercase(), &LogLevel::ALL, |l| {
                l.as_str()
            })
            .map(|l| filter.level = Some(l.as_str().to_owned())),
            "bucket" => {
                one_of(&field, text, &Bucket::ALL, Bucket::as_str).map(|b| filter.bucket = Some(b))
            }
            _ => {
                let value = Some(text.to_owned());
                match key.as_str() {
                    "event_type" => filter.event_type = value,
                    "action" => filter.action = value,
                    "actor" => filter.actor = value,
                    "component" => filter.component = value,
                    _ => filter.entity_id = value,
                }
                Ok(())
            }
        };
        if let Err(error) = parsed {
            errors.push(error);
        }
    }
    if let (Some(since), Some(until)) = (filter.since, filter.until)
        && since >= until
    {
        errors.push(FieldError::new("filter.until", "must be after `since`"));
    }
    filter
}

fn parse_fields(
    source: ExportSource,
    fields: Option<&[String]>,
    errors: &mut Vec<FieldError>,
) -> Vec<String> {
    let known = columns(source);
    let Some(fields) = fields else {
        return known.iter().map(|c| (*c).to_owned()).collect();
    };
    if fields.is_empty() {
        errors.push(FieldError::new(
            "fields",
            "must name at least one field (or be left out for all of them)",
        ));
    }
    for (i, field) in fields.iter().enumerate() {
        if !known.contains(&field.as_str()) {
            errors.push(FieldError::new(
                format!("fields[{i}]"),
                format!(
                    "`{field}` is not a field of `{}`; its fields are: {}",
                    source.as_str(),
                    known.join(", ")
                ),
            ));
        } else if fields[..i].contains(field) {
            errors.push(FieldError::new(
                format!("fields[{i}]"),
                format!("`{field}` is listed twice"),
            ));
        }
    }
    fields.to_vec()
}

/// Checks a request's names and shapes, naming every field that is wrong;
/// the target is checked against the server by the caller. An omitted
/// target is an empty `file` (the server's default name).
pub fn parse(request: ExportRequest) -> Result<ExportSpec, Vec<FieldError>> {
    let mut errors = Vec::new();
    let source = one_of(
        "source",
        &request.source,
        &ExportSource::ALL,
        ExportSource::as_str,
    )
    .map_err(|e| vec![e])?;
    let format = match request.format.as_deref() {
        None => Format::Csv,
        Some(name) => one_of("format", name, &Format::ALL, Format::as_str).unwrap_or_else(|e| {
            errors.push(e);
            Format::Csv
        }),
    };
    let compression = match request.compression.as_deref() {
        None => Compression::None,
        Some(name) => one_of(
            "compression",
            name,
            &[Compression::None, Compression::Gzip, Compression::Zip],
            |c| match c {
                Compression::None => "none",
                Compression::Gzip => "gzip",
                Compression::Zip => "zip",
            },
        )
        .unwrap_or_else(|e| {
            errors.push(e);
            Compression::None
        }),
    };
    let fields = match source {
        ExportSource::Config => Vec::new(),
        _ => parse_fields(source, request.fields.as_deref(), &mut errors),
    };
    let filter = request
        .filter
        .as_ref()
        .map(|raw| parse_filter(source, raw, &mut errors))
        .unwrap_or_default();
    if let Err(error) = Redactor::new(&fields, &request.redact, request.redact_secrets) {
        errors.push(error);
    }
    if source == ExportSource::Config {
        if !matches!(format, Format::Json | Format::Yaml) || request.format.is_none() {
            errors.push(FieldError::new(
                "format",
                "the `config` source is one document: give `json` or `yaml`",
            ));
        }
        if request.fields.is_some() {
            errors.push(FieldError::new(
                "fields",
                "the `config` source is one document and has no columns to select",
            ));
        }
    }
    if request.incremental && !source.takes_incremental() {
        errors.push(FieldError::new(
            "incremental",
            format!(
                "`{}` exports cannot be incremental; events, deliveries, attempts and audit can",
                source.as_str()
            ),
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(ExportSpec {
        source,
        format,
        compression,
        fields,
        filter,
        redact: request.redact,
        redact_secrets: request.redact_secrets,
        incremental: request.incremental,
        target: request.target.unwrap_or(ExportTarget::File {
            file: String::new(),
        }),
    })
}

/// A local file target resolved under `roots`: a relative path is taken
/// under the first root; an absolute one must lie under one of them. No
/// `..` anywhere, and no trailing `/`.
pub fn resolve_file(path: &str, roots: &[PathBuf]) -> Result<PathBuf, FieldError> {
    let field = "target.file";
    let Some(first) = roots.first() else {
        return Err(FieldError::new(
            field,
            "local exports are disabled on this server (no file root is configured)",
        ));
    };
    if path.is_empty() || path.ends_with('/') || path.len() > 1024 || path.contains('\0') {
        return Err(FieldError::new(
            field,
            "must be a file name (at most 1024 bytes), relative to the server's first file root or absolute under one",
        ));
    }
    let p = Path::new(path);
    if p.components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return Err(FieldError::new(field, "must not contain `.` or `..` parts"));
    }
    let full = if p.is_absolute() {
        p.to_owned()
    } else {
        first.join(p)
    };
    if !roots.iter().any(|root| full.starts_with(root)) {
        let roots: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
        return Err(FieldError::new(
            field,
            format!(
                "must lie under a file root of this server ({})",
                roots.join(", ")
            ),
        ));
    }
    Ok(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: Json) -> ExportRequest {
        serde_json::from_value(json).expect("request")
    }

    fn fields_of(errors: Vec<FieldError>) -> Vec<String> {
        errors.into_iter().map(|d| d.field).collect()
    }

    #[test]
    fn defaults_export_every_field_to_csv() {
        let spec = parse(request(serde_json::json!({"source": "deliveries"}))).unwrap();
        assert_eq!(spec.format, Format::Csv);
        assert_eq!(spec.compression, Compression::None);
        assert_eq!(spec.fields, columns(ExportSource::Deliveries));
    }

    #[test]
    fn unknown_names_are_refused_by_name() {
        let e = parse(request(serde_json::json!({"source": "orders"}))).unwrap_err();
        assert!(e[0].message.contains("`orders`"), "{e:?}");
        let e = parse(request(serde_json::json!({
            "source": "deliveries", "format": "xml", "compression": "rar",
            "fields": ["id", "secret_sauce", "id"], "filter": {"colour": "red", "status": "lost"},
            "redact": ["nope"]
        })))
        .unwrap_err();
        assert_eq!(
            fields_of(e),
            [
                "format",
                "compression",
                "fields[1]",
                "fields[2]",
                "filter.colour",
                "filter.status",
                "redact[0]"
            ]
        );
    }

    #[test]
    fn filters_belong_to_their_source() {
        let e = parse(request(serde_json::json!({
            "source": "audit", "filter": {"status": "dead"}
        })))
        .unwrap_err();
        assert!(e[0].message.contains("not a filter of `audit`"), "{e:?}");
        let spec = parse(request(serde_json::json!({
            "source": "audit", "filter": {"action": "destination.create", "since": "2026-01-01T00:00:00Z"}
        })))
        .unwrap();
        assert_eq!(spec.filter.action.as_deref(), Some("destination.create"));
        assert!(spec.filter.since.is_some());
    }

    #[test]
    fn metrics_take_a_bucket_and_are_never_incremental() {
        let spec = parse(request(serde_json::json!({
            "source": "metrics", "filter": {"bucket": "minute", "kind": "webhook"}
        })))
        .unwrap();
        assert_eq!(spec.filter.bucket, Some(Bucket::Minute));
        assert_eq!(spec.fields, columns(ExportSource::Metrics));
        let e = parse(request(serde_json::json!({
            "source": "metrics", "filter": {"bucket": "week"}, "incremental": true
        })))
        .unwrap_err();
        assert_eq!(fields_of(e), ["filter.bucket", "incremental"]);
    }

    #[test]
    fn files_stay_under_the_roots() {
        let roots = [
            PathBuf::from("/srv/ferry/files"),
            PathBuf::from("/data/out"),
        ];
        assert_eq!(
            resolve_file("exports/a.csv", &roots).unwrap(),
            PathBuf::from("/srv/ferry/files/exports/a.csv")
        );
        assert_eq!(
            resolve_file("/data/out/a.csv", &roots).unwrap(),
            PathBuf::from("/data/out/a.csv")
        );
        for bad in ["/etc/passwd", "../a.csv", "exports/../../a", "dir/", ""] {
            assert!(resolve_file(bad, &roots).is_err(), "{bad}");
        }
        assert!(resolve_file("a.csv", &[]).is_err());
    }
}
