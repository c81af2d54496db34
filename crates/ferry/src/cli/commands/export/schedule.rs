//! `ferry export schedule create|list|get|update|delete|runs`: exports that
//! run on a cron schedule (`/v1/export-schedules`). The export each run
//! makes takes the same flags as `export create`; the server checks the cron
//! expression, the zone and the export, and names the field that is wrong,
//! so the CLI passes them on as given.

mod render;

use ferry_client::usage;
use ferry_core::ScheduleId;
use serde_json::{Map, Value, json};

use self::render::{render_created, render_list, render_runs, render_schedule};
use super::{EXPORT_FLAGS, ExportFlags};
use crate::cli::args::{Paging, read_spec_file};
use crate::cli::commands::{Ctx, Output};

/// Exports that run on a cron schedule.
#[derive(Debug, Clone, clap::Args)]
pub struct ScheduleArgs {
    #[command(subcommand)]
    pub command: ScheduleCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum ScheduleCommand {
    /// Schedule an export, from flags or a spec file
    /// (POST /v1/export-schedules).
    ///
    /// Each run makes the export the export flags describe (as `export
    /// create` takes them). Its --to or --path may hold {date} (YYYY-MM-DD)
    /// and {time} (HHMMSS), the run's scheduled time in the schedule's zone,
    /// and {id}, the run's export id.
    Create(Box<CreateArgs>),
    /// The export schedules, newest first (GET /v1/export-schedules).
    List {
        #[command(flatten)]
        paging: Paging,
    },
    /// Show a schedule and when it next runs
    /// (GET /v1/export-schedules/{id}).
    Get {
        /// The schedule (sch_…).
        #[arg(value_name = "SCH")]
        id: ScheduleId,
    },
    /// Change a schedule: only the fields given
    /// (PATCH /v1/export-schedules/{id}).
    Update(UpdateArgs),
    /// Delete a schedule; the exports it ran and their outputs stay
    /// (DELETE /v1/export-schedules/{id}).
    Delete {
        /// The schedule (sch_…).
        #[arg(value_name = "SCH")]
        id: ScheduleId,
    },
    /// The exports a schedule started, newest first, with the time each was
    /// due and its attempt (GET /v1/export-schedules/{id}/runs).
    Runs {
        /// The schedule (sch_…).
        #[arg(value_name = "SCH")]
        id: ScheduleId,
        #[command(flatten)]
        paging: Paging,
    },
}

/// `POST /v1/export-schedules`.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(group(clap::ArgGroup::new("spec").required(true).args(["source", "from_file"])))]
pub struct CreateArgs {
    /// Its name, unique in the organization.
    #[arg(long, value_name = "NAME", required_unless_present = "from_file")]
    pub name: Option<String>,
    /// When it runs: five fields (minute hour day-of-month month
    /// day-of-week), or six with seconds first: '0 2 * * *',
    /// '*/30 * * * * *'.
    #[arg(long, value_name = "EXPR", required_unless_present = "from_file")]
    pub cron: Option<String>,
    /// The IANA time zone the cron expression is read in, e.g.
    /// Europe/Berlin [server default: UTC].
    #[arg(long, value_name = "TZ")]
    pub timezone: Option<String>,
    /// Keep the newest N outputs; after each successful run the older ones
    /// are deleted at their target [default: keep every output].
    #[arg(long, value_name = "N")]
    pub keep_last: Option<u32>,
    /// Keep the outputs younger than D days [default: of any age].
    #[arg(long, value_name = "D")]
    pub max_age_days: Option<u32>,
    /// Create it stopped: it runs once enabled (`update --enable`).
    #[arg(long)]
    pub disabled: bool,
    #[command(flatten)]
    pub export: ExportFlags,
    /// The whole schedule as JSON, from FILE or - (stdin); no other flag
    /// allowed.
    #[arg(
        long,
        value_name = "FILE|-",
        conflicts_with_all = ["name", "cron", "timezone", "keep_last", "max_age_days", "disabled"],
        conflicts_with_all = EXPORT_FLAGS
    )]
    pub from_file: Option<String>,
}

/// `PATCH /v1/export-schedules/{id}`.
#[derive(Debug, Clone, clap::Args)]
#[command(group(
    clap::ArgGroup::new("change")
        .required(true)
        .multiple(true)
        .args(["name", "cron", "timezone", "keep_last", "max_age_days", "enable", "disable"])
))]
pub struct UpdateArgs {
    /// The schedule (sch_…).
    #[arg(value_name = "SCH")]
    pub id: ScheduleId,
    /// New name.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// New cron expression; the next run counts from now.
    #[arg(long, value_name = "EXPR")]
    pub cron: Option<String>,
    /// New time zone; the next run counts from now.
    #[arg(long, value_name = "TZ")]
    pub timezone: Option<String>,
    /// Keep the newest N outputs (the age limit stays as it is).
    #[arg(long, value_name = "N")]
    pub keep_last: Option<u32>,
    /// Keep the outputs younger than D days (the count limit stays as it
    /// is).
    #[arg(long, value_name = "D")]
    pub max_age_days: Option<u32>,
    /// Start running it again; the next run counts from now.
    #[arg(long)]
    pub enable: bool,
    /// Stop starting runs until --enable.
    #[arg(long, conflicts_with = "enable")]
    pub disable: bool,
}

/// `{"keep_last": N, "max_age_days": D}` with the limits given.
fn retention(keep_last: Option<u32>, max_age_days: Option<u32>) -> Map<String, Value> {
    let mut retention = Map::new();
    if let Some(n) = keep_last {
        retention.insert("keep_last".into(), json!(n));
    }
    if let Some(d) = max_age_days {
        retention.insert("max_age_days".into(), json!(d));
    }
    retention
}

impl CreateArgs {
    /// The request body: the spec file, or a schedule built from the flags.
    pub fn body(&self) -> anyhow::Result<Value> {
        if let Some(file) = &self.from_file {
            return read_spec_file(file);
        }
        let (Some(name), Some(cron)) = (&self.name, &self.cron) else {
            return Err(usage("give --name and --cron, or --from-file"));
        };
        let mut body = Map::new();
        body.insert("name".into(), json!(name));
        body.insert("cron".into(), json!(cron));
        if let Some(timezone) = &self.timezone {
            body.insert("timezone".into(), json!(timezone));
        }
        body.insert("export".into(), self.export.body()?);
        let retention = retention(self.keep_last, self.max_age_days);
        if !retention.is_empty() {
            body.insert("retention".into(), Value::Object(retention));
        }
        if self.disabled {
            body.insert("enabled".into(), json!(false));
        }
        Ok(Value::Object(body))
    }
}

impl UpdateArgs {
    /// Whether [`UpdateArgs::body`] needs the stored retention: the API
    /// replaces the retention as a whole, so a limit given alone is sent
    /// with the stored other one.
    fn needs_stored_retention(&self) -> bool {
        self.keep_last.is_some() != self.max_age_days.is_some()
    }

    /// The PATCH body: only the fields given. `stored` is the schedule's
    /// retention as the API shows it (`null` when not needed).
    pub fn body(&self, stored: &Value) -> Value {
        let mut body = Map::new();
        if let Some(name) = &self.name {
            body.insert("name".into(), json!(name));
        }
        if let Some(cron) = &self.cron {
            body.insert("cron".into(), json!(cron));
        }
        if let Some(timezone) = &self.timezone {
            body.insert("timezone".into(), json!(timezone));
        }
        if self.keep_last.is_some() || self.max_age_days.is_some() {
            let stored_limit = |name| {
                stored
                    .get(name)
                    .and_then(Value::as_u64)
                    .and_then(|n| u32::try_from(n).ok())
            };
            let retention = retention(
                self.keep_last.or_else(|| stored_limit("keep_last")),
                self.max_age_days.or_else(|| stored_limit("max_age_days")),
            );
            body.insert("retention".into(), Value::Object(retention));
        }
        if self.enable || self.disable {
            body.insert("enabled".into(), json!(self.enable));
        }
        Value::Object(body)
    }
}

fn path(id: &ScheduleId) -> String {
    format!("/v1/export-schedules/{id}")
}

pub async fn run(ctx: &Ctx, args: ScheduleArgs) -> anyhow::Result<Output> {
    match args.command {
        ScheduleCommand::Create(create) => {
            let answer = ctx
                .api
                .post("/v1/export-schedules", &create.body()?)
                .await?;
            Ok(Output::render(ctx.json, &answer.body, render_created))
        }
        ScheduleCommand::List { paging } => {
            let answer = ctx.api.get("/v1/export-schedules", &paging.pairs()).await?;
            Ok(Output::render(ctx.json, &answer.body, render_list))
        }
        ScheduleCommand::Get { id } => {
            let answer = ctx.api.get(&path(&id), &[]).await?;
            Ok(Output::render(ctx.json, &answer.body, render_schedule))
        }
        ScheduleCommand::Update(update) => {
            let path = path(&update.id);
            // Read, then write: a change to the other limit made in between
            // is overwritten, as with any read-modify-write by hand.
            let stored = if update.needs_stored_retention() {
                let answer = ctx.api.get(&path, &[]).await?;
                answer.body.get("retention").cloned().unwrap_or_default()
            } else {
                Value::Null
            };
            let answer = ctx.api.patch(&path, &update.body(&stored)).await?;
            Ok(Output::render(ctx.json, &answer.body, render_schedule))
        }
        ScheduleCommand::Delete { id } => {
            ctx.api.delete(&path(&id)).await?;
            Ok(Output::deleted(
                ctx.json,
                format!("Deleted export schedule {id}; the exports it ran stay.\n"),
            ))
        }
        ScheduleCommand::Runs { id, paging } => {
            let answer = ctx
                .api
                .get(&format!("{}/runs", path(&id)), &paging.pairs())
                .await?;
            Ok(Output::render(ctx.json, &answer.body, render_runs))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use clap::error::ErrorKind;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: ScheduleCommand,
    }

    fn parse(args: &[&str]) -> Result<ScheduleCommand, clap::Error> {
        Cli::try_parse_from(std::iter::once("ferry").chain(args.iter().copied())).map(|c| c.command)
    }

    fn kind(args: &[&str]) -> ErrorKind {
        parse(args).unwrap_err().kind()
    }

    fn create(args: &[&str]) -> CreateArgs {
        let argv = [&["create"][..], args].concat();
        match parse(&argv) {
            Ok(ScheduleCommand::Create(create)) => *create,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn update(args: &[&str]) -> UpdateArgs {
        let argv = [&["update", "sch_1"][..], args].concat();
        match parse(&argv) {
            Ok(ScheduleCommand::Update(update)) => update,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    const MINIMAL: [&str; 6] = ["--name", "n", "--cron", "0 2 * * *", "--source", "audit"];

    #[test]
    fn a_name_a_cron_and_a_source_leave_the_rest_to_the_server() {
        assert_eq!(
            create(&MINIMAL).body().unwrap(),
            json!({"name": "n", "cron": "0 2 * * *", "export": {"source": "audit"}})
        );
    }

    #[test]
    fn flags_make_the_whole_schedule() {
        let body = create(&[
            "--name",
            "nightly dead letters",
            "--cron",
            "*/2 * * * * *",
            "--timezone",
            "Europe/Berlin",
            "--keep-last",
            "30",
            "--max-age-days",
            "90",
            "--disabled",
            "--source",
            "deliveries",
            "--format",
            "csv",
            "--compression",
            "gzip",
            "--fields",
            "id,status",
            "--filter",
            "status=dead",
            "--since",
            "2026-11-01T10:00:00+02:00",
            "--redact",
            "last_error",
            "--redact-secrets",
            "--destination",
            "dst_abc",
            "--path",
            "ferry/dead-{date}.csv.gz",
        ])
        .body()
        .unwrap();
        assert_eq!(
            body,
            json!({
                "name": "nightly dead letters", "cron": "*/2 * * * * *",
                "timezone": "Europe/Berlin",
                "export": {
                    "source": "deliveries", "format": "csv", "compression": "gzip",
                    "fields": ["id", "status"],
                    "filter": {"status": "dead", "since": "2026-11-01T08:00:00Z"},
                    "redact": ["last_error"], "redact_secrets": true,
                    "target": {"destination_id": "dst_abc", "path": "ferry/dead-{date}.csv.gz"}
                },
                "retention": {"keep_last": 30, "max_age_days": 90},
                "enabled": false
            })
        );
        let body = create(&[&MINIMAL[..], &["--keep-last", "3", "--to", "a/{id}.csv"]].concat())
            .body()
            .unwrap();
        assert_eq!(body["retention"], json!({"keep_last": 3}));
        assert_eq!(body["export"]["target"], json!({"file": "a/{id}.csv"}));
        assert!(body.get("enabled").is_none(), "{body}");
    }

    #[test]
    fn the_export_flags_are_checked_as_for_export_create() {
        let e = create(&[&MINIMAL[..], &["--since", "1d", "--filter", "since=2d"]].concat())
            .body()
            .unwrap_err();
        assert!(e.downcast_ref::<ferry_client::UsageError>().is_some());
        assert!(e.to_string().contains("given twice"), "{e}");
        let create = |args: &[&str]| kind(&[&["create"][..], &MINIMAL[..], args].concat());
        assert_eq!(
            create(&["--to", "a.csv", "--destination", "dst_1"]),
            ErrorKind::ArgumentConflict
        );
        assert_eq!(create(&["--path", "p"]), ErrorKind::MissingRequiredArgument);
        assert_eq!(create(&["--wait"]), ErrorKind::UnknownArgument);
        assert_eq!(create(&["--keep-last", "all"]), ErrorKind::ValueValidation);
    }

    #[test]
    fn from_file_is_the_whole_schedule_and_excludes_every_other_flag() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("schedule.json");
        let spec = json!({"name": "n", "cron": "0 * * * *", "export": {"source": "audit"}});
        std::fs::write(&path, spec.to_string()).unwrap();
        let file = path.to_str().unwrap();
        assert_eq!(create(&["--from-file", file]).body().unwrap(), spec);
        for flag in [
            &["--name", "n"][..],
            &["--cron", "0 * * * *"][..],
            &["--timezone", "UTC"][..],
            &["--keep-last", "1"][..],
            &["--max-age-days", "1"][..],
            &["--disabled"][..],
            &["--source", "audit"][..],
            &["--format", "csv"][..],
            &["--filter", "status=dead"][..],
            &["--redact-secrets"][..],
            &["--to", "a.csv"][..],
            &["--destination", "dst_1"][..],
        ] {
            let args = [&["create", "--from-file", file][..], flag].concat();
            assert_eq!(kind(&args), ErrorKind::ArgumentConflict, "{flag:?}");
        }
    }

    #[test]
    fn create_needs_a_name_a_cron_and_a_source() {
        for args in [
            &[][..],
            &["--name", "n", "--cron", "0 * * * *"][..],
            &["--name", "n", "--source", "audit"][..],
            &["--cron", "0 * * * *", "--source", "audit"][..],
        ] {
            let argv = [&["create"][..], args].concat();
            assert_eq!(kind(&argv), ErrorKind::MissingRequiredArgument, "{args:?}");
        }
    }

    #[test]
    fn update_sends_only_the_fields_given() {
        assert_eq!(
            update(&["--cron", "0 3 * * *"]).body(&Value::Null),
            json!({"cron": "0 3 * * *"})
        );
        assert_eq!(
            update(&[
                "--name",
                "weekly",
                "--timezone",
                "Asia/Tokyo",
                "--keep-last",
                "4",
                "--max-age-days",
                "30",
                "--enable",
            ])
            .body(&Value::Null),
            json!({"name": "weekly", "timezone": "Asia/Tokyo",
                   "retention": {"keep_last": 4, "max_age_days": 30}, "enabled": true})
        );
        assert_eq!(
            update(&["--disable"]).body(&Value::Null),
            json!({"enabled": false})
        );
    }

    #[test]
    fn a_retention_limit_given_alone_keeps_the_stored_other() {
        let stored = json!({"keep_last": 30, "max_age_days": 90});
        let keep = update(&["--keep-last", "5"]);
        assert!(keep.needs_stored_retention());
        assert_eq!(
            keep.body(&stored),
            json!({"retention": {"keep_last": 5, "max_age_days": 90}})
        );
        assert_eq!(
            update(&["--max-age-days", "7"]).body(&json!({"keep_last": null, "max_age_days": 90})),
            json!({"retention": {"max_age_days": 7}})
        );
        let both = update(&["--keep-last", "1", "--max-age-days", "1"]);
        assert!(!both.needs_stored_retention());
        assert!(!update(&["--name", "n"]).needs_stored_retention());
    }

    #[test]
    fn update_needs_a_change_and_one_of_enable_or_disable() {
        assert_eq!(
            kind(&["update", "sch_1"]),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            kind(&["update", "sch_1", "--enable", "--disable"]),
            ErrorKind::ArgumentConflict
        );
        assert_eq!(
            kind(&["update", "--name", "n"]),
            ErrorKind::MissingRequiredArgument
        );
    }

    #[test]
    fn ids_must_be_schedule_ids() {
        for args in [
            &["get", "exp_1"][..],
            &["delete", "dst_1"][..],
            &["runs", "evt_1"][..],
            &["update", "exp_1", "--enable"][..],
        ] {
            assert_eq!(kind(args), ErrorKind::ValueValidation, "{args:?}");
        }
        let Ok(ScheduleCommand::Runs { id, paging }) =
            parse(&["runs", "sch_1", "--limit", "5", "--cursor", "c"])
        else {
            panic!("not runs");
        };
        assert_eq!(id.to_string(), "sch_1");
        assert_eq!(
            paging.pairs(),
            [("limit", "5".to_owned()), ("cursor", "c".to_owned())]
        );
    }
}
