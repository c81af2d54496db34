//! The `ferry` binary: client commands over the HTTP API and the load tool
//! (see [`cli`]).

mod cli;

use std::process::ExitCode;

use clap::Parser;

/// Ferry: the event and export delivery gateway.
#[derive(Parser)]
#[command(name = "ferry", version, about)]
struct Cli {
    #[command(flatten)]
    client: cli::ClientOpts,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    #[command(flatten)]
    Client(cli::ClientCommand),
    /// Measure ingest rate, acknowledgement latency and delivery throughput.
    Loadtest(cli::LoadtestArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Client(cmd) => cli::run_client(cli.client, cmd).await,
        Command::Loadtest(args) => cli::run_loadtest(args).await,
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        ExitCode::FAILURE
    })
}
