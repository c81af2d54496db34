//! Turning API JSON into human-readable text: tolerant field access (a missing
//! field shows as `-`, new fields are ignored), short timestamps, the
//! deliveries table several commands share, and the list footer.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use ferry_client::table::Table;
use serde_json::Value;

/// The field at JSON pointer `ptr` as display text; empty when missing or null.
pub fn text(v: &Value, ptr: &str) -> String {
    v.pointer(ptr).map(scalar).unwrap_or_default()
}

/// A value as one line of text: strings unquoted, arrays comma-joined.
pub fn scalar(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.to_owned(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => items.iter().map(scalar).collect::<Vec<_>>().join(","),
        Value::Object(_) => v.to_string(),
    }
}

/// The first of `ptrs` that is present and not null.
pub fn text_any(v: &Value, ptrs: &[&str]) -> String {
    ptrs.iter()
        .map(|p| text(v, p))
        .find(|t| !t.is_empty())
        .unwrap_or_default()
}

/// An RFC 3339 timestamp at `ptr` as `2026-11-02 10:11:12` (UTC), or as given.
pub fn time(v: &Value, ptr: &str) -> String {
    short_time(&text(v, ptr))
}

pub fn short_time(raw: &str) -> String {
    match DateTime::parse_from_rfc3339(raw) {
        Ok(t) => t
            .with_timezone(&Utc)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string(),
        Err(_) => raw.to_owned(),
    }
}

/// The items of a list answer (`{"data": [...]}`, or a bare array) and its next cursor.
pub fn list_items(body: &Value) -> (&[Value], Option<&str>) {
    let items = body
        .get("data")
        .and_then(Value::as_array)
        .or_else(|| body.as_array())
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let cursor = body
        .get("next_cursor")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty());
    (items, cursor)
}

/// `1 delivery`, `2 deliveries`.
pub fn count_of(count: u64, nouns: (&str, &str)) -> String {
    let noun = if count == 1 { nouns.0 } else { nouns.1 };
    format!("{count} {noun}")
}

/// `N <nouns>.` and, when there is more, how to get the next page.
pub fn list_footer(out: &mut String, count: usize, nouns: (&str, &str), cursor: Option<&str>) {
    let _ = writeln!(out, "{}.", count_of(count as u64, nouns));
    if let Some(c) = cursor {
        let _ = writeln!(out, "More: add --cursor {c}");
    }
}

/// The attempt count of a delivery, whatever the server calls it.
fn attempts(d: &Value) -> String {
    let n = text(d, "/attempt_count");
    if !n.is_empty() {
        return n;
    }
    match d.get("attempts") {
        Some(Value::Array(a)) => a.len().to_string(),
        Some(v @ Value::Number(_)) => v.to_string(),
        _ => String::new(),
    }
}

/// Deliveries as a table: id, event, type, destination, status, attempts,
/// next attempt, last error (columns nobody filled are dropped).
pub fn deliveries_table(items: &[Value]) -> Table {
    let mut t = Table::new([
        "id",
        "event",
        "type",
        "destination",
        "status",
        "attempts",
        "next attempt",
        "last error",
    ])
    .hide_empty_columns()
    .max_cell(60);
    for d in items {
        t.row([
            text(d, "/id"),
            text(d, "/event_id"),
            text_any(d, &["/event_type", "/type"]),
            text(d, "/destination_id"),
            text(d, "/status"),
            attempts(d),
            time(d, "/next_attempt_at"),
            text(d, "/last_error"),
        ]);
    }
    t
}

/// Pretty JSON with a trailing newline.
pub fn pretty(body: &Value) -> String {
    let mut s = serde_json::to_string_pretty(body).unwrap_or_else(|_| body.to_string());
    s.push('\n');
    s
}

/// The number in `body` under the first of `keys` present, else the only
/// numeric top-level field.
pub fn find_count(body: &Value, keys: &[&str]) -> Option<u64> {
    if let Some(n) = body.as_u64() {
        return Some(n);
    }
    let obj = body.as_object()?;
    if let Some(n) = keys
        .iter()
        .find_map(|k| obj.get(*k).and_then(Value::as_u64))
    {
        return Some(n);
    }
    let mut numbers = obj.values().filter_map(Value::as_u64);
    match (numbers.next(), numbers.next()) {
        (Some(n), None) => Some(n),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_are_read_tolerantly() {
        let v = json!({"a": {"b": 3}, "s": "x", "n": null, "l": ["a", "b"], "t": true});
        assert_eq!(text(&v, "/a/b"), "3");
        assert_eq!(text(&v, "/s"), "x");
        assert_eq!(text(&v, "/n"), "");
        assert_eq!(text(&v, "/missing"), "");
        assert_eq!(text(&v, "/l"), "a,b");
        assert_eq!(text(&v, "/t"), "yes");
        assert_eq!(text_any(&v, &["/n", "/s"]), "x");
    }

    #[test]
    fn timestamps_are_shortened_to_utc() {
        assert_eq!(
            short_time("2026-11-02T10:11:12.123456Z"),
            "2026-11-02 10:11:12"
        );
        assert_eq!(
            short_time("2026-11-02T12:11:12+02:00"),
            "2026-11-02 10:11:12"
        );
        assert_eq!(short_time("soon"), "soon");
    }

    #[test]
    fn lists_accept_data_or_bare_arrays() {
        let body = json!({"data": [{"id": 1}], "next_cursor": "c1"});
        let (items, cursor) = list_items(&body);
        assert_eq!(items.len(), 1);
        assert_eq!(cursor, Some("c1"));
        let body = json!([{"id": 1}, {"id": 2}]);
        assert_eq!(list_items(&body).0.len(), 2);
        let body = json!({"data": [], "next_cursor": null});
        assert_eq!(list_items(&body), (&[][..], None));
    }

    #[test]
    fn deliveries_table_drops_unused_columns() {
        let items = [json!({
            "id": "dlv_1", "event_id": "evt_1", "destination_id": "dst_1",
            "status": "retrying", "attempt_count": 2,
            "next_attempt_at": "2026-11-02T10:00:00Z", "last_error": "HTTP 503"
        })];
        assert_eq!(
            deliveries_table(&items).render(),
            "ID     EVENT  DESTINATION  STATUS    ATTEMPTS  NEXT ATTEMPT         LAST ERROR\n\
             dlv_1  evt_1  dst_1        retrying  2         2026-11-02 10:00:00  HTTP 503\n"
        );
        let items = [json!({"id": "dlv_2", "destination_id": "dst_1", "status": "pending"})];
        assert_eq!(
            deliveries_table(&items).render(),
            "ID     DESTINATION  STATUS\ndlv_2  dst_1        pending\n"
        );
    }

    #[test]
    fn counts_are_found_by_name_or_alone() {
        assert_eq!(
            find_count(&json!({"requeued": 4, "x": 1}), &["requeued"]),
            Some(4)
        );
        assert_eq!(
            find_count(&json!({"count": 7, "ok": true}), &["requeued"]),
            Some(7)
        );
        assert_eq!(find_count(&json!({"a": 1, "b": 2}), &["requeued"]), None);
        assert_eq!(find_count(&json!(3), &[]), Some(3));
    }

    #[test]
    fn footer_mentions_the_cursor() {
        let mut out = String::new();
        list_footer(&mut out, 1, ("delivery", "deliveries"), Some("abc"));
        assert_eq!(out, "1 delivery.\nMore: add --cursor abc\n");
        let mut out = String::new();
        list_footer(&mut out, 2, ("delivery", "deliveries"), None);
        assert_eq!(out, "2 deliveries.\n");
    }
}
