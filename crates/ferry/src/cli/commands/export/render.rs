//! Export jobs as text: the list, one job (with its progress while it runs
//! and what it produced once it succeeded), the line under the `--wait`
//! progress bar, and the summary printed when a followed export ends.

use std::fmt::Write as _;

use ferry_client::table::{Table, key_values};
use indicatif::HumanBytes;
use serde_json::Value;

use crate::cli::render::{list_footer, list_items, scalar, text, time};

/// The states after which a job does not change any more.
pub fn is_finished(job: &Value) -> bool {
    !matches!(text(job, "/status").as_str(), "queued" | "running")
}

fn number(job: &Value, ptr: &str) -> Option<u64> {
    job.pointer(ptr).and_then(Value::as_u64)
}

fn float(job: &Value, ptr: &str) -> Option<f64> {
    job.pointer(ptr).and_then(Value::as_f64)
}

/// Rows written: the result's once there is one, else the progress'.
pub fn rows(job: &Value) -> Option<u64> {
    number(job, "/result/rows").or_else(|| number(job, "/progress/rows"))
}

/// Bytes written (compressed): the result's once there is one, else the progress'.
pub fn bytes(job: &Value) -> Option<u64> {
    number(job, "/result/bytes").or_else(|| number(job, "/progress/bytes"))
}

/// `20.00 KiB (20480 bytes)`; `512 B` when the two would say the same.
pub fn size(n: u64) -> String {
    if n < 1024 {
        format!("{n} B")
    } else {
        format!("{} ({n} bytes)", HumanBytes(n))
    }
}

/// `412 ms`, `4.2 s`, `3m 05s`, `2h 07m`.
pub fn duration(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => seconds(ms / 1000),
    }
}

/// `42s`, `3m 05s`, `2h 07m`.
fn seconds(s: u64) -> String {
    match s {
        0..60 => format!("{s}s"),
        60..3_600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3_600, s % 3_600 / 60),
    }
}

/// Where the job writes: a file on the server, or a destination's path.
pub fn target(job: &Value) -> String {
    let file = text(job, "/target/file");
    if !file.is_empty() {
        return file;
    }
    let destination = text(job, "/target/destination_id");
    if destination.is_empty() {
        return String::new();
    }
    format!("{destination}: {}", text(job, "/target/path"))
}

/// The filters as `name=value` pairs, comma-separated.
pub fn filter(job: &Value) -> String {
    match job.get("filter") {
        Some(Value::Object(filters)) => filters
            .iter()
            .map(|(name, value)| format!("{name}={}", scalar(value)))
            .collect::<Vec<_>>()
            .join(", "),
        _ => String::new(),
    }
}

/// How far a job has come, as one line: `1200/5000 rows, 24.0%, 20.00 KiB, eta 3s`
/// (the parts the server knows).
pub fn progress(job: &Value) -> String {
    let rows = number(job, "/progress/rows").unwrap_or(0);
    let mut parts = vec![match number(job, "/progress/total_rows") {
        Some(total) => format!("{rows}/{total} rows"),
        None => format!("{rows} rows"),
    }];
    if let Some(percent) = float(job, "/progress/percent") {
        parts.push(format!("{percent:.1}%"));
    }
    parts.push(HumanBytes(number(job, "/progress/bytes").unwrap_or(0)).to_string());
    if let Some(eta) = number(job, "/progress/eta_s") {
        parts.push(format!("eta {}", seconds(eta)));
    }
    parts.join(", ")
}

/// The message beside the `--wait` bar: the state until rows come, then the
/// progress.
pub fn bar_message(job: &Value) -> String {
    match text(job, "/status").as_str() {
        "queued" => "queued".to_owned(),
        "running" if number(job, "/progress/total_rows").is_none() => {
            format!("counting rows; {}", progress(job))
        }
        _ => progress(job),
    }
}

/// What a succeeded job produced, one field a line.
pub fn render_result(job: &Value) -> String {
    let compression = text(job, "/compression");
    let compressed = match (
        compression.as_str(),
        float(job, "/result/compression_ratio"),
        float(job, "/result/saved_percent"),
    ) {
        ("" | "none", _, _) => "none".to_owned(),
        (name, Some(ratio), Some(saved)) => format!("{name}, ratio {ratio:.2}, {saved:.1}% saved"),
        (name, _, _) => name.to_owned(),
    };
    let mut pairs = vec![
        ("rows", number(job, "/result/rows").map(|n| n.to_string())),
        ("size", number(job, "/result/bytes").map(size)),
        (
            "uncompressed",
            number(job, "/result/uncompressed_bytes").map(size),
        ),
        ("compression", Some(compressed)),
        ("sha256", Some(text(job, "/result/sha256"))),
        ("location", Some(text(job, "/result/location"))),
        ("duration", number(job, "/result/duration_ms").map(duration)),
    ];
    if compression == "none" || compression.is_empty() {
        // The same as the size.
        pairs.retain(|(key, _)| *key != "uncompressed");
    }
    let pairs: Vec<(&str, String)> = pairs
        .into_iter()
        .map(|(key, value)| (key, value.unwrap_or_default()))
        .collect();
    key_values(&pairs)
}

/// Just created: its id, state and target, and how to follow it.
pub fn render_started(job: &Value) -> String {
    let id = text(job, "/id");
    let mut out = format!("Started export {id} ({}).\n\n", text(job, "/status"));
    out.push_str(&key_values(&[
        ("export", id.clone()),
        ("status", text(job, "/status")),
        ("source", text(job, "/source")),
        ("format", text(job, "/format")),
        ("compression", text(job, "/compression")),
        ("target", target(job)),
    ]));
    let _ = writeln!(
        out,
        "\nFollow it with `ferry export get {id}` (or create with --wait); \
         stop it with `ferry export cancel {id}`."
    );
    out
}

/// One job: the request as validated, then its progress or its result.
pub fn render_job(job: &Value) -> String {
    let status = text(job, "/status");
    let mut pairs = vec![
        ("export", text(job, "/id")),
        ("status", status.clone()),
        ("source", text(job, "/source")),
        ("format", text(job, "/format")),
        ("compression", text(job, "/compression")),
        ("fields", text(job, "/fields")),
        ("filter", filter(job)),
        ("redact", text(job, "/redact")),
        ("redact secrets", text(job, "/redact_secrets")),
        ("target", target(job)),
        ("schedule", text(job, "/schedule_id")),
    ];
    if !text(job, "/schedule_id").is_empty() {
        pairs.push(("scheduled for", time(job, "/scheduled_for")));
        pairs.push(("attempt", text(job, "/attempt")));
    }
    pairs.extend([
        ("created", time(job, "/created_at")),
        ("started", time(job, "/started_at")),
        ("finished", time(job, "/finished_at")),
    ]);
    let removed = time(job, "/output_removed_at");
    if !removed.is_empty() {
        pairs.push(("output removed", removed));
    }
    if !is_finished(job) {
        pairs.push(("progress", progress(job)));
    }
    let error = text(job, "/error");
    if !error.is_empty() {
        pairs.push(("error", error));
    }
    let mut out = key_values(&pairs);
    if status == "succeeded" && job.get("result").is_some_and(Value::is_object) {
        out.push_str("\nResult:\n");
        out.push_str(&render_result(job));
    }
    out
}

/// How a followed export ended: the result, or why there is none.
pub fn render_finished(job: &Value) -> String {
    let id = text(job, "/id");
    let error = text(job, "/error");
    match text(job, "/status").as_str() {
        "succeeded" => {
            let mut out = format!("Export {id} succeeded.\n\n");
            out.push_str(&render_result(job));
            let _ = writeln!(out, "\nDownload it with `ferry export download {id}`.");
            out
        }
        "cancelled" if error.is_empty() => format!("Export {id} was cancelled.\n"),
        "cancelled" => format!("Export {id} was cancelled: {error}\n"),
        "failed" if error.is_empty() => format!("Export {id} failed.\n"),
        status => format!("Export {id} {status}: {error}\n"),
    }
}

/// One row per job, newest first.
pub fn render_list(body: &Value) -> String {
    let (items, cursor) = list_items(body);
    if items.is_empty() && cursor.is_none() {
        return "No exports yet: start one with `ferry export create`.\n".to_owned();
    }
    let mut t = Table::new([
        "id",
        "status",
        "source",
        "format",
        "compression",
        "rows",
        "bytes",
        "created",
        "error",
    ])
    .hide_empty_columns()
    .max_cell(60);
    for job in items {
        t.row([
            text(job, "/id"),
            text(job, "/status"),
            text(job, "/source"),
            text(job, "/format"),
            text(job, "/compression"),
            rows(job).map(|n| n.to_string()).unwrap_or_default(),
            bytes(job)
                .map(|n| HumanBytes(n).to_string())
                .unwrap_or_default(),
            time(job, "/created_at"),
            text(job, "/error"),
        ]);
    }
    let mut out = t.render();
    list_footer(&mut out, items.len(), ("export", "exports"), cursor);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn succeeded() -> Value {
        json!({
            "id": "exp_1", "status": "succeeded", "source": "deliveries", "format": "csv",
            "compression": "gzip", "fields": ["id", "status"], "filter": {"status": "dead"},
            "redact": ["last_error"], "redact_secrets": true, "incremental": false,
            "target": {"file": "/srv/files/exports/dead.csv.gz"},
            "progress": {"rows": 1200, "bytes": 20480, "total_rows": 1200, "percent": 100.0, "eta_s": 0},
            "result": {"rows": 1200, "bytes": 20480, "uncompressed_bytes": 180000,
                       "compression_ratio": 8.79, "saved_percent": 88.6,
                       "sha256": "9f86d0", "location": "/srv/files/exports/dead.csv.gz",
                       "duration_ms": 412},
            "error": null, "schedule_id": null,
            "created_at": "2026-03-02T10:00:00Z", "started_at": "2026-03-02T10:00:00.1Z",
            "finished_at": "2026-03-02T10:00:00.5Z",
            "links": {"download": "/v1/exports/exp_1/download"}
        })
    }

    fn running() -> Value {
        json!({
            "id": "exp_2", "status": "running", "source": "events", "format": "ndjson",
            "compression": "none", "fields": ["id"], "filter": {}, "redact": [],
            "redact_secrets": false, "target": {"file": "/srv/files/exports/e.ndjson"},
            "progress": {"rows": 300, "bytes": 4096, "total_rows": 1200, "percent": 25.0, "eta_s": 65},
            "result": null, "error": null, "created_at": "2026-03-02T11:00:00Z"
        })
    }

    #[test]
    fn a_result_says_how_much_compression_saved() {
        assert_eq!(
            render_result(&succeeded()),
            "rows          1200\n\
             size          20.00 KiB (20480 bytes)\n\
             uncompressed  175.78 KiB (180000 bytes)\n\
             compression   gzip, ratio 8.79, 88.6% saved\n\
             sha256        9f86d0\n\
             location      /srv/files/exports/dead.csv.gz\n\
             duration      412 ms\n"
        );
        let mut plain = succeeded();
        plain["compression"] = json!("none");
        plain["result"]["bytes"] = json!(500);
        let text = render_result(&plain);
        assert!(text.contains("size         500 B\n"), "{text}");
        assert!(text.contains("compression  none\n"), "{text}");
        assert!(!text.contains("uncompressed"), "{text}");
    }

    #[test]
    fn a_job_shows_its_request_then_its_progress_or_result() {
        let text = render_job(&succeeded());
        assert!(text.starts_with("export          exp_1\n"), "{text}");
        assert!(text.contains("filter          status=dead\n"), "{text}");
        assert!(text.contains("redact secrets  yes\n"), "{text}");
        assert!(
            text.contains("finished        2026-03-02 10:00:00\n"),
            "{text}"
        );
        assert!(!text.contains("progress"), "{text}");
        assert!(text.contains("\nResult:\nrows "), "{text}");
        let text = render_job(&running());
        assert!(
            text.contains("progress        300/1200 rows, 25.0%, 4.00 KiB, eta 1m 05s\n"),
            "{text}"
        );
        assert!(text.contains("filter          -\n"), "{text}");
        assert!(!text.contains("Result:"), "{text}");
        let mut failed = running();
        failed["status"] = json!("failed");
        failed["error"] = json!("disk full");
        let text = render_job(&failed);
        assert!(text.contains("error           disk full\n"), "{text}");
        assert!(!text.contains("progress"), "{text}");
    }

    #[test]
    fn a_scheduled_run_shows_its_tick_and_a_removed_output() {
        let text = render_job(&succeeded());
        assert!(!text.contains("scheduled for"), "{text}");
        assert!(!text.contains("output removed"), "{text}");
        let mut run = succeeded();
        run["schedule_id"] = json!("sch_1");
        run["scheduled_for"] = json!("2026-03-02T10:00:00Z");
        run["attempt"] = json!(2);
        run["output_removed_at"] = json!("2026-03-03T10:00:00Z");
        let text = render_job(&run);
        assert!(
            text.contains(
                "schedule        sch_1\n\
                 scheduled for   2026-03-02 10:00:00\n\
                 attempt         2\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("output removed  2026-03-03 10:00:00\n"),
            "{text}"
        );
    }

    #[test]
    fn the_end_of_a_wait_names_the_outcome() {
        let text = render_finished(&succeeded());
        assert!(
            text.starts_with("Export exp_1 succeeded.\n\nrows "),
            "{text}"
        );
        assert!(
            text.ends_with("\nDownload it with `ferry export download exp_1`.\n"),
            "{text}"
        );
        let mut failed = running();
        failed["status"] = json!("failed");
        failed["error"] = json!("the target is not writable");
        assert_eq!(
            render_finished(&failed),
            "Export exp_2 failed: the target is not writable\n"
        );
        failed["status"] = json!("cancelled");
        failed["error"] = json!(null);
        assert_eq!(render_finished(&failed), "Export exp_2 was cancelled.\n");
    }

    #[test]
    fn started_names_the_target_and_how_to_follow() {
        let mut job = running();
        job["status"] = json!("queued");
        let text = render_started(&job);
        assert!(
            text.starts_with("Started export exp_2 (queued).\n\n"),
            "{text}"
        );
        assert!(
            text.contains("target       /srv/files/exports/e.ndjson\n"),
            "{text}"
        );
        assert!(text.contains("`ferry export get exp_2`"), "{text}");
        assert!(text.contains("`ferry export cancel exp_2`"), "{text}");
        job["target"] = json!({"destination_id": "dst_1", "path": "out/e.ndjson"});
        assert!(render_started(&job).contains("target       dst_1: out/e.ndjson\n"));
    }

    #[test]
    fn the_bar_message_follows_the_state() {
        let mut job = running();
        assert_eq!(
            bar_message(&job),
            "300/1200 rows, 25.0%, 4.00 KiB, eta 1m 05s"
        );
        job["status"] = json!("queued");
        assert_eq!(bar_message(&job), "queued");
        job["status"] = json!("running");
        job["progress"] = json!({"rows": 0, "bytes": 0, "total_rows": null});
        assert_eq!(bar_message(&job), "counting rows; 0 rows, 0 B");
        assert!(!is_finished(&job));
        job["status"] = json!("cancelled");
        assert!(is_finished(&job));
    }

    #[test]
    fn lists_show_rows_and_bytes_and_hide_empty_columns() {
        let body = json!({"data": [succeeded(), running()], "next_cursor": "c2"});
        assert_eq!(
            render_list(&body),
            "ID     STATUS     SOURCE      FORMAT  COMPRESSION  ROWS  BYTES      CREATED\n\
             exp_1  succeeded  deliveries  csv     gzip         1200  20.00 KiB  2026-03-02 10:00:00\n\
             exp_2  running    events      ndjson  none         300   4.00 KiB   2026-03-02 11:00:00\n\
             2 exports.\nMore: add --cursor c2\n"
        );
        let mut failed = running();
        failed["status"] = json!("failed");
        failed["error"] = json!("disk full");
        let text = render_list(&json!({"data": [failed], "next_cursor": null}));
        assert!(text.lines().next().unwrap().ends_with("ERROR"), "{text}");
        assert!(text.contains("  disk full\n1 export.\n"), "{text}");
        assert_eq!(
            render_list(&json!({"data": [], "next_cursor": null})),
            "No exports yet: start one with `ferry export create`.\n"
        );
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(duration(412), "412 ms");
        assert_eq!(duration(4_240), "4.2 s");
        assert_eq!(duration(185_000), "3m 05s");
        assert_eq!(duration(7_620_000), "2h 07m");
    }
}
