//! `ferry loadtest`: measures a Ferry server. It starts one (or targets
//! `--url`), runs a loopback webhook receiver, creates a destination for it,
//! sends N events from C concurrent clients while recording acknowledgement
//! latency, then waits until the receiver has every event. Progress bars on
//! stderr; a table and a JSON summary on stdout (`--json`: JSON only).

mod ingest;
mod receiver;
mod report;
mod server;

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use serde_json::{Value, json};

use self::ingest::{IngestConfig, IngestResult};
use self::receiver::Receiver;
use self::report::{E2eSummary, IngestSummary, Summary};
use self::server::ManagedServer;
use super::client::{ApiClient, usage};

/// Event type routed to the receiver's destination (its filter is `load.*`).
const ROUTED_TYPE: &str = "load.test";
/// Event type no destination of the tool matches (ingest-only runs).
const UNROUTED_TYPE: &str = "loadnodst.test";
/// Per-request timeout of the load clients.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Acknowledgement rate and latency only (events match no destination).
    Ingest,
    /// Delivery throughput: first send until the receiver has every event.
    E2e,
    /// Both, from the same run.
    Both,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Ingest => "ingest",
            Mode::E2e => "e2e",
            Mode::Both => "both",
        }
    }

    fn delivers(self) -> bool {
        self != Mode::Ingest
    }
}

/// Measure ingest req/s, p50/p99 acknowledgement latency and end-to-end delivery throughput.
///
/// Without --url, starts `ferry serve` on a temporary data dir and a free
/// loopback port (it inherits this environment, so FERRY_* settings apply)
/// and stops it at the end. Exit code 1 when any event failed or did not
/// arrive before --timeout-s.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadtestArgs {
    /// Events to send.
    #[arg(
        short = 'n',
        long = "events",
        value_name = "N",
        default_value_t = 20_000
    )]
    pub events: u64,
    /// Concurrent clients.
    #[arg(
        short = 'c',
        long,
        value_name = "C",
        default_value_t = 100,
        value_parser = clap::value_parser!(u32).range(1..=10_000)
    )]
    pub concurrency: u32,
    /// Target the Ferry server at URL instead of starting one (needs an API key
    /// with the ingest and manage scopes; the receiver is on 127.0.0.1).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// API key for --url.
    #[arg(
        long,
        env = "FERRY_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub api_key: Option<String>,
    /// What to measure.
    #[arg(long, value_enum, default_value_t = Mode::Both)]
    pub mode: Mode,
    /// The receiver answers each delivery after this many ms.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub receiver_delay_ms: u64,
    /// Approximate size of each event's data, in bytes.
    #[arg(long, value_name = "B", default_value_t = 200)]
    pub payload_bytes: usize,
    /// Send K events per POST /v1/events/batch (0: one per POST /v1/events).
    #[arg(
        long,
        value_name = "K",
        default_value_t = 0,
        value_parser = clap::value_parser!(u16).range(0..=1000)
    )]
    pub batch: u16,
    /// Per-destination delivery concurrency asked for (`max_in_flight`).
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_in_flight: u32,
    /// Give up after this many seconds from the first send.
    #[arg(long, value_name = "S", default_value_t = 300)]
    pub timeout_s: u64,
    /// Binary to start as the server [default: this executable].
    #[arg(long, value_name = "PATH")]
    pub server_bin: Option<PathBuf>,
    /// Keep the started server's data dir and log.
    #[arg(long)]
    pub keep_data: bool,
    /// Print only the JSON summary.
    #[arg(long)]
    pub json: bool,
}

/// Runs the load test; errors are printed here and turned into the exit code.
pub async fn run_loadtest(args: LoadtestArgs) -> anyhow::Result<ExitCode> {
    match run(&args).await {
        Ok(summary) => {
            let mut out = String::new();
            if !args.json {
                out.push_str(&summary.render());
                out.push('\n');
            }
            out.push_str(&summary.to_json());
            super::print_stdout(&out);
            Ok(if summary.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Err(e) => Ok(super::report_error(&e)),
    }
}

/// Where the events go.
enum Target {
    Started(Box<ManagedServer>),
    Existing { url: String, api_key: String },
}

impl Target {
    fn base_url(&self) -> &str {
        match self {
            Target::Started(s) => s.base_url(),
            Target::Existing { url, .. } => url,
        }
    }

    fn api_key(&self) -> &str {
        match self {
            Target::Started(s) => s.api_key(),
            Target::Existing { api_key, .. } => api_key,
        }
    }
}

async fn run(args: &LoadtestArgs) -> anyhow::Result<Summary> {
    if args.events == 0 {
        return Err(usage("--events must be at least 1"));
    }
    let concurrency = args.concurrency as usize;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .tcp_nodelay(true)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .context("cannot build the HTTP client")?;

    let progress =
        MultiProgress::with_draw_target(if args.json || !std::io::stderr().is_terminal() {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        });
    let note = |msg: String| {
        if !args.json {
            progress.suspend(|| eprintln!("{msg}"));
        }
    };

    let target = match &args.url {
        Some(url) => {
            let api_key = args.api_key.clone().ok_or_else(|| {
                usage("--url needs an API key: pass --api-key or set FERRY_API_KEY")
            })?;
            Target::Existing {
                url: url.clone(),
                api_key,
            }
        }
        None => {
            let bin = match &args.server_bin {
                Some(bin) => bin.clone(),
                None => std::env::current_exe().context("cannot locate the ferry executable")?,
            };
            note(format!("Starting {} serve …", bin.display()));
            let server = ManagedServer::start(&bin, &http).await?;
            note(format!("Server ready at {}.", server.base_url()));
            Target::Started(Box::new(server))
        }
    };
    let api = ApiClient::with_http(http.clone(), target.base_url(), target.api_key())?;

    let outcome = measure(args, &http, &api, &target, &progress).await;

    let peak_rss_kb = match &target {
        Target::Started(s) => s.peak_rss_kb(),
        Target::Existing { .. } => None,
    };
    if let Target::Started(mut server) = target {
        if args.keep_data
            && let Some(dir) = server.keep_data()
        {
            note(format!("Server data and log kept in {}.", dir.display()));
        }
        server.stop().await;
    }
    let mut summary = outcome?;
    summary.server_peak_rss_mb = peak_rss_kb.map(report::kib_to_mb);
    Ok(summary)
}

/// The measured part: receiver, destination, ingest, wait for deliveries.
async fn measure(
    args: &LoadtestArgs,
    http: &reqwest::Client,
    api: &ApiClient,
    target: &Target,
    progress: &MultiProgress,
) -> anyhow::Result<Summary> {
    let receiver = Receiver::start(Duration::from_millis(args.receiver_delay_ms)).await?;
    let destination = if args.mode.delivers() {
        Some(create_destination(api, &receiver, args).await?)
    } else {
        None
    };

    let style = ProgressStyle::with_template(
        "{prefix:>10} [{bar:40}] {pos}/{len} {rate:>9} eta {eta} {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .with_key(
        "rate",
        |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{:.0}/s", state.per_sec());
        },
    )
    .progress_chars("=> ");
    let sends = progress.add(ProgressBar::new(args.events));
    sends.set_style(style.clone());
    sends.set_prefix("sent");
    let deliveries = args.mode.delivers().then(|| {
        let bar = progress.add(ProgressBar::new(args.events));
        bar.set_style(style);
        bar.set_prefix("delivered");
        bar
    });

    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.timeout_s);
    let cfg = IngestConfig {
        base_url: api.base_url().clone(),
        api_key: target.api_key().to_owned(),
        event_type: if args.mode.delivers() {
            ROUTED_TYPE
        } else {
            UNROUTED_TYPE
        }
        .to_owned(),
        events: args.events,
        concurrency: args.concurrency as usize,
        batch: usize::from(args.batch),
        payload_bytes: args.payload_bytes,
        run_id: server::random_hex(8),
        request_timeout: REQUEST_TIMEOUT,
        deadline,
    };
    // Show deliveries arriving while the events are still being sent.
    let ticker = deliveries.clone().map(|bar| {
        let seen = receiver.counter();
        tokio::spawn(async move {
            loop {
                bar.set_position(seen.get());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    });
    let ingested = ingest::run(http.clone(), cfg, sends.clone()).await;
    sends.finish();
    if let Some(t) = ticker {
        t.abort();
    }

    let e2e = match &deliveries {
        Some(bar) => Some(wait_for_deliveries(&receiver, &ingested, deadline, bar).await),
        None => None,
    };

    if let (Some(id), Target::Existing { .. }) = (&destination, target) {
        // Stop routing `load.*` to a receiver that is about to disappear.
        if let Err(e) = api.delete(&format!("/v1/destinations/{id}")).await
            && !args.json
        {
            progress.suspend(|| eprintln!("warning: could not delete destination {id}: {e}"));
        }
    }

    let ingest_summary = (args.mode != Mode::E2e).then(|| ingest_summary(&ingested));
    let ok = ingested.error_count() == 0
        && !ingested.timed_out
        && e2e.as_ref().is_none_or(|e| e.complete);
    Ok(Summary {
        events: args.events,
        concurrency: args.concurrency as usize,
        batch: usize::from(args.batch),
        mode: args.mode.name(),
        payload_bytes: args.payload_bytes,
        receiver_delay_ms: args.receiver_delay_ms,
        server: match target {
            Target::Started(_) => "started".to_owned(),
            Target::Existing { url, .. } => url.clone(),
        },
        ingest: ingest_summary,
        e2e,
        server_peak_rss_mb: None,
        ok,
    })
}

/// `POST /v1/destinations`: a webhook to the receiver for `load.*`, default retries.
async fn create_destination(
    api: &ApiClient,
    receiver: &Receiver,
    args: &LoadtestArgs,
) -> anyhow::Result<String> {
    let mut config = json!({ "url": receiver.url() });
    // Leave the server's default timeout unless the receiver is slower than it.
    if args.receiver_delay_ms + 5_000 > 10_000 {
        config["timeout_ms"] = json!(args.receiver_delay_ms + 5_000);
    }
    let body = json!({
        "name": "ferry loadtest receiver",
        "kind": "webhook",
        "config": config,
        "filter": { "event_types": ["load.*"] },
        "max_in_flight": args.max_in_flight,
    });
    let created = api
        .post("/v1/destinations", &body)
        .await
        .context("cannot create the load test destination")?;
    created
        .body
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .context("the destination answer has no id")
}

/// Polls the receiver until it has every accepted event or the deadline passes.
async fn wait_for_deliveries(
    receiver: &Receiver,
    ingested: &IngestResult,
    deadline: Instant,
    bar: &ProgressBar,
) -> E2eSummary {
    let expected = ingested.accepted();
    // With every id known, count exactly those; else count distinct arrivals.
    let exact = ingested.accepted_without_id == 0;
    bar.set_length(expected);
    let arrived = || {
        if exact {
            receiver.arrived(&ingested.accepted_ids)
        } else {
            (receiver.distinct().min(expected), receiver.last_arrival())
        }
    };
    let (received, last) = loop {
        bar.set_position(receiver.distinct().min(expected));
        if receiver.distinct() >= expected || Instant::now() >= deadline {
            let (received, last) = arrived();
            if received >= expected || Instant::now() >= deadline {
                break (received, last);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    bar.set_position(received);
    bar.finish();
    let complete = received >= expected;
    let end = if complete {
        last.unwrap_or(ingested.finished)
    } else {
        Instant::now()
    };
    let elapsed = end.saturating_duration_since(ingested.started);
    E2eSummary {
        seconds: report::round3(elapsed.as_secs_f64()),
        deliveries_per_s: report::rate(received, elapsed),
        expected,
        received,
        duplicates: receiver.duplicates(),
        receiver_requests: receiver.requests(),
        without_webhook_id: receiver.without_id(),
        drain_after_ingest_s: report::round3(
            end.saturating_duration_since(ingested.finished)
                .as_secs_f64(),
        ),
        complete,
    }
}

fn ingest_summary(r: &IngestResult) -> IngestSummary {
    let elapsed = r.finished.saturating_duration_since(r.started);
    let p = report::percentiles(&r.latency_us);
    IngestSummary {
        seconds: report::round3(elapsed.as_secs_f64()),
        events_per_s: report::rate(r.accepted() + r.duplicates, elapsed),
        requests: r.requests,
        accepted: r.accepted(),
        duplicates: r.duplicates,
        p50_ms: p.p50_ms,
        p90_ms: p.p90_ms,
        p99_ms: p.p99_ms,
        max_ms: p.max_ms,
        errors: r.error_count(),
        errors_by_cause: r.errors.clone(),
        timed_out: r.timed_out,
    }
}
