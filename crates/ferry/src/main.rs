//! The `ferry` binary: `serve` runs the gateway; the other commands are
//! clients of its HTTP API (see [`cli`]) and the load tool.

mod cli;
mod serve;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

/// mimalloc: the server allocates many short-lived buffers per request and
/// per delivery across threads, where it is markedly faster than glibc's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Run Ferry (API, dispatcher) on the embedded store.
    Serve(serve::ServeArgs),
    #[command(flatten)]
    Client(cli::ClientCommand),
    /// Measure ingest rate, acknowledgement latency and delivery throughput.
    Loadtest(ferry_loadtest::LoadtestArgs),
    /// A local trace collector that prints what Ferry exports as span trees.
    Traces(ferry_loadtest::traces::TracesArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::Client(cmd) => cli::run_client(cli.client, cmd).await,
        Command::Loadtest(args) => ferry_loadtest::run_loadtest(args).await,
        Command::Traces(args) => ferry_loadtest::traces::run_traces(args).await,
    };
    result.unwrap_or_else(|e| {
        // `eprintln!` would panic if stderr cannot be written (a full disk):
        // the exit code still tells.
        let _ = writeln!(std::io::stderr(), "error: {e:#}");
        ExitCode::FAILURE
    })
}
