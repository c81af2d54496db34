//! `ferry replay <evt_…>`: new attempts of an event's deliveries, with the
//! same `webhook-id` (`POST /v1/events/{id}/replay`).

use std::fmt::Write as _;

use ferry_core::{DestinationId, EventId};
use serde_json::{Value, json};

use super::{Ctx, Output};
use crate::cli::render::{count_of, deliveries_table, find_count, list_items, pretty};

const DELIVERIES: (&str, &str) = ("delivery", "deliveries");

/// Replay an event to its destinations, or to the ones given.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// The event (evt_…).
    #[arg(value_name = "EVT")]
    pub event: EventId,
    /// Replay only to this destination (repeatable).
    #[arg(long = "destination", value_name = "DST")]
    pub destinations: Vec<DestinationId>,
}

impl ReplayArgs {
    pub fn body(&self) -> Value {
        if self.destinations.is_empty() {
            json!({})
        } else {
            json!({ "destinations": self.destinations })
        }
    }
}

pub async fn run(ctx: &Ctx, args: ReplayArgs) -> anyhow::Result<Output> {
    let answer = ctx
        .api
        .post(&format!("/v1/events/{}/replay", args.event), &args.body())
        .await?;
    let event = args.event.clone();
    Ok(Output::render(ctx.json, &answer.body, |b| {
        render(&event, b)
    }))
}

/// The replayed deliveries as a table when the answer lists them, else their count.
pub fn render(event: &EventId, body: &Value) -> String {
    let deliveries = body
        .get("deliveries")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_else(|| list_items(body).0);
    let mut out = String::new();
    if !deliveries.is_empty() {
        let n = count_of(deliveries.len() as u64, DELIVERIES);
        let _ = writeln!(out, "Replaying event {event}: {n} queued.\n");
        out.push_str(&deliveries_table(deliveries).render());
    } else if let Some(n) = find_count(body, &["replayed", "requeued", "count"]) {
        let _ = writeln!(
            out,
            "Replaying event {event}: {} queued.",
            count_of(n, DELIVERIES)
        );
    } else if body.is_null() || body.as_object().is_some_and(|o| o.is_empty()) {
        let _ = writeln!(out, "Replaying event {event}.");
    } else {
        let _ = write!(out, "Replaying event {event}:\n{}", pretty(body));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_lists_destinations_only_when_given() {
        let mut args = ReplayArgs {
            event: EventId::parse("evt_1").unwrap(),
            destinations: vec![],
        };
        assert_eq!(args.body(), json!({}));
        args.destinations
            .push(DestinationId::parse("dst_1").unwrap());
        assert_eq!(args.body(), json!({"destinations": ["dst_1"]}));
    }

    #[test]
    fn render_handles_lists_and_counts() {
        let event = EventId::parse("evt_1").unwrap();
        let body = json!({"deliveries": [{"id": "dlv_1", "destination_id": "dst_1", "status": "pending"}]});
        assert!(
            render(&event, &body).starts_with("Replaying event evt_1: 1 delivery queued.\n\nID")
        );
        assert_eq!(
            render(&event, &json!({"replayed": 2})),
            "Replaying event evt_1: 2 deliveries queued.\n"
        );
        assert_eq!(render(&event, &Value::Null), "Replaying event evt_1.\n");
    }
}
