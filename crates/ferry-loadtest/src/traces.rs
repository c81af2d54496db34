//! `ferry traces listen`: a small OTLP/HTTP trace collector that prints
//! each trace it receives as a span tree — to see what Ferry exports
//! without running a tracing backend, and the collector end of the load
//! tool's tracing-overhead runs (`--summary` only counts).
//!
//! A trace is printed once no span of it has arrived for `--settle-ms`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use prost::Message;

#[derive(Debug, Clone, clap::Args)]
pub struct TracesArgs {
    #[command(subcommand)]
    command: TracesCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
enum TracesCommand {
    /// Receive OTLP/HTTP traces (`POST /v1/traces`) and print each trace as
    /// a span tree. Point Ferry at it with
    /// `OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318`.
    Listen {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:4318")]
        listen: SocketAddr,
        /// A trace is printed once none of its spans arrived for this long.
        #[arg(long, default_value_t = 2_000)]
        settle_ms: u64,
        /// Print only the spans received per second, no trees.
        #[arg(long)]
        summary: bool,
    },
}

/// One received span, as the tree shows it.
#[derive(Debug, Clone)]
struct Span {
    service: String,
    name: String,
    span_id: String,
    parent_id: String,
    /// Unix nanoseconds.
    start: u64,
    duration: Duration,
    /// `ferry.*`, `http.*` and `error.*` attributes.
    attributes: BTreeMap<String, String>,
    failed: bool,
}

#[derive(Default)]
struct Collected {
    traces: HashMap<String, (Vec<Span>, Instant)>,
    spans: u64,
    undecodable: u64,
}

type Shared = Arc<Mutex<Collected>>;

pub async fn run_traces(args: TracesArgs) -> anyhow::Result<ExitCode> {
    let TracesCommand::Listen {
        listen,
        settle_ms,
        summary,
    } = args.command;
    let shared: Shared = Arc::default();
    let app = Router::new()
        .route("/v1/traces", post(receive))
        .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    eprintln!(
        "Receiving OTLP/HTTP traces on http://{listen}/v1/traces \
         (OTEL_EXPORTER_OTLP_ENDPOINT=http://{listen}); Ctrl-C stops."
    );
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let settle = Duration::from_millis(settle_ms);
    let mut tick = tokio::time::interval(if summary {
        Duration::from_secs(1)
    } else {
        Duration::from_millis(200)
    });
    let mut last_count = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::signal::ctrl_c() => break,
        }
        let mut out = String::new();
        {
            let mut c = shared.lock().unwrap_or_else(PoisonError::into_inner);
            if summary {
                let _ = writeln!(
                    out,
                    "{} spans/s ({} in all, {} undecodable requests)",
                    c.spans - last_count,
                    c.spans,
                    c.undecodable
                );
                last_count = c.spans;
                c.traces.clear();
            } else {
                let ready: Vec<String> = c
                    .traces
                    .iter()
                    .filter(|(_, (_, last))| last.elapsed() >= settle)
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in ready {
                    if let Some((spans, _)) = c.traces.remove(&id) {
                        out.push_str(&render(&id, &spans));
                    }
                }
            }
        }
        if !out.is_empty() {
            // A closed stdout (a pipe to `head`) ends the listener.
            if std::io::stdout().write_all(out.as_bytes()).is_err() {
                break;
            }
        }
    }
    server.abort();
    Ok(ExitCode::SUCCESS)
}

async fn receive(State(shared): State<Shared>, body: Bytes) -> impl IntoResponse {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .undecodable += 1;
        return (StatusCode::BAD_REQUEST, Vec::new()).into_response();
    };
    let now = Instant::now();
    let mut c = shared.lock().unwrap_or_else(PoisonError::into_inner);
    for resource in request.resource_spans {
        let service = resource
            .resource
            .as_ref()
            .and_then(|r| r.attributes.iter().find(|a| a.key == "service.name"))
            .map(|a| text(a.value.as_ref()))
            .unwrap_or_default();
        for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
            c.spans += 1;
            let entry = c
                .traces
                .entry(hex(&span.trace_id))
                .or_insert_with(|| (Vec::new(), now));
            entry.1 = now;
            entry.0.push(Span {
                service: service.clone(),
                name: span.name,
                span_id: hex(&span.span_id),
                parent_id: hex(&span.parent_span_id),
                start: span.start_time_unix_nano,
                duration: Duration::from_nanos(
                    span.end_time_unix_nano
                        .saturating_sub(span.start_time_unix_nano),
                ),
                attributes: shown(&span.attributes),
                failed: span.status.is_some_and(|s| s.code == 2),
            });
        }
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        ExportTraceServiceResponse::default().encode_to_vec(),
    )
        .into_response()
}

/// The trace as a tree: roots are spans whose parent was not received
/// (the producer's span, outside Ferry), children in start order.
fn render(trace_id: &str, spans: &[Span]) -> String {
    let mut out = format!("trace {trace_id}\n");
    let ids: std::collections::HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let mut roots: Vec<&Span> = spans
        .iter()
        .filter(|s| !ids.contains(s.parent_id.as_str()))
        .collect();
    roots.sort_by_key(|s| s.start);
    for root in roots {
        if !root.parent_id.is_empty() {
            let _ = writeln!(out, "  (child of {}, not received)", root.parent_id);
        }
        branch(&mut out, root, spans, "  ", "  ");
    }
    out
}

fn branch(out: &mut String, span: &Span, all: &[Span], first: &str, rest: &str) {
    let details: Vec<String> = span
        .attributes
        .iter()
        .map(|(k, v)| format!("{}={v}", k.trim_start_matches("ferry.")))
        .collect();
    let _ = writeln!(
        out,
        "{first}{} [{}] {:.1} ms{}  {}",
        span.name,
        span.service,
        span.duration.as_secs_f64() * 1000.0,
        if span.failed { " ERROR" } else { "" },
        details.join(" ")
    );
    let mut children: Vec<&Span> = all.iter().filter(|c| c.parent_id == span.span_id).collect();
    children.sort_by_key(|c| c.start);
    for (i, child) in children.iter().enumerate() {
        let last = i + 1 == children.len();
        let (mark, next) = if last {
            ("└─ ", "   ")
        } else {
            ("├─ ", "│  ")
        };
        branch(
            out,
            child,
            all,
            &format!("{rest}{mark}"),
            &format!("{rest}{next}"),
        );
    }
}

fn shown(list: &[KeyValue]) -> BTreeMap<String, String> {
    list.iter()
        .filter(|kv| {
            ["ferry.", "http.", "error."]
                .iter()
                .any(|p| kv.key.starts_with(p))
        })
        .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
        .collect()
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(name: &str, id: &str, parent: &str, attrs: &[(&str, &str)]) -> Span {
        Span {
            service: "ferry".into(),
            name: name.into(),
            span_id: id.into(),
            parent_id: parent.into(),
            start: u64::from(id.as_bytes()[1]),
            duration: Duration::from_micros(1500),
            attributes: attrs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            failed: false,
        }
    }

    #[test]
    fn a_trace_prints_as_a_tree_under_the_producers_span() {
        let mut failed = span("ferry.attempt", "b1", "a1", &[("ferry.attempt", "1")]);
        failed.failed = true;
        let spans = [
            span("ferry.attempt", "b2", "a1", &[("ferry.attempt", "2")]),
            span("ferry.ingest", "a1", "p0", &[("ferry.event.id", "evt_1")]),
            failed,
        ];
        let text = render("t1", &spans);
        assert_eq!(
            text,
            "trace t1\n  (child of p0, not received)\n  ferry.ingest [ferry] 1.5 ms  event.id=evt_1\n  \
             ├─ ferry.attempt [ferry] 1.5 ms ERROR  attempt=1\n  \
             └─ ferry.attempt [ferry] 1.5 ms  attempt=2\n"
        );
    }
}
