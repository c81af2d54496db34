//! Server configuration: every knob with its default. The binary layers
//! `ferry.toml`, `FERRY_*` env and flags over these defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use crate::oplog::LogConfig;
pub use crate::traces::TelemetryConfig;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the embedded store, the master key and the lock file live.
    pub data_dir: PathBuf,
    /// Address of the HTTP API.
    pub listen: SocketAddr,
    /// Public base URL used in links (defaults to `http://{listen}`).
    pub public_url: Option<String>,
    /// Largest accepted request body (default 1 MiB, at most 10 MiB).
    pub max_payload_bytes: usize,
    /// Allow destinations on loopback and private networks.
    pub allow_private_networks: bool,
    /// Private networks allowed anyway, as CIDRs (`["10.1.0.0/16"]`).
    pub allowed_networks: Vec<String>,
    /// Directories `file` destinations may write under (`FERRY_FILE_ROOTS`);
    /// empty means `<data_dir>/files`, created at start.
    pub file_roots: Vec<PathBuf>,
    /// The first admin API key, instead of a generated one (`FERRY_BOOTSTRAP_ADMIN_KEY`).
    pub bootstrap_admin_key: Option<String>,
    /// The master key (64 hex chars) instead of the key file (`FERRY_MASTER_KEY`).
    pub master_key: Option<String>,
    /// How long a write may wait for the database (a locked SQLite file, a
    /// PostgreSQL connection) before answering 503.
    pub store_busy_timeout_ms: u64,
    /// PostgreSQL instead of the embedded store (`FERRY_DATABASE_URL`):
    /// many processes on many hosts then share the state and the queue.
    pub database_url: Option<String>,
    /// The PostgreSQL schema holding Ferry's tables (default: `public`).
    pub database_schema: Option<String>,
    /// Redis Streams as the delivery queue (`FERRY_QUEUE_URL`,
    /// `redis://…` or `rediss://…`); needs `database_url`, which keeps
    /// every delivery's state.
    pub queue_url: Option<String>,
    /// Prefix of the queue's Redis keys (default `ferry`): deployments
    /// sharing one Redis need different prefixes.
    pub queue_prefix: String,
    /// How long a queue entry read by a worker that then crashed waits
    /// before another worker takes it over. Must exceed the longest
    /// delivery timeout (the server refuses to start otherwise).
    pub queue_claim_idle_secs: u64,
    /// What this process does: `all` (default), `ingest` (the API, no
    /// deliveries), `worker` (deliveries; only health and metrics over HTTP)
    /// or `scheduler` (starts scheduled exports; health and metrics).
    pub role: Role,
    pub ingest: IngestConfig,
    pub dispatch: DispatchConfig,
    pub exports: ExportsConfig,
    /// Delivery metrics history (the `metrics` export).
    pub metrics: MetricsConfig,
    /// Ferry's own operational log in `<data_dir>/logs`.
    pub log: LogConfig,
    /// OpenTelemetry export of traces (off unless an endpoint is set here
    /// or in `OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub telemetry: TelemetryConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExportsConfig {
    /// Exports an organization may have queued or running at once; beyond
    /// it a new one gets `429` with `Retry-After`.
    pub max_concurrent_per_org: u64,
    /// Retries of a failed scheduled run before an alert goes out.
    pub schedule_retries: u32,
    /// Seconds before the first retry of a failed scheduled run; each
    /// next one waits four times longer (at most an hour).
    pub schedule_retry_s: u64,
    /// Seconds a record must have been written for an incremental export
    /// to take it (younger ones wait for the next run), so that a write
    /// still committing when the export reads is never passed over.
    pub incremental_settle_s: u64,
}

impl Default for ExportsConfig {
    fn default() -> Self {
        Self {
            max_concurrent_per_org: 4,
            schedule_retries: 3,
            schedule_retry_s: 60,
            incremental_settle_s: 10,
        }
    }
}

/// Delivery metrics history: per-minute rollups per destination, written
/// off the hot path and folded into hours and days as they age.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Hours per-minute rollups are kept before they are folded into hours.
    pub minute_retention_hours: u64,
    /// Days hourly rollups are kept before they are folded into days.
    pub hour_retention_days: u64,
    /// Days daily rollups are kept before they are deleted.
    pub day_retention_days: u64,
    /// Seconds between writes of the rollups gathered in memory.
    pub flush_secs: u64,
    /// Label `/metrics`' delivery series with the destination's id as well
    /// as its kind: a series per destination (bounded by how many an
    /// operator makes), for per-destination dashboards and alerts.
    pub per_destination: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            minute_retention_hours: 48,
            hour_retention_days: 35,
            day_retention_days: 400,
            flush_secs: 10,
            per_destination: false,
        }
    }
}

impl MetricsConfig {
    pub fn retention(&self) -> ferry_core::metrics::MetricsRetention {
        // At most about a thousand years: beyond, chrono's durations end.
        let hours = |h: u64| chrono::Duration::hours(h.min(10_000_000) as i64);
        ferry_core::metrics::MetricsRetention {
            minutes: hours(self.minute_retention_hours),
            hours: hours(self.hour_retention_days.saturating_mul(24)),
            days: hours(self.day_retention_days.saturating_mul(24)),
        }
    }
}

/// What one process does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[default]
    All,
    Ingest,
    Worker,
    Scheduler,
}

impl Role {
    pub fn serves_api(self) -> bool {
        matches!(self, Role::All | Role::Ingest)
    }

    pub fn delivers(self) -> bool {
        matches!(self, Role::All | Role::Worker)
    }

    /// Whether it starts the export schedules' runs.
    pub fn schedules(self) -> bool {
        matches!(self, Role::All | Role::Scheduler)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Most events committed in one transaction.
    pub max_batch: usize,
    /// Events waiting for the writer; when full, callers wait (back-pressure).
    pub queue_capacity: usize,
    /// Events per second one API key may send (0: unlimited). Past it the
    /// key gets `429` with `Retry-After`.
    pub rate_limit_per_s: u32,
    /// Events a key may send at once above its rate (0: one second's worth).
    pub rate_limit_burst: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DispatchConfig {
    /// Deliveries in flight at once, across destinations.
    pub max_in_flight: usize,
    /// How long a lease lasts without renewal. A worker renews its leases
    /// every third of this, so a crashed worker's deliveries are taken back
    /// by another worker soon after this long.
    pub lease_secs: u64,
    /// Safety-net poll for due deliveries (new ones are handed over in memory).
    pub poll_interval_ms: u64,
    /// Consecutive failures that pause a destination.
    pub breaker_threshold: u32,
    /// First probe delay of a paused destination; doubles up to `probe_max_ms`.
    pub probe_initial_ms: u64,
    pub probe_max_ms: u64,
    /// How long shutdown waits for in-flight deliveries before releasing them.
    pub shutdown_grace_ms: u64,
    /// Attempts written per transaction, at most.
    pub completion_batch: usize,
    /// Seconds the oldest due delivery may wait before the queue counts as
    /// lagging (a warning metric and a `ferry.queue.lagging` alert).
    pub lagging_after_s: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("ferry-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            max_payload_bytes: 1024 * 1024,
            allow_private_networks: false,
            allowed_networks: Vec::new(),
            file_roots: Vec::new(),
            bootstrap_admin_key: None,
            master_key: None,
            store_busy_timeout_ms: 5_000,
            database_url: None,
            database_schema: None,
            queue_url: None,
            queue_prefix: "ferry".to_owned(),
            queue_claim_idle_secs: 330,
            role: Role::All,
            ingest: IngestConfig::default(),
            dispatch: DispatchConfig::default(),
            exports: ExportsConfig::default(),
            metrics: MetricsConfig::default(),
            log: LogConfig::default(),
            telemetry: TelemetryConfig::default(),
        }
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            max_batch: 1_000,
            queue_capacity: 20_000,
            rate_limit_per_s: 0,
            rate_limit_burst: 0,
        }
    }
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            max_in_flight: 1_024,
            lease_secs: 30,
            poll_interval_ms: 1_000,
            breaker_threshold: 5,
            lagging_after_s: 300,
            probe_initial_ms: 1_000,
            probe_max_ms: 300_000,
            shutdown_grace_ms: 10_000,
            completion_batch: 1_000,
        }
    }
}

/// Largest `max_payload_bytes` accepted.
pub const MAX_PAYLOAD_LIMIT: usize = 10 * 1024 * 1024;

impl Config {
    /// The directories `file` destinations may write under: `file_roots`,
    /// or `<data_dir>/files` when none is configured.
    pub fn file_roots(&self) -> Vec<PathBuf> {
        if self.file_roots.is_empty() {
            vec![self.data_dir.join("files")]
        } else {
            self.file_roots.clone()
        }
    }

    /// Checks values that defaults cannot make wrong but a config file can.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_payload_bytes == 0 || self.max_payload_bytes > MAX_PAYLOAD_LIMIT {
            return Err(format!(
                "max_payload_bytes must be between 1 and {MAX_PAYLOAD_LIMIT}"
            ));
        }
        self.log.validate()?;
        let d = &self.dispatch;
        if d.max_in_flight == 0 || d.completion_batch == 0 || self.ingest.max_batch == 0 {
            return Err("dispatch.max_in_flight, dispatch.completion_batch and ingest.max_batch must be positive".into());
        }
        let m = &self.metrics;
        if m.flush_secs == 0 || m.minute_retention_hours == 0 || m.hour_retention_days == 0 {
            return Err("metrics.flush_secs, minute_retention_hours and hour_retention_days must be positive".into());
        }
        if self.ingest.queue_capacity == 0 {
            return Err("ingest.queue_capacity must be positive".into());
        }
        if d.lease_secs < 3 {
            return Err(
                "dispatch.lease_secs must be at least 3 (leases are renewed every third of it)"
                    .into(),
            );
        }
        if self.database_url.is_none() && self.role != Role::All {
            return Err("separate roles need a shared store: set FERRY_DATABASE_URL (the embedded store serves one process)".into());
        }
        if self.database_url.is_some() && self.master_key.is_none() {
            return Err("with FERRY_DATABASE_URL every process must share the master key: set FERRY_MASTER_KEY (64 hex characters)".into());
        }
        if self.queue_url.is_some() && self.database_url.is_none() {
            return Err("FERRY_QUEUE_URL needs FERRY_DATABASE_URL: the Redis queue keeps every delivery's state in PostgreSQL".into());
        }
        let longest = ferry_destinations::MAX_DELIVERY_TIMEOUT.as_secs();
        if self.queue_url.is_some() && self.queue_claim_idle_secs <= longest {
            return Err(format!(
                "queue_claim_idle_secs ({}) must exceed the longest delivery timeout ({longest} s): \
                 otherwise a worker still delivering could have its queue entries taken over",
                self.queue_claim_idle_secs
            ));
        }
        if self.queue_prefix.is_empty() {
            return Err("queue_prefix must not be empty".into());
        }
        if d.breaker_threshold == 0
            || d.probe_initial_ms == 0
            || d.probe_max_ms < d.probe_initial_ms
        {
            return Err("dispatch.breaker_threshold and probe delays must be positive, probe_max_ms ≥ probe_initial_ms".into());
        }
        Ok(())
    }

    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
    }
}
