//! Scheduled exports from the CLI, against a running server: a schedule
//! made from the same flags as `export create` runs on time and writes its
//! file, is stopped, shown stopped and deleted; a bad cron expression is
//! refused by name.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::commands::{ferry, json, refused, stdout};
use crate::process::FerryProcess;

/// Polls the schedule's runs until one has succeeded; returns it.
async fn first_succeeded_run(base: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let runs = json(&ferry(base, &["--json", "export", "schedule", "runs", id]));
        let succeeded = runs["data"]
            .as_array()
            .unwrap_or_else(|| panic!("not a list: {runs}"))
            .iter()
            .find(|run| run["status"] == "succeeded");
        if let Some(run) = succeeded {
            return run.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no run succeeded within 30 s: {runs}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_scheduled_export_runs_on_time_then_is_stopped_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let ferry_proc = FerryProcess::start(dir.path()).await;
    let base = ferry_proc.base.as_str();

    // A cron expression the server cannot read: its error names the field,
    // and nothing is created.
    refused(
        &ferry(
            base,
            &[
                "export",
                "schedule",
                "create",
                "--name",
                "bad",
                "--cron",
                "every day",
                "--source",
                "audit",
            ],
        ),
        &["validation_failed", "cron"],
    );
    let none = stdout(&ferry(base, &["export", "schedule", "list"]));
    assert!(none.starts_with("No export schedules yet"), "{none}");

    let created = stdout(&ferry(
        base,
        &[
            "export",
            "schedule",
            "create",
            "--name",
            "audit every 2s",
            "--cron",
            "*/2 * * * * *",
            "--keep-last",
            "5",
            "--source",
            "audit",
            "--format",
            "csv",
            "--to",
            "scheduled/audit-{date}-{time}-{id}.csv",
        ],
    ));
    let id = created
        .strip_prefix("Created export schedule ")
        .and_then(|rest| rest.split(".\n").next())
        .unwrap_or_else(|| panic!("{created}"))
        .to_owned();
    assert!(id.starts_with("sch_"), "{created}");
    for line in [
        "cron       */2 * * * * * (UTC)\n",
        "enabled    yes\n",
        "export     audit as csv\n",
        "retention  the newest 5\n",
    ] {
        assert!(created.contains(line), "{line:?} not in {created}");
    }
    let listed = stdout(&ferry(base, &["export", "schedule", "list"]));
    assert!(
        listed.contains(&id) && listed.contains("audit every 2s"),
        "{listed}"
    );

    // A run starts on a tick and writes the audit log, which holds the
    // schedule's own creation, where the schedule said.
    let run = first_succeeded_run(base, &id).await;
    let run_id = run["id"].as_str().unwrap().to_owned();
    assert_eq!(run["schedule_id"], id.as_str(), "{run}");
    assert_eq!(run["attempt"], 1, "{run}");
    let location = run["result"]["location"].as_str().unwrap();
    let files = dir.path().join("data/files/scheduled");
    assert!(
        std::path::Path::new(location).starts_with(&files),
        "{location}"
    );
    assert!(location.ends_with(&format!("-{run_id}.csv")), "{location}");
    let csv = std::fs::read_to_string(location).unwrap();
    assert!(csv.starts_with("id,"), "{csv}");
    assert!(
        csv.lines()
            .any(|l| l.contains(&id) && l.contains("export_schedule.created")),
        "{csv}"
    );
    let runs = stdout(&ferry(base, &["export", "schedule", "runs", &id]));
    assert!(runs.starts_with("ID "), "{runs}");
    assert!(
        runs.lines().next().unwrap().contains("SCHEDULED FOR"),
        "{runs}"
    );
    assert!(
        runs.lines()
            .any(|l| l.starts_with(&run_id) && l.contains("succeeded")),
        "{runs}"
    );

    // One retention limit changed, the other kept.
    let changed = json(&ferry(
        base,
        &[
            "--json",
            "export",
            "schedule",
            "update",
            &id,
            "--max-age-days",
            "7",
        ],
    ));
    assert_eq!(
        changed["retention"],
        json!({"keep_last": 5, "max_age_days": 7}),
        "{changed}"
    );

    // Stopped, and shown stopped.
    let stopped = stdout(&ferry(
        base,
        &["export", "schedule", "update", &id, "--disable"],
    ));
    assert!(stopped.contains("enabled    no\n"), "{stopped}");
    let shown = stdout(&ferry(base, &["export", "schedule", "get", &id]));
    assert!(
        shown.contains("enabled    no\n") && shown.contains("next run   none (disabled)\n"),
        "{shown}"
    );
    let shown = json(&ferry(base, &["--json", "export", "schedule", "get", &id]));
    assert_eq!(shown["enabled"], false, "{shown}");
    assert_eq!(shown["next_run_at"], Value::Null, "{shown}");

    // Deleted: gone, and its runs stay in the export history.
    let deleted = stdout(&ferry(base, &["export", "schedule", "delete", &id]));
    assert_eq!(
        deleted,
        format!("Deleted export schedule {id}; the exports it ran stay.\n")
    );
    refused(
        &ferry(base, &["export", "schedule", "get", &id]),
        &["not_found", "export schedule not found"],
    );
    let job = json(&ferry(base, &["--json", "export", "get", &run_id]));
    assert_eq!(job["status"], "succeeded", "{job}");
}
