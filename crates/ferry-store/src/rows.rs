//! The column list each query selects, as macros, so that `concat!` builds
//! every SQL text at compile time; `sql::decode` turns such rows back into
//! domain types.

macro_rules! org_columns {
    () => {
        "seq, id, name, alert_destinations, alert_settings, created_at"
    };
}

macro_rules! api_key_columns {
    () => {
        "seq, id, org_id, name, prefix, hash, scopes, created_at, last_used_at"
    };
}

macro_rules! destination_columns {
    () => {
        "seq, id, org_id, name, kind, config, filter, retry, is_default, enabled, \
         max_in_flight, alert_settings, secrets, health, created_at, updated_at"
    };
}

macro_rules! event_columns {
    () => {
        "seq, id, org_id, event_type, data, metadata, idempotency_key, created_at, \
         traceparent, tracestate"
    };
}

macro_rules! delivery_columns {
    () => {
        "seq, id, org_id, event_id, destination_id, event_type, status, attempt_count, \
         failures_counted, next_attempt_at, last_error, created_at, updated_at"
    };
}

macro_rules! attempt_columns {
    () => {
        "delivery_id, number, started_at, duration_ms, outcome, status_code, error, request, \
         response, receipt"
    };
}

macro_rules! audit_columns {
    () => {
        "seq, id, org_id, actor, at, entity_type, entity_id, action, before, after"
    };
}

macro_rules! export_columns {
    () => {
        "seq, id, org_id, schedule_id, status, spec, rows_written, bytes_written, total_rows, \
         uncompressed_bytes, sha256, location, error, created_at, started_at, finished_at, \
         scheduled_for, attempt, output_removed_at, incremental_key"
    };
}

macro_rules! schedule_columns {
    () => {
        "seq, id, org_id, name, cron, timezone, enabled, spec, keep_last, max_age_days, \
         next_run_at, retry_at, retry_scheduled_for, retry_attempt, revision, created_at, \
         updated_at"
    };
}

pub(crate) use {
    api_key_columns, attempt_columns, audit_columns, delivery_columns, destination_columns,
    event_columns, export_columns, org_columns, schedule_columns,
};
