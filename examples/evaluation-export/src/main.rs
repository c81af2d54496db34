//! `evaluation-export`: the composition root. It reads the command line,
//! opens the results database, builds a Ferry — embedded in this process
//! on `<data-dir>/ferry`, or a client of a remote server — takes the port
//! of the export destination, and hands both to the use case
//! ([`evaluation_export::export`]), which never sees anything of Ferry but
//! the port.

mod cli;
mod summary;

use std::io::IsTerminal as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser as _;
use evaluation_export::evaluation::Dataset;
use evaluation_export::export::{Exporter, RunReport};
use evaluation_export::results::Results;
use ferry::port::DestinationId;
use ferry::{Ferry, NewDestination};
use serde_json::Value;
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command, RunArgs};
use crate::summary::{Progress, Summary};

/// What the audit trail of the embedded Ferry calls this service.
const ACTOR: &str = "evaluation-export";
/// How long deliveries in flight get to finish when the service stops;
/// the rest are kept for the next start.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .init();
    let done = match cli.command {
        Command::Run(args) => run(args).await,
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("evaluation-export: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let dataset = load_dataset(args.dataset.as_deref())?;
    std::fs::create_dir_all(&args.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            args.data_dir.display()
        )
    })?;
    let results = Results::open(&args.data_dir.join("results.db")).await?;
    let (ferry, destination) = connect(&args).await?;
    let done = evaluate_and_export(&args, &dataset, &results, &ferry, &destination)
        .await
        .and_then(|summary| summary.print(args.json));
    // Whatever happened, stop Ferry: what is not delivered yet is kept for
    // the next start.
    let stopped = ferry.shutdown(SHUTDOWN_GRACE).await;
    results.close().await;
    done?;
    stopped.context("Ferry did not stop cleanly")
}

fn load_dataset(path: Option<&Path>) -> anyhow::Result<Dataset> {
    let Some(path) = path else {
        return Ok(Dataset::bundled()?);
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the data set {}", path.display()))?;
    let name = path
        .file_stem()
        .map_or_else(|| "dataset".into(), |s| s.to_string_lossy().into_owned());
    Dataset::parse(name, &text).with_context(|| format!("invalid data set {}", path.display()))
}

/// The Ferry to export through and the destination to export to.
async fn connect(args: &RunArgs) -> anyhow::Result<(Ferry, DestinationId)> {
    if let Some(url) = &args.ferry_url {
        // Remote mode: exports wait in a local spool while the server is
        // unreachable.
        let (Some(key), Some(destination)) = (&args.api_key, &args.destination) else {
            bail!("--ferry-url needs --api-key (or FERRY_API_KEY) and --destination");
        };
        let spool = args
            .spool_dir
            .clone()
            .unwrap_or_else(|| args.data_dir.join("spool"));
        let ferry = Ferry::remote(url, key.expose(), &spool)
            .await
            .with_context(|| format!("cannot use the Ferry server at {url}"))?;
        return Ok((ferry, destination.clone()));
    }
    let Some(url) = &args.export_to else {
        bail!("give --export-to URL (or --ferry-url for a Ferry server)");
    };
    let dir = args.data_dir.join("ferry");
    let ferry = Ferry::builder(&dir)
        .allow_private_networks(args.allow_private_networks)
        .actor(ACTOR)
        .open()
        .await
        .with_context(|| format!("cannot start the embedded Ferry in {}", dir.display()))?;
    match webhook(&ferry, url, args.allow_private_networks).await {
        Ok(destination) => Ok((ferry, destination)),
        Err(error) => {
            let _ = ferry.shutdown(SHUTDOWN_GRACE).await;
            Err(error)
        }
    }
}

/// The embedded Ferry's webhook destination for `url`: the one an earlier
/// run created, or a new one.
async fn webhook(ferry: &Ferry, url: &str, private_allowed: bool) -> anyhow::Result<DestinationId> {
    let known = ferry
        .destinations()
        .list()
        .await
        .context("cannot list Ferry's destinations")?;
    if let Some(d) = known
        .iter()
        .find(|d| d.kind == "webhook" && d.config.get("url").and_then(Value::as_str) == Some(url))
    {
        return Ok(d.id.clone());
    }
    match ferry
        .destinations()
        .create(NewDestination::webhook(url))
        .await
    {
        Ok(d) => {
            eprintln!("Created the webhook destination {} for {url}.", d.id);
            if let Some(secret) = &d.signing_secret {
                eprintln!(
                    "Its signing secret (shown this once; it verifies `webhook-signature`): {secret}"
                );
            }
            Ok(d.id)
        }
        Err(ferry::Error::Invalid { message, details }) => {
            let mut text = format!("--export-to {url} is not a usable webhook:");
            if details.is_empty() {
                text.push_str(&format!(" {message}"));
            }
            for d in &details {
                text.push_str(&format!("\n  {}: {}", d.field, d.message));
            }
            if !private_allowed && details.iter().any(|d| d.message.contains("private")) {
                text.push_str(
                    "\n  (a receiver on this machine or a private network needs --allow-private-networks)",
                );
            }
            bail!(text)
        }
        Err(error) => Err(error).context("cannot create the webhook destination"),
    }
}

/// Sends what earlier runs left, finishes an interrupted run if asked, runs
/// the new evaluations, then reads how the exports stand.
async fn evaluate_and_export(
    args: &RunArgs,
    dataset: &Dataset,
    results: &Results,
    ferry: &Ferry,
    destination: &DestinationId,
) -> anyhow::Result<Summary> {
    let port = ferry
        .port(destination)
        .context("cannot open Ferry's port")?;
    let exporter = Exporter::new(results, &port, destination);
    let mut progress = Progress::new(args.wait > 0);
    let mut summary = Summary::new(destination, results.path());

    summary.add_caught_up(&exporter.catch_up().await?);
    if args.resume {
        match results.unfinished_run(destination).await? {
            Some(run) if run.dataset != dataset.name() => bail!(
                "the interrupted run {} scored the data set {:?}; resume it with that --dataset",
                run.id,
                run.dataset
            ),
            Some(run) => {
                eprintln!("Resuming run {} ({} evaluations).", run.id, run.planned);
                let report = exporter
                    .run(dataset, &run, &mut |s| progress.show(s))
                    .await?;
                summary.add_run(run.id, &report, true);
            }
            None => eprintln!("No interrupted run to resume."),
        }
    }
    if args.evaluations > 0 {
        let run = results
            .start_run(destination, dataset.name(), args.seed, args.evaluations)
            .await?;
        let report: RunReport = exporter
            .run(dataset, &run, &mut |s| progress.show(s))
            .await?;
        summary.add_run(run.id, &report, false);
    }
    let wait = Duration::from_secs(args.wait);
    summary.set_exports(exporter.settle(wait, &mut |s| progress.show(s)).await?);
    Ok(summary)
}
