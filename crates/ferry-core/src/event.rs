//! Events: immutable facts, and what ingest needs to store one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::delivery::Delivery;
use crate::ids::{EventId, OrgId};
use crate::trace::TraceContext;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: EventId,
    pub org_id: OrgId,
    #[serde(rename = "type")]
    pub event_type: String,
    pub data: Value,
    pub metadata: Value,
    /// The caller's `Idempotency-Key` or `id`, when it gave one.
    pub idempotency_key: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The trace the event belongs to (W3C Trace Context): the producer's,
    /// or the one Ferry started for it. Every attempt joins it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceContext>,
}

/// Longest accepted event type and caller key.
pub const MAX_TYPE_LEN: usize = 256;
pub const MAX_KEY_LEN: usize = 256;

/// An event and the deliveries decided for it at ingest, committed together.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event: Event,
    pub deliveries: Vec<Delivery>,
}

/// What storing a `NewEvent` did.
#[derive(Debug, Clone)]
pub enum InsertOutcome {
    /// Stored now, with its deliveries.
    Inserted,
    /// The id was already known: nothing new was stored; these are the
    /// original event's deliveries.
    Duplicate(Vec<Delivery>),
}

/// A canonical JSON text of `value`: object keys sorted, no whitespace. Two
/// values that are equal as JSON have the same canonical text whatever the
/// key order they arrived in (content-derived event ids rely on it).
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `event_json` fuzz target: numbers must survive a round
    /// trip exactly (serde_json's `float_roundtrip`), or an event's data
    /// would change between ingest and delivery.
    #[test]
    fn numbers_survive_the_round_trip() {
        for text in [
            "2222222222222222222222222222222222",
            "0.1",
            "1e-7",
            "-3.141592653589793",
        ] {
            let v: Value = serde_json::from_str(text).unwrap();
            let again: Value = serde_json::from_str(&canonical_json(&v)).unwrap();
            assert_eq!(again, v, "{text}");
        }
    }

    #[test]
    fn canonical_json_ignores_key_order() {
        let a: Value = serde_json::from_str(r#"{"b":[1,{"y":1,"x":2}],"a":"s"}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":"s","b":[1,{"x":2,"y":1}]}"#).unwrap();
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(canonical_json(&a), r#"{"a":"s","b":[1,{"x":2,"y":1}]}"#);
    }
}
