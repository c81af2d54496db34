//! The integration port's conformance suite: the same tests against the
//! embedded Ferry and against the remote one (a real `ferry serve` child
//! process), with a real HTTP receiver as the destination.

mod contract;
mod embedded;
mod remote;

use std::time::{Duration, Instant};

use ferry::port::{DeliveryStatus, EventId, IntegrationPort, IntegrationResult};
use ferry::{Destination, Ferry, NewDestination};
use tempfile::TempDir;

use crate::process::{ADMIN_KEY, FerryProcess};

/// Which Ferry a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Embedded,
    /// A client of a `ferry serve` child process, with a spool.
    Remote,
}

pub const FLAVORS: [Flavor; 2] = [Flavor::Embedded, Flavor::Remote];

/// A Ferry of one flavor on a temporary directory.
pub struct Harness {
    pub ferry: Ferry,
    /// The server of a remote Ferry.
    _server: Option<FerryProcess>,
    _dir: TempDir,
}

impl Harness {
    pub async fn open(flavor: Flavor) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let (ferry, server) = match flavor {
            Flavor::Embedded => (
                Ferry::builder(dir.path().join("data"))
                    .allow_private_networks(true)
                    .open()
                    .await
                    .unwrap(),
                None,
            ),
            Flavor::Remote => {
                let server = FerryProcess::start(&dir.path().join("server")).await;
                let ferry = Ferry::remote(&server.base, ADMIN_KEY, dir.path().join("spool"))
                    .await
                    .unwrap();
                (ferry, Some(server))
            }
        };
        Harness {
            ferry,
            _server: server,
            _dir: dir,
        }
    }

    /// A webhook to `url` retrying quickly: `retries` retries, 100 ms to 400 ms apart.
    pub async fn webhook(&self, url: &str, retries: u32) -> Destination {
        self.ferry
            .destinations()
            .create(
                NewDestination::webhook(url)
                    .max_retries(retries)
                    .backoff(Duration::from_millis(100), Duration::from_millis(400)),
            )
            .await
            .unwrap()
    }

    pub async fn close(self) {
        self.ferry.shutdown(Duration::from_secs(5)).await.unwrap();
    }
}

/// Polls `status` until `done` holds for the result, or panics after `timeout`.
pub async fn wait_status(
    port: &dyn IntegrationPort,
    id: &EventId,
    timeout: Duration,
    done: impl Fn(&IntegrationResult) -> bool,
) -> IntegrationResult {
    let deadline = Instant::now() + timeout;
    loop {
        let now = port.status(id).await.unwrap();
        if let Some(r) = &now
            && done(r)
        {
            return r.clone();
        }
        assert!(Instant::now() < deadline, "gave up waiting; last: {now:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the event is in `status`.
pub async fn wait_for(
    port: &dyn IntegrationPort,
    id: &EventId,
    status: DeliveryStatus,
) -> IntegrationResult {
    wait_status(port, id, Duration::from_secs(30), |r| r.status == status).await
}

/// The `evaluation.completed` event of run `n` (its content decides its id).
pub fn run_event(n: impl Into<serde_json::Value>) -> ferry::port::ExternalEvent {
    ferry::port::ExternalEvent::new(
        "evaluation.completed",
        serde_json::json!({ "run": n.into() }),
    )
}

/// The `p`-th percentile of durations (`p` in 0..=100).
pub fn percentile(samples: &mut [Duration], p: usize) -> Duration {
    samples.sort();
    let i = (samples.len() * p / 100).min(samples.len() - 1);
    samples[i]
}
