//! Deliveries counted from Ferry's side, for the broker and database kinds
//! (which have no receiver of the tool's own): the destination's health
//! (`GET /v1/destinations/{id}/health`) counts delivered attempts and says
//! when the last one succeeded. Polled until it has every accepted event or
//! the deadline passes.

use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use ferry_client::ApiClient;
use indicatif::ProgressBar;
use serde_json::Value;

use super::ingest::IngestResult;
use super::report::{self, E2eSummary, Window};

/// How often the health is read.
const POLL_EVERY: Duration = Duration::from_millis(50);

/// The destination's delivery counters.
struct Counts {
    delivered: u64,
    failed_attempts: u64,
    last_error: Option<String>,
    last_success_at: Option<DateTime<Utc>>,
}

async fn counts(api: &ApiClient, destination_id: &str) -> anyhow::Result<Counts> {
    let health = api
        .get(&format!("/v1/destinations/{destination_id}/health"), &[])
        .await
        .context("cannot read the destination's health")?
        .body;
    let number = |key: &str| health.get(key).and_then(Value::as_u64).unwrap_or(0);
    Ok(Counts {
        delivered: number("success_count"),
        failed_attempts: number("failure_count"),
        last_error: health
            .get("last_error")
            .and_then(Value::as_str)
            .map(str::to_owned),
        last_success_at: health
            .get("last_success_at")
            .and_then(Value::as_str)
            .and_then(|at| at.parse().ok()),
    })
}

/// Deliveries made so far.
pub async fn so_far(api: &ApiClient, destination_id: &str) -> anyhow::Result<u64> {
    Ok(counts(api, destination_id).await?.delivered)
}

/// Shows deliveries on `bar` while the events are still being sent.
pub async fn show_progress(api: ApiClient, destination_id: String, bar: ProgressBar) {
    loop {
        if let Ok(c) = counts(&api, &destination_id).await {
            bar.set_position(c.delivered);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls the destination's counters until every accepted event is
/// delivered or `deadline` passes.
pub async fn wait(
    api: &ApiClient,
    destination_id: &str,
    ingested: &IngestResult,
    window: Window,
    deadline: Instant,
    bar: &ProgressBar,
) -> anyhow::Result<E2eSummary> {
    let expected = ingested.accepted();
    bar.set_length(expected);
    let (counts, seen_at) = loop {
        let c = counts(api, destination_id).await?;
        let now = Instant::now();
        bar.set_position(c.delivered.min(expected));
        if c.failed_attempts > 0 {
            bar.set_message(format!("failed attempts: {}", c.failed_attempts));
        }
        if c.delivered >= expected || now >= deadline {
            break (c, now);
        }
        tokio::time::sleep(POLL_EVERY).await;
    };
    bar.finish();
    let complete = counts.delivered >= expected;
    let end = if complete {
        last_success(counts.last_success_at, window.from, seen_at)
    } else {
        seen_at
    };
    let elapsed = end.saturating_duration_since(window.from);
    let received = counts.delivered.min(expected);
    Ok(E2eSummary {
        seconds: report::round3(elapsed.as_secs_f64()),
        deliveries_per_s: report::rate(received, elapsed),
        expected,
        received,
        duplicates: counts.delivered.saturating_sub(expected),
        receiver_requests: None,
        without_webhook_id: None,
        failed_attempts: Some(counts.failed_attempts),
        last_error: counts.last_error.filter(|_| counts.failed_attempts > 0),
        drain_after_ingest_s: report::round3(
            end.saturating_duration_since(window.ingest_done)
                .as_secs_f64(),
        ),
        complete,
    })
}

/// When the last delivery succeeded, on this process's clock: the server's
/// `last_success_at`, kept between the first send and the moment the tool
/// saw the count complete (a server on another machine may have another
/// clock).
fn last_success(at: Option<DateTime<Utc>>, started: Instant, seen_at: Instant) -> Instant {
    let Some(at) = at else { return seen_at };
    let ago = SystemTime::now()
        .duration_since(SystemTime::from(at))
        .unwrap_or(Duration::ZERO);
    Instant::now()
        .checked_sub(ago)
        .unwrap_or(seen_at)
        .clamp(started, seen_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_success_is_kept_between_the_first_send_and_when_it_was_seen() {
        let started = Instant::now() - Duration::from_secs(10);
        let seen_at = Instant::now();
        let two_s_ago = Utc::now() - chrono::Duration::seconds(2);
        let end = last_success(Some(two_s_ago), started, seen_at);
        let ago = seen_at.saturating_duration_since(end);
        assert!(
            ago >= Duration::from_millis(1900) && ago <= Duration::from_millis(2100),
            "{ago:?}"
        );
        // A clock ahead or far behind is bounded.
        let future = Utc::now() + chrono::Duration::seconds(60);
        assert_eq!(last_success(Some(future), started, seen_at), seen_at);
        let past = Utc::now() - chrono::Duration::seconds(3600);
        assert_eq!(last_success(Some(past), started, seen_at), started);
        assert_eq!(last_success(None, started, seen_at), seen_at);
    }
}
