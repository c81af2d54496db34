//! The use cases: every operation Ferry offers, whichever face asks for it
//! (the HTTP API, the web console, the embedded library, the scheduler, the
//! dispatcher's alerts). Each operation checks what its principal may do,
//! validates, writes (in one transaction where a promise needs it), appends
//! its audit record, refreshes the caches it affects and wakes the
//! dispatcher. Faces only parse their input and render the result; no use
//! case knows which face called it.
//!
//! One module per aggregate: `ingest` (events in, through the group-commit
//! writer), `events` (reading and replay), `deliveries` (and the dead-letter
//! queue), `integrations` (events for one destination, and how each stands
//! there), `destinations`, `sources` (inbound signed events), `exports`
//! (data exports and their runs), `orgs`
//! (organizations, API keys, the master key), `audit`, and `health`
//! (readiness).

mod alerts;
pub mod audit;
pub mod config;
pub mod deliveries;
pub mod destinations;
mod error;
pub mod events;
pub mod exports;
pub mod health;
pub mod ingest;
pub mod integrations;
pub mod json;
mod limits;
pub mod orgs;
mod principal;
pub mod sources;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ferry_core::delivery::Delivery;
use ferry_core::ports::{
    ConfigStore, ExportStore, MetricsStore, Ownership, Queue, ScheduleStore, SourceStore, Store,
};
use ferry_destinations::Catalog;

pub use self::error::{Error, Result};
pub use self::principal::Principal;
use crate::bootstrap::MasterKeyControl;
use crate::config::IngestConfig;
use crate::dispatch::DispatchHandle;
use crate::ingest::IngestHandle;
use crate::routing::RouteCache;
use crate::store_health::WriteHealth;
use crate::traces::Traces;

/// The use cases over one opened store. Cheap to clone; every face holds
/// one.
#[derive(Clone)]
pub struct App(Arc<Inner>);

struct Inner {
    store: Arc<dyn Store>,
    sources: Arc<dyn SourceStore>,
    ownership: Arc<dyn Ownership>,
    exports: Arc<dyn ExportStore>,
    schedules: Arc<dyn ScheduleStore>,
    config: Arc<dyn ConfigStore>,
    /// Delivery metrics history (the `metrics` export, destinations' latency).
    metrics: Arc<dyn MetricsStore>,
    export_runs: exports::Runs,
    /// The queue when it lives outside the store (Redis Streams).
    external_queue: Option<Arc<dyn Queue>>,
    master: MasterKeyControl,
    catalog: Arc<Catalog>,
    writer: IngestHandle,
    dispatch: DispatchHandle,
    write_health: Arc<WriteHealth>,
    limiter: limits::IngestLimiter,
    /// The largest event an in-process caller may send (the API's body limit).
    max_event_bytes: usize,
    routes: RouteCache,
    keys: orgs::KeyCache,
    source_cache: sources::SourceCache,
    /// Where the web console lives, for the links the views carry.
    public_url: String,
    shutting_down: AtomicBool,
    traces: Traces,
}

/// What `App::new` needs: the opened store's capabilities and the running
/// engine's handles.
pub struct Parts {
    pub store: Arc<dyn Store>,
    pub sources: Arc<dyn SourceStore>,
    pub ownership: Arc<dyn Ownership>,
    pub exports: Arc<dyn ExportStore>,
    pub schedules: Arc<dyn ScheduleStore>,
    pub config: Arc<dyn ConfigStore>,
    pub metrics: Arc<dyn MetricsStore>,
    pub export_settings: exports::ExportSettings,
    pub external_queue: Option<Arc<dyn Queue>>,
    pub master: MasterKeyControl,
    pub catalog: Arc<Catalog>,
    pub writer: IngestHandle,
    pub dispatch: DispatchHandle,
    pub write_health: Arc<WriteHealth>,
    pub public_url: String,
    /// The per-key ingest rate.
    pub ingest: IngestConfig,
    /// The largest event an in-process caller may send (`max_payload_bytes`).
    pub max_event_bytes: usize,
    /// Spans of ingest, sources and exports.
    pub traces: Traces,
}

impl App {
    pub fn new(parts: Parts) -> Self {
        Self(Arc::new(Inner {
            store: parts.store,
            sources: parts.sources,
            ownership: parts.ownership,
            exports: parts.exports,
            schedules: parts.schedules,
            config: parts.config,
            metrics: parts.metrics,
            export_runs: exports::Runs::new(parts.export_settings),
            external_queue: parts.external_queue,
            master: parts.master,
            catalog: parts.catalog,
            writer: parts.writer,
            dispatch: parts.dispatch,
            write_health: parts.write_health,
            limiter: limits::IngestLimiter::new(&parts.ingest),
            max_event_bytes: parts.max_event_bytes,
            routes: RouteCache::default(),
            keys: orgs::KeyCache::default(),
            source_cache: sources::SourceCache::default(),
            public_url: parts.public_url,
            shutting_down: AtomicBool::new(false),
            traces: parts.traces,
        }))
    }

    /// The store, for what no use case covers yet (metrics gauges).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.0.store
    }

    /// The base URL of this Ferry (links to the console).
    pub fn public_url(&self) -> &str {
        &self.0.public_url
    }

    /// The API URL and console page of the object `id` in `collection`
    /// (`destinations`, `exports` …), for what Ferry sends out (alerts).
    pub fn links(&self, collection: &str, id: &str) -> crate::views::Links {
        crate::views::Links::new(&self.0.public_url, collection, id)
    }

    /// From now on intake refuses new events (`Error::ShuttingDown`) and
    /// readiness fails, while in-flight deliveries finish.
    pub fn begin_shutdown(&self) {
        self.0.shutting_down.store(true, Ordering::SeqCst);
    }

    pub fn is_shutting_down(&self) -> bool {
        self.0.shutting_down.load(Ordering::SeqCst)
    }

    /// After deliveries were made waiting outside ingest (a retry, a
    /// replay): adds them to an external queue and wakes the dispatcher. A
    /// queue error is logged, not returned: the deliveries are stored, and
    /// the queue's reconciliation adds them.
    async fn made_waiting(&self, deliveries: &[Delivery]) {
        if deliveries.is_empty() {
            return;
        }
        if let Some(queue) = &self.0.external_queue
            && let Err(error) = queue.enqueue(deliveries).await
        {
            tracing::warn!(%error, deliveries = deliveries.len(), "Adding requeued deliveries to the queue failed; its reconciliation will add them.");
        }
        self.0.dispatch.wake();
    }
}
