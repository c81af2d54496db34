//! The `ferry` command line apart from `serve` and `loadtest`: client
//! commands over the HTTP API (`send`, `status`, `events`, `deliveries`,
//! `dlq`, `replay`, `destinations`, `sources`, `orgs`, `api-keys`, `audit`,
//! `export`, `config`, `admin`) with tables by default and `--json` for scripts.
//!
//! Exit codes: 0 success, 1 the API refused or a check failed, 2 a usage
//! mistake (bad arguments, no API key).

mod args;
mod commands;
mod render;

use std::process::ExitCode;

use self::commands::Ctx;
use self::commands::admin::AdminArgs;
use self::commands::api_keys::ApiKeysArgs;
use self::commands::audit::AuditArgs;
use self::commands::config::ConfigArgs;
use self::commands::deliveries::{DeliveriesArgs, DlqArgs};
use self::commands::destinations::DestinationsArgs;
use self::commands::events::EventsArgs;
use self::commands::export::ExportArgs;
use self::commands::orgs::OrgsArgs;
use self::commands::replay::ReplayArgs;
use self::commands::send::SendArgs;
use self::commands::sources::SourcesArgs;
use self::commands::status::StatusArgs;
use ferry_client::api::DEFAULT_URL;
use ferry_client::exit::{print_stdout, report_error};
use ferry_client::{ApiClient, ApiError, usage};

/// Client commands (everything except `serve`), as clap subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ClientCommand {
    /// Send an event (POST /v1/events).
    Send(SendArgs),
    /// Show an event and its deliveries, or a delivery and its attempts.
    Status(StatusArgs),
    /// Show an event and its deliveries, or replay it.
    Events(EventsArgs),
    /// List deliveries, or retry one.
    Deliveries(DeliveriesArgs),
    /// The dead-letter queue: list it, or requeue it.
    Dlq(DlqArgs),
    /// Replay an event with the same webhook-id (POST /v1/events/{id}/replay).
    Replay(ReplayArgs),
    /// Create, list and test destinations.
    Destinations(DestinationsArgs),
    /// Inbound sources partners post signed events to: list, create, show, delete.
    Sources(SourcesArgs),
    /// Organizations (admin key): list, create, show, update.
    Orgs(OrgsArgs),
    /// API keys: list, create (the key is shown once), delete.
    ApiKeys(ApiKeysArgs),
    /// The audit log: who did what, when (GET /v1/audit).
    Audit(AuditArgs),
    /// Data exports: start one (and follow it), list, show, cancel, download,
    /// schedule.
    Export(ExportArgs),
    /// The whole configuration as one YAML or JSON document (admin key):
    /// export it, secrets left out or sealed; import it, or plan the import.
    Config(ConfigArgs),
    /// Operator actions: `rotate-master-key`.
    Admin(AdminArgs),
}

/// How to reach the server, and how to print. Global: accepted before or after
/// the subcommand.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClientOpts {
    /// Ferry server URL [env: FERRY_URL] [default: http://127.0.0.1:8080].
    // Not a clap `env`/default: `loadtest --url` shares this id and must see
    // only a URL given on the command line (else it starts its own server).
    #[arg(long, global = true, value_name = "URL")]
    pub url: Option<String>,
    /// API key (fk_…).
    #[arg(
        long,
        env = "FERRY_API_KEY",
        hide_env_values = true,
        global = true,
        value_name = "KEY"
    )]
    pub api_key: Option<String>,
    /// Print the raw JSON response (for scripts).
    #[arg(long, global = true)]
    pub json: bool,
}

impl ClientOpts {
    /// `--url`, else `FERRY_URL`, else the default.
    pub fn resolved_url(&self) -> String {
        self.url
            .clone()
            .or_else(|| {
                std::env::var("FERRY_URL")
                    .ok()
                    .filter(|u| !u.trim().is_empty())
            })
            .unwrap_or_else(|| DEFAULT_URL.to_owned())
    }
}

/// Runs one client command; errors are printed here and turned into the exit code.
pub async fn run_client(opts: ClientOpts, cmd: ClientCommand) -> anyhow::Result<ExitCode> {
    match execute(&opts, cmd).await {
        Ok(output) => {
            print_stdout(&output.text);
            Ok(if output.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Err(e) => {
            // Scripts get the API's error document too.
            if opts.json
                && let Some(body) = e.downcast_ref::<ApiError>().and_then(|a| a.body.as_ref())
            {
                print_stdout(&render::pretty(body));
            }
            Ok(report_error(&e))
        }
    }
}

async fn execute(opts: &ClientOpts, cmd: ClientCommand) -> anyhow::Result<commands::Output> {
    let api_key = opts
        .api_key
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| usage("no API key: set FERRY_API_KEY or pass --api-key"))?;
    let ctx = Ctx {
        api: ApiClient::new(&opts.resolved_url(), api_key)?,
        json: opts.json,
    };
    match cmd {
        ClientCommand::Send(args) => commands::send::run(&ctx, args).await,
        ClientCommand::Status(args) => commands::status::run(&ctx, args).await,
        ClientCommand::Events(args) => commands::events::run(&ctx, args).await,
        ClientCommand::Deliveries(args) => commands::deliveries::run(&ctx, args).await,
        ClientCommand::Dlq(args) => commands::deliveries::run_dlq(&ctx, args).await,
        ClientCommand::Replay(args) => commands::replay::run(&ctx, args).await,
        ClientCommand::Destinations(args) => commands::destinations::run(&ctx, args).await,
        ClientCommand::Sources(args) => commands::sources::run(&ctx, args).await,
        ClientCommand::Orgs(args) => commands::orgs::run(&ctx, args).await,
        ClientCommand::ApiKeys(args) => commands::api_keys::run(&ctx, args).await,
        ClientCommand::Audit(args) => commands::audit::run(&ctx, args).await,
        ClientCommand::Export(args) => commands::export::run(&ctx, args).await,
        ClientCommand::Config(args) => commands::config::run(&ctx, args).await,
        ClientCommand::Admin(args) => commands::admin::run(&ctx, args).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory as _, Parser};
    use ferry_client::UsageError;
    use ferry_loadtest::LoadtestArgs;

    /// The shape `main.rs` wires: client options flattened at the top level.
    #[derive(Debug, Parser)]
    #[command(name = "ferry")]
    struct Cli {
        #[command(flatten)]
        client: ClientOpts,
        #[command(subcommand)]
        command: Command,
    }

    #[derive(Debug, clap::Subcommand)]
    enum Command {
        #[command(flatten)]
        Client(ClientCommand),
        Loadtest(LoadtestArgs),
    }

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("ferry").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    #[test]
    fn the_command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_go_before_or_after_the_subcommand() {
        let cli = parse(&[
            "--url",
            "http://a:1",
            "deliveries",
            "list",
            "--json",
            "--limit",
            "5",
        ]);
        assert_eq!(cli.client.url.as_deref(), Some("http://a:1"));
        assert!(cli.client.json);
        let cli = parse(&[
            "send",
            "order.created",
            "--api-key",
            "fk_1",
            "--url",
            "http://b:2",
        ]);
        assert_eq!(cli.client.url.as_deref(), Some("http://b:2"));
        assert_eq!(cli.client.api_key.as_deref(), Some("fk_1"));
    }

    #[test]
    fn loadtest_starts_its_own_server_unless_given_a_url() {
        let Command::Loadtest(args) = parse(&["loadtest", "-n", "10"]).command else {
            panic!("not loadtest");
        };
        assert_eq!(args.url, None);
        assert_eq!((args.events, args.concurrency), (10, 100));
        for argv in [
            &["loadtest", "--url", "http://c:3"][..],
            &["--url", "http://c:3", "loadtest"][..],
        ] {
            let Command::Loadtest(args) = parse(argv).command else {
                panic!("not loadtest");
            };
            assert_eq!(args.url.as_deref(), Some("http://c:3"), "{argv:?}");
        }
        let Command::Loadtest(args) = parse(&["loadtest", "--json", "--mode", "ingest"]).command
        else {
            panic!("not loadtest");
        };
        assert!(args.json);
    }

    #[test]
    fn destination_create_keeps_the_server_url_apart() {
        let cli = parse(&[
            "--url",
            "http://ferry:8080",
            "destinations",
            "create",
            "--name",
            "n",
            "--webhook-url",
            "https://hook",
            "--header",
            "X-A=1",
            "--event-type",
            "a.*",
        ]);
        assert_eq!(cli.client.url.as_deref(), Some("http://ferry:8080"));
        let Command::Client(ClientCommand::Destinations(d)) = cli.command else {
            panic!("not destinations");
        };
        let commands::destinations::DestinationsCommand::Create(create) = d.command else {
            panic!("not create");
        };
        assert_eq!(create.webhook_url.as_deref(), Some("https://hook"));
    }

    #[test]
    fn usage_mistakes_are_rejected_by_clap() {
        for argv in [
            &["status"][..],
            &["replay", "dlv_1"][..],
            &["deliveries", "list", "--status", "lost"][..],
            &["deliveries", "list", "--limit", "0"][..],
            &["deliveries", "list", "--since", "yesterday"][..],
            &["destinations", "create", "--name", "n"][..],
            &[
                "destinations",
                "create",
                "--from-file",
                "x.json",
                "--name",
                "n",
            ][..],
            &["destinations", "create"][..],
            &["send", "t", "--destination", "evt_1"][..],
            &["loadtest", "--batch", "1001"][..],
            &["orgs", "update", "org_1"][..],
            &["orgs", "get", "dst_1"][..],
            &["api-keys", "create", "--name", "ci"][..],
            &[
                "api-keys",
                "create",
                "--name",
                "ci",
                "--scope",
                "everything",
            ][..],
            &["sources", "create", "--name", "s"][..],
            &["sources", "create", "--scheme", "hmac-sha256"][..],
            &["audit", "--since", "yesterday"][..],
            &["events", "replay", "dlv_1"][..],
            &["export", "create"][..],
            &["export", "create", "--format", "csv"][..],
            &[
                "export",
                "create",
                "--from-file",
                "x.json",
                "--source",
                "events",
            ][..],
            &["export", "create", "--from-file", "-", "--redact-secrets"][..],
            &["export", "create", "--from-file", "-", "--to", "a.csv"][..],
            &[
                "export",
                "create",
                "--from-file",
                "-",
                "--filter",
                "status=dead",
            ][..],
            &[
                "export",
                "create",
                "--source",
                "events",
                "--to",
                "a.csv",
                "--destination",
                "dst_1",
                "--path",
                "a.csv",
            ][..],
            &["export", "create", "--source", "events", "--path", "a.csv"][..],
            &[
                "export",
                "create",
                "--source",
                "events",
                "--destination",
                "exp_1",
                "--path",
                "p",
            ][..],
            &[
                "export", "create", "--source", "events", "--filter", "status",
            ][..],
            &[
                "export",
                "create",
                "--source",
                "events",
                "--since",
                "yesterday",
            ][..],
            &["export", "get", "dst_1"][..],
            &["export", "cancel"][..],
            &["export", "download"][..],
            &["export", "download", "evt_1"][..],
            &["export", "schedule", "create", "--source", "audit"][..],
            &[
                "export",
                "schedule",
                "create",
                "--name",
                "n",
                "--cron",
                "0 * * * *",
                "--source",
                "audit",
                "--wait",
            ][..],
            &["export", "schedule", "get", "exp_1"][..],
            &["export", "schedule", "update", "sch_1"][..],
            &[
                "export",
                "schedule",
                "update",
                "sch_1",
                "--enable",
                "--disable",
            ][..],
            &["export", "schedule", "runs"][..],
            &["config", "export", "--include-secrets"][..],
            &["config", "export", "--passphrase-file", "pass.txt"][..],
            &["config", "export", "--format", "toml"][..],
            &["config", "import"][..],
            &["config", "import", "a.yaml", "b.yaml"][..],
        ] {
            let full = std::iter::once("ferry").chain(argv.iter().copied());
            assert!(Cli::try_parse_from(full).is_err(), "{argv:?} was accepted");
        }
    }

    #[tokio::test]
    async fn a_missing_key_names_the_variable() {
        let opts = ClientOpts {
            url: Some("http://127.0.0.1:9".into()),
            ..ClientOpts::default()
        };
        let cmd = ClientCommand::Status(StatusArgs { id: "evt_1".into() });
        let e = execute(&opts, cmd).await.unwrap_err();
        assert!(e.to_string().contains("FERRY_API_KEY"), "{e}");
        assert!(e.downcast_ref::<UsageError>().is_some());
    }

    #[tokio::test]
    async fn an_unreachable_server_is_named() {
        // A port nobody listens on: bind, read the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let opts = ClientOpts {
            url: Some(url.clone()),
            api_key: Some("fk_test".into()),
            json: false,
        };
        let cmd = ClientCommand::Status(StatusArgs { id: "evt_1".into() });
        let e = execute(&opts, cmd).await.unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&format!("cannot reach Ferry at {url}: ")),
            "{e}"
        );
    }
}
