//! The load tool's summary: latency percentiles from the histogram, rates,
//! and the two renderings — a human table on stdout and the JSON document
//! (`{"events","concurrency","kind","ingest":{…},"e2e":{…},"read_back":{…},
//! "baseline":{…},"ferry_to_client","server_peak_rss_mb"}`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferry_client::table::Table;
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::export::ExportSummary;

/// What a delivery rate is measured over: from `from` to the last
/// delivery, and how long after `ingest_done` that last delivery came.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// The first send (`e2e`, `both`), or the moment the destination was
    /// enabled (`drain`).
    pub from: Instant,
    pub ingest_done: Instant,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub events: u64,
    pub concurrency: usize,
    /// Events per request (0: one per `POST /v1/events`).
    pub batch: usize,
    pub mode: &'static str,
    /// The destination kind delivered to.
    pub kind: &'static str,
    /// The broker or database (without credentials), for the kinds that have one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub payload_bytes: usize,
    pub receiver_delay_ms: u64,
    /// The destination's `max_in_flight`, when the run asked for one
    /// (otherwise the server's default applied).
    pub max_in_flight: Option<u32>,
    /// `started` (the tool ran its own server) or the URL of the existing one.
    pub server: String,
    pub ingest: Option<IngestSummary>,
    pub e2e: Option<E2eSummary>,
    /// What Ferry delivered, counted with the kind's own client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_back: Option<ReadBack>,
    /// The same messages straight through the kind's client, without Ferry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineSummary>,
    /// Ferry's deliveries/s divided by the baseline's messages/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ferry_to_client: Option<f64>,
    /// `--mode export`: the export of what was stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export: Option<ExportSummary>,
    /// The server's peak resident memory from the start of the export to
    /// its end (a server the tool started).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export_peak_rss_mb: Option<f64>,
    /// The server's resident memory when the export started: the export's
    /// own footprint is the peak above it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export_start_rss_mb: Option<f64>,
    pub server_peak_rss_mb: Option<f64>,
    /// No errors, nothing missing, no time-out.
    pub ok: bool,
}

/// Acknowledgement throughput and latency.
#[derive(Debug, Clone, Serialize)]
pub struct IngestSummary {
    pub seconds: f64,
    /// Acknowledged events (new or duplicate) per second.
    pub events_per_s: f64,
    pub requests: u64,
    pub accepted: u64,
    pub duplicates: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub errors: u64,
    pub errors_by_cause: BTreeMap<String, u64>,
    pub timed_out: bool,
}

/// Delivery throughput, first send to last event received.
#[derive(Debug, Clone, Serialize)]
pub struct E2eSummary {
    pub seconds: f64,
    pub deliveries_per_s: f64,
    /// Events the receiver should get (those accepted as new).
    pub expected: u64,
    /// Of those, how many it got.
    pub received: u64,
    /// Repeated deliveries of an event it already had.
    pub duplicates: u64,
    /// Requests the receiver answered (all events, repeats included; webhook).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receiver_requests: Option<u64>,
    /// Requests without a `webhook-id` header (should be 0; webhook).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub without_webhook_id: Option<u64>,
    /// Attempts that failed and were retried (broker and database kinds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_attempts: Option<u64>,
    /// The destination's last error, when an attempt failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// From the last acknowledgement to the last delivery.
    pub drain_after_ingest_s: f64,
    pub complete: bool,
}

/// A count of what arrived, read with the kind's own client.
#[derive(Debug, Clone, Serialize)]
pub struct ReadBack {
    /// What was counted, e.g. `messages in the queue`.
    pub counted: &'static str,
    pub count: u64,
    pub expected: u64,
    pub complete: bool,
}

/// The client alone: the same messages, concurrency and acknowledgements.
#[derive(Debug, Clone, Serialize)]
pub struct BaselineSummary {
    pub seconds: f64,
    pub msgs_per_s: f64,
    pub acknowledged: u64,
    /// Publish to acknowledgement.
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
    pub errors_by_cause: BTreeMap<String, u64>,
    pub read_back: ReadBack,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// p50/p90/p99/max of a histogram of microseconds, in ms (zeros when empty).
pub fn percentiles(h: &Histogram<u64>) -> Percentiles {
    if h.is_empty() {
        return Percentiles {
            p50_ms: 0.0,
            p90_ms: 0.0,
            p99_ms: 0.0,
            max_ms: 0.0,
        };
    }
    let ms = |us: u64| round3(us as f64 / 1000.0);
    Percentiles {
        p50_ms: ms(h.value_at_quantile(0.50)),
        p90_ms: ms(h.value_at_quantile(0.90)),
        p99_ms: ms(h.value_at_quantile(0.99)),
        max_ms: ms(h.max()),
    }
}

/// `count` per second over `elapsed` (0 when no time passed).
pub fn rate(count: u64, elapsed: Duration) -> f64 {
    let s = elapsed.as_secs_f64();
    if s <= 0.0 {
        0.0
    } else {
        round3(count as f64 / s)
    }
}

/// Rounded to 3 decimals, for readable JSON.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// KiB to MB (10⁶ bytes), 1 decimal.
pub fn kib_to_mb(kib: u64) -> f64 {
    (kib as f64 * 1024.0 / 1_000_000.0 * 10.0).round() / 10.0
}

impl ReadBack {
    fn render(&self) -> String {
        format!("{}/{} {}", self.count, self.expected, self.counted)
    }
}

impl Summary {
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// The human table.
    pub fn render(&self) -> String {
        let requests = if self.batch > 0 {
            format!("batches of {}", self.batch)
        } else {
            "one event per request".to_owned()
        };
        let to = match &self.target {
            Some(target) => format!(" to {} at {target}", self.kind),
            None => format!(" to a {}", self.kind),
        };
        let in_flight = match self.max_in_flight {
            Some(n) => format!("max_in_flight {n}"),
            None => "default max_in_flight".to_owned(),
        };
        let mut out = format!(
            "Ferry load test: {} events{to} ({in_flight}), {} clients, {requests}, {} B of data, server {}\n\n",
            self.events, self.concurrency, self.payload_bytes, self.server
        );
        let mut t = Table::new(["phase", "metric", "value"]).empty_as("");
        if let Some(i) = &self.ingest {
            t.row(["ingest", "time", &format!("{:.2} s", i.seconds)]);
            t.row(["", "throughput", &format!("{:.0} events/s", i.events_per_s)]);
            t.row(["", "accepted", &i.accepted.to_string()]);
            if i.duplicates > 0 {
                t.row(["", "duplicates", &i.duplicates.to_string()]);
            }
            t.row([
                "",
                "ack latency",
                &format!(
                    "p50 {:.1} ms  p90 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
                    i.p50_ms, i.p90_ms, i.p99_ms, i.max_ms
                ),
            ]);
            let causes = i
                .errors_by_cause
                .iter()
                .map(|(cause, n)| format!("{cause}: {n}"))
                .collect::<Vec<_>>()
                .join(", ");
            let errors = if causes.is_empty() {
                i.errors.to_string()
            } else {
                format!("{} ({causes})", i.errors)
            };
            t.row(["", "errors", &errors]);
            if i.timed_out {
                t.row(["", "timed out", "yes: not every event was sent"]);
            }
        }
        if let Some(e) = &self.e2e {
            let phase = if self.mode == "drain" { "drain" } else { "e2e" };
            t.row([phase, "time", &format!("{:.2} s", e.seconds)]);
            t.row([
                "",
                "throughput",
                &format!("{:.0} deliveries/s", e.deliveries_per_s),
            ]);
            let received = if e.complete {
                format!("{}/{}", e.received, e.expected)
            } else {
                format!("{}/{} (timed out)", e.received, e.expected)
            };
            t.row(["", "received", &received]);
            t.row(["", "duplicates", &e.duplicates.to_string()]);
            if let Some(n) = e.without_webhook_id.filter(|n| *n > 0) {
                t.row(["", "without webhook-id", &n.to_string()]);
            }
            if let Some(n) = e.failed_attempts {
                t.row(["", "failed attempts", &n.to_string()]);
            }
            if let Some(error) = &e.last_error {
                t.row(["", "last error", error]);
            }
            t.row([
                "",
                "drain after ingest",
                &format!("{:.2} s", e.drain_after_ingest_s),
            ]);
        }
        if let Some(r) = &self.read_back {
            t.row(["", "read back", &r.render()]);
        }
        if let Some(b) = &self.baseline {
            t.row(["baseline", "time", &format!("{:.2} s", b.seconds)]);
            t.row(["", "throughput", &format!("{:.0} msgs/s", b.msgs_per_s)]);
            t.row([
                "",
                "ack latency",
                &format!("p50 {:.1} ms  p99 {:.1} ms", b.p50_ms, b.p99_ms),
            ]);
            t.row(["", "errors", &b.errors.to_string()]);
            t.row(["", "read back", &b.read_back.render()]);
        }
        if let Some(x) = &self.export {
            render_export(&mut t, x, self.export_start_rss_mb, self.export_peak_rss_mb);
        }
        if let Some(ratio) = self.ferry_to_client {
            t.row(["ratio", "Ferry / client", &format!("{ratio:.2}")]);
        }
        if let Some(mb) = self.server_peak_rss_mb {
            t.row(["server", "peak RSS", &format!("{mb:.1} MB")]);
        }
        out.push_str(&t.render());
        out
    }
}

/// The export rows of the human table.
fn render_export(
    t: &mut Table,
    x: &ExportSummary,
    start_rss_mb: Option<f64>,
    peak_rss_mb: Option<f64>,
) {
    let what = format!("{} as {}", x.source, x.format);
    let what = match x.compression.as_str() {
        "none" => what,
        c => format!("{what}, {c}"),
    };
    t.row(["export", "what", &what]);
    t.row(["", "status", &x.status]);
    if let Some(error) = &x.error {
        t.row(["", "error", error]);
    }
    t.row(["", "time", &format!("{:.2} s", x.seconds)]);
    t.row(["", "throughput", &format!("{:.0} rows/s", x.rows_per_s)]);
    t.row(["", "rows", &x.rows.to_string()]);
    let mb = |b: u64| b as f64 / 1_000_000.0;
    t.row([
        "",
        "bytes",
        &format!(
            "{:.1} MB written, {:.1} MB uncompressed",
            mb(x.bytes),
            mb(x.uncompressed_bytes)
        ),
    ]);
    if let (Some(ratio), Some(saved)) = (x.compression_ratio, x.saved_percent) {
        t.row([
            "",
            "compression",
            &format!("{ratio:.1}:1 ({saved:.1}% saved)"),
        ]);
    }
    if let Some(location) = &x.location {
        t.row(["", "location", location]);
    }
    match (start_rss_mb, peak_rss_mb) {
        (Some(start), Some(peak)) => t.row([
            "",
            "server RSS",
            &format!(
                "{start:.1} MB at start, {peak:.1} MB peak (+{:.1} MB)",
                (peak - start).max(0.0)
            ),
        ]),
        (None, Some(peak)) => t.row(["", "server peak RSS", &format!("{peak:.1} MB")]),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::new_histogram;

    #[test]
    fn percentiles_come_from_the_histogram_in_ms() {
        let mut h = new_histogram();
        for ms in 1..=1000u64 {
            h.record(ms * 1000).unwrap();
        }
        let p = percentiles(&h);
        // 3 significant digits: within 0.1 % of the exact value.
        let close = |got: f64, want: f64| (got - want).abs() <= want * 0.001 + 0.001;
        assert!(close(p.p50_ms, 500.0), "{p:?}");
        assert!(close(p.p90_ms, 900.0), "{p:?}");
        assert!(close(p.p99_ms, 990.0), "{p:?}");
        assert!(close(p.max_ms, 1000.0), "{p:?}");
    }

    #[test]
    fn a_skewed_distribution_shows_in_the_tail() {
        let mut h = new_histogram();
        for _ in 0..980 {
            h.record(2_000).unwrap();
        }
        for _ in 0..20 {
            h.record(250_000).unwrap();
        }
        let p = percentiles(&h);
        assert_eq!(p.p50_ms, 2.0);
        assert_eq!(p.p90_ms, 2.0);
        assert!((p.p99_ms - 250.0).abs() < 0.5, "{p:?}");
    }

    #[test]
    fn empty_histograms_and_zero_time_give_zeros() {
        assert_eq!(percentiles(&new_histogram()).max_ms, 0.0);
        assert_eq!(rate(10, Duration::ZERO), 0.0);
        assert_eq!(rate(1000, Duration::from_millis(250)), 4000.0);
        assert_eq!(round3(1.23456), 1.235);
        assert_eq!(kib_to_mb(100_000), 102.4);
    }

    #[test]
    fn the_json_has_the_documented_shape() {
        let s = Summary {
            events: 10,
            concurrency: 2,
            batch: 0,
            mode: "both",
            kind: "webhook",
            target: None,
            payload_bytes: 200,
            receiver_delay_ms: 0,
            max_in_flight: None,
            server: "started".into(),
            ingest: Some(IngestSummary {
                seconds: 1.0,
                events_per_s: 10.0,
                requests: 10,
                accepted: 10,
                duplicates: 0,
                p50_ms: 1.0,
                p90_ms: 2.0,
                p99_ms: 3.0,
                max_ms: 4.0,
                errors: 0,
                errors_by_cause: BTreeMap::new(),
                timed_out: false,
            }),
            e2e: Some(E2eSummary {
                seconds: 2.0,
                deliveries_per_s: 5.0,
                expected: 10,
                received: 10,
                duplicates: 0,
                receiver_requests: Some(10),
                without_webhook_id: Some(0),
                failed_attempts: None,
                last_error: None,
                drain_after_ingest_s: 1.0,
                complete: true,
            }),
            read_back: None,
            baseline: None,
            ferry_to_client: None,
            export: None,
            export_peak_rss_mb: None,
            export_start_rss_mb: None,
            server_peak_rss_mb: Some(50.5),
            ok: true,
        };
        let v: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap();
        for key in [
            "events",
            "concurrency",
            "ingest",
            "e2e",
            "server_peak_rss_mb",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
        for key in [
            "seconds",
            "events_per_s",
            "p50_ms",
            "p90_ms",
            "p99_ms",
            "max_ms",
            "errors",
        ] {
            assert!(v["ingest"].get(key).is_some(), "ingest.{key}");
        }
        for key in [
            "seconds",
            "deliveries_per_s",
            "received",
            "duplicates",
            "drain_after_ingest_s",
        ] {
            assert!(v["e2e"].get(key).is_some(), "e2e.{key}");
        }
        let text = s.render();
        assert!(text.contains("10 events/s"), "{text}");
        assert!(text.contains("10/10"), "{text}");
        assert!(text.contains("50.5 MB"), "{text}");
    }
}
