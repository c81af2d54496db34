//! The ingest phase: `concurrency` tasks share an atomic counter and send the
//! events (one per `POST /v1/events`, or `batch` per `POST /v1/events/batch`),
//! each recording its acknowledgement latencies in its own histogram, merged at
//! the end, with the ids the server acknowledged and the errors by status.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ferry_client::api::read_bounded;
use hdrhistogram::Histogram;
use indicatif::ProgressBar;
use reqwest::Url;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

/// Highest latency the histograms hold: one hour, in µs (larger values are clamped).
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Largest acknowledgement body read (a batch of 1000 results fits).
const MAX_ACK_BYTES: usize = 16 * 1024 * 1024;

/// Size of the `data` object around the padding (`{"seq":…,"run":"…","pad":""}`).
pub const DATA_OVERHEAD: usize = 50;

/// What to send, where.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub base_url: Url,
    pub api_key: String,
    pub event_type: String,
    /// Name this destination in every event (routing by type otherwise).
    pub destination: Option<String>,
    pub events: u64,
    pub concurrency: usize,
    /// Events per request; 0 sends one event per `POST /v1/events`.
    pub batch: usize,
    pub payload_bytes: usize,
    /// Makes the event ids of this run unique.
    pub run_id: String,
    pub request_timeout: Duration,
    pub deadline: Instant,
}

/// What the phase measured.
#[derive(Debug)]
pub struct IngestResult {
    pub started: Instant,
    pub finished: Instant,
    /// Per-request acknowledgement latency, µs.
    pub latency_us: Histogram<u64>,
    pub requests: u64,
    /// Ids (`evt_…`) of the events the server accepted as new.
    pub accepted_ids: Vec<String>,
    /// Events accepted as new whose id the answer did not show.
    pub accepted_without_id: u64,
    /// Events the server already knew (`200`, `"duplicate": true`).
    pub duplicates: u64,
    /// Failed events by cause: HTTP status, `item <code>`, `timeout`, `connect`, `request`.
    pub errors: BTreeMap<String, u64>,
    /// The deadline passed before every event was sent.
    pub timed_out: bool,
}

impl IngestResult {
    pub fn accepted(&self) -> u64 {
        self.accepted_ids.len() as u64 + self.accepted_without_id
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// The server's answer for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ack {
    Accepted(Option<String>),
    Duplicate,
    Error(String),
}

/// An empty latency histogram with the tool's bounds.
pub fn new_histogram() -> Histogram<u64> {
    // Invariant: constant, valid bounds (1 ≤ low, high ≥ 2·low, 3 significant digits).
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds")
}

/// Sends every event and waits for all the tasks.
pub async fn run(http: reqwest::Client, cfg: IngestConfig, bar: ProgressBar) -> IngestResult {
    let cfg = Arc::new(cfg);
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..cfg.concurrency.max(1) {
        tasks.spawn(worker(
            http.clone(),
            cfg.clone(),
            next.clone(),
            errors.clone(),
            bar.clone(),
        ));
    }
    let mut total = IngestResult {
        started,
        finished: started,
        latency_us: new_histogram(),
        requests: 0,
        accepted_ids: Vec::with_capacity(usize::try_from(cfg.events).unwrap_or(0)),
        accepted_without_id: 0,
        duplicates: 0,
        errors: BTreeMap::new(),
        timed_out: false,
    };
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(part) => {
                // Same bounds on both sides: adding cannot go out of range.
                let _ = total.latency_us.add(&part.latency_us);
                total.requests += part.requests;
                total.accepted_ids.extend(part.accepted_ids);
                total.accepted_without_id += part.accepted_without_id;
                total.duplicates += part.duplicates;
                for (cause, n) in part.errors {
                    *total.errors.entry(cause).or_default() += n;
                }
                total.timed_out |= part.timed_out;
            }
            Err(e) => {
                *total.errors.entry(format!("task: {e}")).or_default() += 1;
            }
        }
    }
    total.finished = Instant::now();
    total
}

async fn worker(
    http: reqwest::Client,
    cfg: Arc<IngestConfig>,
    next: Arc<AtomicU64>,
    error_total: Arc<AtomicU64>,
    bar: ProgressBar,
) -> IngestResult {
    let step = cfg.batch.max(1) as u64;
    let path = if cfg.batch > 0 {
        "v1/events/batch"
    } else {
        "v1/events"
    };
    let url = join(&cfg.base_url, path);
    let pad = "x".repeat(cfg.payload_bytes.saturating_sub(DATA_OVERHEAD));
    let mut out = IngestResult {
        started: Instant::now(),
        finished: Instant::now(),
        latency_us: new_histogram(),
        requests: 0,
        accepted_ids: Vec::new(),
        accepted_without_id: 0,
        duplicates: 0,
        errors: BTreeMap::new(),
        timed_out: false,
    };
    loop {
        if Instant::now() >= cfg.deadline {
            out.timed_out = next.load(Ordering::Relaxed) < cfg.events;
            break;
        }
        let first = next.fetch_add(step, Ordering::Relaxed);
        if first >= cfg.events {
            break;
        }
        let last = (first + step).min(cfg.events);
        let body = if cfg.batch > 0 {
            let events: Vec<Value> = (first..last).map(|i| event_body(&cfg, i, &pad)).collect();
            json!({ "events": events })
        } else {
            event_body(&cfg, first, &pad)
        };
        let body = body.to_string();
        let count = usize::try_from(last - first).unwrap_or(1);

        let sent_at = Instant::now();
        let response = http
            .post(url.clone())
            .bearer_auth(&cfg.api_key)
            .header(CONTENT_TYPE, "application/json")
            .timeout(cfg.request_timeout)
            .body(body)
            .send()
            .await;
        let acks = match response {
            Ok(response) => {
                let status = response.status().as_u16();
                match read_bounded(response, MAX_ACK_BYTES).await {
                    Ok(bytes) if cfg.batch > 0 => classify_batch(status, &bytes, count),
                    Ok(bytes) => vec![classify_single(status, &bytes)],
                    Err(e) => vec![Ack::Error(transport_cause(&e)); count],
                }
            }
            Err(e) => vec![Ack::Error(transport_cause(&e)); count],
        };
        let micros = u64::try_from(sent_at.elapsed().as_micros()).unwrap_or(u64::MAX);
        out.latency_us.saturating_record(micros.max(1));
        out.requests += 1;

        for ack in acks {
            match ack {
                Ack::Accepted(Some(id)) => out.accepted_ids.push(id),
                Ack::Accepted(None) => out.accepted_without_id += 1,
                Ack::Duplicate => out.duplicates += 1,
                Ack::Error(cause) => {
                    *out.errors.entry(cause).or_default() += 1;
                    let n = error_total.fetch_add(1, Ordering::Relaxed) + 1;
                    bar.set_message(format!("errors: {n}"));
                }
            }
        }
        bar.inc(last - first);
    }
    out
}

/// `base` + `path`, keeping a path prefix of the base.
fn join(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!("{}/{path}", url.path().trim_end_matches('/'));
    url.set_path(&joined);
    url
}

/// One load event: unique caller id, `data` padded to about `payload_bytes`.
pub fn event_body(cfg: &IngestConfig, seq: u64, pad: &str) -> Value {
    let run_id = &cfg.run_id;
    let mut event = json!({
        "type": cfg.event_type,
        "id": format!("lt-{run_id}-{seq}"),
        "data": data(run_id, seq, pad),
    });
    if let Some(id) = &cfg.destination {
        event["destinations"] = json!([id]);
    }
    event
}

/// The `data` of load event `seq`: `{"seq","run","pad"}`.
pub fn data(run_id: &str, seq: u64, pad: &str) -> Value {
    json!({"seq": seq, "run": run_id, "pad": pad})
}

/// `POST /v1/events`: 202 new, 200 duplicate, anything else an error by status.
pub fn classify_single(status: u16, body: &[u8]) -> Ack {
    match status {
        200..=202 => {
            let json: Option<Value> = serde_json::from_slice(body).ok();
            let duplicate = json
                .as_ref()
                .and_then(|j| j.get("duplicate"))
                .and_then(Value::as_bool)
                .unwrap_or(status == 200);
            if duplicate {
                Ack::Duplicate
            } else {
                Ack::Accepted(id_of(json.as_ref()))
            }
        }
        other => Ack::Error(other.to_string()),
    }
}

/// `POST /v1/events/batch`: one result per item, found under `results`,
/// `data`, `events` or `items` (or a bare array); an item with `error` failed.
/// When the answer lists no items, every event counts as accepted.
pub fn classify_batch(status: u16, body: &[u8], count: usize) -> Vec<Ack> {
    if !(200..300).contains(&status) {
        return vec![Ack::Error(status.to_string()); count];
    }
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let items = json.as_ref().and_then(|j| {
        j.as_array().or_else(|| {
            ["results", "data", "events", "items"]
                .iter()
                .find_map(|k| j.get(*k).and_then(Value::as_array))
        })
    });
    let Some(items) = items else {
        return vec![Ack::Accepted(None); count];
    };
    let mut acks: Vec<Ack> = items.iter().take(count).map(classify_item).collect();
    // Items the answer left out are unaccounted for: count them as errors.
    acks.resize(count, Ack::Error("item missing".to_owned()));
    acks
}

fn classify_item(item: &Value) -> Ack {
    if let Some(error) = item.get("error").filter(|e| !e.is_null()) {
        let code = error
            .as_str()
            .or_else(|| error.get("error").and_then(Value::as_str))
            .or_else(|| error.get("code").and_then(Value::as_str))
            .map(str::to_owned)
            .or_else(|| item.get("status").map(Value::to_string))
            .unwrap_or_else(|| "error".to_owned());
        return Ack::Error(format!("item {code}"));
    }
    if let Some(status) = item.get("status").and_then(Value::as_u64)
        && !(200..300).contains(&status)
    {
        return Ack::Error(format!("item {status}"));
    }
    let duplicate = item
        .get("duplicate")
        .and_then(Value::as_bool)
        .unwrap_or(item.get("status").and_then(Value::as_u64) == Some(200));
    if duplicate {
        Ack::Duplicate
    } else {
        Ack::Accepted(id_of(Some(item)))
    }
}

/// The `evt_…` id of an acknowledgement (top level, or under `event`).
fn id_of(json: Option<&Value>) -> Option<String> {
    let json = json?;
    json.get("id")
        .or_else(|| json.pointer("/event/id"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// A short cause for a request that got no HTTP answer.
fn transport_cause(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".to_owned()
    } else if e.is_connect() {
        "connect".to_owned()
    } else {
        "request".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_acks_by_status() {
        let body = br#"{"id":"evt_1","duplicate":false,"deliveries":[]}"#;
        assert_eq!(
            classify_single(202, body),
            Ack::Accepted(Some("evt_1".into()))
        );
        let body = br#"{"id":"evt_1","duplicate":true,"deliveries":[]}"#;
        assert_eq!(classify_single(200, body), Ack::Duplicate);
        assert_eq!(classify_single(202, b""), Ack::Accepted(None));
        assert_eq!(classify_single(429, b"{}"), Ack::Error("429".into()));
    }

    #[test]
    fn batch_items_are_classified_one_by_one() {
        let body = br#"{"results": [
            {"id": "evt_1", "duplicate": false},
            {"id": "evt_2", "duplicate": true},
            {"error": {"error": "invalid_request", "message": "missing type"}},
            {"status": 413, "error": "payload_too_large"}
        ]}"#;
        assert_eq!(
            classify_batch(202, body, 5),
            vec![
                Ack::Accepted(Some("evt_1".into())),
                Ack::Duplicate,
                Ack::Error("item invalid_request".into()),
                Ack::Error("item payload_too_large".into()),
                Ack::Error("item missing".into()),
            ]
        );
        assert_eq!(
            classify_batch(503, b"", 2),
            vec![Ack::Error("503".into()); 2]
        );
        assert_eq!(classify_batch(200, b"{}", 2), vec![Ack::Accepted(None); 2]);
        let bare = br#"[{"event": {"id": "evt_9"}}]"#;
        assert_eq!(
            classify_batch(200, bare, 1),
            vec![Ack::Accepted(Some("evt_9".into()))]
        );
    }

    #[test]
    fn event_bodies_are_unique_and_padded() {
        let mut cfg = IngestConfig {
            base_url: Url::parse("http://127.0.0.1:1").unwrap(),
            api_key: "fk_test".into(),
            event_type: "load.test".into(),
            destination: None,
            events: 1,
            concurrency: 1,
            batch: 0,
            payload_bytes: 200,
            run_id: "0123456789abcdef".into(),
            request_timeout: Duration::from_secs(1),
            deadline: Instant::now(),
        };
        let pad = "x".repeat(200 - DATA_OVERHEAD);
        let a = event_body(&cfg, 19_999, &pad);
        let b = event_body(&cfg, 20_000, &pad);
        assert_ne!(a["id"], b["id"]);
        assert!(a.get("destinations").is_none());
        let data_len = a["data"].to_string().len();
        assert!((180..=220).contains(&data_len), "{data_len}");
        cfg.destination = Some("dst_1".into());
        assert_eq!(event_body(&cfg, 1, &pad)["destinations"], json!(["dst_1"]));
    }

    #[test]
    fn urls_keep_the_base_path() {
        let base = Url::parse("http://127.0.0.1:1/ferry/").unwrap();
        assert_eq!(
            join(&base, "v1/events").as_str(),
            "http://127.0.0.1:1/ferry/v1/events"
        );
        let base = Url::parse("http://127.0.0.1:1").unwrap();
        assert_eq!(
            join(&base, "v1/events").as_str(),
            "http://127.0.0.1:1/v1/events"
        );
    }
}
