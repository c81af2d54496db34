//! The completion writer: attempts and status changes are written in
//! batches, one transaction each. A failed write is retried (never dropped);
//! if the process dies meanwhile, the leases expire and the deliveries are
//! attempted again (at-least-once). Once a batch is recorded, its attempts
//! are counted into the delivery metrics (in memory; `super::rollups`).

use std::sync::Arc;
use std::time::Duration;

use ferry_core::ports::{Completion, Queue};
use opentelemetry::KeyValue;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::warn;

use super::rollups::Recorder;
use crate::traces::Traces;

pub fn spawn(
    queue: Arc<dyn Queue>,
    max_batch: usize,
    metrics: Recorder,
    traces: Traces,
) -> (mpsc::Sender<Completion>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(max_batch * 8);
    (tx, tokio::spawn(run(queue, rx, max_batch, metrics, traces)))
}

async fn run(
    queue: Arc<dyn Queue>,
    mut rx: mpsc::Receiver<Completion>,
    max_batch: usize,
    metrics: Recorder,
    traces: Traces,
) {
    let mut batch = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut batch, max_batch).await > 0 {
        let mut span = traces.batch_span("ferry.complete", [], || {
            [KeyValue::new("ferry.attempts", batch.len() as i64)]
        });
        let mut backoff = Duration::from_millis(50);
        let mut failures = 0u32;
        while let Err(error) = queue.complete(&batch).await {
            failures += 1;
            warn!(%error, batch = batch.len(), failures, "Recording attempts failed; retrying.");
            span.fail(|| error.to_string());
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
        metrics.record(&batch);
        batch.clear();
    }
}
