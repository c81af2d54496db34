//! `ferry deliveries list|retry` and `ferry dlq list|replay`: filtered lists of
//! deliveries (`GET /v1/deliveries`, `GET /v1/dlq`), putting one back to
//! `pending` (`POST /v1/deliveries/{id}/retry`) and requeueing the dead-letter
//! queue (`POST /v1/dlq/replay`).

use std::fmt::Write as _;

use ferry_core::DeliveryId;
use serde_json::{Value, json};

use super::{Ctx, Output};
use crate::cli::args::{DELIVERY_STATES, Filters, Paging};
use crate::cli::render::{
    count_of, deliveries_table, find_count, list_footer, list_items, pretty, text,
};

/// Deliveries: list them, retry one.
#[derive(Debug, Clone, clap::Args)]
pub struct DeliveriesArgs {
    #[command(subcommand)]
    pub command: DeliveriesCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum DeliveriesCommand {
    /// List deliveries, newest first (GET /v1/deliveries).
    List(DeliveriesListArgs),
    /// Put a delivery back to pending now (POST /v1/deliveries/{id}/retry).
    Retry {
        /// The delivery (dlv_…).
        #[arg(value_name = "DLV")]
        id: DeliveryId,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct DeliveriesListArgs {
    /// Only deliveries in this state.
    #[arg(long, value_name = "STATUS", value_parser = DELIVERY_STATES)]
    pub status: Option<String>,
    #[command(flatten)]
    pub filters: Filters,
    #[command(flatten)]
    pub paging: Paging,
}

/// The dead-letter queue: deliveries that are `dead`.
#[derive(Debug, Clone, clap::Args)]
pub struct DlqArgs {
    #[command(subcommand)]
    pub command: DlqCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum DlqCommand {
    /// List dead deliveries (GET /v1/dlq).
    List {
        #[command(flatten)]
        filters: Filters,
        #[command(flatten)]
        paging: Paging,
    },
    /// Requeue the dead deliveries that match the filters (all without filters)
    /// (POST /v1/dlq/replay).
    Replay {
        #[command(flatten)]
        filters: Filters,
    },
}

pub async fn run(ctx: &Ctx, args: DeliveriesArgs) -> anyhow::Result<Output> {
    match args.command {
        DeliveriesCommand::List(list) => {
            let mut query = Vec::new();
            if let Some(s) = &list.status {
                query.push(("status", s.clone()));
            }
            query.extend(list.filters.pairs());
            query.extend(list.paging.pairs());
            let answer = ctx.api.get("/v1/deliveries", &query).await?;
            Ok(Output::render(ctx.json, &answer.body, |b| {
                render_list(b, "deliveries")
            }))
        }
        DeliveriesCommand::Retry { id } => {
            let answer = ctx
                .api
                .post(&format!("/v1/deliveries/{id}/retry"), &json!({}))
                .await?;
            Ok(Output::render(ctx.json, &answer.body, |b| {
                let status = text(b, "/status");
                if status.is_empty() {
                    format!("Delivery {id} is pending again.\n")
                } else {
                    format!("Delivery {id} is {status} again.\n")
                }
            }))
        }
    }
}

pub async fn run_dlq(ctx: &Ctx, args: DlqArgs) -> anyhow::Result<Output> {
    match args.command {
        DlqCommand::List { filters, paging } => {
            let mut query = filters.pairs();
            query.extend(paging.pairs());
            let answer = ctx.api.get("/v1/dlq", &query).await?;
            Ok(Output::render(ctx.json, &answer.body, |b| {
                render_list(b, "dead-letter queue")
            }))
        }
        DlqCommand::Replay { filters } => {
            let answer = ctx.api.post("/v1/dlq/replay", &filters.to_json()).await?;
            Ok(Output::render(ctx.json, &answer.body, render_replayed))
        }
    }
}

/// A page of deliveries and the footer (`N deliveries.`, next cursor).
pub fn render_list(body: &Value, what: &str) -> String {
    let (items, cursor) = list_items(body);
    let mut out = String::new();
    if items.is_empty() && cursor.is_none() {
        let _ = writeln!(out, "No deliveries in the {what} match.");
        return out;
    }
    out.push_str(&deliveries_table(items).render());
    list_footer(&mut out, items.len(), ("delivery", "deliveries"), cursor);
    out
}

/// `Requeued N dead deliveries.`, whatever the count field is called.
pub fn render_replayed(body: &Value) -> String {
    match find_count(body, &["requeued", "count", "replayed"]) {
        Some(n) => format!(
            "Requeued {}.\n",
            count_of(n, ("dead delivery", "dead deliveries"))
        ),
        None => format!("Requeued dead deliveries:\n{}", pretty(body)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_show_rows_and_footer() {
        let body = json!({"data": [{"id": "dlv_1", "event_id": "evt_1", "destination_id": "dst_1",
                                    "status": "dead", "attempt_count": 6}],
                          "next_cursor": "c2"});
        assert_eq!(
            render_list(&body, "deliveries"),
            "ID     EVENT  DESTINATION  STATUS  ATTEMPTS\n\
             dlv_1  evt_1  dst_1        dead    6\n\
             1 delivery.\nMore: add --cursor c2\n"
        );
        let empty = json!({"data": [], "next_cursor": null});
        assert_eq!(
            render_list(&empty, "dead-letter queue"),
            "No deliveries in the dead-letter queue match.\n"
        );
    }

    #[test]
    fn replay_counts_are_found() {
        assert_eq!(
            render_replayed(&json!({"requeued": 12})),
            "Requeued 12 dead deliveries.\n"
        );
        assert_eq!(
            render_replayed(&json!({"count": 1})),
            "Requeued 1 dead delivery.\n"
        );
        assert!(render_replayed(&json!({"a": 1, "b": 2})).contains("\"a\": 1"));
    }
}
