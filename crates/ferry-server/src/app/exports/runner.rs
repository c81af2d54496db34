//! Runs one export job, streaming end to end with bounded memory: a reader
//! task pages records from the store's readers, a blocking thread turns
//! them into rows (redacted, encoded, compressed), and this task writes the
//! compressed chunks to the target, hashing them on the way. The three
//! meet through small bounded channels, so a slow disk slows the reader
//! instead of filling memory, and the CPU work stays off the runtime's
//! threads (ingest and delivery keep them).
//!
//! About once a second the runner records its progress, which also tells
//! it whether the job was cancelled meanwhile (by any process). The output
//! is committed only after every row was written; a failure, a cancel or a
//! shutdown removes what was written.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use ferry_core::audit::{AuditRecord, SYSTEM_ACTOR};
use ferry_core::destination::Destination;
use ferry_core::export::format::encoder;
use ferry_core::export::{
    Compressor, ExportJob, ExportOutput, ExportSource, ExportSpec, ExportStatus, Format, LogEntry,
    LogLevel, Record, RecordFilter, RecordQuery, Redactor, Value,
};
use ferry_core::glob;
use ferry_core::ports::ExportSink;
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::rows::{
    MetricRow, destination_cells, log_cells, metric_cells, record_cells, state_name,
};
use crate::app::App;
use crate::oplog::LogFiles;
use ferry_core::export::request::columns;

/// Encoded bytes gathered before they go to the compressor and on.
const CHUNK: usize = 256 * 1024;
/// How often progress is recorded (and a cancel noticed).
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Records read per page: fewer where a record can be large (an event's
/// data, an attempt's captured bodies), to bound what a page holds.
fn page_size(source: ExportSource) -> u32 {
    match source {
        ExportSource::Events => 500,
        ExportSource::Attempts => 250,
        _ => 1_000,
    }
}

/// The organization whose records a job exports: its own, or the one an
/// admin named.
fn data_org(job: &ExportJob) -> &ferry_core::ids::OrgId {
    job.spec.filter.org_id.as_ref().unwrap_or(&job.org_id)
}

/// Rows on their way from the reader to the encoder.
pub(super) enum Batch {
    Records(Vec<Record>),
    /// With each one's attempt latency over the last day.
    Destinations(Vec<(Destination, Option<ferry_core::metrics::Histogram>)>),
    Log(Vec<LogEntry>),
    Metrics(Vec<MetricRow>),
    /// A whole document (the configuration), written as it is.
    Document(Vec<u8>),
}

/// Why a run did not succeed.
enum Stop {
    /// Cancelled by an operator or stopped by a shutdown.
    Cancelled,
    /// Failed, with a reason for whoever reads the job.
    Failed(String),
}

struct Written {
    rows: u64,
    bytes: u64,
    uncompressed: u64,
    sha256: String,
}

/// Runs `job` (queued) to its end.
pub(super) async fn run(app: App, mut job: ExportJob, cancel: CancellationToken) {
    let store = app.0.exports.clone();
    let query = RecordQuery {
        source: job.spec.source,
        filter: job.spec.filter.clone(),
    };
    job.progress.total_rows = match store.count_records(data_org(&job), &query).await {
        Ok(0)
            if matches!(
                query.source,
                ExportSource::Destinations
                    | ExportSource::Log
                    | ExportSource::Metrics
                    | ExportSource::Config
            ) =>
        {
            None
        }
        Ok(n) => Some(n),
        Err(error) => {
            warn!(export_id = %job.id, %error, "Counting the export's rows failed.");
            None
        }
    };
    job.status = ExportStatus::Running;
    job.started_at = Some(Utc::now());
    match store.transition_export(&job, None).await {
        Ok(true) => {}
        Ok(false) => return, // cancelled before it started
        Err(error) => {
            warn!(export_id = %job.id, %error, "Could not start the export; it is failed when found stale.");
            return;
        }
    }
    let started = Instant::now();
    let mut span = app
        .0
        .traces
        .span("ferry.export", SpanKind::Internal, None, || {
            [
                KeyValue::new("ferry.export.id", job.id.to_string()),
                KeyValue::new("ferry.org.id", job.org_id.to_string()),
                KeyValue::new("ferry.export.source", job.spec.source.as_str()),
                KeyValue::new("ferry.export.format", job.spec.format.as_str()),
            ]
        });
    let outcome = execute(&app, &job, query, &cancel).await;
    match &outcome {
        Ok((written, _)) => span.record(|| {
            [
                KeyValue::new("ferry.export.rows", written.rows as i64),
                KeyValue::new("ferry.export.bytes", written.bytes as i64),
            ]
        }),
        Err(Stop::Failed(reason)) => span.fail(|| reason.clone()),
        Err(Stop::Cancelled) => span.fail(|| "cancelled".to_owned()),
    }
    drop(span);
    finish(&app, job, outcome, started.elapsed()).await;
}

async fn execute(
    app: &App,
    job: &ExportJob,
    query: RecordQuery,
    cancel: &CancellationToken,
) -> Result<(Written, String), Stop> {
    let mut sink = app.open_export_output(job).await.map_err(Stop::Failed)?;
    match pump(app, job, query, cancel, sink.as_mut()).await {
        Ok(written) => match sink.commit().await {
            Ok(location) => Ok((written, location)),
            Err(e) => Err(Stop::Failed(format!("cannot commit the export: {e}"))),
        },
        Err(stop) => {
            sink.abort().await;
            Err(stop)
        }
    }
}

async fn pump(
    app: &App,
    job: &ExportJob,
    query: RecordQuery,
    cancel: &CancellationToken,
    sink: &mut dyn ExportSink,
) -> Result<Written, Stop> {
    let (rows_tx, rows_rx) = mpsc::channel::<Batch>(2);
    let (chunks_tx, mut chunks_rx) = mpsc::channel::<Vec<u8>>(8);
    let rows_done = Arc::new(AtomicU64::new(0));
    let yaml = job.spec.format == Format::Yaml;
    let reader = tokio::spawn(read(
        app.clone(),
        data_org(job).clone(),
        query,
        yaml,
        rows_tx,
    ));
    let spec = job.spec.clone();
    let entry = entry_name(job);
    let counter = rows_done.clone();
    let encoder =
        tokio::task::spawn_blocking(move || encode(&spec, &entry, rows_rx, chunks_tx, &counter));
    let result = write(app, job, cancel, sink, &mut chunks_rx, &rows_done).await;
    // Whatever happened, the reader and the encoder end: dropping the
    // receiver makes the encoder's next send fail, which drops the rows
    // channel and ends the reader.
    drop(chunks_rx);
    let (hasher, bytes) = match result {
        Ok(done) => done,
        Err(stop) => {
            reader.abort();
            return Err(stop);
        }
    };
    let read_result = reader
        .await
        .map_err(|_| Stop::Failed("reading the records failed".into()))?;
    read_result.map_err(Stop::Failed)?;
    let uncompressed = encoder
        .await
        .map_err(|_| Stop::Failed("encoding the rows failed".into()))?
        .map_err(|e| Stop::Failed(format!("encoding the rows failed: {e}")))?;
    Ok(Written {
        rows: rows_done.load(Ordering::Relaxed),
        bytes,
        uncompressed,
        sha256: hex::encode(hasher.finalize()),
    })
}

/// Writes the compressed chunks to the file until the encoder is done,
/// recording progress on the way.
async fn write(
    app: &App,
    job: &ExportJob,
    cancel: &CancellationToken,
    sink: &mut dyn ExportSink,
    chunks: &mut mpsc::Receiver<Vec<u8>>,
    rows_done: &AtomicU64,
) -> Result<(Sha256, u64), Stop> {
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    let mut progress = job.progress;
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return Err(Stop::Cancelled),
            chunk = chunks.recv() => {
                let Some(chunk) = chunk else { break };
                hasher.update(&chunk);
                bytes += chunk.len() as u64;
                sink.write(chunk)
                    .await
                    .map_err(|e| Stop::Failed(format!("writing the export failed: {e}")))?;
            }
            _ = tick.tick() => {
                progress.rows = rows_done.load(Ordering::Relaxed);
                progress.bytes = bytes;
                match app.0.exports.save_export_progress(&job.id, &progress).await {
                    Ok(true) => {}
                    Ok(false) => return Err(Stop::Cancelled),
                    // Progress is bookkeeping: the export goes on.
                    Err(error) => warn!(export_id = %job.id, %error, "Recording export progress failed."),
                }
            }
        }
    }
    Ok((hasher, bytes))
}

/// Pages the records (or the destinations) to the encoder.
async fn read(
    app: App,
    org: ferry_core::ids::OrgId,
    query: RecordQuery,
    yaml: bool,
    rows: mpsc::Sender<Batch>,
) -> Result<(), String> {
    let failed = |e: ferry_core::StoreError| format!("reading the records failed: {e}");
    if query.source == ExportSource::Destinations {
        let mut all = app.0.store.org_destinations(&org).await.map_err(failed)?;
        // The dispatcher's counters are newer than the stored ones.
        for d in &mut all {
            if let Some(live) = app.0.dispatch.health(&d.id) {
                d.health = live;
            }
        }
        all.retain(|d| {
            query
                .filter
                .kind
                .as_deref()
                .is_none_or(|k| d.kind.as_str() == k)
                && query
                    .filter
                    .state
                    .as_deref()
                    .is_none_or(|s| state_name(d) == s)
        });
        let mut latency = match super::metrics::last_day_latency(&app, &org).await {
            Ok(latency) => latency,
            Err(error) => {
                warn!(%error, "Reading destinations' latency failed; exporting them without it.");
                Default::default()
            }
        };
        let all = all
            .into_iter()
            .map(|d| {
                let l = latency.remove(&d.id);
                (d, l)
            })
            .collect();
        let _ = rows.send(Batch::Destinations(all)).await;
        return Ok(());
    }
    if query.source == ExportSource::Config {
        let text = app
            .config_document(None)
            .await
            .and_then(|doc| crate::app::config::render(&doc, yaml))
            .map_err(|e| format!("reading the configuration failed: {e}"))?;
        let _ = rows.send(Batch::Document(text.into_bytes())).await;
        return Ok(());
    }
    if query.source == ExportSource::Metrics {
        return super::metrics::read(&app, &org, &query.filter, &rows).await;
    }
    if query.source == ExportSource::Log {
        let Some(log) = app.0.export_runs.settings.log.clone() else {
            return Err("this server keeps no operational log".into());
        };
        return tokio::task::spawn_blocking(move || read_log(&log, &query.filter, &rows))
            .await
            .map_err(|e| format!("reading the log failed: {e}"))?;
    }
    let glob_type = query
        .filter
        .event_type
        .clone()
        .filter(|pattern| pattern.contains('*'));
    let limit = page_size(query.source);
    let mut after = 0;
    loop {
        let page = app
            .0
            .exports
            .record_page(&org, &query, after, limit)
            .await
            .map_err(failed)?;
        let Some((last, _)) = page.last() else {
            return Ok(());
        };
        after = *last;
        let full = page.len() == limit as usize;
        let mut records: Vec<Record> = page.into_iter().map(|(_, r)| r).collect();
        if let Some(pattern) = &glob_type {
            records.retain(|r| glob::matches(pattern, event_type(r)));
        }
        if rows.send(Batch::Records(records)).await.is_err() {
            return Ok(()); // the encoder stopped; the writer says why
        }
        if !full {
            return Ok(());
        }
    }
}

/// Sends the operational log's entries the filter takes, oldest first (on
/// a blocking thread). A line that is not a log entry is skipped; a file
/// rotated away meanwhile ends the log there.
fn read_log(
    log: &LogFiles,
    filter: &RecordFilter,
    rows: &mpsc::Sender<Batch>,
) -> Result<(), String> {
    use std::io::BufRead;

    let level = filter.level.as_deref().and_then(LogLevel::parse);
    let takes = |entry: &LogEntry| {
        filter.since.is_none_or(|t| entry.timestamp >= t)
            && filter.until.is_none_or(|t| entry.timestamp < t)
            && level.is_none_or(|l| entry.is_at_least(l))
            && filter
                .component
                .as_deref()
                .is_none_or(|pattern| glob::matches(pattern, &entry.component))
    };
    let limit = page_size(ExportSource::Log) as usize;
    let mut page = Vec::with_capacity(limit);
    for path in log.files() {
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        for line in std::io::BufReader::new(file).split(b'\n') {
            let line = line.map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let Some(entry) = std::str::from_utf8(&line).ok().and_then(LogEntry::parse) else {
                continue;
            };
            if !takes(&entry) {
                continue;
            }
            page.push(entry);
            if page.len() == limit
                && rows
                    .blocking_send(Batch::Log(std::mem::take(&mut page)))
                    .is_err()
            {
                return Ok(()); // the encoder stopped; the writer says why
            }
        }
    }
    if !page.is_empty() {
        let _ = rows.blocking_send(Batch::Log(page));
    }
    Ok(())
}

fn event_type(record: &Record) -> &str {
    match record {
        Record::Event(e) => &e.event_type,
        Record::Delivery(d) => &d.event_type,
        Record::Attempt(_, context) => &context.event_type,
        Record::Audit(_) => "",
    }
}

/// The name of the one entry of a zip export.
fn entry_name(job: &ExportJob) -> String {
    format!(
        "{}-{}.{}",
        job.spec.source.as_str(),
        job.id,
        job.spec.format.extension()
    )
}

/// Turns batches into encoded, compressed chunks (on a blocking thread).
/// Returns the bytes before compression.
fn encode(
    spec: &ExportSpec,
    entry: &str,
    mut rows: mpsc::Receiver<Batch>,
    chunks: mpsc::Sender<Vec<u8>>,
    rows_done: &AtomicU64,
) -> std::io::Result<u64> {
    let all = columns(spec.source);
    let selected: Vec<usize> = spec
        .fields
        .iter()
        .filter_map(|f| all.iter().position(|c| c == f))
        .collect();
    let redactor = Redactor::new(&spec.fields, &spec.redact, spec.redact_secrets)
        .map_err(|e| std::io::Error::other(e.message))?;
    let mut encoder = encoder(spec.format, spec.fields.clone());
    let mut compressor = Compressor::new(spec.compression, entry);
    let mut buf = Vec::with_capacity(CHUNK + CHUNK / 4);
    let mut uncompressed = 0u64;
    let mut flush = |buf: &mut Vec<u8>, compressor: &mut Compressor| -> std::io::Result<()> {
        uncompressed += buf.len() as u64;
        compressor.write(buf)?;
        buf.clear();
        let out = compressor.take();
        if !out.is_empty() && chunks.blocking_send(out).is_err() {
            return Err(std::io::Error::other("the export stopped"));
        }
        Ok(())
    };
    // A document is written as it is, without a format's frame.
    let framed = spec.source != ExportSource::Config;
    if framed {
        encoder.begin(&mut buf);
    }
    let mut row = Vec::with_capacity(selected.len());
    while let Some(batch) = rows.blocking_recv() {
        let cells: Box<dyn Iterator<Item = Vec<Value>>> = match batch {
            Batch::Records(records) => Box::new(records.into_iter().map(record_cells)),
            Batch::Destinations(all) => Box::new(
                all.into_iter()
                    .map(|(d, latency)| destination_cells(d, latency.as_ref())),
            ),
            Batch::Log(entries) => Box::new(entries.into_iter().map(log_cells)),
            Batch::Metrics(rows) => Box::new(rows.into_iter().map(metric_cells)),
            Batch::Document(bytes) => {
                // Written as it is: one document, no rows around it.
                buf.extend_from_slice(&bytes);
                rows_done.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        for mut cells in cells {
            row.clear();
            row.extend(
                selected
                    .iter()
                    .map(|&i| std::mem::replace(&mut cells[i], Value::Null)),
            );
            redactor.apply(&mut row);
            encoder.row(&row, &mut buf);
            rows_done.fetch_add(1, Ordering::Relaxed);
            if buf.len() >= CHUNK {
                flush(&mut buf, &mut compressor)?;
            }
        }
    }
    if framed {
        encoder.finish(&mut buf);
    }
    flush(&mut buf, &mut compressor)?;
    let last = compressor.finish()?;
    if !last.is_empty() && chunks.blocking_send(last).is_err() {
        return Err(std::io::Error::other("the export stopped"));
    }
    Ok(uncompressed)
}

/// Records how the run ended.
async fn finish(
    app: &App,
    mut job: ExportJob,
    outcome: Result<(Written, String), Stop>,
    took: Duration,
) {
    job.finished_at = Some(Utc::now());
    let store = &app.0.exports;
    let committed = match outcome {
        Ok((written, location)) => {
            job.status = ExportStatus::Succeeded;
            job.progress.rows = written.rows;
            job.progress.bytes = written.bytes;
            job.output = Some(ExportOutput {
                uncompressed_bytes: written.uncompressed,
                sha256: written.sha256,
                location,
            });
            info!(
                export_id = %job.id, rows = written.rows, bytes = written.bytes,
                uncompressed = written.uncompressed, took_ms = took.as_millis() as u64,
                "Export finished."
            );
            true
        }
        Err(Stop::Cancelled) => {
            // An operator's cancel is already stored; otherwise Ferry is
            // stopping, and the job cannot finish.
            job.status = ExportStatus::Failed;
            job.error = Some("Ferry stopped while this export ran; run it again".into());
            false
        }
        Err(Stop::Failed(reason)) => {
            warn!(export_id = %job.id, %reason, "Export failed.");
            job.status = ExportStatus::Failed;
            job.error = Some(reason);
            false
        }
    };
    let audit = AuditRecord::new(
        job.org_id.clone(),
        SYSTEM_ACTOR,
        "export",
        job.id.to_string(),
        match job.status {
            ExportStatus::Succeeded => "export.succeeded",
            _ => "export.failed",
        },
    )
    .after(super::snapshot(&job));
    match store.transition_export(&job, Some(&audit)).await {
        Ok(true) => {
            metrics::counter!(
                crate::metrics::EXPORTS,
                "source" => job.spec.source.as_str(),
                "status" => job.status.as_str()
            )
            .increment(1);
            app.scheduled_run_ended(&job).await;
        }
        Ok(false) => {
            metrics::counter!(
                crate::metrics::EXPORTS,
                "source" => job.spec.source.as_str(),
                "status" => "cancelled"
            )
            .increment(1);
            // Cancelled meanwhile: the cancel wins, and its output goes.
            if committed {
                app.remove_export_output(&job, true).await;
            }
        }
        Err(error) => {
            warn!(export_id = %job.id, %error, "Recording the export's end failed; it is failed when found stale.");
        }
    }
}
