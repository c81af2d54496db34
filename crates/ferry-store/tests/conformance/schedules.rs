//! Conformance cases of the `ScheduleStore` port: schedules round-trip
//! within their organization, a revision is written by one writer only
//! (with the run it starts, or not at all), the due list holds the enabled
//! schedules with a run owed, and a schedule's runs, active runs and kept
//! outputs are read from the export history, which outlives the schedule.

use chrono::{DateTime, Utc};
use ferry_core::StoreError;
use ferry_core::audit::AuditFilter;
use ferry_core::export::{
    ExportJob, ExportOutput, ExportSchedule, ExportStatus, ExportTarget, Retention, Run,
};
use ferry_core::ids::{DestinationId, ExportId, OrgId, ScheduleId};
use ferry_core::page::PageRequest;

use crate::exports::job;
use crate::support::*;

pub fn schedule(org: &OrgId, name: &str, next_run_at: DateTime<Utc>) -> ExportSchedule {
    let mut export = job(org).spec;
    export.target = ExportTarget::Destination {
        destination_id: DestinationId::generate(),
        path: "nightly/{date}/dead-{time}-{id}.csv.gz".into(),
    };
    let t = now() - secs(3600);
    ExportSchedule {
        id: ScheduleId::generate(),
        org_id: org.clone(),
        name: name.into(),
        cron: "0 2 * * *".into(),
        timezone: "Europe/Berlin".into(),
        enabled: true,
        export,
        retention: Retention::default(),
        next_run_at,
        retry: None,
        revision: 1,
        created_at: t,
        updated_at: t,
    }
}

/// A queued job of `s` for its tick at `scheduled_for`.
fn run(s: &ExportSchedule, scheduled_for: DateTime<Utc>, attempt: u32) -> ExportJob {
    ExportJob {
        schedule_id: Some(s.id.clone()),
        run: Some(Run {
            scheduled_for,
            attempt,
        }),
        spec: s.export.clone(),
        ..job(&s.org_id)
    }
}

async fn insert(b: &Backend, s: &ExportSchedule) {
    b.schedules
        .insert_schedule(s, &audit(&s.org_id, s.id.as_str(), "schedule.created"))
        .await
        .unwrap();
}

async fn insert_run(b: &Backend, job: &ExportJob) {
    b.exports
        .insert_export(job, &audit(&job.org_id, job.id.as_str(), "export.created"))
        .await
        .unwrap();
}

/// Moves a queued job through `running` to `status`.
async fn finish(b: &Backend, job: &mut ExportJob, status: ExportStatus) {
    job.status = ExportStatus::Running;
    job.started_at = Some(now());
    assert!(b.exports.transition_export(job, None).await.unwrap());
    job.status = status;
    job.finished_at = Some(now());
    if status == ExportStatus::Succeeded {
        job.output = Some(ExportOutput {
            uncompressed_bytes: 10,
            sha256: "cd".repeat(32),
            location: format!("nightly/{}.csv.gz", job.id),
        });
    }
    assert!(b.exports.transition_export(job, None).await.unwrap());
}

/// The schedule's state after one write, as a claim makes it.
fn next(s: &ExportSchedule) -> ExportSchedule {
    ExportSchedule {
        revision: s.revision + 1,
        next_run_at: s.next_run_at + secs(86_400),
        updated_at: now(),
        ..s.clone()
    }
}

async fn runs(b: &Backend, s: &ExportSchedule) -> Vec<ExportId> {
    let page = b
        .schedules
        .schedule_runs(&s.org_id, &s.id, page(100))
        .await
        .unwrap();
    page.items.into_iter().map(|j| j.id).collect()
}

pub async fn schedules_round_trip_within_their_org<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let (org, other) = (org(&b).await, org(&b).await);
    let s = &b.schedules;
    let mut full = schedule(&org, "nightly", now() + secs(60));
    full.retention = Retention {
        keep_last: Some(7),
        max_age_days: Some(30),
    };
    full.retry = Some((
        now() + secs(30),
        Run {
            scheduled_for: now() - secs(600),
            attempt: 3,
        },
    ));
    full.revision = 41;
    insert(&b, &full).await;
    let plain = schedule(&org, "hourly", now() + secs(120));
    insert(&b, &plain).await;
    let mut off = schedule(&org, "paused", DateTime::<Utc>::MAX_UTC);
    off.enabled = false;
    insert(&b, &off).await;

    assert_eq!(
        s.get_schedule(&org, &full.id).await.unwrap(),
        Some(full.clone())
    );
    assert_eq!(
        s.get_schedule(&org, &plain.id).await.unwrap(),
        Some(plain.clone())
    );
    let stored_off = s.get_schedule(&org, &off.id).await.unwrap().unwrap();
    assert_eq!(
        stored_off.next_run_at,
        micros(DateTime::<Utc>::MAX_UTC),
        "an idle schedule's far tick is kept"
    );
    assert!(!stored_off.enabled);
    assert_eq!(s.get_schedule(&other, &full.id).await.unwrap(), None);
    assert_eq!(
        b.ownership.owner_of(full.id.as_str()).await.unwrap(),
        Some(org.clone())
    );

    let first = s.list_schedules(&org, page(2)).await.unwrap();
    let names: Vec<&str> = first.items.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["paused", "hourly"], "newest first");
    let rest = s
        .list_schedules(
            &org,
            PageRequest {
                limit: 2,
                after: first.next,
            },
        )
        .await
        .unwrap();
    assert_eq!(rest.items, vec![full.clone()]);
    assert!(rest.next.is_none());
    assert!(
        s.list_schedules(&other, page(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // A name is unique within its organization, on insert and on save.
    let twin = schedule(&org, "nightly", now());
    let err = s
        .insert_schedule(&twin, &audit(&org, twin.id.as_str(), "schedule.created"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert!(!err.to_string().contains("export_schedules"), "{err}");
    insert(&b, &schedule(&other, "nightly", now())).await;
    let renamed = ExportSchedule {
        name: "nightly".into(),
        ..next(&plain)
    };
    let err = s
        .save_schedule(&renamed, plain.revision, None, &[])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(s.get_schedule(&org, &plain.id).await.unwrap(), Some(plain));
}

pub async fn a_revision_is_written_by_one_writer<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let org = org(&b).await;
    let s = schedule(&org, "nightly", now() - secs(5));
    insert(&b, &s).await;

    // Two claims of the same tick, one after the other.
    let claimed = next(&s);
    let (mine, theirs) = (run(&s, s.next_run_at, 1), run(&s, s.next_run_at, 1));
    let claim_audit = [audit(&org, s.id.as_str(), "schedule.claimed")];
    assert!(
        b.schedules
            .save_schedule(&claimed, s.revision, Some(&mine), &claim_audit)
            .await
            .unwrap()
    );
    assert!(
        !b.schedules
            .save_schedule(&claimed, s.revision, Some(&theirs), &claim_audit)
            .await
            .unwrap(),
        "the revision read is gone"
    );
    assert_eq!(
        b.schedules.get_schedule(&org, &s.id).await.unwrap(),
        Some(claimed.clone())
    );
    assert_eq!(runs(&b, &s).await, vec![mine.id.clone()]);
    assert_eq!(b.exports.get_export(&org, &theirs.id).await.unwrap(), None);
    let audited = b
        .store
        .list_audit(
            &org,
            &AuditFilter {
                action: Some("schedule.claimed".into()),
                ..AuditFilter::default()
            },
            page(10),
        )
        .await
        .unwrap();
    assert_eq!(audited.items.len(), 1, "the lost claim recorded nothing");

    // Two processes claiming at once: one wins, one job.
    let other = fixture.open().await;
    let after = next(&claimed);
    let (a, c) = (
        run(&s, claimed.next_run_at, 1),
        run(&s, claimed.next_run_at, 1),
    );
    let (won_a, won_c) = tokio::join!(
        b.schedules
            .save_schedule(&after, claimed.revision, Some(&a), &[]),
        other
            .schedules
            .save_schedule(&after, claimed.revision, Some(&c), &[]),
    );
    let (won_a, won_c) = (won_a.unwrap(), won_c.unwrap());
    assert!(won_a ^ won_c, "one of two at once: {won_a} {won_c}");
    let winner = if won_a { &a } else { &c };
    assert_eq!(runs(&b, &s).await, vec![winner.id.clone(), mine.id.clone()]);

    // Many tasks on one store.
    let (last, read) = (next(&after), after.revision);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (schedules, last) = (b.schedules.clone(), last.clone());
            let job = run(&s, after.next_run_at, 1);
            tokio::spawn(async move {
                schedules
                    .save_schedule(&last, read, Some(&job), &[])
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        won += usize::from(task.await.unwrap());
    }
    assert_eq!(won, 1);
    assert_eq!(runs(&b, &s).await.len(), 3);
    assert_eq!(
        b.schedules.get_schedule(&org, &s.id).await.unwrap(),
        Some(last.clone())
    );

    // A write that fails midway writes nothing.
    fixture.refuse_audit("schedule.refused").await;
    let refused = next(&last);
    let job = run(&s, last.next_run_at, 1);
    let err = b
        .schedules
        .save_schedule(
            &refused,
            last.revision,
            Some(&job),
            &[audit(&org, s.id.as_str(), "schedule.refused")],
        )
        .await;
    assert!(err.is_err(), "{err:?}");
    assert_eq!(
        b.schedules.get_schedule(&org, &s.id).await.unwrap(),
        Some(last)
    );
    assert_eq!(b.exports.get_export(&org, &job.id).await.unwrap(), None);
}

pub async fn a_run_has_one_job<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let org = org(&b).await;
    let s = schedule(&org, "nightly", now() - secs(5));
    insert(&b, &s).await;
    let tick = s.next_run_at;
    let first = run(&s, tick, 1);
    insert_run(&b, &first).await;
    assert_eq!(
        b.exports.get_export(&org, &first.id).await.unwrap(),
        Some(first.clone()),
        "a run's tick and attempt round-trip"
    );

    let again = run(&s, tick, 1);
    let err = b
        .exports
        .insert_export(&again, &audit(&org, again.id.as_str(), "export.created"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    // Claimed with a revision that still matches: refused all the same.
    let err = b
        .schedules
        .save_schedule(&next(&s), s.revision, Some(&again), &[])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(
        b.schedules.get_schedule(&org, &s.id).await.unwrap(),
        Some(s.clone()),
        "the schedule is not saved without its run"
    );

    // A retry of the tick, another schedule's run of the same tick, and
    // jobs started by hand are other runs.
    insert_run(&b, &run(&s, tick, 2)).await;
    let twin = schedule(&org, "twin", tick);
    insert(&b, &twin).await;
    insert_run(&b, &run(&twin, tick, 1)).await;
    let by_hand = ExportJob {
        schedule_id: Some(s.id.clone()),
        ..job(&org)
    };
    insert_run(&b, &by_hand).await;
    insert_run(
        &b,
        &ExportJob {
            id: ExportId::generate(),
            ..by_hand
        },
    )
    .await;
    insert_run(&b, &job(&org)).await;
    assert_eq!(runs(&b, &s).await.len(), 4);
}

pub async fn due_schedules_are_the_enabled_ones_in_due_order<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let (org, other) = (org(&b).await, org(&b).await);
    let t = now();
    let tick = schedule(&org, "tick", t - secs(10));
    let mut retry = schedule(&other, "retry", t + secs(3600));
    retry.retry = Some((
        t - secs(20),
        Run {
            scheduled_for: t - secs(90),
            attempt: 2,
        },
    ));
    let mut off = schedule(&org, "off", t - secs(30));
    off.enabled = false;
    let later = schedule(&org, "later", t + secs(60));
    for s in [&tick, &retry, &off, &later] {
        insert(&b, s).await;
    }
    let due = |at: DateTime<Utc>, limit: u32| {
        let schedules = b.schedules.clone();
        async move {
            let due = schedules.due_schedules(at, limit).await.unwrap();
            due.into_iter().map(|s| s.name).collect::<Vec<_>>()
        }
    };
    assert_eq!(due(t, 10).await, ["retry", "tick"]);
    assert_eq!(due(t, 1).await, ["retry"]);
    assert_eq!(due(t - secs(15), 10).await, ["retry"]);
    assert_eq!(
        due(t - secs(10), 10).await,
        ["retry", "tick"],
        "due at its time"
    );
    assert_eq!(due(t + secs(60), 10).await, ["retry", "tick", "later"]);
    let stored = b.schedules.get_schedule(&org, &tick.id).await.unwrap();
    assert_eq!(stored, Some(tick.clone()));

    // Disabled: never due; enabled again: due from its tick.
    let paused = ExportSchedule {
        enabled: false,
        ..next(&tick)
    };
    assert!(
        b.schedules
            .save_schedule(&paused, tick.revision, None, &[])
            .await
            .unwrap()
    );
    assert_eq!(due(t + secs(365 * 86_400), 10).await, ["retry", "later"]);
    let resumed = ExportSchedule {
        enabled: true,
        ..next(&off)
    };
    assert!(
        b.schedules
            .save_schedule(&resumed, off.revision, None, &[])
            .await
            .unwrap()
    );
    assert_eq!(due(t, 10).await, ["retry"]);
    assert_eq!(due(t + secs(86_400), 10).await, ["retry", "later", "off"]);
}

pub async fn runs_busy_and_kept_outputs_come_from_the_history<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let (org, other) = (org(&b).await, org(&b).await);
    let s = schedule(&org, "nightly", now() - secs(3));
    insert(&b, &s).await;
    let sibling = schedule(&org, "sibling", now());
    insert(&b, &sibling).await;
    let ss = &b.schedules;
    assert!(!ss.schedule_busy(&s.id).await.unwrap());
    assert!(ss.kept_outputs(&s.id).await.unwrap().is_empty());

    let ticks: Vec<DateTime<Utc>> = (0..3).map(|i| now() - secs(300 - i * 100)).collect();
    let mut jobs = Vec::new();
    for tick in &ticks {
        let mut job = run(&s, *tick, 1);
        insert_run(&b, &job).await;
        assert!(ss.schedule_busy(&s.id).await.unwrap(), "queued");
        finish(&b, &mut job, ExportStatus::Succeeded).await;
        jobs.push(job);
    }
    let last_tick = now();
    let mut failed = run(&s, last_tick, 1);
    insert_run(&b, &failed).await;
    finish(&b, &mut failed, ExportStatus::Failed).await;
    let mut retry = run(&s, last_tick, 2);
    insert_run(&b, &retry).await;
    retry.status = ExportStatus::Running;
    assert!(b.exports.transition_export(&retry, None).await.unwrap());
    assert!(ss.schedule_busy(&s.id).await.unwrap(), "running");
    assert!(!ss.schedule_busy(&sibling.id).await.unwrap());
    let mut theirs = run(&sibling, now(), 1);
    insert_run(&b, &theirs).await;
    finish(&b, &mut theirs, ExportStatus::Succeeded).await;
    insert_run(&b, &job(&org)).await;

    let first = ss.schedule_runs(&org, &s.id, page(2)).await.unwrap();
    let ids: Vec<&ExportId> = first.items.iter().map(|j| &j.id).collect();
    assert_eq!(ids, [&retry.id, &failed.id], "newest first");
    let rest = ss
        .schedule_runs(
            &org,
            &s.id,
            PageRequest {
                limit: 2,
                after: first.next,
            },
        )
        .await
        .unwrap();
    assert_eq!(rest.items, vec![jobs[2].clone(), jobs[1].clone()]);
    assert_eq!(runs(&b, &s).await.len(), 5);
    assert!(
        ss.schedule_runs(&other, &s.id, page(10))
            .await
            .unwrap()
            .items
            .is_empty(),
        "another organization sees none"
    );

    let kept = ss.kept_outputs(&s.id).await.unwrap();
    let expected: Vec<ExportJob> = jobs.iter().rev().cloned().collect();
    assert_eq!(kept, expected, "succeeded only, newest first");

    let removed_at = now();
    let oldest = &jobs[0];
    let removal = audit(&org, oldest.id.as_str(), "export.output_removed");
    ss.mark_output_removed(&oldest.id, removed_at, &removal)
        .await
        .unwrap();
    let kept: Vec<ExportId> = ss
        .kept_outputs(&s.id)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(kept, [jobs[2].id.clone(), jobs[1].id.clone()]);
    let stored = b
        .exports
        .get_export(&org, &oldest.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.output_removed_at, Some(removed_at));
    assert_eq!(stored.output, oldest.output, "where it was stays known");
    // Another process applying the same retention changes nothing.
    ss.mark_output_removed(&oldest.id, removed_at + secs(5), &removal)
        .await
        .unwrap();
    let stored = b
        .exports
        .get_export(&org, &oldest.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.output_removed_at, Some(removed_at));
    let audited = b
        .store
        .list_audit(
            &org,
            &AuditFilter {
                action: Some("export.output_removed".into()),
                ..AuditFilter::default()
            },
            page(10),
        )
        .await
        .unwrap();
    assert_eq!(audited.items.len(), 1);
    assert_eq!(audited.items[0].entity_id, oldest.id.as_str());

    retry.status = ExportStatus::Cancelled;
    assert!(b.exports.transition_export(&retry, None).await.unwrap());
    assert!(!ss.schedule_busy(&s.id).await.unwrap());
}

pub async fn deleting_a_schedule_keeps_its_runs<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let (org, other) = (org(&b).await, org(&b).await);
    let s = schedule(&org, "nightly", now() - secs(3));
    insert(&b, &s).await;
    let job = run(&s, s.next_run_at, 1);
    assert!(
        b.schedules
            .save_schedule(&next(&s), s.revision, Some(&job), &[])
            .await
            .unwrap()
    );
    let removal = |org: &OrgId| audit(org, s.id.as_str(), "schedule.deleted");
    assert!(
        !b.schedules
            .delete_schedule(&other, &s.id, &removal(&other))
            .await
            .unwrap(),
        "not another organization's"
    );
    assert!(
        b.schedules
            .delete_schedule(&org, &s.id, &removal(&org))
            .await
            .unwrap()
    );
    assert!(
        !b.schedules
            .delete_schedule(&org, &s.id, &removal(&org))
            .await
            .unwrap()
    );
    assert_eq!(b.schedules.get_schedule(&org, &s.id).await.unwrap(), None);
    assert!(
        b.schedules
            .due_schedules(now() + secs(365 * 86_400), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(runs(&b, &s).await, vec![job.id.clone()]);
    assert_eq!(
        b.exports.get_export(&org, &job.id).await.unwrap(),
        Some(job)
    );
    let audited = b
        .store
        .list_audit(
            &org,
            &AuditFilter {
                action: Some("schedule.deleted".into()),
                ..AuditFilter::default()
            },
            page(10),
        )
        .await
        .unwrap();
    assert_eq!(audited.items.len(), 1);
    // The name is free again.
    insert(&b, &schedule(&org, "nightly", now())).await;
}
