//! Export schedules as text: one schedule (its trigger, next run, a retry
//! it owes, the export each run makes and which outputs it keeps), the
//! list, and the runs a schedule started.

use std::fmt::Write as _;

use ferry_client::table::{Table, key_values};
use indicatif::HumanBytes;
use serde_json::Value;

use super::super::render::{bytes, filter, rows, target};
use crate::cli::render::{list_footer, list_items, text, time};

/// `0 2 * * * (Europe/Berlin)`.
fn when(s: &Value) -> String {
    let cron = text(s, "/cron");
    let timezone = text(s, "/timezone");
    if timezone.is_empty() {
        cron
    } else {
        format!("{cron} ({timezone})")
    }
}

/// When it next runs, or that it does not.
fn next_run(s: &Value) -> String {
    if s.get("enabled") == Some(&Value::Bool(false)) {
        return "none (disabled)".to_owned();
    }
    time(s, "/next_run_at")
}

/// A retry owed after a failed run: `attempt 2 at …, for the run due …`.
fn retry(s: &Value) -> Option<String> {
    let retry = s.get("retry").filter(|r| r.is_object())?;
    Some(format!(
        "attempt {} at {}, for the run due {}",
        text(retry, "/attempt"),
        time(retry, "/at"),
        time(retry, "/scheduled_for")
    ))
}

/// Which outputs are kept: `the newest 30, under 90 days old`.
fn retention(s: &Value) -> String {
    let limit = |name: &str| s.pointer(&format!("/retention/{name}"))?.as_u64();
    let mut kept = Vec::new();
    if let Some(n) = limit("keep_last") {
        kept.push(format!("the newest {n}"));
    }
    match limit("max_age_days") {
        Some(1) => kept.push("under 1 day old".to_owned()),
        Some(days) => kept.push(format!("under {days} days old")),
        None => {}
    }
    if kept.is_empty() {
        "every output".to_owned()
    } else {
        kept.join(", ")
    }
}

/// What each run exports: `deliveries as csv, gzip`.
fn export(s: &Value) -> String {
    let source = text(s, "/export/source");
    if source.is_empty() {
        return String::new();
    }
    let mut out = source;
    let format = text(s, "/export/format");
    if !format.is_empty() {
        let _ = write!(out, " as {format}");
    }
    let compression = text(s, "/export/compression");
    if !compression.is_empty() && compression != "none" {
        let _ = write!(out, ", {compression}");
    }
    out
}

/// One schedule, one field a line.
pub fn render_schedule(s: &Value) -> String {
    let mut pairs = vec![
        ("schedule", text(s, "/id")),
        ("name", text(s, "/name")),
        ("cron", when(s)),
        ("enabled", text(s, "/enabled")),
        ("next run", next_run(s)),
    ];
    if let Some(retry) = retry(s) {
        pairs.push(("retry", retry));
    }
    pairs.extend([
        ("export", export(s)),
        ("filter", filter(&s["export"])),
        ("target", target(&s["export"])),
        ("retention", retention(s)),
        ("created", time(s, "/created_at")),
        ("updated", time(s, "/updated_at")),
    ]);
    key_values(&pairs)
}

/// Just created: the schedule, and where its runs will show.
pub fn render_created(s: &Value) -> String {
    let id = text(s, "/id");
    let mut out = format!("Created export schedule {id}.\n\n");
    out.push_str(&render_schedule(s));
    let _ = writeln!(
        out,
        "\nIts runs: `ferry export schedule runs {id}`; stop it with \
         `ferry export schedule update {id} --disable`."
    );
    out
}

/// One row per schedule, newest first.
pub fn render_list(body: &Value) -> String {
    let (items, cursor) = list_items(body);
    if items.is_empty() && cursor.is_none() {
        return "No export schedules yet: create one with `ferry export schedule create`.\n"
            .to_owned();
    }
    let mut t = Table::new([
        "id", "name", "cron", "enabled", "next run", "retry", "export", "target",
    ])
    .hide_empty_columns()
    .max_cell(60);
    for s in items {
        t.row([
            text(s, "/id"),
            text(s, "/name"),
            when(s),
            text(s, "/enabled"),
            time(s, "/next_run_at"),
            time(s, "/retry/at"),
            export(s),
            target(&s["export"]),
        ]);
    }
    let mut out = t.render();
    list_footer(&mut out, items.len(), ("schedule", "schedules"), cursor);
    out
}

/// A schedule's runs, newest first: when each was due, its attempt, what it
/// wrote, and when retention removed its output.
pub fn render_runs(body: &Value) -> String {
    let (items, cursor) = list_items(body);
    if items.is_empty() && cursor.is_none() {
        return "No runs yet.\n".to_owned();
    }
    let mut t = Table::new([
        "id",
        "scheduled for",
        "attempt",
        "status",
        "rows",
        "bytes",
        "finished",
        "removed",
        "error",
    ])
    .hide_empty_columns()
    .max_cell(60);
    for job in items {
        t.row([
            text(job, "/id"),
            time(job, "/scheduled_for"),
            text(job, "/attempt"),
            text(job, "/status"),
            rows(job).map(|n| n.to_string()).unwrap_or_default(),
            bytes(job)
                .map(|n| HumanBytes(n).to_string())
                .unwrap_or_default(),
            time(job, "/finished_at"),
            time(job, "/output_removed_at"),
            text(job, "/error"),
        ]);
    }
    let mut out = t.render();
    list_footer(&mut out, items.len(), ("run", "runs"), cursor);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schedule() -> Value {
        json!({
            "id": "sch_1", "name": "nightly dead letters", "cron": "0 2 * * *",
            "timezone": "Europe/Berlin", "enabled": true,
            "export": {"source": "deliveries", "format": "csv", "compression": "gzip",
                       "fields": [], "filter": {"status": "dead"}, "redact": [],
                       "redact_secrets": true, "incremental": false,
                       "target": {"destination_id": "dst_1", "path": "ferry/dead-{date}.csv.gz"}},
            "retention": {"keep_last": 30, "max_age_days": 90},
            "next_run_at": "2026-03-03T01:00:00Z", "retry": null,
            "created_at": "2026-03-02T10:00:00Z", "updated_at": "2026-03-02T10:00:00Z",
            "links": {"self": "/v1/export-schedules/sch_1", "runs": "/v1/export-schedules/sch_1/runs"}
        })
    }

    #[test]
    fn a_schedule_shows_when_it_runs_what_and_what_it_keeps() {
        assert_eq!(
            render_schedule(&schedule()),
            "schedule   sch_1\n\
             name       nightly dead letters\n\
             cron       0 2 * * * (Europe/Berlin)\n\
             enabled    yes\n\
             next run   2026-03-03 01:00:00\n\
             export     deliveries as csv, gzip\n\
             filter     status=dead\n\
             target     dst_1: ferry/dead-{date}.csv.gz\n\
             retention  the newest 30, under 90 days old\n\
             created    2026-03-02 10:00:00\n\
             updated    2026-03-02 10:00:00\n"
        );
    }

    #[test]
    fn a_disabled_schedule_or_one_owing_a_retry_says_so() {
        let mut s = schedule();
        s["enabled"] = json!(false);
        s["next_run_at"] = json!(null);
        s["retention"] = json!({"keep_last": null, "max_age_days": null});
        s["export"]["compression"] = json!("none");
        s["export"]["target"] = json!({"file": "/srv/files/exports/a.csv"});
        let text = render_schedule(&s);
        assert!(text.contains("enabled    no\n"), "{text}");
        assert!(text.contains("next run   none (disabled)\n"), "{text}");
        assert!(text.contains("retention  every output\n"), "{text}");
        assert!(text.contains("export     deliveries as csv\n"), "{text}");
        assert!(
            text.contains("target     /srv/files/exports/a.csv\n"),
            "{text}"
        );
        assert!(!text.contains("retry"), "{text}");
        let mut s = schedule();
        s["retry"] = json!({"at": "2026-03-02T02:01:00Z",
                            "scheduled_for": "2026-03-02T01:00:00Z", "attempt": 2});
        s["retention"] = json!({"max_age_days": 1});
        let text = render_schedule(&s);
        assert!(
            text.contains(
                "retry      attempt 2 at 2026-03-02 02:01:00, for the run due 2026-03-02 01:00:00\n"
            ),
            "{text}"
        );
        assert!(text.contains("retention  under 1 day old\n"), "{text}");
    }

    #[test]
    fn created_names_the_next_commands() {
        let text = render_created(&schedule());
        assert!(
            text.starts_with("Created export schedule sch_1.\n\nschedule "),
            "{text}"
        );
        assert!(
            text.contains("`ferry export schedule runs sch_1`"),
            "{text}"
        );
    }

    #[test]
    fn the_list_has_a_row_per_schedule() {
        let mut off = schedule();
        off["id"] = json!("sch_2");
        off["name"] = json!("hourly");
        off["cron"] = json!("0 * * * *");
        off["timezone"] = json!("UTC");
        off["enabled"] = json!(false);
        off["next_run_at"] = json!(null);
        let body = json!({"data": [schedule(), off], "next_cursor": "c2"});
        assert_eq!(
            render_list(&body),
            "ID     NAME                  CRON                       ENABLED  NEXT RUN             EXPORT                   TARGET\n\
             sch_1  nightly dead letters  0 2 * * * (Europe/Berlin)  yes      2026-03-03 01:00:00  deliveries as csv, gzip  dst_1: ferry/dead-{date}.csv.gz\n\
             sch_2  hourly                0 * * * * (UTC)            no       -                    deliveries as csv, gzip  dst_1: ferry/dead-{date}.csv.gz\n\
             2 schedules.\nMore: add --cursor c2\n"
        );
        assert_eq!(
            render_list(&json!({"data": [], "next_cursor": null})),
            "No export schedules yet: create one with `ferry export schedule create`.\n"
        );
    }

    #[test]
    fn runs_show_their_tick_attempt_and_removal() {
        let run = |id: &str, attempt: u32, status: &str| {
            json!({
                "id": id, "status": status, "source": "audit", "format": "csv",
                "schedule_id": "sch_1", "scheduled_for": "2026-03-02T01:00:00Z",
                "attempt": attempt, "result": null, "error": null,
                "progress": {"rows": 0, "bytes": 0}, "output_removed_at": null,
                "finished_at": "2026-03-02T01:00:01Z"
            })
        };
        let mut old = run("exp_1", 1, "succeeded");
        old["result"] = json!({"rows": 12, "bytes": 2048});
        old["output_removed_at"] = json!("2026-03-03T01:00:02Z");
        let mut failed = run("exp_2", 2, "failed");
        failed["error"] = json!("disk full");
        let body = json!({"data": [failed, old], "next_cursor": null});
        assert_eq!(
            render_runs(&body),
            "ID     SCHEDULED FOR        ATTEMPT  STATUS     ROWS  BYTES     FINISHED             REMOVED              ERROR\n\
             exp_2  2026-03-02 01:00:00  2        failed     0     0 B       2026-03-02 01:00:01  -                    disk full\n\
             exp_1  2026-03-02 01:00:00  1        succeeded  12    2.00 KiB  2026-03-02 01:00:01  2026-03-03 01:00:02  -\n\
             2 runs.\n"
        );
        assert_eq!(
            render_runs(&json!({"data": [], "next_cursor": null})),
            "No runs yet.\n"
        );
    }
}
