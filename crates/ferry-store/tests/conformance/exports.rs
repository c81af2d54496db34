//! Conformance cases of the `ExportStore` port: export jobs move only
//! forward (a cancel and a finishing run cannot both win), progress tells a
//! runner whether it was cancelled, and record pages walk a source in
//! ascending order within its organization and filters.

use ferry_core::delivery::DeliveryStatus;
use ferry_core::export::{
    Compression, ExportJob, ExportOutput, ExportProgress, ExportSource, ExportSpec, ExportStatus,
    ExportTarget, Format, Record, RecordFilter, RecordQuery,
};
use ferry_core::ids::{ExportId, OrgId};
use ferry_core::page::PageRequest;

use crate::support::*;

pub fn job(org: &OrgId) -> ExportJob {
    ExportJob {
        id: ExportId::generate(),
        org_id: org.clone(),
        schedule_id: None,
        run: None,
        status: ExportStatus::Queued,
        spec: ExportSpec {
            source: ExportSource::Deliveries,
            format: Format::Csv,
            compression: Compression::Gzip,
            fields: vec!["id".into(), "status".into()],
            filter: RecordFilter {
                status: Some(DeliveryStatus::Dead),
                ..RecordFilter::default()
            },
            redact: vec!["last_error".into()],
            redact_secrets: true,
            incremental: false,
            target: ExportTarget::File {
                file: "/srv/exports/dead.csv.gz".into(),
            },
        },
        progress: ExportProgress::default(),
        output: None,
        error: None,
        created_at: now(),
        started_at: None,
        finished_at: None,
        output_removed_at: None,
        incremental_key: None,
    }
}

pub async fn export_jobs_move_only_forward<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let (org, other) = (org(&b).await, org(&b).await);
    let e = &b.exports;
    let mut first = job(&org);
    e.insert_export(&first, &audit(&org, "export", "export.created"))
        .await
        .unwrap();
    assert_eq!(
        e.get_export(&org, &first.id).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(e.get_export(&other, &first.id).await.unwrap(), None);
    assert_eq!(
        b.ownership.owner_of(first.id.as_str()).await.unwrap(),
        Some(org.clone())
    );
    assert_eq!(e.active_exports(&org).await.unwrap(), 1);
    assert_eq!(e.active_exports(&other).await.unwrap(), 0);
    let progress = ExportProgress {
        rows: 10,
        bytes: 100,
        total_rows: Some(40),
    };
    assert!(
        !e.save_export_progress(&first.id, &progress).await.unwrap(),
        "a queued job has no progress"
    );

    first.status = ExportStatus::Running;
    first.started_at = Some(now());
    assert!(e.transition_export(&first, None).await.unwrap());
    assert!(e.save_export_progress(&first.id, &progress).await.unwrap());
    assert_eq!(
        e.get_export(&org, &first.id)
            .await
            .unwrap()
            .unwrap()
            .progress,
        progress
    );

    let mut done = first.clone();
    done.status = ExportStatus::Succeeded;
    done.finished_at = Some(now());
    done.progress = ExportProgress {
        rows: 40,
        bytes: 400,
        total_rows: Some(40),
    };
    done.output = Some(ExportOutput {
        uncompressed_bytes: 4000,
        sha256: "ab".repeat(32),
        location: "/srv/exports/dead.csv.gz".into(),
    });
    let mut cancelled = first.clone();
    cancelled.status = ExportStatus::Cancelled;
    assert!(
        e.transition_export(&done, Some(&audit(&org, "export", "export.succeeded")))
            .await
            .unwrap()
    );
    assert!(
        !e.transition_export(&cancelled, Some(&audit(&org, "export", "export.cancelled")))
            .await
            .unwrap(),
        "a finished job stays finished"
    );
    assert_eq!(
        e.get_export(&org, &first.id).await.unwrap(),
        Some(done.clone())
    );
    assert!(!e.save_export_progress(&first.id, &progress).await.unwrap());
    assert_eq!(e.active_exports(&org).await.unwrap(), 0);

    // Cancelled while queued: it never runs.
    let mut second = job(&org);
    e.insert_export(&second, &audit(&org, "export", "export.created"))
        .await
        .unwrap();
    let stale = e.stale_exports(now() + secs(1)).await.unwrap();
    assert!(stale.iter().any(|j| j.id == second.id));
    assert!(e.stale_exports(now() - secs(60)).await.unwrap().is_empty());
    second.status = ExportStatus::Cancelled;
    assert!(e.transition_export(&second, None).await.unwrap());
    second.status = ExportStatus::Running;
    assert!(!e.transition_export(&second, None).await.unwrap());

    let listed = e.list_exports(&org, page(1)).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].id, second.id, "newest first");
    let next = PageRequest {
        limit: 1,
        after: listed.next,
    };
    let rest = e.list_exports(&org, next).await.unwrap();
    assert_eq!(rest.items, vec![done]);
    assert!(rest.next.is_none());
}

async fn walk(b: &Backend, org: &OrgId, query: &RecordQuery, size: u32) -> Vec<Record> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = b
            .exports
            .record_page(org, query, after, size)
            .await
            .unwrap();
        let Some((last, _)) = page.last() else {
            return out;
        };
        assert!(page.windows(2).all(|w| w[0].0 < w[1].0), "ascending");
        assert!(*last > after);
        after = *last;
        out.extend(page.into_iter().map(|(_, r)| r));
    }
}

pub async fn record_pages_walk_in_order_within_their_filters<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let (org, other) = (org(&b).await, org(&b).await);
    let (d1, d2) = (
        destination(&b, &org, "one").await,
        destination(&b, &org, "two").await,
    );
    let start = now() - secs(100);
    let mut batch = Vec::new();
    for i in 0..5 {
        let t = if i % 2 == 0 {
            "order.created"
        } else {
            "order.paid"
        };
        batch.push(new_event_at(&org, t, &[&d1, &d2], start + secs(i * 10)));
    }
    ingest(&b, &batch).await;
    let theirs = destination(&b, &other, "theirs").await;
    ingest(&b, &[new_event(&other, &[&theirs])]).await;
    // One attempt each for the deliveries to `one`.
    let leased = b
        .queue
        .lease_destination(&d1, 10, &lease("w", now()))
        .await
        .unwrap();
    assert_eq!(leased.len(), 5);
    let done: Vec<_> = leased
        .iter()
        .map(|l| completion(l, "w", DeliveryStatus::Delivered, None, false))
        .collect();
    b.queue.complete(&done).await.unwrap();

    let query = |source, filter| RecordQuery { source, filter };
    let all = RecordFilter::default();
    let events = walk(&b, &org, &query(ExportSource::Events, all.clone()), 2).await;
    let ids: Vec<_> = events
        .iter()
        .map(|r| match r {
            Record::Event(e) => e.id.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    let sent: Vec<_> = batch.iter().map(|e| e.event.id.clone()).collect();
    // In the order stored; one batch's rows may be stored in any order.
    let (mut got, mut want) = (ids.clone(), sent.clone());
    got.sort();
    want.sort();
    assert_eq!(got, want, "this org's only");

    let deliveries = walk(&b, &org, &query(ExportSource::Deliveries, all.clone()), 3).await;
    assert_eq!(deliveries.len(), 10);
    let Record::Delivery(first) = &deliveries[0] else {
        panic!("{:?}", deliveries[0]);
    };
    let first_type = &batch
        .iter()
        .find(|e| e.event.id == first.event_id)
        .unwrap()
        .event
        .event_type;
    assert_eq!(&first.event_type, first_type);

    let delivered = RecordFilter {
        status: Some(DeliveryStatus::Delivered),
        event_type: Some("order.paid".into()),
        ..RecordFilter::default()
    };
    let q = query(ExportSource::Deliveries, delivered);
    let got = walk(&b, &org, &q, 100).await;
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|r| matches!(r,
        Record::Delivery(d) if d.destination_id == d1 && d.event_type == "order.paid")));
    assert_eq!(b.exports.count_records(&org, &q).await.unwrap(), 2);

    let window = RecordFilter {
        since: Some(start + secs(10)),
        until: Some(start + secs(30)),
        destination_id: Some(d2.clone()),
        ..RecordFilter::default()
    };
    let q = query(ExportSource::Deliveries, window);
    assert_eq!(walk(&b, &org, &q, 100).await.len(), 2);
    assert_eq!(b.exports.count_records(&org, &q).await.unwrap(), 2);

    let attempts = walk(&b, &org, &query(ExportSource::Attempts, all.clone()), 2).await;
    assert_eq!(attempts.len(), 5);
    assert!(attempts.iter().all(|r| matches!(r,
        Record::Attempt(a, c) if a.number == 1 && c.destination_id == d1)));
    let to_two = RecordFilter {
        destination_id: Some(d2),
        ..RecordFilter::default()
    };
    assert!(
        walk(&b, &org, &query(ExportSource::Attempts, to_two), 2)
            .await
            .is_empty()
    );

    let audit_all = walk(&b, &org, &query(ExportSource::Audit, all.clone()), 4).await;
    assert!(!audit_all.is_empty());
    let delivered_audit = RecordFilter {
        action: Some("delivery.delivered".into()),
        ..RecordFilter::default()
    };
    let q = query(ExportSource::Audit, delivered_audit);
    let got = walk(&b, &org, &q, 2).await;
    assert_eq!(got.len(), 5);
    assert_eq!(b.exports.count_records(&org, &q).await.unwrap(), 5);
    assert_eq!(
        b.exports
            .count_records(&other, &query(ExportSource::Events, all))
            .await
            .unwrap(),
        1
    );
}

/// An incremental run's window selects records by when they last changed
/// (`changed_after` exclusive, `changed_until` inclusive), and the last
/// succeeded job of a key is where the next run starts.
pub async fn incremental_windows_select_what_changed<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let (org, other) = (org(&b).await, org(&b).await);
    let (d1, d2) = (
        destination(&b, &org, "one").await,
        destination(&b, &org, "two").await,
    );
    let start = now() - secs(100);
    let batch: Vec<_> = (0..5)
        .map(|i| new_event_at(&org, "order.created", &[&d1, &d2], start + secs(i * 10)))
        .collect();
    ingest(&b, &batch).await;
    let leased = b
        .queue
        .lease_destination(&d1, 10, &lease("w", now()))
        .await
        .unwrap();
    let done: Vec<_> = leased
        .iter()
        .map(|l| completion(l, "w", DeliveryStatus::Delivered, None, false))
        .collect();
    b.queue.complete(&done).await.unwrap();

    let window = |source, after: Option<_>, until: Option<_>| RecordQuery {
        source,
        filter: RecordFilter {
            changed_after: after,
            changed_until: until,
            ..RecordFilter::default()
        },
    };
    let q = window(
        ExportSource::Events,
        Some(start + secs(10)),
        Some(start + secs(30)),
    );
    assert_eq!(
        walk(&b, &org, &q, 10).await.len(),
        2,
        "events at 20 s and 30 s"
    );
    assert_eq!(b.exports.count_records(&org, &q).await.unwrap(), 2);
    // Deliveries change when they are updated: only the delivered ones
    // changed after the last event was created.
    let q = window(ExportSource::Deliveries, Some(start + secs(45)), None);
    let changed = walk(&b, &org, &q, 10).await;
    assert_eq!(changed.len(), 5);
    assert!(
        changed
            .iter()
            .all(|r| matches!(r, Record::Delivery(d) if d.destination_id == d1))
    );
    let q = window(ExportSource::Attempts, None, Some(start));
    assert!(
        walk(&b, &org, &q, 10).await.is_empty(),
        "no attempt ended before the events"
    );
    let q = window(ExportSource::Attempts, Some(start), None);
    assert_eq!(walk(&b, &org, &q, 10).await.len(), 5);
    let q = window(ExportSource::Audit, Some(now() + secs(60)), None);
    assert!(walk(&b, &org, &q, 10).await.is_empty());

    let e = &b.exports;
    assert_eq!(e.last_incremental(&org, "key").await.unwrap(), None);
    let mut first = job(&org);
    first.incremental_key = Some("key".into());
    e.insert_export(&first, &audit(&org, "export", "export.created"))
        .await
        .unwrap();
    assert_eq!(
        e.last_incremental(&org, "key").await.unwrap(),
        None,
        "not succeeded yet"
    );
    first.status = ExportStatus::Running;
    assert!(e.transition_export(&first, None).await.unwrap());
    first.status = ExportStatus::Succeeded;
    first.output = Some(ExportOutput {
        uncompressed_bytes: 1,
        sha256: "00".into(),
        location: "/x".into(),
    });
    assert!(e.transition_export(&first, None).await.unwrap());
    let mut failed = job(&org);
    failed.incremental_key = Some("key".into());
    e.insert_export(&failed, &audit(&org, "export", "export.created"))
        .await
        .unwrap();
    failed.status = ExportStatus::Failed;
    assert!(e.transition_export(&failed, None).await.unwrap());
    let last = e.last_incremental(&org, "key").await.unwrap().unwrap();
    assert_eq!(
        (last.id, last.incremental_key),
        (first.id, Some("key".into()))
    );
    assert_eq!(e.last_incremental(&other, "key").await.unwrap(), None);
    assert_eq!(e.last_incremental(&org, "other").await.unwrap(), None);
}
