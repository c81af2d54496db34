//! Durable ingest with group commit: one writer task takes every waiting
//! event, commits them with their deliveries in one transaction, answers each
//! caller after the commit, then hands the new deliveries to the dispatcher
//! in memory and, when the queue lives outside the store (Redis Streams),
//! adds them to it.
//!
//! A failed commit answers every caller of the batch with the outage (503)
//! and is reported to the store's write health; the writer goes on with
//! the next batch, so ingest resumes by itself once the store can commit.

use std::sync::Arc;

use ferry_core::delivery::Delivery;
use ferry_core::event::{InsertOutcome, NewEvent};
use ferry_core::ports::{Queue, Store};
use ferry_core::{StoreError, StoreResult};
use opentelemetry::KeyValue;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::dispatch::{DispatchHandle, Handoff};
use crate::metrics as m;
use crate::store_health::{Operation, WriteHealth};
use crate::traces::Traces;

struct Job {
    new: NewEvent,
    reply: oneshot::Sender<StoreResult<InsertOutcome>>,
}

/// Submits events to the writer. When its queue is full, `submit` waits:
/// back-pressure reaches the callers instead of memory growing.
#[derive(Clone)]
pub struct IngestHandle {
    tx: mpsc::Sender<Job>,
}

impl IngestHandle {
    /// Stores one event durably; resolves after the commit.
    pub async fn submit(&self, new: NewEvent) -> StoreResult<InsertOutcome> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job { new, reply })
            .await
            .map_err(|_| StoreError::Unavailable("the ingest writer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Unavailable("the ingest writer has stopped".into()))?
    }

    /// Stores many events; they usually share one commit.
    pub async fn submit_many(&self, events: Vec<NewEvent>) -> Vec<StoreResult<InsertOutcome>> {
        let mut waits = Vec::with_capacity(events.len());
        for new in events {
            let (reply, rx) = oneshot::channel();
            let sent = self.tx.send(Job { new, reply }).await.is_ok();
            waits.push((sent, rx));
        }
        let mut out = Vec::with_capacity(waits.len());
        for (sent, rx) in waits {
            let result = match (sent, rx.await) {
                (true, Ok(result)) => result,
                _ => Err(StoreError::Unavailable(
                    "the ingest writer has stopped".into(),
                )),
            };
            out.push(result);
        }
        out
    }
}

/// Starts the writer; it stops once every `IngestHandle` is dropped and the
/// queue is drained.
pub fn spawn_writer(
    store: Arc<dyn Store>,
    external_queue: Option<Arc<dyn Queue>>,
    dispatch: DispatchHandle,
    health: Arc<WriteHealth>,
    max_batch: usize,
    capacity: usize,
    traces: Traces,
) -> (IngestHandle, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(capacity);
    let enqueuer = external_queue.map(spawn_enqueuer);
    let task = tokio::spawn(run(
        store, enqueuer, dispatch, health, rx, max_batch, traces,
    ));
    (IngestHandle { tx }, task)
}

/// Batches of committed deliveries waiting to be added to an external queue.
const ENQUEUE_BACKLOG: usize = 256;

/// Adds committed deliveries to a queue outside the store, off the writer's
/// path: a slow or unreachable queue never holds up acknowledgements. What
/// it cannot add (an error, or more than `ENQUEUE_BACKLOG` batches behind)
/// is still in the store, and the queue's reconciliation enqueues it.
fn spawn_enqueuer(queue: Arc<dyn Queue>) -> mpsc::Sender<Vec<Delivery>> {
    let (tx, mut rx) = mpsc::channel::<Vec<Delivery>>(ENQUEUE_BACKLOG);
    tokio::spawn(async move {
        while let Some(batch) = rx.recv().await {
            if let Err(error) = queue.enqueue(&batch).await {
                warn!(%error, deliveries = batch.len(), "Adding deliveries to the queue failed; its reconciliation will add them.");
            }
        }
    });
    tx
}

async fn run(
    store: Arc<dyn Store>,
    enqueuer: Option<mpsc::Sender<Vec<Delivery>>>,
    dispatch: DispatchHandle,
    health: Arc<WriteHealth>,
    mut rx: mpsc::Receiver<Job>,
    max_batch: usize,
    traces: Traces,
) {
    let mut jobs: Vec<Job> = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut jobs, max_batch).await > 0 {
        let (events, replies): (Vec<NewEvent>, Vec<_>) =
            jobs.drain(..).map(|j| (j.new, j.reply)).unzip();
        metrics::histogram!(m::COMMIT_BATCH).record(events.len() as f64);
        // One commit serves many requests: its span links to theirs.
        let mut span = traces.batch_span(
            "ferry.commit",
            events.iter().filter_map(|n| n.event.trace.as_ref()),
            || [KeyValue::new("ferry.events", events.len() as i64)],
        );
        let committed = store.insert_events(&events).await;
        if let Err(error) = &committed {
            span.fail(|| error.to_string());
        }
        drop(span);
        match committed {
            Ok(outcomes) => {
                if outcomes
                    .iter()
                    .any(|o| matches!(o, InsertOutcome::Inserted))
                {
                    health.succeeded();
                }
                let mut handoffs = Vec::new();
                for ((new, outcome), reply) in events.into_iter().zip(outcomes).zip(replies) {
                    if matches!(outcome, InsertOutcome::Inserted) {
                        metrics::counter!(m::INGEST_EVENTS, "outcome" => "accepted").increment(1);
                        if !new.deliveries.is_empty() {
                            let event = Arc::new(new.event);
                            handoffs.extend(new.deliveries.into_iter().map(|delivery| Handoff {
                                delivery,
                                event: event.clone(),
                            }));
                        }
                    } else {
                        metrics::counter!(m::INGEST_EVENTS, "outcome" => "duplicate").increment(1);
                    }
                    // The caller may have gone away; the event is stored anyway.
                    let _ = reply.send(Ok(outcome));
                }
                if let Some(enqueuer) = &enqueuer
                    && !handoffs.is_empty()
                {
                    let batch = handoffs.iter().map(|h| h.delivery.clone()).collect();
                    if enqueuer.try_send(batch).is_err() {
                        warn!("The queue is behind; its reconciliation will add these deliveries.");
                    }
                }
                dispatch.hand_over(handoffs);
            }
            Err(error) => {
                warn!(%error, events = replies.len(), "Ingest commit failed; answering 503.");
                health.failed(Operation::Ingest, &error);
                metrics::counter!(m::INGEST_EVENTS, "outcome" => "unavailable")
                    .increment(replies.len() as u64);
                // Every caller of the batch gets the outage (a conflict or
                // unreadable data here is no single caller's fault).
                let error = if error.is_outage() {
                    error
                } else {
                    StoreError::Unavailable(error.to_string())
                };
                for reply in replies {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }
    debug!("Ingest writer stopped.");
}
