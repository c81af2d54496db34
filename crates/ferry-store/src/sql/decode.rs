//! Rows back into domain types, for both backends: [`Columns`] reads one
//! typed column of any backend's row, and the decoders here build the
//! domain types from the column lists of `crate::rows`. Anything that does
//! not decode is `StoreError::Corrupt`; the messages name the column, never
//! its value.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use ferry_core::StoreError;
use ferry_core::audit::AuditRecord;
use ferry_core::crypto::Cipher;
use ferry_core::delivery::{Attempt, AttemptOutcome, Delivery};
use ferry_core::destination::{Destination, DestinationSecrets};
use ferry_core::error::StoreResult;
use ferry_core::event::Event;
use ferry_core::export::{
    ExportJob, ExportOutput, ExportProgress, ExportSchedule, ExportStatus, Retention, Run,
};
use ferry_core::org::{ApiKey, Org};
use ferry_core::trace::TraceContext;
use serde::de::DeserializeOwned;
use sqlx::{ColumnIndex, Decode, Row, Type};

pub(crate) fn corrupt(column: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("column `{column}`: {e}"))
}

/// One typed column of a row, whatever the backend.
pub(crate) trait Columns {
    fn text(&self, column: &str) -> StoreResult<&str>;
    fn opt_text(&self, column: &str) -> StoreResult<Option<&str>>;
    fn int(&self, column: &str) -> StoreResult<i64>;
    fn opt_int(&self, column: &str) -> StoreResult<Option<i64>>;
    fn bytes(&self, column: &str) -> StoreResult<&[u8]>;
    fn flag(&self, column: &str) -> StoreResult<bool>;
}

impl<R> Columns for R
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> &'r str: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> &'r [u8]: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
{
    fn text(&self, column: &str) -> StoreResult<&str> {
        self.try_get(column).map_err(|e| corrupt(column, e))
    }

    fn opt_text(&self, column: &str) -> StoreResult<Option<&str>> {
        self.try_get(column).map_err(|e| corrupt(column, e))
    }

    fn int(&self, column: &str) -> StoreResult<i64> {
        self.try_get(column).map_err(|e| corrupt(column, e))
    }

    fn opt_int(&self, column: &str) -> StoreResult<Option<i64>> {
        self.try_get(column).map_err(|e| corrupt(column, e))
    }

    fn bytes(&self, column: &str) -> StoreResult<&[u8]> {
        self.try_get(column).map_err(|e| corrupt(column, e))
    }

    fn flag(&self, column: &str) -> StoreResult<bool> {
        self.try_get(column).map_err(|e| corrupt(column, e))
    }
}

/// A column parsed with `FromStr` (ids, statuses, kinds, outcomes).
pub(crate) fn parsed<T>(row: &impl Columns, column: &str) -> StoreResult<T>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    row.text(column)?.parse().map_err(|e| corrupt(column, e))
}

pub(crate) fn time(row: &impl Columns, column: &str) -> StoreResult<DateTime<Utc>> {
    from_micros(row.int(column)?, column)
}

fn opt_time(row: &impl Columns, column: &str) -> StoreResult<Option<DateTime<Utc>>> {
    row.opt_int(column)?
        .map(|v| from_micros(v, column))
        .transpose()
}

pub(crate) fn from_micros(v: i64, column: &str) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_micros(v).ok_or_else(|| corrupt(column, "timestamp out of range"))
}

fn json<T: DeserializeOwned>(row: &impl Columns, column: &str) -> StoreResult<T> {
    serde_json::from_str(row.text(column)?).map_err(|e| corrupt(column, e))
}

fn opt_json<T: DeserializeOwned>(row: &impl Columns, column: &str) -> StoreResult<Option<T>> {
    row.opt_text(column)?
        .map(|text| serde_json::from_str(text).map_err(|e| corrupt(column, e)))
        .transpose()
}

fn uint<T: TryFrom<i64>>(row: &impl Columns, column: &str) -> StoreResult<T> {
    T::try_from(row.int(column)?).map_err(|_| corrupt(column, "integer out of range"))
}

fn owned(row: &impl Columns, column: &str) -> StoreResult<String> {
    row.text(column).map(str::to_owned)
}

fn opt_owned(row: &impl Columns, column: &str) -> StoreResult<Option<String>> {
    Ok(row.opt_text(column)?.map(str::to_owned))
}

pub(crate) fn seq(row: &impl Columns) -> StoreResult<i64> {
    row.int("seq")
}

pub(crate) fn org(row: &impl Columns) -> StoreResult<(i64, Org)> {
    Ok((
        seq(row)?,
        Org {
            id: parsed(row, "id")?,
            name: owned(row, "name")?,
            alert_destinations: json(row, "alert_destinations")?,
            alerts: json(row, "alert_settings")?,
            created_at: time(row, "created_at")?,
        },
    ))
}

pub(crate) fn api_key(row: &impl Columns) -> StoreResult<(i64, ApiKey)> {
    let hash: [u8; 32] = row
        .bytes("hash")?
        .try_into()
        .map_err(|_| corrupt("hash", "not 32 bytes"))?;
    Ok((
        seq(row)?,
        ApiKey {
            id: parsed(row, "id")?,
            org_id: parsed(row, "org_id")?,
            name: owned(row, "name")?,
            prefix: owned(row, "prefix")?,
            hash,
            scopes: json(row, "scopes")?,
            created_at: time(row, "created_at")?,
            last_used_at: opt_time(row, "last_used_at")?,
        },
    ))
}

/// Decodes a destination, opening its sealed secrets with `cipher`.
pub(crate) fn destination(row: &impl Columns, cipher: &Cipher) -> StoreResult<(i64, Destination)> {
    let plain = cipher
        .open(row.bytes("secrets")?)
        .map_err(|e| corrupt("secrets", e))?;
    let secrets: DestinationSecrets = serde_json::from_slice(&plain)
        .map_err(|_| corrupt("secrets", "sealed secrets are not valid JSON"))?;
    Ok((
        seq(row)?,
        Destination {
            id: parsed(row, "id")?,
            org_id: parsed(row, "org_id")?,
            name: owned(row, "name")?,
            kind: parsed(row, "kind")?,
            config: json(row, "config")?,
            filter: json(row, "filter")?,
            retry: json(row, "retry")?,
            is_default: row.flag("is_default")?,
            enabled: row.flag("enabled")?,
            max_in_flight: uint(row, "max_in_flight")?,
            alerts: json(row, "alert_settings")?,
            secrets,
            health: json(row, "health")?,
            created_at: time(row, "created_at")?,
            updated_at: time(row, "updated_at")?,
        },
    ))
}

pub(crate) fn event(row: &impl Columns) -> StoreResult<(i64, Event)> {
    Ok((
        seq(row)?,
        Event {
            id: parsed(row, "id")?,
            org_id: parsed(row, "org_id")?,
            event_type: owned(row, "event_type")?,
            data: json(row, "data")?,
            metadata: json(row, "metadata")?,
            idempotency_key: opt_owned(row, "idempotency_key")?,
            created_at: time(row, "created_at")?,
            trace: trace(row)?,
        },
    ))
}

/// An event's stored trace context; both values were validated before
/// they were stored.
fn trace(row: &impl Columns) -> StoreResult<Option<TraceContext>> {
    let parent: Option<String> = opt_owned(row, "traceparent")?;
    let state: Option<String> = opt_owned(row, "tracestate")?;
    Ok(parent.and_then(|p| TraceContext::parse(&p, state.as_deref())))
}

pub(crate) fn delivery(row: &impl Columns) -> StoreResult<(i64, Delivery)> {
    Ok((
        seq(row)?,
        Delivery {
            id: parsed(row, "id")?,
            org_id: parsed(row, "org_id")?,
            event_id: parsed(row, "event_id")?,
            destination_id: parsed(row, "destination_id")?,
            event_type: owned(row, "event_type")?,
            status: parsed(row, "status")?,
            attempt_count: uint(row, "attempt_count")?,
            failures_counted: uint(row, "failures_counted")?,
            next_attempt_at: opt_time(row, "next_attempt_at")?,
            last_error: opt_owned(row, "last_error")?,
            created_at: time(row, "created_at")?,
            updated_at: time(row, "updated_at")?,
        },
    ))
}

/// Decodes every row as a delivery, dropping the sequence numbers.
pub(crate) fn deliveries<R: Columns>(rows: &[R]) -> StoreResult<Vec<Delivery>> {
    rows.iter()
        .map(|row| delivery(row).map(|(_, d)| d))
        .collect()
}

pub(crate) fn attempt(row: &impl Columns) -> StoreResult<Attempt> {
    let outcome = match row.text("outcome")? {
        "delivered" => AttemptOutcome::Delivered,
        "retryable" => AttemptOutcome::Retryable,
        "permanent" => AttemptOutcome::Permanent,
        _ => return Err(corrupt("outcome", "unknown attempt outcome")),
    };
    Ok(Attempt {
        delivery_id: parsed(row, "delivery_id")?,
        number: uint(row, "number")?,
        started_at: time(row, "started_at")?,
        duration_ms: uint(row, "duration_ms")?,
        outcome,
        status_code: row
            .opt_int("status_code")?
            .map(|v| u16::try_from(v).map_err(|_| corrupt("status_code", "out of range")))
            .transpose()?,
        error: opt_owned(row, "error")?,
        request: opt_json(row, "request")?,
        response: opt_json(row, "response")?,
        receipt: opt_json(row, "receipt")?,
    })
}

/// How an attempt outcome is stored.
pub(crate) fn outcome_str(outcome: AttemptOutcome) -> &'static str {
    match outcome {
        AttemptOutcome::Delivered => "delivered",
        AttemptOutcome::Retryable => "retryable",
        AttemptOutcome::Permanent => "permanent",
    }
}

pub(crate) fn audit(row: &impl Columns) -> StoreResult<(i64, AuditRecord)> {
    Ok((
        seq(row)?,
        AuditRecord {
            id: parsed(row, "id")?,
            org_id: parsed(row, "org_id")?,
            actor: owned(row, "actor")?,
            at: time(row, "at")?,
            entity_type: owned(row, "entity_type")?,
            entity_id: owned(row, "entity_id")?,
            action: owned(row, "action")?,
            before: opt_json(row, "before")?,
            after: opt_json(row, "after")?,
        },
    ))
}

pub(crate) fn export_job(row: &impl Columns) -> StoreResult<(i64, ExportJob)> {
    let status = row.text("status")?;
    let status = ExportStatus::parse(status).ok_or_else(|| corrupt("status", "unknown status"))?;
    let output = match (row.opt_text("sha256")?, row.opt_text("location")?) {
        (Some(sha256), Some(location)) => Some(ExportOutput {
            uncompressed_bytes: row
                .opt_int("uncompressed_bytes")?
                .map_or(Ok(0), u64::try_from)
                .map_err(|_| corrupt("uncompressed_bytes", "integer out of range"))?,
            sha256: sha256.to_owned(),
            location: location.to_owned(),
        }),
        _ => None,
    };
    Ok((
        seq(row)?,
        ExportJob {
            id: parsed(row, "id")?,
            org_id: parsed(row, "org_id")?,
            schedule_id: row
                .opt_text("schedule_id")?
                .map(|id| id.parse().map_err(|e| corrupt("schedule_id", e)))
                .transpose()?,
            status,
            spec: json(row, "spec")?,
            progress: ExportProgress {
                rows: uint(row, "rows_written")?,
                bytes: uint(row, "bytes_written")?,
                total_rows: row
                    .opt_int("total_rows")?
                    .map(|v| u64::try_from(v).map_err(|_| corrupt("total_rows", "out of range")))
                    .transpose()?,
            },
            output,
            error: opt_owned(row, "error")?,
            created_at: time(row, "created_at")?,
            started_at: opt_time(row, "started_at")?,
            finished_at: opt_time(row, "finished_at")?,
            run: run(row, "scheduled_for", "attempt")?,
            output_removed_at: opt_time(row, "output_removed_at")?,
            incremental_key: opt_owned(row, "incremental_key")?,
        },
    ))
}

/// A run stored as its tick and attempt columns: both or neither.
fn run(row: &impl Columns, scheduled_for: &str, attempt: &str) -> StoreResult<Option<Run>> {
    match (opt_time(row, scheduled_for)?, opt_uint(row, attempt)?) {
        (Some(scheduled_for), Some(attempt)) => Ok(Some(Run {
            scheduled_for,
            attempt,
        })),
        (None, None) => Ok(None),
        _ => Err(corrupt(
            attempt,
            "a run needs both its tick and its attempt",
        )),
    }
}

fn opt_uint<T: TryFrom<i64>>(row: &impl Columns, column: &str) -> StoreResult<Option<T>> {
    row.opt_int(column)?
        .map(|v| T::try_from(v).map_err(|_| corrupt(column, "integer out of range")))
        .transpose()
}

pub(crate) fn schedule(row: &impl Columns) -> StoreResult<(i64, ExportSchedule)> {
    let retry = match (
        opt_time(row, "retry_at")?,
        run(row, "retry_scheduled_for", "retry_attempt")?,
    ) {
        (Some(at), Some(run)) => Some((at, run)),
        (None, None) => None,
        _ => return Err(corrupt("retry_at", "a retry needs its time and its run")),
    };
    Ok((
        seq(row)?,
        ExportSchedule {
            id: parsed(row, "id")?,
            org_id: parsed(row, "org_id")?,
            name: owned(row, "name")?,
            cron: owned(row, "cron")?,
            timezone: owned(row, "timezone")?,
            enabled: row.flag("enabled")?,
            export: json(row, "spec")?,
            retention: Retention {
                keep_last: opt_uint(row, "keep_last")?,
                max_age_days: opt_uint(row, "max_age_days")?,
            },
            next_run_at: time(row, "next_run_at")?,
            retry,
            revision: row.int("revision")?,
            created_at: time(row, "created_at")?,
            updated_at: time(row, "updated_at")?,
        },
    ))
}
