//! `ferry serve`: loads the layered configuration (defaults → `ferry.toml`
//! → `FERRY_*` env → flags), starts the server and stops it gracefully on
//! SIGTERM or SIGINT.
//!
//! What it prints goes to stdout and never panics when stdout cannot be
//! written (a full disk, a closed pipe): the address line is then lost, but
//! the admin key generated on first start is shown nowhere else, so failing
//! to print it stops the start with an error that says how to get an admin
//! key instead.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use ferry_server::Config;
use ferry_server::config::Role;
use ferry_server::oplog::{self, OperationalLog};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Where the embedded store lives (default ./ferry-data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Address of the HTTP API (default 127.0.0.1:8080).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Configuration file (default ./ferry.toml when it exists).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// What this process does: all, ingest, worker or scheduler (separate
    /// roles need FERRY_DATABASE_URL).
    #[arg(long, value_enum)]
    pub role: Option<RoleArg>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RoleArg {
    All,
    Ingest,
    Worker,
    Scheduler,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::All => Role::All,
            RoleArg::Ingest => Role::Ingest,
            RoleArg::Worker => Role::Worker,
            RoleArg::Scheduler => Role::Scheduler,
        }
    }
}

/// Every configuration key, as the env provider names them (`dispatch.max_in_flight`).
fn known_keys() -> BTreeSet<String> {
    fn walk(prefix: &str, value: &serde_json::Value, out: &mut BTreeSet<String>) {
        if let serde_json::Value::Object(map) = value {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                if v.is_object() {
                    walk(&key, v, out);
                } else {
                    out.insert(key);
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(
        "",
        &serde_json::to_value(Config::default()).unwrap_or_default(),
        &mut out,
    );
    out
}

pub fn load_config(args: &ServeArgs) -> anyhow::Result<Config> {
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    match &args.config {
        Some(path) => {
            if !path.exists() {
                anyhow::bail!("configuration file {} does not exist", path.display());
            }
            figment = figment.merge(Toml::file(path));
        }
        None => figment = figment.merge(Toml::file("ferry.toml")),
    }
    let known = known_keys();
    // `FERRY_URL`/`FERRY_API_KEY` belong to the CLI client: only keys that
    // name a setting are read here. Nested settings use `__`:
    // `FERRY_DISPATCH__MAX_IN_FLIGHT=256`.
    figment = figment.merge(
        Env::prefixed("FERRY_")
            .split("__")
            .filter(move |k| known.contains(&k.as_str().to_ascii_lowercase())),
    );
    let mut config: Config = figment.extract().context("invalid configuration")?;
    if let Some(dir) = &args.data_dir {
        config.data_dir = dir.clone();
    }
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(role) = args.role {
        config.role = role.into();
    }
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    Ok(config)
}

pub async fn run(args: ServeArgs) -> anyhow::Result<std::process::ExitCode> {
    let config = load_config(&args)?;
    init_logging(&config);
    let data_dir = config.data_dir.clone();
    let running = ferry_server::start(config).await?;
    let mut out = std::io::stdout();
    if let Some(key) = &running.generated_admin_key {
        let shown = writeln!(
            out,
            "Ferry created its data directory at {}.",
            data_dir.display()
        )
        .and_then(|()| {
            writeln!(
                out,
                "Admin API key (shown once, keep it safe):\n\n    {}\n",
                key.expose()
            )
        })
        .and_then(|()| out.flush());
        if let Err(error) = shown {
            // The key exists only as a hash now: serving on would leave an
            // instance nobody can administer. Stop, and say how to recover.
            if let Err(stop) = running.stop().await {
                tracing::warn!(error = %stop, "Stopping after the admin key could not be shown failed.");
            }
            anyhow::bail!(
                "cannot show the generated admin API key on stdout ({error}); it is shown \
                 nowhere else. Start again with stdout writable and FERRY_BOOTSTRAP_ADMIN_KEY \
                 set to a secret of your choosing (at least 32 characters): it becomes an admin key"
            );
        }
    }
    // The address is in the log too: a stdout that cannot be written (a
    // full disk) must not stop the server, so a failure here is ignored.
    let _ =
        writeln!(out, "Ferry is listening on http://{}", running.addr).and_then(|()| out.flush());
    let token = running.shutdown_token();
    tokio::spawn(async move {
        wait_for_signal().await;
        token.cancel();
    });
    running.wait().await?;
    Ok(std::process::ExitCode::SUCCESS)
}

/// Logs to stderr and, unless `log.enabled` is off, as JSON lines to the
/// operational log in the data directory; `RUST_LOG` filters both (default
/// `info`).
///
/// A log line that cannot be written (stderr on a full disk, a closed pipe)
/// is dropped. The formatter's default is to report such a failure with
/// `eprintln!`, which panics when stderr itself is what failed — inside
/// whichever task was logging: an HTTP handler (the connection closed with
/// no answer) or the ingest writer (gone until a restart). Losing log lines
/// is acceptable; losing requests is not.
fn init_logging(config: &Config) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=warn,sqlx=warn"));
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .log_internal_errors(false);
    let kept = config.log.enabled.then(|| {
        let log = OperationalLog::new(oplog::directory(&config.data_dir), &config.log);
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_span_list(false)
            .with_writer(move || log.clone())
            .log_internal_errors(false)
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(stderr)
        .with(kept)
        .init();
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    // figment's own test helper decides the closure's error type.
    #[allow(clippy::result_large_err)]
    fn config_layers_env_over_file_and_flags_over_env() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ferry.toml");
        std::fs::write(
            &file,
            "max_payload_bytes = 2048\n[dispatch]\nmax_in_flight = 7\n",
        )
        .unwrap();
        figment::Jail::expect_with(|jail| {
            jail.set_env("FERRY_DISPATCH__MAX_IN_FLIGHT", "9");
            jail.set_env("FERRY_URL", "http://ignored");
            jail.set_env("FERRY_ALLOW_PRIVATE_NETWORKS", "true");
            let args = ServeArgs {
                data_dir: None,
                listen: Some("127.0.0.1:9999".parse().unwrap()),
                config: Some(file.clone()),
                role: None,
            };
            let c = load_config(&args).unwrap();
            assert_eq!(c.max_payload_bytes, 2048);
            assert_eq!(c.dispatch.max_in_flight, 9);
            assert!(c.allow_private_networks);
            assert_eq!(c.listen.port(), 9999);
            Ok(())
        });
    }

    #[test]
    fn bad_values_are_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ferry.toml");
        std::fs::write(&file, "max_payload_bytes = 0\n").unwrap();
        let mut args = ServeArgs {
            data_dir: None,
            listen: None,
            config: Some(file.clone()),
            role: None,
        };
        let error = format!("{:#}", load_config(&args).unwrap_err());
        assert!(error.contains("max_payload_bytes"), "{error}");
        std::fs::write(&file, "").unwrap();
        args.role = Some(RoleArg::Worker);
        let error = format!("{:#}", load_config(&args).unwrap_err());
        assert!(error.contains("FERRY_DATABASE_URL"), "{error}");
    }

    #[test]
    fn the_redis_queue_needs_postgres_and_a_claim_idle_above_the_delivery_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ferry.toml");
        let args = ServeArgs {
            data_dir: None,
            listen: None,
            config: Some(file.clone()),
            role: None,
        };
        let pg = "database_url = \"postgres://db/ferry\"\nmaster_key = \"7e7e\"\n";
        for (toml, expected) in [
            (
                "queue_url = \"redis://r\"\n".to_owned(),
                "needs FERRY_DATABASE_URL",
            ),
            (
                format!("{pg}queue_url = \"redis://r\"\nqueue_claim_idle_secs = 300\n"),
                "must exceed the longest delivery timeout (300 s)",
            ),
        ] {
            std::fs::write(&file, toml).unwrap();
            let error = format!("{:#}", load_config(&args).unwrap_err());
            assert!(error.contains(expected), "{error}");
        }
        std::fs::write(&file, format!("{pg}queue_url = \"redis://r\"\n")).unwrap();
        let config = load_config(&args).unwrap();
        assert_eq!(config.queue_claim_idle_secs, 330);
        assert_eq!(config.queue_prefix, "ferry");
    }
}
