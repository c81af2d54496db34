//! The baseline: the same number of messages, with the same payloads, sent
//! straight through the kind's client crate by `concurrency` tasks, each
//! waiting for the broker's or database's acknowledgement before its next
//! message — no Ferry in between. Its rate is what Ferry's delivery rate is
//! compared with.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use indicatif::ProgressBar;

use super::ingest::{DATA_OVERHEAD, data, new_histogram};
use super::kinds::{BrokerTarget, Fixture, Message};
use super::report::{self, BaselineSummary};
use super::{ROUTED_TYPE, until_interrupted};

/// Publishes `events` messages into a fixture of its own named `name`,
/// counts them back, and removes the fixture (also on Ctrl-C).
pub async fn run(
    target: &BrokerTarget,
    name: &str,
    events: u64,
    concurrency: usize,
    payload_bytes: usize,
    bar: ProgressBar,
) -> anyhow::Result<BaselineSummary> {
    let mut fixture = Fixture::create(target, name, ROUTED_TYPE).await?;
    let outcome = until_interrupted(publish_all(
        target,
        &mut fixture,
        name,
        events,
        concurrency,
        payload_bytes,
        bar,
    ))
    .await;
    let removed = fixture.remove().await;
    let summary = outcome?;
    removed?;
    Ok(summary)
}

async fn publish_all(
    target: &BrokerTarget,
    fixture: &mut Fixture,
    run_id: &str,
    events: u64,
    concurrency: usize,
    payload_bytes: usize,
    bar: ProgressBar,
) -> anyhow::Result<BaselineSummary> {
    let publisher = Arc::new(fixture.publisher(target).await?);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (publisher, next, bar) = (Arc::clone(&publisher), Arc::clone(&next), bar.clone());
        let run_id = run_id.to_owned();
        tasks.spawn(async move {
            let mut latency_us = new_histogram();
            let mut errors: BTreeMap<String, u64> = BTreeMap::new();
            let pad = "x".repeat(payload_bytes.saturating_sub(DATA_OVERHEAD));
            loop {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= events {
                    break;
                }
                let message = Message::new(ROUTED_TYPE, data(&run_id, seq, &pad));
                let sent_at = Instant::now();
                match publisher.publish(&message).await {
                    Ok(()) => {
                        let micros =
                            u64::try_from(sent_at.elapsed().as_micros()).unwrap_or(u64::MAX);
                        latency_us.saturating_record(micros.max(1));
                    }
                    Err(e) => *errors.entry(format!("{e:#}")).or_default() += 1,
                }
                bar.inc(1);
            }
            (latency_us, errors)
        });
    }
    let mut latency_us = new_histogram();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        let (part, part_errors) = joined?;
        // Same bounds on both sides: adding cannot go out of range.
        let _ = latency_us.add(&part);
        for (cause, n) in part_errors {
            *errors.entry(cause).or_default() += n;
        }
    }
    let elapsed = started.elapsed();
    bar.finish();
    let acknowledged = latency_us.len();
    let read_back = fixture.read_back(acknowledged).await?;
    let p = report::percentiles(&latency_us);
    Ok(BaselineSummary {
        seconds: report::round3(elapsed.as_secs_f64()),
        msgs_per_s: report::rate(acknowledged, elapsed),
        acknowledged,
        p50_ms: p.p50_ms,
        p99_ms: p.p99_ms,
        errors: errors.values().sum(),
        errors_by_cause: errors,
        read_back,
    })
}
