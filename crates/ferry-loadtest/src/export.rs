//! `--mode export`: the events are stored for a disabled destination (as
//! for `drain`), then one export of them is started through
//! `POST /v1/exports` and followed to its end; the summary gives rows/s,
//! seconds, bytes and the compression ratio (the server's memory at the
//! start of the export and at its peak is measured by the caller).

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use ferry_client::ApiClient;
use indicatif::ProgressBar;
use serde::Serialize;
use serde_json::{Value, json};

use super::report::{rate, round3};

/// How often the job is polled.
const POLL_EVERY: Duration = Duration::from_millis(100);

/// What to export, from the command line.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub source: String,
    pub format: String,
    pub compression: String,
    /// Extra `target` object for the request (default: a local file).
    pub target: Option<Value>,
}

/// The measured export.
#[derive(Debug, Clone, Serialize)]
pub struct ExportSummary {
    pub id: String,
    pub source: String,
    pub format: String,
    pub compression: String,
    pub status: String,
    /// From `POST /v1/exports` to the job seen finished.
    pub seconds: f64,
    /// From the job's `started_at` to its `finished_at` (the server's clock).
    pub job_seconds: Option<f64>,
    pub rows: u64,
    pub rows_per_s: f64,
    /// Bytes written to the target.
    pub bytes: u64,
    pub uncompressed_bytes: u64,
    /// Uncompressed bytes divided by written bytes.
    pub compression_ratio: Option<f64>,
    pub saved_percent: Option<f64>,
    pub location: Option<String>,
    pub error: Option<String>,
}

impl ExportSummary {
    pub fn succeeded(&self) -> bool {
        self.status == "succeeded"
    }
}

/// Starts the export and polls it until it ends or `deadline` passes
/// (then it is cancelled and an error returned).
pub async fn run(
    api: &ApiClient,
    opts: &ExportOptions,
    deadline: Instant,
    bar: &ProgressBar,
) -> anyhow::Result<ExportSummary> {
    let mut body = json!({
        "source": opts.source,
        "format": opts.format,
        "compression": opts.compression,
    });
    if let Some(target) = &opts.target {
        body["target"] = target.clone();
    }
    let started = Instant::now();
    let created = api
        .post("/v1/exports", &body)
        .await
        .context("cannot start the export")?;
    let id = created
        .body
        .get("id")
        .and_then(Value::as_str)
        .context("the export answer has no id")?
        .to_owned();
    let job = loop {
        let job = api
            .get(&format!("/v1/exports/{id}"), &[])
            .await
            .with_context(|| format!("cannot read export {id}"))?
            .body;
        let progress = &job["progress"];
        if let Some(total) = progress["total_rows"].as_u64() {
            bar.set_length(total);
        }
        bar.set_position(progress["rows"].as_u64().unwrap_or(0));
        let status = job["status"].as_str().unwrap_or_default();
        if matches!(status, "succeeded" | "failed" | "cancelled") {
            break job;
        }
        if Instant::now() > deadline {
            let _ = api
                .post(&format!("/v1/exports/{id}/cancel"), &json!({}))
                .await;
            bail!("export {id} was still {status} at the time-out; it was cancelled");
        }
        tokio::time::sleep(POLL_EVERY).await;
    };
    let seconds = started.elapsed();
    bar.finish();
    Ok(summarize(id, opts, &job, seconds))
}

fn summarize(id: String, opts: &ExportOptions, job: &Value, seconds: Duration) -> ExportSummary {
    let result = &job["result"];
    let rows = result["rows"]
        .as_u64()
        .or_else(|| job["progress"]["rows"].as_u64())
        .unwrap_or(0);
    let bytes = result["bytes"]
        .as_u64()
        .or_else(|| job["progress"]["bytes"].as_u64())
        .unwrap_or(0);
    let job_seconds = result["duration_ms"].as_u64().map(|ms| ms as f64 / 1000.0);
    ExportSummary {
        id,
        source: opts.source.clone(),
        format: opts.format.clone(),
        compression: opts.compression.clone(),
        status: job["status"].as_str().unwrap_or("unknown").to_owned(),
        seconds: round3(seconds.as_secs_f64()),
        job_seconds,
        rows,
        rows_per_s: rate(rows, seconds),
        bytes,
        uncompressed_bytes: result["uncompressed_bytes"].as_u64().unwrap_or(0),
        compression_ratio: result["compression_ratio"].as_f64(),
        saved_percent: result["saved_percent"].as_f64(),
        location: result["location"].as_str().map(str::to_owned),
        error: job["error"].as_str().map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_job_is_summarized_from_its_result() {
        let opts = ExportOptions {
            source: "deliveries".into(),
            format: "csv".into(),
            compression: "gzip".into(),
            target: None,
        };
        let job = json!({
            "status": "succeeded",
            "progress": {"rows": 1000, "bytes": 100},
            "result": {"rows": 1000, "bytes": 100, "uncompressed_bytes": 900,
                       "compression_ratio": 9.0, "saved_percent": 88.9,
                       "location": "exports/x.csv.gz", "duration_ms": 1500}
        });
        let s = summarize("exp_1".into(), &opts, &job, Duration::from_secs(2));
        assert!(s.succeeded());
        assert_eq!(s.rows, 1000);
        assert_eq!(s.rows_per_s, 500.0);
        assert_eq!(s.job_seconds, Some(1.5));
        assert_eq!(s.compression_ratio, Some(9.0));
        assert_eq!(s.location.as_deref(), Some("exports/x.csv.gz"));
    }

    #[test]
    fn a_failed_job_keeps_its_error_and_progress() {
        let opts = ExportOptions {
            source: "deliveries".into(),
            format: "ndjson".into(),
            compression: "none".into(),
            target: None,
        };
        let job = json!({
            "status": "failed",
            "error": "no space left on device",
            "progress": {"rows": 10, "bytes": 4096}
        });
        let s = summarize("exp_2".into(), &opts, &job, Duration::from_secs(1));
        assert!(!s.succeeded());
        assert_eq!((s.rows, s.bytes), (10, 4096));
        assert_eq!(s.error.as_deref(), Some("no space left on device"));
        assert_eq!(s.compression_ratio, None);
    }
}
