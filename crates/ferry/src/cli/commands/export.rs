//! `ferry export create|list|get|cancel|download|schedule`: data exports
//! (`/v1/exports`), and exports that run on a cron schedule
//! (`/v1/export-schedules`, in [`schedule`]). An export runs on the server
//! in the background; `create --wait` follows it with a progress bar until
//! it ends (Ctrl-C stops the waiting, not the export), and `download`
//! fetches a succeeded one's file, checked against its SHA-256. The server
//! checks the names (sources, formats, fields, filters) and lists the valid
//! ones when one is wrong, so the CLI passes them on as given and needs no
//! update when one is added.

mod download;
mod render;
mod schedule;

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::time::Duration;

use anyhow::Context as _;
use ferry_client::usage;
use ferry_core::{DestinationId, ExportId};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Map, Value, json};

pub use self::download::DownloadArgs;
use self::render::{
    bar_message, is_finished, render_finished, render_job, render_list, render_started,
};
pub use self::schedule::ScheduleArgs;
use super::{Ctx, Output};
use crate::cli::args::{Paging, parse_time, read_spec_file};
use crate::cli::render::text;

/// How often `create --wait` asks how the export is going.
const POLL_EVERY: Duration = Duration::from_millis(300);

/// Data exports: start one, follow it, list, show, cancel, download,
/// schedule.
#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    #[command(subcommand)]
    pub command: ExportCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum ExportCommand {
    /// Start an export from flags or a spec file, and with --wait follow it
    /// to the end (POST /v1/exports).
    Create(Box<CreateArgs>),
    /// The export history, newest first (GET /v1/exports).
    List {
        #[command(flatten)]
        paging: Paging,
    },
    /// Show an export: its progress, or what it produced (GET /v1/exports/{id}).
    Get {
        /// The export (exp_…).
        #[arg(value_name = "EXP")]
        id: ExportId,
    },
    /// Stop a queued or running export; what it wrote is removed
    /// (POST /v1/exports/{id}/cancel).
    Cancel {
        /// The export (exp_…).
        #[arg(value_name = "EXP")]
        id: ExportId,
    },
    /// Save a succeeded export's file, checked against its SHA-256
    /// (GET /v1/exports/{id}/download).
    Download(DownloadArgs),
    /// Exports that run on a cron schedule: create, list, show, change,
    /// delete, and the runs they started (/v1/export-schedules).
    Schedule(ScheduleArgs),
}

/// `POST /v1/exports`.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(group(clap::ArgGroup::new("spec").required(true).args(["source", "from_file"])))]
pub struct CreateArgs {
    #[command(flatten)]
    pub export: ExportFlags,
    /// Follow the export until it ends, with a progress bar on a terminal;
    /// exit 1 unless it succeeded. Ctrl-C stops waiting, not the export.
    #[arg(long)]
    pub wait: bool,
    /// The whole request body as JSON, from FILE or - (stdin); no other body
    /// flag allowed.
    #[arg(long, value_name = "FILE|-", conflicts_with_all = EXPORT_FLAGS)]
    pub from_file: Option<String>,
}

/// The ids of [`ExportFlags`]' arguments, which a `--from-file` excludes.
pub const EXPORT_FLAGS: [&str; 12] = [
    "source",
    "format",
    "compression",
    "fields",
    "filters",
    "since",
    "until",
    "redact",
    "redact_secrets",
    "to",
    "destination",
    "path",
];

/// An export described by flags: what `export create` starts, and what each
/// run of `export schedule create` makes.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ExportFlags {
    /// What to export: destinations, events, deliveries, attempts, audit,
    /// log (admin keys) or metrics (per destination and minute, hour or day).
    #[arg(long, value_name = "SOURCE")]
    pub source: Option<String>,
    /// csv, json, ndjson, yaml or text [server default: csv].
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// none, gzip or zip [server default: none].
    #[arg(long, value_name = "COMPRESSION")]
    pub compression: Option<String>,
    /// The columns to write, in order, comma-separated [server default: all
    /// of the source's].
    #[arg(long, value_name = "FIELD,…", value_delimiter = ',')]
    pub fields: Vec<String>,
    /// Only records matching NAME=VALUE (repeatable); by source: status,
    /// event_type (a glob), destination_id, action, actor, entity_id, kind,
    /// state, level, component (a glob), bucket (minute, hour, day); org_id
    /// (admin keys).
    #[arg(long = "filter", value_name = "NAME=VALUE", value_parser = parse_filter)]
    pub filters: Vec<(String, String)>,
    /// Records from this time on (RFC 3339, or an age like 15m, 2h, 7d).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub since: Option<String>,
    /// Records before this time (RFC 3339, or an age like 15m, 2h, 7d).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub until: Option<String>,
    /// Mask this field, or the value at this JSON pointer, e.g. /data/card
    /// (repeatable).
    #[arg(long, value_name = "FIELD|POINTER")]
    pub redact: Vec<String>,
    /// Also mask values that look like credentials, wherever they are.
    #[arg(long)]
    pub redact_secrets: bool,
    /// Write to this file on the server: relative to its first file root, or
    /// absolute under one [server default: exports/<source>-<id>.<ext>].
    #[arg(long, value_name = "PATH", conflicts_with = "destination")]
    pub to: Option<String>,
    /// Write to this `file`, `s3` or `sftp` destination (its credentials
    /// reused), at --path.
    #[arg(long, value_name = "DST")]
    pub destination: Option<DestinationId>,
    /// The path under --destination's directory, or the key in its bucket
    /// [default: exports/<source>-<id>.<ext>].
    #[arg(long, value_name = "PATH", requires = "destination")]
    pub path: Option<String>,
}

/// A `NAME=VALUE` filter argument.
fn parse_filter(raw: &str) -> Result<(String, String), String> {
    let (name, value) = raw
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=VALUE, got {raw:?}"))?;
    let name = name.trim();
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(format!("invalid filter name {name:?}"));
    }
    Ok((name.to_owned(), value.trim().to_owned()))
}

impl CreateArgs {
    /// The request body: the spec file, or an export built from the flags.
    pub fn body(&self) -> anyhow::Result<Value> {
        match &self.from_file {
            Some(file) => read_spec_file(file),
            None => self.export.body(),
        }
    }
}

impl ExportFlags {
    /// The export as `POST /v1/exports` takes it: only the fields given.
    pub fn body(&self) -> anyhow::Result<Value> {
        let Some(source) = &self.source else {
            return Err(usage("give --source, or --from-file"));
        };
        let mut body = Map::new();
        body.insert("source".into(), json!(source));
        if let Some(format) = &self.format {
            body.insert("format".into(), json!(format));
        }
        if let Some(compression) = &self.compression {
            body.insert("compression".into(), json!(compression));
        }
        if !self.fields.is_empty() {
            body.insert("fields".into(), json!(self.fields));
        }
        let filter = self.filter()?;
        if !filter.is_empty() {
            body.insert("filter".into(), json!(filter));
        }
        if !self.redact.is_empty() {
            body.insert("redact".into(), json!(self.redact));
        }
        if self.redact_secrets {
            body.insert("redact_secrets".into(), json!(true));
        }
        let target = match (&self.to, &self.destination, &self.path) {
            (Some(file), _, _) => Some(json!({ "file": file })),
            (None, Some(destination), Some(path)) => {
                Some(json!({ "destination_id": destination, "path": path }))
            }
            (None, Some(destination), None) => Some(json!({ "destination_id": destination })),
            _ => None,
        };
        if let Some(target) = target {
            body.insert("target".into(), target);
        }
        Ok(Value::Object(body))
    }

    /// `--filter` pairs with `--since`/`--until`; a name given twice is a
    /// usage error. A `since`/`until` filter takes the same ages as the flags.
    fn filter(&self) -> anyhow::Result<BTreeMap<String, String>> {
        let times = [("since", &self.since), ("until", &self.until)];
        let given = times
            .into_iter()
            .filter_map(|(name, time)| time.clone().map(|t| (name.to_owned(), t)));
        let mut filter = BTreeMap::new();
        for (name, value) in self.filters.iter().cloned().chain(given) {
            let value = if matches!(name.as_str(), "since" | "until") {
                parse_time(&value).map_err(|e| usage(format!("--filter {name}: {e}")))?
            } else {
                value
            };
            if filter.contains_key(&name) {
                return Err(usage(format!(
                    "the filter `{name}` is given twice (--filter {name}=… or --{name})"
                )));
            }
            filter.insert(name, value);
        }
        Ok(filter)
    }
}

pub async fn run(ctx: &Ctx, args: ExportArgs) -> anyhow::Result<Output> {
    match args.command {
        ExportCommand::Create(create) => {
            let answer = ctx.api.post("/v1/exports", &create.body()?).await?;
            if !create.wait {
                return Ok(Output::render(ctx.json, &answer.body, render_started));
            }
            let job = wait(ctx, answer.body).await?;
            let mut output = Output::render(ctx.json, &job, render_finished);
            output.ok = text(&job, "/status") == "succeeded";
            Ok(output)
        }
        ExportCommand::List { paging } => {
            let answer = ctx.api.get("/v1/exports", &paging.pairs()).await?;
            Ok(Output::render(ctx.json, &answer.body, render_list))
        }
        ExportCommand::Get { id } => {
            let answer = ctx.api.get(&format!("/v1/exports/{id}"), &[]).await?;
            Ok(Output::render(ctx.json, &answer.body, render_job))
        }
        ExportCommand::Cancel { id } => {
            let answer = ctx
                .api
                .post(&format!("/v1/exports/{id}/cancel"), &json!({}))
                .await?;
            Ok(Output::render(ctx.json, &answer.body, |_| {
                format!("Cancelled export {id}; what it wrote is removed.\n")
            }))
        }
        ExportCommand::Download(download) => download::run(ctx, download).await,
        ExportCommand::Schedule(schedule) => schedule::run(ctx, schedule).await,
    }
}

/// Polls the job until it ends, showing its progress on stderr when that is
/// a terminal (and not with `--json`: then nothing shows until the end).
/// Ctrl-C stops the waiting and leaves the export running.
async fn wait(ctx: &Ctx, job: Value) -> anyhow::Result<Value> {
    let id = text(&job, "/id");
    if id.is_empty() {
        anyhow::bail!("Ferry answered without the export's id:\n{job}");
    }
    let bar = if ctx.json || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(spinner_style());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar.println(format!(
            "Waiting for export {id}; Ctrl-C stops the waiting, not the export."
        ));
        bar
    };
    let follow = async {
        let mut job = job;
        loop {
            show(&bar, &job);
            if is_finished(&job) {
                return Ok(job);
            }
            tokio::time::sleep(POLL_EVERY).await;
            job = ctx
                .api
                .get(&format!("/v1/exports/{id}"), &[])
                .await
                .with_context(|| {
                    format!("cannot follow export {id} (it goes on: `ferry export get {id}`)")
                })?
                .body;
        }
    };
    let ended = tokio::select! {
        ended = follow => ended,
        Ok(()) = tokio::signal::ctrl_c() => Err(anyhow::anyhow!(
            "stopped waiting; export {id} goes on: follow it with `ferry export get {id}`, \
             stop it with `ferry export cancel {id}`"
        )),
    };
    bar.finish_and_clear();
    ended
}

/// Moves the bar to the job's rows once the total is known.
fn show(bar: &ProgressBar, job: &Value) {
    let total = job.pointer("/progress/total_rows").and_then(Value::as_u64);
    let rows = job
        .pointer("/progress/rows")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if let Some(total) = total {
        if bar.length() != Some(total) {
            bar.set_style(bar_style());
            bar.set_length(total);
        }
        bar.set_position(rows.min(total));
    }
    bar.set_message(bar_message(job));
}

/// Before the total is known: a spinner and the state.
fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

/// Rows against the total, with the server's percent, bytes and ETA.
fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} [{bar:20}] {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: ExportCommand,
    }

    fn create(args: &[&str]) -> CreateArgs {
        let argv = ["ferry", "create"].into_iter().chain(args.iter().copied());
        match Cli::try_parse_from(argv) {
            Ok(Cli {
                command: ExportCommand::Create(create),
            }) => *create,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn body(args: &[&str]) -> Value {
        create(args).body().unwrap()
    }

    #[test]
    fn the_source_alone_leaves_the_rest_to_the_server() {
        assert_eq!(
            body(&["--source", "deliveries"]),
            json!({"source": "deliveries"})
        );
    }

    #[test]
    fn flags_make_the_whole_request() {
        assert_eq!(
            body(&[
                "--source",
                "deliveries",
                "--format",
                "ndjson",
                "--compression",
                "gzip",
                "--fields",
                "id,status",
                "--fields",
                "last_error",
                "--filter",
                "status=dead",
                "--filter",
                "event_type = order.*",
                "--since",
                "2026-11-01T10:00:00+02:00",
                "--until",
                "2026-11-02T00:00:00Z",
                "--redact",
                "last_error",
                "--redact",
                "/data/card",
                "--redact-secrets",
                "--to",
                "exports/dead.ndjson.gz",
            ]),
            json!({
                "source": "deliveries", "format": "ndjson", "compression": "gzip",
                "fields": ["id", "status", "last_error"],
                "filter": {"status": "dead", "event_type": "order.*",
                           "since": "2026-11-01T08:00:00Z", "until": "2026-11-02T00:00:00Z"},
                "redact": ["last_error", "/data/card"], "redact_secrets": true,
                "target": {"file": "exports/dead.ndjson.gz"}
            })
        );
    }

    #[test]
    fn a_destination_target_names_its_path() {
        assert_eq!(
            body(&[
                "--source",
                "audit",
                "--destination",
                "dst_abc",
                "--path",
                "audit/2026.csv"
            ]),
            json!({"source": "audit",
                   "target": {"destination_id": "dst_abc", "path": "audit/2026.csv"}})
        );
        assert_eq!(
            body(&["--source", "audit", "--destination", "dst_abc"]),
            json!({"source": "audit", "target": {"destination_id": "dst_abc"}}),
            "the server names it"
        );
    }

    #[test]
    fn times_are_normalised_wherever_they_are_given() {
        let filter = &body(&["--source", "events", "--since", "2h"])["filter"];
        assert!(filter["since"].as_str().unwrap().ends_with('Z'), "{filter}");
        let filter = &body(&["--source", "events", "--filter", "until=1d"])["filter"];
        assert!(filter["until"].as_str().unwrap().ends_with('Z'), "{filter}");
        let e = create(&["--source", "events", "--filter", "since=yesterday"])
            .body()
            .unwrap_err();
        assert!(e.downcast_ref::<ferry_client::UsageError>().is_some());
        assert!(e.to_string().starts_with("--filter since: "), "{e}");
    }

    #[test]
    fn a_filter_given_twice_is_a_usage_error() {
        for args in [
            &[
                "--source", "events", "--since", "1d", "--filter", "since=2d",
            ][..],
            &[
                "--source",
                "deliveries",
                "--filter",
                "status=dead",
                "--filter",
                "status=failed",
            ][..],
        ] {
            let e = create(args).body().unwrap_err();
            assert!(e.downcast_ref::<ferry_client::UsageError>().is_some());
            assert!(e.to_string().contains("given twice"), "{e}");
        }
    }

    #[test]
    fn from_file_is_the_whole_body() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("export.json");
        std::fs::write(&path, r#"{"source": "events", "incremental": true}"#).unwrap();
        let spec = create(&["--from-file", path.to_str().unwrap(), "--wait"]);
        assert!(spec.wait);
        assert_eq!(
            spec.body().unwrap(),
            json!({"source": "events", "incremental": true})
        );
        std::fs::write(&path, "[1]").unwrap();
        let e = create(&["--from-file", path.to_str().unwrap()])
            .body()
            .unwrap_err();
        assert!(e.to_string().contains("JSON object"), "{e}");
    }

    #[test]
    fn from_file_excludes_every_body_flag() {
        use clap::error::ErrorKind;
        let kind = |args: &[&str]| {
            let argv = ["ferry", "create"].into_iter().chain(args.iter().copied());
            Cli::try_parse_from(argv).unwrap_err().kind()
        };
        for flag in [
            &["--source", "events"][..],
            &["--format", "csv"][..],
            &["--compression", "gzip"][..],
            &["--fields", "id"][..],
            &["--filter", "status=dead"][..],
            &["--since", "1d"][..],
            &["--until", "1d"][..],
            &["--redact", "id"][..],
            &["--redact-secrets"][..],
            &["--to", "a.csv"][..],
            &["--destination", "dst_1", "--path", "a.csv"][..],
        ] {
            let args = [&["--from-file", "x.json"][..], flag].concat();
            assert_eq!(kind(&args), ErrorKind::ArgumentConflict, "{flag:?}");
        }
        assert_eq!(kind(&[]), ErrorKind::MissingRequiredArgument);
        assert_eq!(
            kind(&[
                "--source",
                "events",
                "--to",
                "a.csv",
                "--destination",
                "dst_1",
                "--path",
                "p"
            ]),
            ErrorKind::ArgumentConflict
        );
        assert_eq!(
            kind(&["--source", "events", "--path", "p"]),
            ErrorKind::MissingRequiredArgument
        );
    }

    #[test]
    fn filters_are_name_value_pairs() {
        assert_eq!(
            parse_filter("event_type=a=b").unwrap(),
            ("event_type".to_owned(), "a=b".to_owned())
        );
        assert_eq!(
            parse_filter("actor=").unwrap(),
            ("actor".to_owned(), String::new())
        );
        for bad in ["status", "=dead", "a b=c", "a-b=c"] {
            assert!(parse_filter(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn download_takes_a_file_stdout_or_nothing() {
        let parse = |args: &[&str]| {
            let argv = ["ferry", "download"]
                .into_iter()
                .chain(args.iter().copied());
            match Cli::try_parse_from(argv) {
                Ok(Cli {
                    command: ExportCommand::Download(d),
                }) => d,
                other => panic!("{args:?}: {other:?}"),
            }
        };
        let d = parse(&["exp_1", "-o", "-"]);
        assert_eq!(d.output.as_deref(), Some(std::path::Path::new("-")));
        let d = parse(&["exp_1", "--output", "a.csv", "--force"]);
        assert!(d.force);
        assert_eq!(parse(&["exp_1"]).output, None);
    }
}
