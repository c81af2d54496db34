//! Conformance cases of the `MetricsStore` port: rollups written by
//! several flushes add up, stay within their organization and destination,
//! read as coarser buckets by merging finer ones, and compaction folds old
//! minutes into hours and hours into days once each (even when two
//! compactions race), keeping every count, then drops days past retention.

use chrono::{DateTime, Duration, Utc};
use ferry_core::ids::{DestinationId, OrgId};
use ferry_core::metrics::{AttemptEnd, Bucket, MetricsQuery, MetricsRetention, Rollup};

use crate::support::*;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn minute(org: &OrgId, d: &DestinationId, t: DateTime<Utc>, ms: u64, end: AttemptEnd) -> Rollup {
    let mut r = Rollup::empty(org.clone(), d.clone(), Bucket::Minute, t);
    r.record(ms, end);
    r
}

fn query(bucket: Bucket, since: &str, until: &str) -> MetricsQuery {
    MetricsQuery {
        bucket,
        since: at(since),
        until: at(until),
        destination_id: None,
    }
}

const DELIVERED: AttemptEnd = AttemptEnd::Delivered { end_to_end_ms: 120 };

pub async fn rollups_add_up_and_merge_into_coarser_buckets(f: &impl Fixture) {
    let b = f.open().await;
    let (org, other) = (org(&b).await, org(&b).await);
    let (a, c) = (DestinationId::generate(), DestinationId::generate());
    let t = at("2026-12-07T10:15:20Z");
    // Two flushes of the same minute (two processes, or two flush rounds).
    b.metrics
        .add_rollups(&[
            minute(&org, &a, t, 50, DELIVERED),
            minute(&org, &c, t, 900, AttemptEnd::Retried),
        ])
        .await
        .unwrap();
    b.metrics
        .add_rollups(&[
            minute(&org, &a, t + secs(10), 60, AttemptEnd::Dead),
            minute(&org, &a, t + Duration::minutes(30), 70, DELIVERED),
            minute(&other, &DestinationId::generate(), t, 5, DELIVERED),
        ])
        .await
        .unwrap();
    b.metrics.add_rollups(&[]).await.unwrap();

    let minutes = b
        .metrics
        .rollups(
            &org,
            &query(
                Bucket::Minute,
                "2026-12-07T10:00:00Z",
                "2026-12-07T11:00:00Z",
            ),
        )
        .await
        .unwrap();
    assert_eq!(minutes.len(), 3, "{minutes:?}");
    let first = &minutes[0];
    assert_eq!(first.start, at("2026-12-07T10:15:00Z"));
    let first_a = minutes
        .iter()
        .find(|r| r.destination_id == a && r.start == first.start)
        .unwrap();
    assert_eq!(
        (first_a.attempts, first_a.delivered, first_a.dead),
        (2, 1, 1)
    );
    assert_eq!(first_a.attempt_latency.count(), 2);
    assert_eq!(first_a.end_to_end.count(), 1);
    assert!(first_a.attempt_latency.quantile(0.99).unwrap() >= 60);

    let hours = b
        .metrics
        .rollups(
            &org,
            &query(Bucket::Hour, "2026-12-07T10:30:00Z", "2026-12-07T10:30:01Z"),
        )
        .await
        .unwrap();
    assert_eq!(
        hours.len(),
        2,
        "the whole hour of each destination: {hours:?}"
    );
    let hour_a = hours.iter().find(|r| r.destination_id == a).unwrap();
    assert_eq!((hour_a.bucket, hour_a.attempts), (Bucket::Hour, 3));
    assert_eq!(hour_a.start, at("2026-12-07T10:00:00Z"));

    let mut one = query(Bucket::Day, "2026-12-07T00:00:00Z", "2026-12-08T00:00:00Z");
    one.destination_id = Some(c.clone());
    let days = b.metrics.rollups(&org, &one).await.unwrap();
    assert_eq!(days.len(), 1);
    assert_eq!((days[0].attempts, days[0].retried), (1, 1));

    let later = query(
        Bucket::Minute,
        "2026-12-07T11:00:00Z",
        "2026-12-07T12:00:00Z",
    );
    assert!(b.metrics.rollups(&org, &later).await.unwrap().is_empty());
    assert_eq!(
        b.metrics.first_rollup_at(&org).await.unwrap(),
        Some(at("2026-12-07T10:15:00Z"))
    );
    let nobody = OrgId::generate();
    assert_eq!(b.metrics.first_rollup_at(&nobody).await.unwrap(), None);
}

pub async fn compaction_folds_old_buckets_once_and_applies_retention(f: &impl Fixture) {
    let b = f.open().await;
    let org = org(&b).await;
    let d = DestinationId::generate();
    let retention = MetricsRetention {
        minutes: Duration::hours(2),
        hours: Duration::days(2),
        days: Duration::days(10),
    };
    let now = at("2026-12-20T12:30:00Z");
    let rows = vec![
        // Past minute retention: folded into the 09:00 hour.
        minute(&org, &d, at("2026-12-20T09:05:00Z"), 50, DELIVERED),
        minute(
            &org,
            &d,
            at("2026-12-20T09:59:00Z"),
            50,
            AttemptEnd::Retried,
        ),
        // Within it (the cutoff is the whole hour 10:00).
        minute(&org, &d, at("2026-12-20T10:10:00Z"), 50, DELIVERED),
        // Past hour retention: folded into its day.
        minute(&org, &d, at("2026-12-17T08:00:00Z"), 50, AttemptEnd::Dead),
        // Past day retention: gone.
        minute(&org, &d, at("2026-12-01T08:00:00Z"), 50, DELIVERED),
    ];
    b.metrics.add_rollups(&rows).await.unwrap();
    let whole = query(Bucket::Day, "2026-11-01T00:00:00Z", "2027-01-01T00:00:00Z");
    let before: u64 = b
        .metrics
        .rollups(&org, &whole)
        .await
        .unwrap()
        .iter()
        .map(|r| r.attempts)
        .sum();
    assert_eq!(before, 5);

    // Two compactions at once fold each row once.
    let (x, y) = tokio::join!(
        b.metrics.compact_rollups(now, &retention),
        b.metrics.compact_rollups(now, &retention)
    );
    assert!(x.unwrap() + y.unwrap() > 0);
    b.metrics.compact_rollups(now, &retention).await.unwrap();

    let minutes = b
        .metrics
        .rollups(
            &org,
            &query(
                Bucket::Minute,
                "2026-11-01T00:00:00Z",
                "2027-01-01T00:00:00Z",
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        minutes.len(),
        1,
        "only the recent minute stays: {minutes:?}"
    );
    assert_eq!(minutes[0].start, at("2026-12-20T10:10:00Z"));
    let hours = b
        .metrics
        .rollups(
            &org,
            &query(Bucket::Hour, "2026-12-20T00:00:00Z", "2026-12-21T00:00:00Z"),
        )
        .await
        .unwrap();
    let nine = hours
        .iter()
        .find(|r| r.start == at("2026-12-20T09:00:00Z"))
        .unwrap();
    assert_eq!((nine.attempts, nine.delivered, nine.retried), (2, 1, 1));
    assert_eq!(nine.attempt_latency.count(), 2);
    let days = b.metrics.rollups(&org, &whole).await.unwrap();
    let total: u64 = days.iter().map(|r| r.attempts).sum();
    assert_eq!(total, 4, "the day past retention is gone: {days:?}");
    let dead_day = days
        .iter()
        .find(|r| r.start == at("2026-12-17T00:00:00Z"))
        .unwrap();
    assert_eq!(dead_day.dead, 1);
    // Hours cannot be read back from a day.
    let old_hours = b
        .metrics
        .rollups(
            &org,
            &query(Bucket::Hour, "2026-12-17T00:00:00Z", "2026-12-18T00:00:00Z"),
        )
        .await
        .unwrap();
    assert!(old_hours.is_empty(), "{old_hours:?}");
}
