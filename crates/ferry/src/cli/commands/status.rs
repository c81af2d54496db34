//! `ferry status <evt_…|dlv_…>`: an event with its deliveries
//! (`GET /v1/events/{id}`), or a delivery with its attempts
//! (`GET /v1/deliveries/{id}`), chosen by the id's prefix.

use std::fmt::Write as _;

use ferry_client::table::{Table, key_values, truncate};
use ferry_client::usage;
use ferry_core::{DeliveryId, EventId};
use serde_json::Value;

use super::{Ctx, Output};
use crate::cli::render::{deliveries_table, text, text_any, time};

/// Show an event and its deliveries, or a delivery and its attempts.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// An event id (evt_…) or a delivery id (dlv_…).
    #[arg(value_name = "ID")]
    pub id: String,
}

/// What the id names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Event(EventId),
    Delivery(DeliveryId),
}

/// Reads the id's prefix.
pub fn parse_target(raw: &str) -> anyhow::Result<Target> {
    if raw.starts_with("evt_") {
        EventId::parse(raw)
            .map(Target::Event)
            .map_err(|e| usage(format!("{raw:?}: {e}")))
    } else if raw.starts_with("dlv_") {
        DeliveryId::parse(raw)
            .map(Target::Delivery)
            .map_err(|e| usage(format!("{raw:?}: {e}")))
    } else {
        Err(usage(format!(
            "{raw:?} is neither an event id (evt_…) nor a delivery id (dlv_…)"
        )))
    }
}

pub async fn run(ctx: &Ctx, args: StatusArgs) -> anyhow::Result<Output> {
    match parse_target(&args.id)? {
        Target::Event(id) => {
            let answer = ctx.api.get(&format!("/v1/events/{id}"), &[]).await?;
            Ok(Output::render(ctx.json, &answer.body, render_event))
        }
        Target::Delivery(id) => {
            let answer = ctx.api.get(&format!("/v1/deliveries/{id}"), &[]).await?;
            Ok(Output::render(ctx.json, &answer.body, render_delivery))
        }
    }
}

/// The event's fields, then its deliveries. Accepts the event at the top level
/// or under `event`, and its deliveries beside it or inside it.
pub fn render_event(body: &Value) -> String {
    let event = body.get("event").filter(|e| e.is_object()).unwrap_or(body);
    let deliveries = body
        .get("deliveries")
        .or_else(|| event.get("deliveries"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let compact = |ptr: &str| {
        event
            .pointer(ptr)
            .filter(|v| !v.is_null())
            .map(|v| truncate(&v.to_string(), 200))
            .unwrap_or_default()
    };
    let mut pairs = vec![
        ("event", text(event, "/id")),
        ("type", text(event, "/type")),
        ("created", time(event, "/created_at")),
        ("data", compact("/data")),
    ];
    let metadata = compact("/metadata");
    if !metadata.is_empty() && metadata != "{}" {
        pairs.push(("metadata", metadata));
    }
    let mut out = key_values(&pairs);
    let _ = writeln!(out, "\nDeliveries ({}):", deliveries.len());
    if deliveries.is_empty() {
        out.push_str("none: no destination matched this event.\n");
    } else {
        out.push_str(&deliveries_table(deliveries).render());
    }
    out
}

/// The delivery's fields, then one row per attempt.
pub fn render_delivery(body: &Value) -> String {
    let d = body
        .get("delivery")
        .filter(|e| e.is_object())
        .unwrap_or(body);
    let attempts = d
        .get("attempts")
        .or_else(|| body.get("attempts"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let count = text(d, "/attempt_count");
    let mut pairs = vec![
        ("delivery", text(d, "/id")),
        ("event", text(d, "/event_id")),
        ("destination", text(d, "/destination_id")),
        ("status", text(d, "/status")),
        (
            "attempts",
            if count.is_empty() {
                attempts.len().to_string()
            } else {
                count
            },
        ),
        ("next attempt", time(d, "/next_attempt_at")),
        ("last error", text(d, "/last_error")),
    ];
    let link = text_any(d, &["/links/ui", "/link"]);
    if !link.is_empty() {
        pairs.push(("link", link));
    }
    let mut out = key_values(&pairs);
    if !attempts.is_empty() {
        let mut t = Table::new(["#", "started", "duration", "outcome", "http", "error"])
            .hide_empty_columns()
            .max_cell(80);
        for a in attempts {
            let duration = text(a, "/duration_ms");
            t.row([
                text(a, "/number"),
                time(a, "/started_at"),
                if duration.is_empty() {
                    duration
                } else {
                    format!("{duration} ms")
                },
                text(a, "/outcome"),
                text_any(a, &["/status_code", "/response/status"]),
                text(a, "/error"),
            ]);
        }
        let _ = writeln!(out, "\nAttempts:");
        out.push_str(&t.render());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_prefix_chooses_the_endpoint() {
        assert!(matches!(
            parse_target("evt_01abc").unwrap(),
            Target::Event(_)
        ));
        assert!(matches!(
            parse_target("dlv_01abc").unwrap(),
            Target::Delivery(_)
        ));
        for bad in ["dst_01abc", "evt_", "order-1", "dlv_ABC"] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_event_shows_its_deliveries() {
        let body = json!({
            "id": "evt_1", "type": "order.created", "created_at": "2026-11-02T10:00:00Z",
            "data": {"total": 5}, "metadata": {},
            "deliveries": [{"id": "dlv_1", "destination_id": "dst_1", "status": "dead",
                            "attempt_count": 6, "last_error": "HTTP 500"}]
        });
        let text = render_event(&body);
        assert!(
            text.starts_with("event    evt_1\ntype     order.created\n"),
            "{text}"
        );
        assert!(text.contains("created  2026-11-02 10:00:00\n"), "{text}");
        assert!(text.contains("data     {\"total\":5}\n"), "{text}");
        assert!(!text.contains("metadata"), "{text}");
        assert!(
            text.contains("Deliveries (1):\nID     DESTINATION  STATUS  ATTEMPTS  LAST ERROR\n"),
            "{text}"
        );
        assert!(
            text.contains("dlv_1  dst_1        dead    6         HTTP 500\n"),
            "{text}"
        );
    }

    #[test]
    fn a_wrapped_event_is_understood() {
        let body = json!({"event": {"id": "evt_2", "type": "t"}, "deliveries": []});
        let text = render_event(&body);
        assert!(text.starts_with("event    evt_2\n"), "{text}");
        assert!(text.contains("Deliveries (0):\nnone"), "{text}");
    }

    #[test]
    fn a_delivery_shows_its_attempts() {
        let body = json!({
            "id": "dlv_1", "event_id": "evt_1", "destination_id": "dst_1",
            "status": "retrying", "attempt_count": 1, "next_attempt_at": null,
            "last_error": "HTTP 503",
            "attempts": [{"number": 1, "started_at": "2026-11-02T10:00:00Z", "duration_ms": 12,
                          "outcome": "retryable", "status_code": 503, "error": "HTTP 503",
                          "request": {"headers": {}, "body": "{}"}}],
            "links": {"ui": "http://x/ui/deliveries/dlv_1"}
        });
        let text = render_delivery(&body);
        assert!(text.contains("status        retrying\n"), "{text}");
        assert!(text.contains("next attempt  -\n"), "{text}");
        assert!(
            text.contains("link          http://x/ui/deliveries/dlv_1\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "#  STARTED              DURATION  OUTCOME    HTTP  ERROR\n\
                 1  2026-11-02 10:00:00  12 ms     retryable  503   HTTP 503\n"
            ),
            "{text}"
        );
    }
}
