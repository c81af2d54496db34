//! The shared application state handed to every HTTP handler.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ferry_core::delivery::Delivery;
use ferry_core::ports::{Ownership, Queue, SourceStore, Store};
use ferry_destinations::Catalog;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::bootstrap::MasterKeyControl;
use crate::config::Config;
use crate::dispatch::DispatchHandle;
use crate::http::auth::KeyCache;
use crate::http::rate_limit::IngestLimiter;
use crate::http::sources::SourceCache;
use crate::ingest::IngestHandle;
use crate::routing::RouteCache;
use crate::store_health::WriteHealth;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub store: Arc<dyn Store>,
    /// The queue when it lives outside the store (Redis Streams).
    pub external_queue: Option<Arc<dyn Queue>>,
    pub sources: Arc<dyn SourceStore>,
    pub ownership: Arc<dyn Ownership>,
    pub master: Arc<MasterKeyControl>,
    pub source_cache: SourceCache,
    pub catalog: Arc<Catalog>,
    pub ingest: IngestHandle,
    pub dispatch: DispatchHandle,
    pub routes: RouteCache,
    pub keys: KeyCache,
    pub limiter: IngestLimiter,
    pub metrics: PrometheusHandle,
    /// Whether the store's latest write committed (see `store_health`).
    pub write_health: Arc<WriteHealth>,
    shutting_down: AtomicBool,
}

impl AppState {
    pub fn new(inner: InnerParts) -> Self {
        let limiter = IngestLimiter::new(&inner.config.ingest);
        Self(Arc::new(Inner {
            config: inner.config,
            store: inner.store,
            external_queue: inner.external_queue,
            sources: inner.sources,
            ownership: inner.ownership,
            master: inner.master,
            source_cache: SourceCache::default(),
            catalog: inner.catalog,
            ingest: inner.ingest,
            dispatch: inner.dispatch,
            routes: RouteCache::default(),
            keys: KeyCache::default(),
            limiter,
            metrics: inner.metrics,
            write_health: inner.write_health,
            shutting_down: AtomicBool::new(false),
        }))
    }

    pub fn config(&self) -> &Config {
        &self.0.config
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.0.store
    }

    pub fn inner(&self) -> &Inner {
        &self.0
    }

    /// After deliveries were made waiting by an operator (retry, replay):
    /// adds them to an external queue and wakes the dispatcher. A queue
    /// error is logged, not returned: the deliveries are stored, and the
    /// queue's reconciliation adds them.
    pub async fn made_waiting(&self, deliveries: &[Delivery]) {
        if let Some(queue) = &self.0.external_queue
            && let Err(error) = queue.enqueue(deliveries).await
        {
            tracing::warn!(%error, deliveries = deliveries.len(), "Adding requeued deliveries to the queue failed; its reconciliation will add them.");
        }
        self.0.dispatch.wake();
    }

    /// From now on intake answers 503.
    pub fn begin_shutdown(&self) {
        self.0.shutting_down.store(true, Ordering::SeqCst);
    }

    pub fn is_shutting_down(&self) -> bool {
        self.0.shutting_down.load(Ordering::SeqCst)
    }
}

/// What `AppState::new` needs.
pub struct InnerParts {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub external_queue: Option<Arc<dyn Queue>>,
    pub sources: Arc<dyn SourceStore>,
    pub ownership: Arc<dyn Ownership>,
    pub master: Arc<MasterKeyControl>,
    pub catalog: Arc<Catalog>,
    pub ingest: IngestHandle,
    pub dispatch: DispatchHandle,
    pub metrics: PrometheusHandle,
    pub write_health: Arc<WriteHealth>,
}
