//! Delivery metrics kept as history: per destination and time bucket
//! (`Rollup`), how many attempts were made, how they ended, and their
//! latencies as fixed log-scale histograms. Histograms of the same buckets
//! merge by adding counts, so minutes roll up into hours and hours into
//! days without losing the quantiles' precision (each is the upper bound of
//! its histogram bucket: at most ~19 % above the true value, never below).
//! Pure: the dispatcher aggregates completions into these, the store keeps
//! them, exports and charts read them.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{DestinationId, OrgId};

/// Histogram buckets per doubling: bucket `i` holds values in
/// `(2^((i-1)/4), 2^(i/4)]` milliseconds.
const PER_DOUBLING: f64 = 4.0;
/// Bucket 0 holds ≤ 1 ms; bucket `LAST` everything above 2^19.75 ms
/// (~14.7 minutes, longer than the longest delivery timeout).
const LAST: usize = 80;

/// A latency histogram in milliseconds: counts per fixed bucket (sparse).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Histogram {
    /// Bucket index → count; only non-empty buckets.
    counts: BTreeMap<u8, u64>,
}

/// The upper bound of bucket `i`, in milliseconds.
fn upper_bound(i: usize) -> f64 {
    (i as f64 / PER_DOUBLING).exp2()
}

fn bucket_of(ms: u64) -> usize {
    if ms <= 1 {
        return 0;
    }
    let i = ((ms as f64).log2() * PER_DOUBLING).ceil() as usize;
    // Guard against rounding just below an exact bound.
    let i = if upper_bound(i) < ms as f64 { i + 1 } else { i };
    i.min(LAST)
}

impl Histogram {
    pub fn record(&mut self, ms: u64) {
        self.record_n(ms, 1);
    }

    fn record_n(&mut self, ms: u64, n: u64) {
        let index = u8::try_from(bucket_of(ms)).unwrap_or(u8::MAX);
        *self.counts.entry(index).or_default() += n;
    }

    /// Adds `other`'s counts.
    pub fn merge(&mut self, other: &Histogram) {
        for (i, n) in &other.counts {
            *self.counts.entry(*i).or_default() += n;
        }
    }

    pub fn count(&self) -> u64 {
        self.counts.values().sum()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// The `q` quantile (0 < q ≤ 1) in whole milliseconds: the upper bound
    /// of the bucket where the cumulative count reaches `q` of the total
    /// (the overflow bucket reports its lower bound). `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (&i, &n) in &self.counts {
            seen += n;
            if seen >= rank {
                let i = usize::from(i).min(LAST);
                let bound = if i == LAST {
                    upper_bound(LAST - 1)
                } else {
                    upper_bound(i)
                };
                return Some(bound.ceil() as u64);
            }
        }
        None
    }

    /// Drops counts of indexes this version does not know (a corrupt or
    /// newer row), so that every kept index is a bucket.
    pub fn sanitized(mut self) -> Self {
        self.counts.retain(|i, _| usize::from(*i) <= LAST);
        self
    }
}

/// The size of a rollup's time bucket.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    Minute,
    Hour,
    Day,
}

impl Bucket {
    pub const ALL: [Bucket; 3] = [Bucket::Minute, Bucket::Hour, Bucket::Day];

    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Minute => "minute",
            Bucket::Hour => "hour",
            Bucket::Day => "day",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.as_str() == s)
    }

    pub fn duration(self) -> Duration {
        match self {
            Bucket::Minute => Duration::minutes(1),
            Bucket::Hour => Duration::hours(1),
            Bucket::Day => Duration::days(1),
        }
    }

    /// The start of the bucket `t` falls in (UTC).
    pub fn start_of(self, t: DateTime<Utc>) -> DateTime<Utc> {
        t.duration_trunc(self.duration()).unwrap_or(t)
    }

    /// The bucket rolled up into, for minutes and hours.
    pub fn coarser(self) -> Option<Bucket> {
        match self {
            Bucket::Minute => Some(Bucket::Hour),
            Bucket::Hour => Some(Bucket::Day),
            Bucket::Day => None,
        }
    }
}

/// One destination's deliveries in one time bucket. Every attempt made in
/// it ends as exactly one of `delivered`, `retried` (a retryable failure
/// with an attempt still to come) or `dead` (a permanent failure, or the
/// retries spent), so `attempts = delivered + retried + dead`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollup {
    pub org_id: OrgId,
    pub destination_id: DestinationId,
    pub bucket: Bucket,
    /// The bucket's start (UTC, aligned to its size).
    pub start: DateTime<Utc>,
    pub attempts: u64,
    pub delivered: u64,
    pub retried: u64,
    pub dead: u64,
    /// How long each attempt took.
    pub attempt_latency: Histogram,
    /// From the event's acceptance to its delivery, for each delivered one.
    pub end_to_end: Histogram,
}

/// How one attempt ended, as metrics count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptEnd {
    /// Delivered, `ms` after the event was accepted.
    Delivered {
        end_to_end_ms: u64,
    },
    Retried,
    Dead,
}

impl Rollup {
    /// An empty rollup of `bucket` starting at the bucket `at` falls in.
    pub fn empty(
        org_id: OrgId,
        destination_id: DestinationId,
        bucket: Bucket,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            org_id,
            destination_id,
            bucket,
            start: bucket.start_of(at),
            attempts: 0,
            delivered: 0,
            retried: 0,
            dead: 0,
            attempt_latency: Histogram::default(),
            end_to_end: Histogram::default(),
        }
    }

    /// Counts one attempt that took `duration_ms`.
    pub fn record(&mut self, duration_ms: u64, end: AttemptEnd) {
        self.attempts += 1;
        self.attempt_latency.record(duration_ms);
        match end {
            AttemptEnd::Delivered { end_to_end_ms } => {
                self.delivered += 1;
                self.end_to_end.record(end_to_end_ms);
            }
            AttemptEnd::Retried => self.retried += 1,
            AttemptEnd::Dead => self.dead += 1,
        }
    }

    /// Adds `other`'s counts (of any bucket; the caller keeps them apart).
    pub fn merge(&mut self, other: &Rollup) {
        self.attempts += other.attempts;
        self.delivered += other.delivered;
        self.retried += other.retried;
        self.dead += other.dead;
        self.attempt_latency.merge(&other.attempt_latency);
        self.end_to_end.merge(&other.end_to_end);
    }

    /// Delivered attempts among all (`None` without attempts).
    pub fn success_rate(&self) -> Option<f64> {
        (self.attempts > 0).then(|| self.delivered as f64 / self.attempts as f64)
    }
}

/// Merges rollups (of `bucket` or finer) into rollups of `bucket`, one per
/// destination and bucket start, ordered by start, then destination.
pub fn roll_up(rows: impl IntoIterator<Item = Rollup>, bucket: Bucket) -> Vec<Rollup> {
    let mut merged: BTreeMap<(DateTime<Utc>, String), Rollup> = BTreeMap::new();
    for row in rows {
        let start = bucket.start_of(row.start);
        let key = (start, row.destination_id.to_string());
        merged
            .entry(key)
            .or_insert_with(|| {
                Rollup::empty(
                    row.org_id.clone(),
                    row.destination_id.clone(),
                    bucket,
                    start,
                )
            })
            .merge(&row);
    }
    merged.into_values().collect()
}

/// Which rollups a reader wants.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsQuery {
    /// The bucket size returned; finer stored rollups are merged into it.
    pub bucket: Bucket,
    /// Buckets starting at or after (rounded down to the bucket)…
    pub since: DateTime<Utc>,
    /// …and before.
    pub until: DateTime<Utc>,
    pub destination_id: Option<DestinationId>,
}

/// How long rollups are kept at each size: past `minutes`, minutes are
/// folded into hours; past `hours`, hours into days; days past `days` are
/// deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsRetention {
    pub minutes: Duration,
    pub hours: Duration,
    pub days: Duration,
}

impl MetricsRetention {
    /// Rollups of `bucket` starting before this are folded (or deleted):
    /// whole buckets of the next size only, so that a coarser bucket is
    /// made of all of its parts at once.
    pub fn cutoff(&self, bucket: Bucket, now: DateTime<Utc>) -> DateTime<Utc> {
        let (keep, unit) = match bucket {
            Bucket::Minute => (self.minutes, Bucket::Hour),
            Bucket::Hour => (self.hours, Bucket::Day),
            Bucket::Day => (self.days, Bucket::Day),
        };
        unit.start_of(now - keep)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn hist(values: &[u64]) -> Histogram {
        let mut h = Histogram::default();
        for v in values {
            h.record(*v);
        }
        h
    }

    #[test]
    fn quantiles_are_bucket_upper_bounds_never_below_the_truth() {
        let h = hist(&[50; 99]);
        let p50 = h.quantile(0.5).unwrap();
        assert!((50..=60).contains(&p50), "{p50}");
        let mut h = hist(&[10; 98]);
        h.record(1000);
        h.record(1000);
        assert!((10..=12).contains(&h.quantile(0.5).unwrap()));
        assert!((1000..=1190).contains(&h.quantile(0.99).unwrap()));
        assert_eq!(Histogram::default().quantile(0.5), None);
        assert_eq!(hist(&[0]).quantile(0.99), Some(1));
        // Beyond the last bound, the overflow bucket.
        assert!(hist(&[u64::MAX]).quantile(0.5).unwrap() > 800_000);
    }

    #[test]
    fn exact_bounds_fall_in_their_own_bucket() {
        for i in 0..LAST {
            let bound = upper_bound(i);
            if bound.fract() == 0.0 {
                assert_eq!(bucket_of(bound as u64), i, "{bound}");
            }
        }
    }

    #[test]
    fn histograms_round_trip_as_json() {
        let h = hist(&[1, 50, 50, 3000]);
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<Histogram>(&json).unwrap(), h);
    }

    #[test]
    fn rolling_up_merges_finer_buckets_into_coarser_ones() {
        let org = OrgId::generate();
        let (a, b) = (DestinationId::generate(), DestinationId::generate());
        let t = DateTime::parse_from_rfc3339("2026-12-07T10:15:30Z")
            .unwrap()
            .with_timezone(&Utc);
        let row = |d: &DestinationId, at, end| {
            let mut r = Rollup::empty(org.clone(), d.clone(), Bucket::Minute, at);
            r.record(40, end);
            r
        };
        let rows = vec![
            row(&a, t, AttemptEnd::Retried),
            row(&a, t + Duration::minutes(20), AttemptEnd::Dead),
            row(&b, t, AttemptEnd::Delivered { end_to_end_ms: 90 }),
            row(&a, t + Duration::hours(1), AttemptEnd::Retried),
        ];
        let hours = roll_up(rows, Bucket::Hour);
        assert_eq!(hours.len(), 3);
        assert_eq!(hours[0].start, Bucket::Hour.start_of(t));
        assert_eq!(hours[0].bucket, Bucket::Hour);
        let first_a = hours.iter().find(|r| r.destination_id == a).unwrap();
        assert_eq!((first_a.attempts, first_a.retried, first_a.dead), (2, 1, 1));
        assert_eq!(first_a.attempt_latency.count(), 2);
        let days = roll_up(hours, Bucket::Day);
        assert_eq!(days.len(), 2);
        assert_eq!(days.iter().map(|r| r.attempts).sum::<u64>(), 4);
    }

    #[test]
    fn cutoffs_fold_whole_buckets() {
        let retention = MetricsRetention {
            minutes: Duration::hours(48),
            hours: Duration::days(35),
            days: Duration::days(400),
        };
        let now = DateTime::parse_from_rfc3339("2026-12-07T10:15:30Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            retention.cutoff(Bucket::Minute, now).to_rfc3339(),
            "2026-12-05T10:00:00+00:00"
        );
        assert_eq!(
            retention.cutoff(Bucket::Hour, now).to_rfc3339(),
            "2026-11-02T00:00:00+00:00"
        );
    }

    proptest! {
        #[test]
        fn merged_quantiles_lie_between_the_parts(
            a in proptest::collection::vec(0u64..2_000_000, 1..200),
            b in proptest::collection::vec(0u64..2_000_000, 1..200),
            q in 0.01f64..=1.0,
        ) {
            let (ha, hb) = (hist(&a), hist(&b));
            let mut merged = ha.clone();
            merged.merge(&hb);
            prop_assert_eq!(merged.count(), (a.len() + b.len()) as u64);
            let (qa, qb) = (ha.quantile(q).unwrap(), hb.quantile(q).unwrap());
            let qm = merged.quantile(q).unwrap();
            prop_assert!(qa.min(qb) <= qm && qm <= qa.max(qb), "{} {} {}", qa, qb, qm);
            // The same as recording everything in one histogram.
            let all: Vec<u64> = a.iter().chain(&b).copied().collect();
            prop_assert_eq!(merged, hist(&all));
        }

        #[test]
        fn a_quantile_is_at_least_the_true_value_and_close(
            values in proptest::collection::vec(1u64..800_000, 1..300),
            q in 0.01f64..=1.0,
        ) {
            let mut sorted = values.clone();
            sorted.sort_unstable();
            let rank = ((q * values.len() as f64).ceil() as usize).max(1);
            let truth = sorted[rank - 1];
            let got = hist(&values).quantile(q).unwrap();
            prop_assert!(got >= truth, "{} < {}", got, truth);
            prop_assert!(got as f64 <= truth as f64 * 1.19 + 1.0, "{} vs {}", got, truth);
        }
    }
}
