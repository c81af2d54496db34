//! What the service prints: progress lines on stderr while it works, and
//! the summary on stdout at the end, as text or as JSON (`--json`).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use evaluation_export::export::{RunReport, Settled, Step, Tally};
use evaluation_export::results::{ExportCounts, RunId};
use ferry::port::DestinationId;
use serde::Serialize;

/// Runs shorter than this print no progress.
const LONG_RUN: u32 = 100;

/// The summary of one invocation (`--json` prints it as is).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The run started now, if any.
    pub run_id: Option<String>,
    /// The interrupted run finished now (`--resume`), if any.
    pub resumed_run_id: Option<String>,
    /// Evaluations scored and stored now.
    pub evaluations: u32,
    /// Time spent scoring, storing and sending them.
    pub seconds: f64,
    pub evaluations_per_second: f64,
    /// Sends that returned Ok now, including earlier evaluations caught up.
    pub exports_sent: u32,
    /// Sends that failed now; those evaluations are exported on a later start.
    pub export_errors: u32,
    pub last_export_error: Option<String>,
    /// How long `send` took, as the evaluations waited for it: the median
    /// and the 99th percentile, in milliseconds.
    pub send_p50_ms: f64,
    pub send_p99_ms: f64,
    /// Of `exports_sent`: evaluations stored by earlier runs, exported now.
    pub caught_up: u32,
    /// Every evaluation stored for this destination, all runs.
    pub stored_evaluations: u64,
    /// Those evaluations by how their export stands.
    pub exports: ExportCounts,
    /// No export is pending or retrying.
    pub settled: bool,
    pub waited_seconds: f64,
    pub status_errors: u32,
    pub destination_id: String,
    pub results_db: PathBuf,
    #[serde(skip)]
    elapsed: Duration,
    #[serde(skip)]
    send_times: Vec<Duration>,
}

impl Summary {
    pub fn new(destination: &DestinationId, results_db: &Path) -> Summary {
        Summary {
            run_id: None,
            resumed_run_id: None,
            evaluations: 0,
            seconds: 0.0,
            evaluations_per_second: 0.0,
            exports_sent: 0,
            export_errors: 0,
            last_export_error: None,
            send_p50_ms: 0.0,
            send_p99_ms: 0.0,
            caught_up: 0,
            stored_evaluations: 0,
            exports: ExportCounts::default(),
            settled: false,
            waited_seconds: 0.0,
            status_errors: 0,
            destination_id: destination.to_string(),
            results_db: results_db.to_path_buf(),
            elapsed: Duration::ZERO,
            send_times: Vec::new(),
        }
    }

    pub fn add_caught_up(&mut self, tally: &Tally) {
        self.caught_up = tally.accepted;
        self.add_tally(tally);
    }

    pub fn add_run(&mut self, run: RunId, report: &RunReport, resumed: bool) {
        if resumed {
            self.resumed_run_id = Some(run.to_string());
        } else {
            self.run_id = Some(run.to_string());
        }
        self.evaluations += report.evaluated;
        self.elapsed += report.elapsed;
        self.seconds = self.elapsed.as_secs_f64();
        self.evaluations_per_second = if self.seconds > 0.0 {
            f64::from(self.evaluations) / self.seconds
        } else {
            0.0
        };
        self.add_tally(&report.exports);
    }

    fn add_tally(&mut self, tally: &Tally) {
        self.exports_sent += tally.accepted;
        self.export_errors += tally.refused;
        if tally.last_error.is_some() {
            self.last_export_error.clone_from(&tally.last_error);
        }
        self.send_times.extend_from_slice(&tally.send_times);
        self.send_times.sort_unstable();
        self.send_p50_ms = percentile_ms(&self.send_times, 50);
        self.send_p99_ms = percentile_ms(&self.send_times, 99);
    }

    pub fn set_exports(&mut self, settled: Settled) {
        self.stored_evaluations = settled.counts.evaluations();
        self.exports = settled.counts;
        self.settled = settled.settled;
        self.waited_seconds = settled.waited.as_secs_f64();
        self.status_errors = settled.status_errors;
        if let Some(error) = settled.last_status_error {
            eprintln!(
                "{} status reads failed; the latest: {error}",
                settled.status_errors
            );
        }
    }

    /// Prints the summary on stdout.
    pub fn print(&self, json: bool) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        if json {
            serde_json::to_writer_pretty(&mut out, self)?;
            writeln!(out)?;
        } else {
            out.write_all(self.text().as_bytes())?;
        }
        out.flush()?;
        Ok(())
    }

    fn text(&self) -> String {
        let mut t = String::new();
        for (what, id) in [("Resumed run", &self.resumed_run_id), ("Run", &self.run_id)] {
            if let Some(id) = id {
                t.push_str(&format!("{what} {id}.\n"));
            }
        }
        t.push_str(&format!(
            "Evaluations: {} in {:.2} s ({:.0} evaluations/s).\n",
            self.evaluations, self.seconds, self.evaluations_per_second
        ));
        t.push_str(&format!(
            "Exports sent: {} ({} of earlier evaluations), refused: {}.\n",
            self.exports_sent, self.caught_up, self.export_errors
        ));
        if let Some(error) = &self.last_export_error {
            t.push_str(&format!("  latest refusal: {error}\n"));
        }
        if !self.send_times.is_empty() {
            t.push_str(&format!(
                "  send took {:.1} ms at the median, {:.1} ms at p99.\n",
                self.send_p50_ms, self.send_p99_ms
            ));
        }
        let e = &self.exports;
        t.push_str(&format!(
            "Exports to {} ({} evaluations stored): {} delivered, {} pending, {} retrying, {} failed, {} dead",
            self.destination_id, self.stored_evaluations, e.delivered, e.pending, e.retrying, e.failed, e.dead
        ));
        if e.unknown > 0 {
            t.push_str(&format!(", {} unknown to Ferry", e.unknown));
        }
        if e.not_exported > 0 {
            t.push_str(&format!(", {} not exported yet", e.not_exported));
        }
        t.push_str(".\n");
        if !self.settled {
            t.push_str(
                "Exports still in flight are delivered while the service runs: \
                 `run --evaluations 0 --wait SECS` delivers them.\n",
            );
        }
        if e.failed + e.dead > 0 {
            t.push_str("Failed and dead exports wait in Ferry's dead-letter queue for a replay.\n");
        }
        t.push_str(&format!("Results: {}\n", self.results_db.display()));
        t
    }
}

/// Progress lines on stderr, about every 10%.
#[derive(Debug, Default)]
pub struct Progress {
    /// Whether to show the wait for exports (not when only reading them).
    waiting: bool,
    /// Tenths of the current run printed.
    evaluated_tenths: u64,
    waited: Option<Waited>,
}

/// The wait for exports so far.
#[derive(Debug, Clone, Copy)]
struct Waited {
    /// In flight when the wait began.
    start: u64,
    /// Tenths of them printed as done.
    tenths: u64,
}

impl Progress {
    pub fn new(waiting: bool) -> Progress {
        Progress {
            waiting,
            ..Progress::default()
        }
    }

    pub fn show(&mut self, step: Step) {
        match step {
            Step::Evaluated { done, total } => {
                if total < LONG_RUN {
                    return;
                }
                let tenths = u64::from(done) * 10 / u64::from(total);
                if tenths > self.evaluated_tenths {
                    let percent = u64::from(done) * 100 / u64::from(total);
                    eprintln!("evaluated {done}/{total} ({percent}%)");
                    self.evaluated_tenths = tenths;
                }
                if done == total {
                    self.evaluated_tenths = 0;
                }
            }
            Step::Settling { in_flight, total } if self.waiting => {
                let w = self.waited.get_or_insert_with(|| {
                    if in_flight > 0 {
                        eprintln!(
                            "waiting for {in_flight} exports in flight ({total} evaluations stored)"
                        );
                    }
                    Waited {
                        start: in_flight,
                        tenths: 0,
                    }
                });
                if w.start == 0 {
                    return;
                }
                let tenths = (w.start - in_flight.min(w.start)) * 10 / w.start;
                if tenths > w.tenths {
                    eprintln!("exports in flight: {in_flight} of {}", w.start);
                    w.tenths = tenths;
                }
            }
            Step::Settling { .. } => {}
        }
    }
}

/// The `p`-th percentile of sorted durations, in milliseconds (0 for none).
fn percentile_ms(sorted: &[Duration], p: usize) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = (sorted.len() * p / 100).min(sorted.len() - 1);
    sorted[i].as_secs_f64() * 1000.0
}
