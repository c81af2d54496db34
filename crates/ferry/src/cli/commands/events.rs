//! `ferry events get|replay`: an event with its deliveries
//! (`GET /v1/events/{id}`, as `ferry status evt_…` shows it) and its replay
//! (`POST /v1/events/{id}/replay`, as `ferry replay`).

use ferry_core::EventId;

use super::replay::ReplayArgs;
use super::status::render_event;
use super::{Ctx, Output};

/// Events: show one, replay one.
#[derive(Debug, Clone, clap::Args)]
pub struct EventsArgs {
    #[command(subcommand)]
    pub command: EventsCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum EventsCommand {
    /// Show an event and its deliveries (GET /v1/events/{id}).
    Get {
        /// The event (evt_…).
        #[arg(value_name = "EVT")]
        id: EventId,
    },
    /// Replay an event with the same webhook-id (POST /v1/events/{id}/replay).
    Replay(ReplayArgs),
}

pub async fn run(ctx: &Ctx, args: EventsArgs) -> anyhow::Result<Output> {
    match args.command {
        EventsCommand::Get { id } => {
            let answer = ctx.api.get(&format!("/v1/events/{id}"), &[]).await?;
            Ok(Output::render(ctx.json, &answer.body, render_event))
        }
        EventsCommand::Replay(replay) => super::replay::run(ctx, replay).await,
    }
}
