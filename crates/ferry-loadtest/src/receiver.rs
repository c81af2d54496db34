//! The load tool's loopback webhook receiver: an axum server on
//! `127.0.0.1:0` that answers every request with `200` (after an optional
//! delay) and remembers when it first completed each distinct `webhook-id`,
//! counting repeats as duplicates; and the wait until it has every event.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use indicatif::ProgressBar;
use tokio::task::JoinHandle;

use super::ingest::IngestResult;
use super::report::{self, E2eSummary, Window};

/// What the receiver has seen so far.
#[derive(Debug, Default)]
struct Seen {
    /// `webhook-id` → when the receiver first answered it.
    first_answered: Mutex<HashMap<String, Instant>>,
    distinct: AtomicU64,
    duplicates: AtomicU64,
    requests: AtomicU64,
    without_id: AtomicU64,
}

#[derive(Clone)]
struct ReceiverState {
    seen: Arc<Seen>,
    delay: Duration,
}

/// A running receiver; stopped when dropped.
pub struct Receiver {
    addr: SocketAddr,
    seen: Arc<Seen>,
    task: JoinHandle<()>,
}

impl Receiver {
    /// Binds `127.0.0.1:0` and serves until dropped; every answer waits `delay` first.
    pub async fn start(delay: Duration) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .context("cannot bind the loopback receiver")?;
        let addr = listener.local_addr()?;
        let seen = Arc::new(Seen::default());
        let state = ReceiverState {
            seen: seen.clone(),
            delay,
        };
        let app = axum::Router::new().fallback(hook).with_state(state);
        let task = tokio::spawn(async move {
            // The load tool ends the process when done; an accept error here
            // shows up as missing deliveries in the report.
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, seen, task })
    }

    /// The URL to give the destination.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Distinct `webhook-id`s answered.
    pub fn distinct(&self) -> u64 {
        self.seen.distinct.load(Ordering::Relaxed)
    }

    /// A handle on the distinct count that tasks can own.
    pub fn counter(&self) -> DistinctCounter {
        DistinctCounter(self.seen.clone())
    }

    /// Requests for a `webhook-id` already answered.
    pub fn duplicates(&self) -> u64 {
        self.seen.duplicates.load(Ordering::Relaxed)
    }

    pub fn requests(&self) -> u64 {
        self.seen.requests.load(Ordering::Relaxed)
    }

    pub fn without_id(&self) -> u64 {
        self.seen.without_id.load(Ordering::Relaxed)
    }

    /// How many of `ids` have arrived, and when the last of those did.
    pub fn arrived(&self, ids: &[String]) -> (u64, Option<Instant>) {
        let seen = self
            .seen
            .first_answered
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut count = 0;
        let mut last: Option<Instant> = None;
        for at in ids.iter().filter_map(|id| seen.get(id)) {
            count += 1;
            last = Some(last.map_or(*at, |l| l.max(*at)));
        }
        (count, last)
    }

    /// When the latest distinct id arrived (for count-based runs).
    pub fn last_arrival(&self) -> Option<Instant> {
        let seen = self
            .seen
            .first_answered
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        seen.values().max().copied()
    }
}

/// The receiver's distinct count, readable from another task.
#[derive(Clone)]
pub struct DistinctCounter(Arc<Seen>);

impl DistinctCounter {
    pub fn get(&self) -> u64 {
        self.0.distinct.load(Ordering::Relaxed)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Polls the receiver until it has every accepted event or the deadline passes.
pub async fn wait_for_deliveries(
    receiver: &Receiver,
    ingested: &IngestResult,
    window: Window,
    deadline: Instant,
    bar: &ProgressBar,
) -> E2eSummary {
    let expected = ingested.accepted();
    // With every id known, count exactly those; else count distinct arrivals.
    let exact = ingested.accepted_without_id == 0;
    bar.set_length(expected);
    let arrived = || {
        if exact {
            receiver.arrived(&ingested.accepted_ids)
        } else {
            (receiver.distinct().min(expected), receiver.last_arrival())
        }
    };
    let (received, last) = loop {
        bar.set_position(receiver.distinct().min(expected));
        if receiver.distinct() >= expected || Instant::now() >= deadline {
            let (received, last) = arrived();
            if received >= expected || Instant::now() >= deadline {
                break (received, last);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    bar.set_position(received);
    bar.finish();
    let complete = received >= expected;
    let end = if complete {
        last.unwrap_or(window.ingest_done)
    } else {
        Instant::now()
    };
    let elapsed = end.saturating_duration_since(window.from);
    E2eSummary {
        seconds: report::round3(elapsed.as_secs_f64()),
        deliveries_per_s: report::rate(received, elapsed),
        expected,
        received,
        duplicates: receiver.duplicates(),
        receiver_requests: Some(receiver.requests()),
        without_webhook_id: Some(receiver.without_id()),
        failed_attempts: None,
        last_error: None,
        drain_after_ingest_s: report::round3(
            end.saturating_duration_since(window.ingest_done)
                .as_secs_f64(),
        ),
        complete,
    }
}

async fn hook(State(state): State<ReceiverState>, headers: HeaderMap) -> StatusCode {
    // The body is not needed: axum drains it with the connection.
    if !state.delay.is_zero() {
        tokio::time::sleep(state.delay).await;
    }
    let seen = &state.seen;
    seen.requests.fetch_add(1, Ordering::Relaxed);
    let Some(id) = headers.get("webhook-id").and_then(|v| v.to_str().ok()) else {
        seen.without_id.fetch_add(1, Ordering::Relaxed);
        return StatusCode::OK;
    };
    let now = Instant::now();
    let is_new = {
        let mut map = seen
            .first_answered
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if map.contains_key(id) {
            false
        } else {
            map.insert(id.to_owned(), now);
            true
        }
    };
    if is_new {
        seen.distinct.fetch_add(1, Ordering::Relaxed);
    } else {
        seen.duplicates.fetch_add(1, Ordering::Relaxed);
    }
    StatusCode::OK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_distinct_ids_and_duplicates() {
        let receiver = Receiver::start(Duration::ZERO).await.unwrap();
        let http = reqwest::Client::new();
        for id in ["evt_a", "evt_b", "evt_a"] {
            let status = http
                .post(receiver.url())
                .header("webhook-id", id)
                .body("{}")
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status, 200);
        }
        http.post(receiver.url()).body("{}").send().await.unwrap();
        assert_eq!(receiver.distinct(), 2);
        assert_eq!(receiver.duplicates(), 1);
        assert_eq!(receiver.requests(), 4);
        assert_eq!(receiver.without_id(), 1);
        let (count, last) = receiver.arrived(&["evt_a".into(), "evt_c".into()]);
        assert_eq!(count, 1);
        assert!(last.is_some());
        assert!(receiver.last_arrival().is_some());
    }
}
