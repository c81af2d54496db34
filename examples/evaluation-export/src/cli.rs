//! The command line: what `evaluation-export run` takes.

use std::convert::Infallible;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use clap::{ArgGroup, Args, Parser, Subcommand};
use ferry::port::DestinationId;

#[derive(Debug, Parser)]
#[command(
    name = "evaluation-export",
    version,
    about = "Scores a classifier's predictions, keeps every result, and exports each one \
             through Ferry as an `evaluation.completed` event."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run evaluations, store and export each result, and report how the
    /// exports stand. Exports left waiting by an earlier run are sent first.
    Run(RunArgs),
}

#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("target")
        .required(true)
        .args(["export_to", "ferry_url"]),
))]
pub struct RunArgs {
    /// Evaluations to run; 0 only sends what waits and reports.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub evaluations: u32,

    /// The webhook that receives one `evaluation.completed` event per
    /// evaluation, delivered by a Ferry embedded in this process. Created
    /// as a Ferry destination on first use, reused afterwards.
    #[arg(long, value_name = "URL")]
    pub export_to: Option<String>,

    /// Where the results database and the embedded Ferry's store live.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "./evaluation-data",
        env = "EVALUATION_EXPORT_DATA_DIR"
    )]
    pub data_dir: PathBuf,

    /// Then wait up to this long for the exports to be delivered, failed
    /// or dead before reporting (the embedded Ferry delivers only while
    /// the service runs).
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub wait: u64,

    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,

    /// Allow a webhook on this machine or a private network (off by
    /// default: Ferry refuses such addresses, against request forgery).
    #[arg(long, conflicts_with = "ferry_url")]
    pub allow_private_networks: bool,

    /// First finish the latest run that was interrupted (a crash, a
    /// stop): score and export the evaluations it had not stored.
    #[arg(long)]
    pub resume: bool,

    /// Which variants of the predictions to score: evaluation `n` of a
    /// seed is always the same variant.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u32,

    /// A CSV of labelled predictions (id, label 0/1, probability) instead
    /// of the bundled one.
    #[arg(long, value_name = "FILE")]
    pub dataset: Option<PathBuf>,

    /// Export through the Ferry server at this URL instead of an embedded
    /// one (events wait in a local spool while it is unreachable).
    #[arg(
        long,
        value_name = "URL",
        requires_all = ["api_key", "destination"],
        help_heading = "Remote Ferry"
    )]
    pub ferry_url: Option<String>,

    /// The server's API key (scopes ingest, read, manage).
    #[arg(
        long,
        value_name = "KEY",
        env = "FERRY_API_KEY",
        hide_env_values = true,
        help_heading = "Remote Ferry"
    )]
    pub api_key: Option<ApiKey>,

    /// The server's destination to export to.
    #[arg(
        long,
        value_name = "dst_…",
        requires = "ferry_url",
        help_heading = "Remote Ferry"
    )]
    pub destination: Option<DestinationId>,

    /// The local spool (default: `<data-dir>/spool`).
    #[arg(
        long,
        value_name = "DIR",
        requires = "ferry_url",
        help_heading = "Remote Ferry"
    )]
    pub spool_dir: Option<PathBuf>,
}

/// An API key: never printed, not even by `Debug`.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl FromStr for ApiKey {
    type Err = Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(ApiKey(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn one_target_is_required_and_remote_flags_go_together() {
        let parse =
            |args: &[&str]| Cli::try_parse_from([&["evaluation-export", "run"], args].concat());
        assert!(parse(&[]).is_err());
        assert!(
            parse(&[
                "--export-to",
                "https://a.example/h",
                "--ferry-url",
                "https://f"
            ])
            .is_err()
        );
        assert!(parse(&["--ferry-url", "https://f", "--api-key", "k"]).is_err());
        assert!(
            parse(&[
                "--export-to",
                "https://a.example/h",
                "--destination",
                "dst_01jq3v2a4c6e8g0j2m4p6r8t0v"
            ])
            .is_err()
        );
        let Command::Run(remote) = parse(&[
            "--ferry-url",
            "https://f",
            "--api-key",
            "fk_secret",
            "--destination",
            "dst_01jq3v2a4c6e8g0j2m4p6r8t0v",
        ])
        .unwrap()
        .command;
        assert!(!format!("{remote:?}").contains("fk_secret"));
        let Command::Run(local) = parse(&["--export-to", "https://a.example/h"])
            .unwrap()
            .command;
        assert_eq!(local.evaluations, 1000);
        assert_eq!(local.data_dir, PathBuf::from("./evaluation-data"));
        assert!(!local.allow_private_networks);
    }
}
