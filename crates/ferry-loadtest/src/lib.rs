//! `ferry loadtest`: measures a Ferry server. It starts one (or targets
//! `--url`), creates a destination — a webhook to a loopback receiver of its
//! own, or with `--kind` a broker or database at `--target`, into an object
//! of the run's own — sends N events from C concurrent clients while
//! recording acknowledgement latency, then waits until every event is
//! delivered (counted by the receiver, or from Ferry's side for the other
//! kinds and read back with the kind's client). `--baseline` then sends the
//! same messages straight through the kind's client and compares the rates.
//! Progress bars on stderr; a table and a JSON summary on stdout (`--json`:
//! JSON only).

mod baseline;
mod delivered;
mod destination;
mod export;
mod ingest;
mod kinds;
mod receiver;
mod report;
mod server;
pub mod traces;

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ferry_client::{ApiClient, usage};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use serde_json::json;

use self::destination::{create_destination, remove};
use self::ingest::{IngestConfig, IngestResult};
use self::kinds::{BrokerTarget, Fixture, Kind};
use self::receiver::Receiver;
use self::report::{IngestSummary, Summary, Window};
use self::server::ManagedServer;

/// Event type routed to the tool's destination (its filter is `load.*`).
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
    /// Delivery throughput: first send until every event is delivered.
    E2e,
    /// Both, from the same run.
    Both,
    /// Delivery throughput alone: the events are stored first for the
    /// destination while it is disabled, then it is enabled and timed to
    /// the last delivery (ingest takes no CPU from delivery).
    Drain,
    /// Export speed: the events are stored as for `drain`, then one export
    /// of them (`--export-*`) is timed from `POST /v1/exports` to its end.
    Export,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Ingest => "ingest",
            Mode::E2e => "e2e",
            Mode::Both => "both",
            Mode::Drain => "drain",
            Mode::Export => "export",
        }
    }

    /// The events are stored for a disabled destination before anything is
    /// timed.
    fn stores_first(self) -> bool {
        matches!(self, Mode::Drain | Mode::Export)
    }

    fn delivers(self) -> bool {
        self != Mode::Ingest
    }
}

/// Measure ingest req/s, p50/p99 acknowledgement latency and end-to-end delivery throughput.
///
/// Without --url, starts `ferry serve` on a temporary data dir and a free
/// loopback port (it inherits this environment, so FERRY_* settings apply)
/// and stops it at the end. Deliveries go to a loopback webhook receiver, or
/// with --kind to a broker or database at --target, into a queue, stream,
/// key, topic or table of the run's own (removed at the end). Exit code 1
/// when any event failed, did not arrive before --timeout-s, or was not
/// read back.
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
    /// Destination kind to deliver to.
    #[arg(long, value_enum, default_value_t = Kind::Webhook)]
    pub kind: Kind,
    /// The broker or database for --kind, e.g. amqp://127.0.0.1:5672,
    /// nats://127.0.0.1:4222, redis://127.0.0.1:6379, mqtt://127.0.0.1:1883,
    /// postgres://postgres@127.0.0.1:5432/test, mysql://root@127.0.0.1:3306/test
    /// (a login in the URL becomes the destination's basic auth).
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// After the Ferry run, send the same messages straight through the kind's
    /// client (same payloads, concurrency -c and acknowledgements, no Ferry)
    /// and report its rate and Ferry's deliveries/s divided by it.
    #[arg(long)]
    pub baseline: bool,
    /// The webhook receiver answers each delivery after this many ms.
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
    /// Per-destination delivery concurrency asked for (`max_in_flight`);
    /// without it the destination has the server's default, as a user's
    /// destination would.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_in_flight: Option<u32>,
    /// --mode export: the source to export.
    #[arg(long, value_name = "SOURCE", default_value = "deliveries")]
    pub export_source: String,
    /// --mode export: csv, json, ndjson, yaml or text.
    #[arg(long, value_name = "FORMAT", default_value = "csv")]
    pub export_format: String,
    /// --mode export: gzip, zip or none.
    #[arg(long, value_name = "C", default_value = "gzip")]
    pub export_compression: String,
    /// --mode export: the export's `target` as JSON, e.g.
    /// '{"destination_id":"dst_…","path":"load"}' on a server given with
    /// --url [default: a file under the server's export root].
    #[arg(long, value_name = "JSON", value_parser = parse_json_object)]
    pub export_target: Option<serde_json::Value>,
    /// --mode export: restart the started server between storing the events
    /// and exporting them, so that the export runs in a process that has
    /// not just taken a million events in (as a nightly export on a
    /// long-running server does) and its memory is the export's own.
    #[arg(long)]
    pub export_after_restart: bool,
    /// Give up after this many seconds from the first send (--mode drain:
    /// sending, then delivering from the enable, each get this long; --mode
    /// export: sending, then the export).
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

fn parse_json_object(raw: &str) -> Result<serde_json::Value, String> {
    match serde_json::from_str(raw) {
        Ok(v @ serde_json::Value::Object(_)) => Ok(v),
        Ok(_) => Err("expected a JSON object".to_owned()),
        Err(e) => Err(format!("not JSON: {e}")),
    }
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
            ferry_client::exit::print_stdout(&out);
            Ok(if summary.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Err(e) => Ok(ferry_client::exit::report_error(&e)),
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

/// The broker or database of `--kind`/`--target`, checked against the other
/// options; `None` for the webhook kind.
fn broker_target(args: &LoadtestArgs) -> anyhow::Result<Option<BrokerTarget>> {
    if args.kind == Kind::Webhook {
        if args.target.is_some() {
            return Err(usage(
                "--target is for the broker and database kinds: add --kind amqp, nats, redis, mqtt, postgres or mysql",
            ));
        }
        if args.baseline {
            return Err(usage(
                "--baseline compares Ferry with a broker's or database's own client: add --kind and --target",
            ));
        }
        return Ok(None);
    }
    let kind = args.kind.name();
    let Some(raw) = &args.target else {
        return Err(usage(format!(
            "--kind {kind} needs --target, the URL of the {kind} server to deliver to"
        )));
    };
    if !args.mode.delivers() {
        return Err(usage(format!(
            "--mode ingest delivers nothing: use --mode e2e, both or drain with --kind {kind}"
        )));
    }
    if args.receiver_delay_ms > 0 {
        return Err(usage(
            "--receiver-delay-ms applies to the webhook receiver only",
        ));
    }
    BrokerTarget::parse(args.kind, raw).map(Some)
}

async fn run(args: &LoadtestArgs) -> anyhow::Result<Summary> {
    if args.events == 0 {
        return Err(usage("--events must be at least 1"));
    }
    let broker = broker_target(args)?;
    if args.export_after_restart && (args.mode != Mode::Export || args.url.is_some()) {
        return Err(usage(
            "--export-after-restart needs --mode export and a server the tool starts (no --url)",
        ));
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
    let run_id = server::random_hex(8);

    let outcome = measure(&Run {
        args,
        broker: broker.as_ref(),
        run_id: &run_id,
        http: &http,
        api: &api,
        target: &target,
        progress: &progress,
    })
    .await;

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

    if let (true, Some(broker)) = (args.baseline, &broker) {
        // After the server stopped, so that it takes no CPU from the client.
        let bar = progress.add(ProgressBar::new(args.events));
        bar.set_style(bar_style());
        bar.set_prefix("baseline");
        let name = format!("{run_id}_b");
        let base = baseline::run(
            broker,
            &name,
            args.events,
            concurrency,
            args.payload_bytes,
            bar,
        )
        .await
        .context("the baseline run failed")?;
        summary.ok &= base.errors == 0 && base.read_back.complete;
        summary.ferry_to_client = summary
            .e2e
            .as_ref()
            .filter(|_| base.msgs_per_s > 0.0)
            .map(|e| (e.deliveries_per_s / base.msgs_per_s * 100.0).round() / 100.0);
        summary.baseline = Some(base);
    }
    Ok(summary)
}

/// The progress bars' look.
fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:>10} [{bar:40}] {pos}/{len} {rate:>9} eta {eta} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key(
            "rate",
            |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0}/s", state.per_sec());
            },
        )
        .progress_chars("=> ")
}

/// Runs `work` until it ends or Ctrl-C is pressed; then it is dropped and
/// an error returned, so that what the run created is still removed.
async fn until_interrupted<T>(
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::select! {
        done = work => done,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    }
}

/// Where the deliveries go, and how they are counted.
enum Sink {
    /// The tool's webhook receiver counts what it gets.
    Receiver(Receiver),
    /// Ferry counts what it delivered; the kind's client reads it back.
    Broker(Box<Fixture>),
}

/// What one measured run works with.
struct Run<'a> {
    args: &'a LoadtestArgs,
    broker: Option<&'a BrokerTarget>,
    /// Makes the event ids and the broker-side names of this run unique.
    run_id: &'a str,
    http: &'a reqwest::Client,
    api: &'a ApiClient,
    target: &'a Target,
    progress: &'a MultiProgress,
}

/// The measured part: the sink and its destination, ingest, and the wait
/// for deliveries; the broker-side object is removed whatever happens,
/// Ctrl-C included.
async fn measure(run: &Run<'_>) -> anyhow::Result<Summary> {
    let Run {
        args,
        broker,
        run_id,
        ..
    } = *run;
    let mut sink = match broker {
        _ if !args.mode.delivers() => None,
        None => Some(Sink::Receiver(
            Receiver::start(Duration::from_millis(args.receiver_delay_ms)).await?,
        )),
        Some(broker) => Some(Sink::Broker(Box::new(
            Fixture::create(broker, run_id, ROUTED_TYPE).await?,
        ))),
    };
    let outcome = until_interrupted(deliver(run, &mut sink)).await;
    if let Some(Sink::Broker(fixture)) = sink {
        fixture
            .remove()
            .await
            .context("cannot remove the load test's broker-side object")?;
    }
    outcome
}

async fn deliver(run: &Run<'_>, sink: &mut Option<Sink>) -> anyhow::Result<Summary> {
    let Run {
        args,
        broker,
        run_id,
        http,
        api,
        target,
        progress,
    } = *run;
    let destination = match (&*sink, broker) {
        (Some(Sink::Receiver(receiver)), _) => {
            let mut config = json!({ "url": receiver.url() });
            // Leave the server's default timeout unless the receiver is slower than it.
            if args.receiver_delay_ms + 5_000 > 10_000 {
                config["timeout_ms"] = json!(args.receiver_delay_ms + 5_000);
            }
            Some(create_destination(api, args, "webhook", config, json!({"type": "none"})).await?)
        }
        (Some(Sink::Broker(fixture)), Some(broker)) => {
            let config = fixture.config(broker);
            Some(create_destination(api, args, args.kind.name(), config, broker.auth()).await?)
        }
        _ => None,
    };

    let sends = progress.add(ProgressBar::new(args.events));
    sends.set_style(bar_style());
    sends.set_prefix("sent");
    let deliveries = (destination.is_some() && args.mode != Mode::Export).then(|| {
        let bar = progress.add(ProgressBar::new(args.events));
        bar.set_style(bar_style());
        bar.set_prefix("delivered");
        bar
    });

    if let (Some(id), true) = (&destination, args.mode.stores_first()) {
        api.post(&format!("/v1/destinations/{id}/disable"), &json!({}))
            .await
            .context("cannot disable the load test destination before sending")?;
    }
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
        destination: destination.clone().filter(|_| args.mode.stores_first()),
        events: args.events,
        concurrency: args.concurrency as usize,
        batch: usize::from(args.batch),
        payload_bytes: args.payload_bytes,
        run_id: run_id.to_owned(),
        request_timeout: REQUEST_TIMEOUT,
        deadline,
    };
    // Show deliveries arriving while the events are still being sent.
    let ticker = match (&deliveries, &*sink, &destination) {
        _ if args.mode.stores_first() => None,
        (Some(bar), Some(Sink::Receiver(receiver)), _) => {
            let (bar, seen) = (bar.clone(), receiver.counter());
            Some(tokio::spawn(async move {
                loop {
                    bar.set_position(seen.get());
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }))
        }
        (Some(bar), Some(Sink::Broker(_)), Some(id)) => Some(tokio::spawn(
            delivered::show_progress(api.clone(), id.clone(), bar.clone()),
        )),
        _ => None,
    };
    let ingested = ingest::run(http.clone(), cfg, sends.clone()).await;
    sends.finish();
    if let Some(t) = ticker {
        t.abort();
    }
    let mut export = None;
    let window = match (&destination, args.mode) {
        (Some(id), Mode::Drain | Mode::Export) => {
            let early = match &*sink {
                Some(Sink::Receiver(receiver)) => receiver.distinct(),
                _ => delivered::so_far(api, id).await?,
            };
            if early > 0 {
                anyhow::bail!("{early} events were delivered while destination {id} was disabled");
            }
            if args.mode == Mode::Export {
                export = Some(export_stored(run).await?);
                None
            } else {
                let enabled_at = Instant::now();
                api.post(&format!("/v1/destinations/{id}/enable"), &json!({}))
                    .await
                    .context("cannot enable the load test destination")?;
                Some(Window {
                    from: enabled_at,
                    ingest_done: enabled_at,
                })
            }
        }
        _ => Some(Window {
            from: ingested.started,
            ingest_done: ingested.finished,
        }),
    };

    // Draining gets its own --timeout-s from the enable.
    let deadline = match (window, args.mode) {
        (Some(window), Mode::Drain) => window.from + Duration::from_secs(args.timeout_s),
        _ => deadline,
    };
    let (e2e, read_back) = match (window, &deliveries, sink, &destination) {
        (Some(window), Some(bar), Some(Sink::Receiver(receiver)), _) => (
            Some(receiver::wait_for_deliveries(receiver, &ingested, window, deadline, bar).await),
            None,
        ),
        (Some(window), Some(bar), Some(Sink::Broker(fixture)), Some(id)) => {
            let e2e = delivered::wait(api, id, &ingested, window, deadline, bar).await?;
            let read_back = fixture.read_back(e2e.expected).await?;
            (Some(e2e), Some(read_back))
        }
        _ => (None, None),
    };

    // Stop routing `load.*` to a destination the run created on a server
    // that stays up.
    if let (Some(id), Target::Existing { .. }) = (&destination, target)
        && let Err(e) = remove(api, id).await
        && !args.json
    {
        progress.suspend(|| eprintln!("warning: {e:#}"));
    }

    let ingest_summary = (args.mode != Mode::E2e).then(|| ingest_summary(&ingested));
    let ok = ingested.error_count() == 0
        && !ingested.timed_out
        && e2e.as_ref().is_none_or(|e| e.complete)
        && read_back.as_ref().is_none_or(|r| r.complete)
        && export.as_ref().is_none_or(|(e, _, _)| e.succeeded());
    let (export, export_start_rss_mb, export_peak_rss_mb) = match export {
        Some((e, start, peak)) => (
            Some(e),
            start.map(report::kib_to_mb),
            peak.map(report::kib_to_mb),
        ),
        None => (None, None, None),
    };
    Ok(Summary {
        events: args.events,
        concurrency: args.concurrency as usize,
        batch: usize::from(args.batch),
        mode: args.mode.name(),
        kind: args.kind.name(),
        target: broker.map(|b| b.display_url().to_owned()),
        payload_bytes: args.payload_bytes,
        receiver_delay_ms: args.receiver_delay_ms,
        max_in_flight: args.max_in_flight,
        server: match target {
            Target::Started(_) => "started".to_owned(),
            Target::Existing { url, .. } => url.clone(),
        },
        ingest: ingest_summary,
        e2e,
        read_back,
        baseline: None,
        ferry_to_client: None,
        export,
        export_peak_rss_mb,
        export_start_rss_mb,
        server_peak_rss_mb: None,
        ok,
    })
}

/// Runs the export of `--mode export` over what was stored, with the
/// server's memory when the export started and its peak from then on, in KiB
/// (when the tool started the server).
async fn export_stored(
    run: &Run<'_>,
) -> anyhow::Result<(export::ExportSummary, Option<u64>, Option<u64>)> {
    let Run {
        args,
        http,
        api,
        target,
        progress,
        ..
    } = *run;
    let start_rss = match target {
        Target::Started(server) => {
            if args.export_after_restart {
                server
                    .restart(http)
                    .await
                    .context("cannot restart the server before the export")?;
            }
            server.reset_peak_rss();
            server.rss_kb()
        }
        Target::Existing { .. } => None,
    };
    let bar = progress.add(ProgressBar::new(args.events));
    bar.set_style(bar_style());
    bar.set_prefix("exported");
    let opts = export::ExportOptions {
        source: args.export_source.clone(),
        format: args.export_format.clone(),
        compression: args.export_compression.clone(),
        target: args.export_target.clone(),
    };
    let deadline = Instant::now() + Duration::from_secs(args.timeout_s);
    let summary = export::run(api, &opts, deadline, &bar).await?;
    let peak_rss = match target {
        Target::Started(server) => server.peak_rss_kb(),
        Target::Existing { .. } => None,
    };
    Ok((summary, start_rss, peak_rss))
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
