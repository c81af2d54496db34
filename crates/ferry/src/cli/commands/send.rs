//! `ferry send <type>`: `POST /v1/events`, then the event id, whether it was
//! a duplicate, and its deliveries.

use std::fmt::Write as _;

use ferry_client::usage;
use ferry_core::DestinationId;
use serde_json::{Map, Value, json};

use super::{Ctx, Output};
use crate::cli::args::read_json_arg;
use crate::cli::render::{deliveries_table, text};

/// Send an event (`POST /v1/events`).
#[derive(Debug, Clone, clap::Args)]
pub struct SendArgs {
    /// Event type, e.g. order.created.
    #[arg(value_name = "TYPE")]
    pub event_type: String,
    /// Event data: inline JSON, @FILE, or - for stdin [default: {}].
    #[arg(short, long, value_name = "JSON|@FILE|-")]
    pub data: Option<String>,
    /// Caller's event id (the same id is the same event).
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
    /// Idempotency-Key header (wins over --id).
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    /// Deliver to this destination instead of routing by filters (repeatable).
    #[arg(long = "destination", value_name = "DST")]
    pub destinations: Vec<DestinationId>,
    /// Event metadata: a JSON object, @FILE or -.
    #[arg(long, value_name = "JSON|@FILE|-")]
    pub metadata: Option<String>,
}

impl SendArgs {
    /// The request body, reading `--data`/`--metadata` files or stdin.
    pub fn body(&self) -> anyhow::Result<Value> {
        if self.data.as_deref() == Some("-") && self.metadata.as_deref() == Some("-") {
            return Err(usage("only one of --data and --metadata can read stdin"));
        }
        let mut body = Map::new();
        body.insert("type".into(), json!(self.event_type));
        let data = match &self.data {
            Some(raw) => read_json_arg("--data", raw)?,
            None => json!({}),
        };
        body.insert("data".into(), data);
        if let Some(id) = &self.id {
            body.insert("id".into(), json!(id));
        }
        if !self.destinations.is_empty() {
            body.insert("destinations".into(), json!(self.destinations));
        }
        if let Some(raw) = &self.metadata {
            let metadata = read_json_arg("--metadata", raw)?;
            if !metadata.is_object() {
                return Err(usage("--metadata must be a JSON object"));
            }
            body.insert("metadata".into(), metadata);
        }
        Ok(Value::Object(body))
    }
}

pub async fn run(ctx: &Ctx, args: SendArgs) -> anyhow::Result<Output> {
    let body = args.body()?;
    let headers: Vec<(&str, String)> = args
        .idempotency_key
        .iter()
        .map(|k| ("Idempotency-Key", k.clone()))
        .collect();
    let answer = ctx
        .api
        .post_with_headers("/v1/events", &body, &headers)
        .await?;
    Ok(Output::render(ctx.json, &answer.body, render))
}

/// `Accepted event evt_…` or `Duplicate: …`, then the deliveries.
pub fn render(body: &Value) -> String {
    let mut out = String::new();
    let id = text(body, "/id");
    let duplicate = body
        .get("duplicate")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let deliveries = body
        .get("deliveries")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if duplicate {
        let _ = writeln!(
            out,
            "Duplicate: event {id} was already accepted; nothing new was enqueued."
        );
    } else {
        let _ = writeln!(out, "Accepted event {id}.");
    }
    if deliveries.is_empty() {
        if !duplicate {
            let _ = writeln!(
                out,
                "No destination matched: the event is stored with no deliveries."
            );
        }
    } else {
        out.push('\n');
        out.push_str(&deliveries_table(deliveries).render());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(data: Option<&str>, metadata: Option<&str>) -> SendArgs {
        SendArgs {
            event_type: "order.created".into(),
            data: data.map(str::to_owned),
            id: Some("ord-1".into()),
            idempotency_key: None,
            destinations: vec![DestinationId::parse("dst_a1").unwrap()],
            metadata: metadata.map(str::to_owned),
        }
    }

    #[test]
    fn body_has_the_api_fields() {
        let body = args(Some(r#"{"total": 5}"#), Some(r#"{"source": "cli"}"#))
            .body()
            .unwrap();
        assert_eq!(
            body,
            json!({"type": "order.created", "data": {"total": 5}, "id": "ord-1",
                   "destinations": ["dst_a1"], "metadata": {"source": "cli"}})
        );
        assert_eq!(args(None, None).body().unwrap()["data"], json!({}));
    }

    #[test]
    fn bad_metadata_and_double_stdin_are_refused() {
        assert!(args(None, Some("[1]")).body().is_err());
        assert!(args(Some("-"), Some("-")).body().is_err());
    }

    #[test]
    fn render_shows_id_and_deliveries() {
        let body = json!({"id": "evt_1", "duplicate": false, "deliveries": [
            {"id": "dlv_1", "destination_id": "dst_1", "status": "pending"}]});
        assert_eq!(
            render(&body),
            "Accepted event evt_1.\n\nID     DESTINATION  STATUS\ndlv_1  dst_1        pending\n"
        );
        let body = json!({"id": "evt_1", "duplicate": true, "deliveries": []});
        assert!(render(&body).starts_with("Duplicate: event evt_1"));
        let body = json!({"id": "evt_2", "duplicate": false, "deliveries": []});
        assert!(render(&body).contains("No destination matched"));
    }
}
