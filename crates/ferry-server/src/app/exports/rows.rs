//! What each export source's rows hold: the columns (the names `fields`
//! selects from, in their default order) and how a stored record becomes a
//! row of cells. A record's parts are moved into its cells, never copied,
//! since this runs once per row of exports of millions of rows.

use ferry_core::destination::{Destination, HealthState};
use ferry_core::export::redact::mask_secrets;
use ferry_core::export::{LogEntry, Record, Value};
use ferry_core::metrics::{Histogram, Rollup};
use serde_json::Value as Json;

fn text(s: impl Into<String>) -> Value {
    Value::Text(s.into())
}

fn opt_text(s: Option<String>) -> Value {
    s.map_or(Value::Null, Value::Text)
}

fn opt_time(t: Option<chrono::DateTime<chrono::Utc>>) -> Value {
    t.map_or(Value::Null, Value::Time)
}

fn opt_json(v: Option<Json>) -> Value {
    v.map_or(Value::Null, Value::Json)
}

fn int(v: impl TryInto<i64>) -> Value {
    v.try_into().map_or(Value::Null, Value::Int)
}

/// Every column of an operational log entry, in the order of [`columns`].
pub fn log_cells(entry: LogEntry) -> Vec<Value> {
    vec![
        Value::Time(entry.timestamp),
        text(entry.level.as_str()),
        text(entry.component),
        text(entry.message),
        Value::Json(Json::Object(entry.fields)),
    ]
}

/// Every column of a record, in the order of [`columns`].
pub fn record_cells(record: Record) -> Vec<Value> {
    match record {
        Record::Event(e) => vec![
            text(e.id.to_string()),
            text(e.org_id.to_string()),
            text(e.event_type),
            Value::Json(e.data),
            Value::Json(e.metadata),
            opt_text(e.idempotency_key),
            Value::Time(e.created_at),
        ],
        Record::Delivery(d) => vec![
            text(d.id.to_string()),
            text(d.org_id.to_string()),
            text(d.event_id.to_string()),
            text(d.event_type),
            text(d.destination_id.to_string()),
            text(d.status.as_str()),
            int(d.attempt_count),
            opt_time(d.next_attempt_at),
            opt_text(d.last_error),
            Value::Time(d.created_at),
            Value::Time(d.updated_at),
        ],
        Record::Attempt(a, context) => vec![
            text(a.delivery_id.to_string()),
            text(context.event_id.to_string()),
            text(context.event_type),
            text(context.destination_id.to_string()),
            int(a.number),
            Value::Time(a.started_at),
            int(a.duration_ms),
            text(match a.outcome {
                ferry_core::delivery::AttemptOutcome::Delivered => "delivered",
                ferry_core::delivery::AttemptOutcome::Retryable => "retryable",
                ferry_core::delivery::AttemptOutcome::Permanent => "permanent",
            }),
            a.status_code
                .map_or(Value::Null, |c| Value::Int(i64::from(c))),
            opt_text(a.error),
            opt_json(a.request.and_then(|c| serde_json::to_value(c).ok())),
            opt_json(a.response.and_then(|c| serde_json::to_value(c).ok())),
        ],
        Record::Audit(r) => vec![
            text(r.id.to_string()),
            text(r.org_id.to_string()),
            text(r.actor),
            Value::Time(r.at),
            text(r.entity_type),
            text(r.entity_id),
            text(r.action),
            opt_json(r.before),
            opt_json(r.after),
        ],
    }
}

/// A destination's state as exports name it.
pub fn state_name(d: &Destination) -> &'static str {
    match d.state() {
        HealthState::Healthy => "enabled",
        HealthState::Paused => "paused",
        HealthState::Disabled => "disabled",
    }
}

fn opt_int(v: Option<u64>) -> Value {
    v.map_or(Value::Null, int)
}

/// A metrics rollup with what its row names of its destination (nothing
/// once the destination is deleted).
pub struct MetricRow {
    pub rollup: Rollup,
    pub name: Option<String>,
    pub kind: Option<&'static str>,
}

/// Every column of a metrics row, in the order of [`columns`].
pub fn metric_cells(row: MetricRow) -> Vec<Value> {
    let r = row.rollup;
    vec![
        text(r.destination_id.to_string()),
        opt_text(row.name),
        row.kind.map_or(Value::Null, text),
        text(r.bucket.as_str()),
        Value::Time(r.start),
        int(r.attempts),
        int(r.delivered),
        int(r.retried),
        int(r.dead),
        r.success_rate().map_or(Value::Null, Value::Float),
        opt_int(r.attempt_latency.quantile(0.5)),
        opt_int(r.attempt_latency.quantile(0.99)),
        opt_int(r.end_to_end.quantile(0.99)),
    ]
}

/// Every column of a destination's row, in the order of [`columns`];
/// `latency`: its attempts' latency over the last day.
pub fn destination_cells(d: Destination, latency: Option<&Histogram>) -> Vec<Value> {
    let state = state_name(&d);
    let target = target(&d);
    let h = d.health;
    let total = h.success_count + h.failure_count;
    let success_rate = if total > 0 {
        Value::Float(h.success_count as f64 / total as f64)
    } else {
        Value::Null
    };
    vec![
        text(d.id.to_string()),
        text(d.name),
        text(d.kind.as_str()),
        opt_text(target),
        text(state),
        Value::Bool(d.is_default),
        success_rate,
        opt_int(latency.and_then(|h| h.quantile(0.5))),
        opt_int(latency.and_then(|h| h.quantile(0.99))),
        int(total),
        int(h.success_count),
        int(h.failure_count),
        int(h.consecutive_failures),
        opt_text(h.last_error),
        opt_time(h.last_success_at),
        opt_time(h.last_failure_at),
        Value::Time(d.created_at),
        Value::Time(d.updated_at),
    ]
}

/// Where a destination delivers, for people: a URL, host or bucket,
/// without user info, query string or anything that looks like a secret.
fn target(d: &Destination) -> Option<String> {
    let config = &d.config;
    let get = |key: &str| config.get(key).and_then(Json::as_str);
    use ferry_core::destination::DestinationKind as K;
    let raw = match d.kind {
        K::S3 => get("bucket").map(|b| format!("s3://{b}")),
        K::Sftp => get("host").map(|host| {
            let port = config.get("port").and_then(Json::as_u64).unwrap_or(22);
            format!("sftp://{host}:{port}{}", get("directory").unwrap_or("/"))
        }),
        K::Email => get("host").map(|host| {
            let port = config.get("port").and_then(Json::as_u64).unwrap_or(587);
            format!("smtp://{host}:{port}")
        }),
        K::File => get("directory").map(str::to_owned),
        K::Nats => config
            .get("servers")
            .and_then(Json::as_array)
            .and_then(|s| s.first())
            .and_then(Json::as_str)
            .map(str::to_owned),
        _ => get("url").map(str::to_owned),
    }?;
    Some(mask_secrets(&without_credentials(&raw)).into_owned())
}

/// `raw` without a URL's user info and query string.
fn without_credentials(raw: &str) -> String {
    let Some((scheme, rest)) = raw.split_once("://") else {
        return raw.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let path = path.split(['?', '#']).next().unwrap_or("");
    format!("{scheme}://{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::export::ExportSource;
    use ferry_core::export::request::columns;

    #[test]
    fn every_source_has_as_many_cells_as_columns() {
        use chrono::Utc;
        use ferry_core::audit::AuditRecord;
        use ferry_core::ids::OrgId;
        let org = OrgId::generate();
        let audit = AuditRecord::new(org, "system", "destination", "dst_1", "create");
        assert_eq!(
            record_cells(Record::Audit(audit)).len(),
            columns(ExportSource::Audit).len()
        );
        let event = ferry_core::event::Event {
            id: ferry_core::ids::EventId::generate(),
            org_id: OrgId::generate(),
            event_type: "a".into(),
            data: Json::Null,
            metadata: Json::Null,
            idempotency_key: None,
            created_at: Utc::now(),
            trace: None,
        };
        let delivery =
            ferry_core::delivery::Delivery::new(&event, ferry_core::ids::DestinationId::generate());
        assert_eq!(
            record_cells(Record::Delivery(delivery)).len(),
            columns(ExportSource::Deliveries).len()
        );
        assert_eq!(
            record_cells(Record::Event(event)).len(),
            columns(ExportSource::Events).len()
        );
        let rollup = Rollup::empty(
            OrgId::generate(),
            ferry_core::ids::DestinationId::generate(),
            ferry_core::metrics::Bucket::Hour,
            Utc::now(),
        );
        let row = MetricRow {
            rollup,
            name: None,
            kind: None,
        };
        assert_eq!(
            metric_cells(row).len(),
            columns(ExportSource::Metrics).len()
        );
    }

    #[test]
    fn targets_lose_their_credentials() {
        assert_eq!(
            without_credentials("https://user:pw@hooks.example.com/in?token=abc"),
            "https://hooks.example.com/in"
        );
        assert_eq!(
            without_credentials("amqp://guest:guest@127.0.0.1:5672/%2f"),
            "amqp://127.0.0.1:5672/%2f"
        );
        assert_eq!(without_credentials("/var/data"), "/var/data");
    }
}
