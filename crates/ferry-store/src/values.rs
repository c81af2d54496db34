//! How both SQL backends store values: timestamps as unix microseconds (so
//! that they compare in SQL), JSON columns as text, and the page size a
//! list serves.

use chrono::{DateTime, Utc};
use ferry_core::StoreError;
use ferry_core::error::StoreResult;

/// A timestamp as stored: unix microseconds.
pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn opt_micros(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(micros)
}

/// Encodes a value for a JSON column; the domain types always serialize.
pub(crate) fn to_json<T: serde::Serialize>(value: &T, what: &str) -> StoreResult<String> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode {what}: {e}")))
}

/// Limits a page request to what a list serves.
pub(crate) fn page_limit(limit: u32) -> u32 {
    limit.min(ferry_core::page::MAX_LIMIT)
}
