//! The use case: run evaluations, store each result, export each one as an
//! `evaluation.completed` event, and report how the exports stand.
//!
//! It knows Ferry only as an [`IntegrationPort`]: whatever assembled the
//! port (an embedded engine, a remote server) is not its business. `send`
//! answers once the event is durable and never waits for the destination,
//! so a destination that is down neither fails nor slows the evaluations.
//! A `send` that fails (a store that cannot write) is recorded and counted
//! and the run goes on; the evaluation is exported again on the next start.
//!
//! Every export carries a caller id derived from the evaluation
//! (`eval-<run>-<n>`), so sending it again — after a refusal, or after a
//! crash between `send` and recording its event id — is a duplicate at
//! Ferry, never a second delivery.

use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use ferry::port::{
    DeliveryStatus, DestinationId, ExternalEvent, IntegrationPort, IntegrationResult,
};
use futures::future::join_all;
use serde::Serialize;
use serde_json::json;

use crate::evaluation::{Dataset, evaluate};
use crate::results::{
    self, Evaluation, Export, ExportCounts, ExportState, Key, Results, Run, StateRead,
};

/// The type of the event each evaluation exports.
pub const EVENT_TYPE: &str = "evaluation.completed";

/// Evaluations scored, stored (one transaction) and sent (concurrently, so
/// Ferry commits them together) at a time. Each chunk costs a commit in
/// each store whatever its size: 64 ran about 4,700 evaluations/s with the
/// destination down, 256 about 5,900 to 6,900 (two cores, medians of five
/// runs). A crash re-sends at most one chunk, as duplicates.
const CHUNK: usize = 256;
/// How often `settle` reads the open exports again while waiting: soon at
/// first, then less often — every read is one status call per open export,
/// CPU the dispatcher delivering them could use (reading 10,000 every
/// 250 ms cut the drain rate by a quarter on two cores).
const POLL_FIRST: Duration = Duration::from_millis(250);
const POLL_MAX: Duration = Duration::from_secs(2);

/// Where a long operation is, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `done` of the run's `total` evaluations are stored and sent.
    Evaluated { done: u32, total: u32 },
    /// `in_flight` of `total` stored evaluations are still on their way.
    Settling { in_flight: u64, total: u64 },
}

/// What a series of `send`s did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// `send` returned Ok (new events and duplicates).
    pub accepted: u32,
    /// `send` failed; the evaluation waits to be exported.
    pub refused: u32,
    /// Why the latest refused `send` failed.
    pub last_error: Option<String>,
    /// How long each `send` took, as its caller waited (a chunk's sends
    /// wait together, for one commit).
    #[serde(skip)]
    pub send_times: Vec<Duration>,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.accepted += other.accepted;
        self.refused += other.refused;
        if other.last_error.is_some() {
            self.last_error = other.last_error;
        }
        self.send_times.extend(other.send_times);
    }
}

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub struct RunReport {
    /// Evaluations scored and stored now.
    pub evaluated: u32,
    /// Evaluations an earlier, interrupted attempt at the run had stored.
    pub already_stored: u32,
    /// Scoring, storing and sending, from the first evaluation to the last.
    pub elapsed: Duration,
    pub exports: Tally,
}

/// How the exports stand after `settle`.
#[derive(Debug, Clone, PartialEq)]
pub struct Settled {
    pub counts: ExportCounts,
    /// Nothing is in flight any more.
    pub settled: bool,
    pub waited: Duration,
    /// Status reads that failed (the exports stay as last read).
    pub status_errors: u32,
    pub last_status_error: Option<String>,
}

/// Runs, stores and exports evaluations for one destination's port.
pub struct Exporter<'a> {
    results: &'a Results,
    port: &'a dyn IntegrationPort,
    destination: &'a DestinationId,
}

impl<'a> Exporter<'a> {
    /// `port` sends to `destination`; results and exports are kept in
    /// `results`.
    pub fn new(
        results: &'a Results,
        port: &'a dyn IntegrationPort,
        destination: &'a DestinationId,
    ) -> Self {
        Self {
            results,
            port,
            destination,
        }
    }

    /// Sends every stored evaluation that has no accepted export yet.
    pub async fn catch_up(&self) -> results::Result<Tally> {
        let mut tally = Tally::default();
        let mut after = None;
        loop {
            let page = self.results.unexported(self.destination, after).await?;
            let Some(last) = page.last() else {
                return Ok(tally);
            };
            after = Some(last.key);
            for chunk in page.chunks(CHUNK) {
                tally.add(self.export(chunk).await?);
            }
        }
    }

    /// Scores, stores and exports the evaluations of `run` not stored yet
    /// (all of a new run; the rest of an interrupted one), then marks the
    /// run finished. Only a failure of the results store stops it.
    pub async fn run(
        &self,
        dataset: &Dataset,
        run: &Run,
        progress: &mut dyn FnMut(Step),
    ) -> results::Result<RunReport> {
        let clock = Instant::now();
        let stored = self.results.stored(&run.id).await?;
        let todo: Vec<u32> = (0..run.planned).filter(|n| !stored.contains(n)).collect();
        let already_stored = run.planned - u32::try_from(todo.len()).unwrap_or(run.planned);
        let mut report = RunReport {
            evaluated: 0,
            already_stored,
            elapsed: Duration::ZERO,
            exports: Tally::default(),
        };
        for chunk in todo.chunks(CHUNK) {
            let evaluations: Vec<Evaluation> =
                chunk.iter().map(|&n| score(dataset, run, n)).collect();
            self.results.insert(&evaluations).await?;
            report.exports.add(self.export(&evaluations).await?);
            report.evaluated += u32::try_from(chunk.len()).unwrap_or(u32::MAX);
            progress(Step::Evaluated {
                done: already_stored + report.evaluated,
                total: run.planned,
            });
        }
        self.results.finish_run(&run.id).await?;
        report.elapsed = clock.elapsed();
        Ok(report)
    }

    /// Reads how the open exports stand through the port and records it,
    /// again (`POLL_FIRST`, doubling up to `POLL_MAX`) until none is in
    /// flight or `wait` has passed; one pass when `wait` is zero.
    pub async fn settle(
        &self,
        wait: Duration,
        progress: &mut dyn FnMut(Step),
    ) -> results::Result<Settled> {
        let clock = Instant::now();
        let deadline = clock + wait;
        let mut status_errors = 0;
        let mut last_status_error = None;
        let mut poll = POLL_FIRST;
        loop {
            let open = self.results.open_exports(self.destination).await?;
            let mut changed = Vec::new();
            for chunk in open.chunks(CHUNK) {
                let reads = join_all(chunk.iter().map(|o| self.port.status(&o.event_id))).await;
                for (open, read) in chunk.iter().zip(reads) {
                    match read {
                        Ok(found) => {
                            let (state, delivered_at) = state_of(found.as_ref());
                            if state != open.state {
                                changed.push(StateRead {
                                    key: open.key,
                                    state,
                                    delivered_at,
                                });
                            }
                        }
                        Err(error) => {
                            status_errors += 1;
                            last_status_error = Some(error.to_string());
                        }
                    }
                }
            }
            self.results.record_states(&changed).await?;
            let counts = self.results.export_counts(self.destination).await?;
            progress(Step::Settling {
                in_flight: counts.in_flight(),
                total: counts.evaluations(),
            });
            let now = Instant::now();
            if counts.in_flight() == 0 || now >= deadline {
                return Ok(Settled {
                    counts,
                    settled: counts.in_flight() == 0,
                    waited: clock.elapsed(),
                    status_errors,
                    last_status_error,
                });
            }
            tokio::time::sleep(poll.min(deadline - now)).await;
            poll = (poll * 2).min(POLL_MAX);
        }
    }

    /// Sends `evaluations` at once and records what each `send` did.
    async fn export(&self, evaluations: &[Evaluation]) -> results::Result<Tally> {
        let answers = join_all(evaluations.iter().map(|e| async move {
            let clock = Instant::now();
            let answer = self.port.send(event(e)).await;
            (clock.elapsed(), answer)
        }))
        .await;
        let mut tally = Tally::default();
        let mut records = Vec::with_capacity(evaluations.len());
        for (e, (took, answer)) in evaluations.iter().zip(answers) {
            tally.send_times.push(took);
            let export = match answer {
                Ok(accepted) => {
                    tally.accepted += 1;
                    Export::Accepted {
                        event_id: accepted.event_id.clone(),
                        state: state_of(Some(&accepted)).0,
                    }
                }
                Err(error) => {
                    tally.refused += 1;
                    tally.last_error = Some(error.to_string());
                    Export::Refused {
                        error: error.to_string(),
                    }
                }
            };
            records.push((e.key, export));
        }
        if let Some(error) = &tally.last_error {
            tracing::warn!(
                refused = tally.refused,
                %error,
                "Exports refused; the evaluations are kept and exported on the next start."
            );
        }
        self.results.record_exports(&records).await?;
        Ok(tally)
    }
}

/// Scores evaluation `n` of `run`, timing it.
fn score(dataset: &Dataset, run: &Run, n: u32) -> Evaluation {
    let clock = Instant::now();
    let metrics = evaluate(dataset, run.seed, n);
    Evaluation {
        key: Key { run: run.id, n },
        dataset: run.dataset.clone(),
        seed: run.seed,
        metrics,
        duration: clock.elapsed(),
        completed_at: Utc::now(),
    }
}

/// The caller id of an evaluation's export: the same every time it is sent.
pub fn caller_id(key: &Key) -> String {
    format!("eval-{}-{}", key.run, key.n)
}

/// The `evaluation.completed` event of one result.
pub fn event(e: &Evaluation) -> ExternalEvent {
    let id = caller_id(&e.key);
    let m = &e.metrics;
    let data = json!({
        "evaluation_id": id,
        "run_id": e.key.run.to_string(),
        "evaluation": e.key.n,
        "dataset": e.dataset,
        "seed": e.seed,
        "accuracy": m.accuracy,
        "precision": m.precision,
        "recall": m.recall,
        "f1": m.f1,
        "confusion_matrix": m.confusion_matrix,
        "duration_us": u64::try_from(e.duration.as_micros()).unwrap_or(u64::MAX),
        "completed_at": e.completed_at.to_rfc3339_opts(SecondsFormat::Micros, true),
    });
    ExternalEvent::new(EVENT_TYPE, data)
        .with_id(id)
        .with_metadata("run_id", e.key.run.to_string())
}

/// The app's view of a port's answer; `None` is an event the port does not
/// know.
fn state_of(result: Option<&IntegrationResult>) -> (ExportState, Option<DateTime<Utc>>) {
    let Some(r) = result else {
        return (ExportState::Unknown, None);
    };
    let state = match r.status {
        DeliveryStatus::Pending => ExportState::Pending,
        DeliveryStatus::Retrying => ExportState::Retrying,
        DeliveryStatus::Delivered => ExportState::Delivered,
        DeliveryStatus::Failed => ExportState::Failed,
        DeliveryStatus::Exhausted => ExportState::Dead,
    };
    (state, r.delivered_at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::RunId;

    #[test]
    fn an_export_carries_the_result_under_the_evaluations_own_id() {
        let dataset = Dataset::bundled().unwrap();
        let run = Run {
            id: RunId::new(),
            destination: "dst_01jq3v2a4c6e8g0j2m4p6r8t0v".parse().unwrap(),
            dataset: dataset.name().to_owned(),
            seed: 9,
            planned: 10,
        };
        let e = score(&dataset, &run, 4);
        let event = event(&e);
        let expected_id = format!("eval-{}-4", run.id);
        assert_eq!(event.id(), Some(expected_id.as_str()));
        assert_eq!(event.event_type(), EVENT_TYPE);
        let data = event.data();
        assert_eq!(data["evaluation"], 4);
        assert_eq!(data["dataset"], "churn_predictions");
        assert_eq!(
            data["confusion_matrix"]["true_positives"],
            e.metrics.confusion_matrix.true_positives
        );
        assert_eq!(data["f1"], e.metrics.f1);
        // Scored again (after a crash), it is the same event at Ferry.
        let again = super::event(&score(&dataset, &run, 4));
        assert_eq!(again.id_at(&run.destination), event.id_at(&run.destination));
    }
}
