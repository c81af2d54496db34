//! Row decoding shared by both stores: the column list each query selects
//! (as macros, so that `concat!` builds every SQL text at compile time) and
//! the functions that turn those rows back into domain types, written once
//! and instantiated for each backend's row type by `row_decoders!`.
//! Anything that does not decode is `StoreError::Corrupt`; the messages name
//! the column, never its value.

macro_rules! org_columns {
    () => {
        "seq, id, name, alert_destinations, created_at"
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
         max_in_flight, secrets, health, created_at, updated_at"
    };
}

macro_rules! event_columns {
    () => {
        "seq, id, org_id, event_type, data, metadata, idempotency_key, created_at"
    };
}

macro_rules! delivery_columns {
    () => {
        "seq, id, org_id, event_id, destination_id, status, attempt_count, failures_counted, \
         next_attempt_at, last_error, created_at, updated_at"
    };
}

macro_rules! attempt_columns {
    () => {
        "delivery_id, number, started_at, duration_ms, outcome, status_code, error, request, \
         response"
    };
}

macro_rules! audit_columns {
    () => {
        "seq, id, org_id, actor, at, entity_type, entity_id, action, before, after"
    };
}

pub(crate) use {
    api_key_columns, attempt_columns, audit_columns, delivery_columns, destination_columns,
    event_columns, org_columns,
};

/// The decoding functions for one backend: `row_decoders!(RowType, Database)`.
macro_rules! row_decoders {
    ($row:ty, $db:ty) => {
        use std::str::FromStr;

        use chrono::{DateTime, Utc};
        use ferry_core::StoreError;
        use ferry_core::audit::AuditRecord;
        use ferry_core::crypto::Cipher;
        use ferry_core::delivery::{Attempt, AttemptOutcome, Delivery};
        use ferry_core::destination::{Destination, DestinationSecrets};
        use ferry_core::error::StoreResult;
        use ferry_core::event::Event;
        use ferry_core::org::{ApiKey, Org};
        use serde::de::DeserializeOwned;
        use sqlx::Row;

        fn corrupt(column: &str, e: impl std::fmt::Display) -> StoreError {
            StoreError::Corrupt(format!("column `{column}`: {e}"))
        }

        fn get<'r, T>(row: &'r $row, column: &str) -> StoreResult<T>
        where
            T: sqlx::Decode<'r, $db> + sqlx::Type<$db>,
        {
            row.try_get(column).map_err(|e| corrupt(column, e))
        }

        /// A column parsed with `FromStr` (ids, statuses, kinds, outcomes).
        pub(super) fn parsed<T>(row: &$row, column: &str) -> StoreResult<T>
        where
            T: FromStr,
            T::Err: std::fmt::Display,
        {
            let text: &str = get(row, column)?;
            text.parse().map_err(|e| corrupt(column, e))
        }

        pub(super) fn time(row: &$row, column: &str) -> StoreResult<DateTime<Utc>> {
            from_micros(get(row, column)?, column)
        }

        fn opt_time(row: &$row, column: &str) -> StoreResult<Option<DateTime<Utc>>> {
            get::<Option<i64>>(row, column)?
                .map(|v| from_micros(v, column))
                .transpose()
        }

        pub(super) fn from_micros(v: i64, column: &str) -> StoreResult<DateTime<Utc>> {
            DateTime::from_timestamp_micros(v)
                .ok_or_else(|| corrupt(column, "timestamp out of range"))
        }

        fn json<T: DeserializeOwned>(row: &$row, column: &str) -> StoreResult<T> {
            let text: &str = get(row, column)?;
            serde_json::from_str(text).map_err(|e| corrupt(column, e))
        }

        fn opt_json<T: DeserializeOwned>(row: &$row, column: &str) -> StoreResult<Option<T>> {
            get::<Option<&str>>(row, column)?
                .map(|text| serde_json::from_str(text).map_err(|e| corrupt(column, e)))
                .transpose()
        }

        fn uint<T: TryFrom<i64>>(row: &$row, column: &str) -> StoreResult<T> {
            let v: i64 = get(row, column)?;
            T::try_from(v).map_err(|_| corrupt(column, "integer out of range"))
        }

        pub(super) fn seq(row: &$row) -> StoreResult<i64> {
            get(row, "seq")
        }

        pub(super) fn org(row: &$row) -> StoreResult<(i64, Org)> {
            Ok((
                seq(row)?,
                Org {
                    id: parsed(row, "id")?,
                    name: get(row, "name")?,
                    alert_destinations: json(row, "alert_destinations")?,
                    created_at: time(row, "created_at")?,
                },
            ))
        }

        pub(super) fn api_key(row: &$row) -> StoreResult<(i64, ApiKey)> {
            let hash: &[u8] = get(row, "hash")?;
            let hash: [u8; 32] = hash
                .try_into()
                .map_err(|_| corrupt("hash", "not 32 bytes"))?;
            Ok((
                seq(row)?,
                ApiKey {
                    id: parsed(row, "id")?,
                    org_id: parsed(row, "org_id")?,
                    name: get(row, "name")?,
                    prefix: get(row, "prefix")?,
                    hash,
                    scopes: json(row, "scopes")?,
                    created_at: time(row, "created_at")?,
                    last_used_at: opt_time(row, "last_used_at")?,
                },
            ))
        }

        /// Decodes a destination, opening its sealed secrets with `cipher`.
        pub(super) fn destination(row: &$row, cipher: &Cipher) -> StoreResult<(i64, Destination)> {
            let sealed: &[u8] = get(row, "secrets")?;
            let plain = cipher.open(sealed).map_err(|e| corrupt("secrets", e))?;
            let secrets: DestinationSecrets = serde_json::from_slice(&plain)
                .map_err(|_| corrupt("secrets", "sealed secrets are not valid JSON"))?;
            Ok((
                seq(row)?,
                Destination {
                    id: parsed(row, "id")?,
                    org_id: parsed(row, "org_id")?,
                    name: get(row, "name")?,
                    kind: parsed(row, "kind")?,
                    config: json(row, "config")?,
                    filter: json(row, "filter")?,
                    retry: json(row, "retry")?,
                    is_default: get(row, "is_default")?,
                    enabled: get(row, "enabled")?,
                    max_in_flight: uint(row, "max_in_flight")?,
                    secrets,
                    health: json(row, "health")?,
                    created_at: time(row, "created_at")?,
                    updated_at: time(row, "updated_at")?,
                },
            ))
        }

        pub(super) fn event(row: &$row) -> StoreResult<(i64, Event)> {
            Ok((
                seq(row)?,
                Event {
                    id: parsed(row, "id")?,
                    org_id: parsed(row, "org_id")?,
                    event_type: get(row, "event_type")?,
                    data: json(row, "data")?,
                    metadata: json(row, "metadata")?,
                    idempotency_key: get(row, "idempotency_key")?,
                    created_at: time(row, "created_at")?,
                },
            ))
        }

        pub(super) fn delivery(row: &$row) -> StoreResult<(i64, Delivery)> {
            Ok((
                seq(row)?,
                Delivery {
                    id: parsed(row, "id")?,
                    org_id: parsed(row, "org_id")?,
                    event_id: parsed(row, "event_id")?,
                    destination_id: parsed(row, "destination_id")?,
                    status: parsed(row, "status")?,
                    attempt_count: uint(row, "attempt_count")?,
                    failures_counted: uint(row, "failures_counted")?,
                    next_attempt_at: opt_time(row, "next_attempt_at")?,
                    last_error: get(row, "last_error")?,
                    created_at: time(row, "created_at")?,
                    updated_at: time(row, "updated_at")?,
                },
            ))
        }

        /// Decodes every row as a delivery, dropping the sequence numbers.
        pub(super) fn deliveries(rows: &[$row]) -> StoreResult<Vec<Delivery>> {
            rows.iter()
                .map(|row| delivery(row).map(|(_, d)| d))
                .collect()
        }

        pub(super) fn attempt(row: &$row) -> StoreResult<Attempt> {
            let outcome: AttemptOutcome = match get::<&str>(row, "outcome")? {
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
                status_code: get::<Option<i64>>(row, "status_code")?
                    .map(|v| u16::try_from(v).map_err(|_| corrupt("status_code", "out of range")))
                    .transpose()?,
                error: get(row, "error")?,
                request: opt_json(row, "request")?,
                response: opt_json(row, "response")?,
            })
        }

        /// How an attempt outcome is stored.
        pub(super) fn outcome_str(outcome: AttemptOutcome) -> &'static str {
            match outcome {
                AttemptOutcome::Delivered => "delivered",
                AttemptOutcome::Retryable => "retryable",
                AttemptOutcome::Permanent => "permanent",
            }
        }

        pub(super) fn audit(row: &$row) -> StoreResult<(i64, AuditRecord)> {
            Ok((
                seq(row)?,
                AuditRecord {
                    id: parsed(row, "id")?,
                    org_id: parsed(row, "org_id")?,
                    actor: get(row, "actor")?,
                    at: time(row, "at")?,
                    entity_type: get(row, "entity_type")?,
                    entity_id: get(row, "entity_id")?,
                    action: get(row, "action")?,
                    before: opt_json(row, "before")?,
                    after: opt_json(row, "after")?,
                },
            ))
        }
    };
}
pub(crate) use row_decoders;
