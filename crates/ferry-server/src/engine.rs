//! Ferry without a face: the opened store, the group-commit writer, the
//! dispatcher and the use cases over them (`App`). `ferry serve` puts the
//! HTTP API in front of one (`crate::server`); an application embedding
//! Ferry calls its `App` in-process.

use std::fs::File;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ferry_core::export::RetryPolicy;
use ferry_core::org::Org;
use ferry_core::ports::{
    ConfigStore, ExportStore, MetricsStore, Ownership, Queue, Resealing, ScheduleStore,
    SourceStore, Store,
};
use ferry_core::secret::Secret;
use ferry_destinations::{Catalog, CatalogOptions};
use ferry_store::{PgOptions, PgStore, RedisOptions, RedisQueue, SqliteStore, WorkListener};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::app::exports::ExportSettings;
use crate::app::{self, App};
use crate::config::Config;
use crate::dispatch::{DispatchHandle, Dispatcher, DispatcherParts};
use crate::store_health::{self, WriteHealth};
use crate::traces::Traces;
use crate::{bootstrap, dispatch, ingest};

/// Whether the first start makes an admin API key: a server does (its
/// operator needs one), an application using Ferry only in-process does
/// not, so that a later `ferry serve` on the same store still makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminKey {
    Ensure,
    Skip,
}

/// A started engine. Stop it with `stop`. Dropped without a stop, it stops
/// in the background (intake closes, in-flight deliveries are released)
/// and keeps its data directory locked until its dispatcher has stopped.
pub struct Engine {
    app: App,
    default_org: Org,
    generated_admin_key: Option<Secret<String>>,
    dispatch: DispatchHandle,
    /// Stops the listener for other processes' work and the key-use flush.
    background_stop: CancellationToken,
    dispatcher_stop: CancellationToken,
    dispatcher: Option<JoinHandle<()>>,
    key_flush: Option<JoinHandle<()>>,
    /// Writes the delivery metrics gathered in memory.
    metrics_flush: Option<JoinHandle<()>>,
    /// The embedded store's data-dir lock, held until the engine stops.
    lock: Option<File>,
    /// Exported at the end of `stop`.
    traces: Traces,
}

impl Engine {
    /// Opens the store named by `config` (the embedded store in
    /// `data_dir`, or PostgreSQL), makes the default organization and,
    /// with `AdminKey::Ensure`, the first admin key, then starts the writer
    /// and, when `config.role` delivers, the dispatcher.
    pub async fn start(config: &Config, admin_key: AdminKey) -> anyhow::Result<Engine> {
        config
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        let traces = Traces::start(&config.telemetry)
            .map_err(|e| anyhow::anyhow!("invalid telemetry configuration: {e}"))?;
        let backend = open_backend(config).await?;
        let master = backend.master;
        let store = backend.store;
        let write_health = Arc::new(WriteHealth::default());
        let queue = store_health::Reporting::wrap(backend.queue, write_health.clone());
        let external_queue = backend.external_queue;
        if master.pending_rotation {
            let n = bootstrap::finish_rotation(&master, backend.resealing.as_ref()).await?;
            info!(secrets = n, "Finished an interrupted master key rotation.");
        }
        let default_org = bootstrap::default_org(store.as_ref()).await?;
        let generated_admin_key = match admin_key {
            AdminKey::Ensure => {
                bootstrap::admin_key(
                    store.as_ref(),
                    &default_org,
                    config.bootstrap_admin_key.as_deref(),
                )
                .await?
            }
            AdminKey::Skip => None,
        };
        if config.file_roots.is_empty() {
            let default_root = config.data_dir.join("files");
            std::fs::create_dir_all(&default_root)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", default_root.display()))?;
        }
        let catalog = Catalog::try_new(CatalogOptions {
            allow_private_networks: config.allow_private_networks,
            allowed_cidrs: config.allowed_networks.clone(),
            file_roots: config.file_roots(),
            ..CatalogOptions::default()
        })
        .map_err(|e| anyhow::anyhow!("invalid allowed_networks: {e}"))?;
        let catalog = Arc::new(catalog);
        let background_stop = CancellationToken::new();
        let dispatcher_stop = CancellationToken::new();
        let (alerts, alert_reports) = dispatch::alerts::channel();
        let recorder = dispatch::rollups::Recorder::default();
        let (dispatch, dispatcher) = if config.role.delivers() {
            let (handle, task) = Dispatcher::spawn(
                DispatcherParts {
                    store: store.clone(),
                    queue,
                    catalog: catalog.clone(),
                    config: config.dispatch.clone(),
                    // Only the embedded store guarantees that no other process
                    // holds leases: there every earlier lease is taken back.
                    exclusive: backend.lock.is_some(),
                    alerts,
                    metrics: recorder.clone(),
                    traces: traces.clone(),
                    per_destination_metrics: config.metrics.per_destination,
                },
                dispatcher_stop.clone(),
            );
            (handle, Some(task))
        } else {
            (DispatchHandle::detached(), None)
        };
        if let Some(listener) = backend.listener {
            spawn_work_listener(listener, dispatch.clone(), background_stop.clone());
        }
        let (writer, _writer_task) = ingest::spawn_writer(
            store.clone(),
            external_queue.clone(),
            dispatch.clone(),
            write_health.clone(),
            config.ingest.max_batch,
            config.ingest.queue_capacity,
            traces.clone(),
        );
        let app = App::new(app::Parts {
            store,
            sources: backend.sources,
            ownership: backend.ownership,
            exports: backend.exports,
            schedules: backend.schedules,
            config: backend.config,
            metrics: backend.metrics.clone(),
            export_settings: ExportSettings {
                max_concurrent_per_org: config.exports.max_concurrent_per_org,
                file_roots: config.file_roots(),
                log: crate::oplog::LogFiles::of(&config.data_dir, &config.log),
                schedule_retry: RetryPolicy {
                    retries: config.exports.schedule_retries,
                    base: Duration::from_secs(config.exports.schedule_retry_s.max(1)),
                },
                incremental_settle: Duration::from_secs(config.exports.incremental_settle_s),
            },
            external_queue,
            master: bootstrap::MasterKeyControl::new(master, backend.resealing),
            catalog,
            writer,
            dispatch: dispatch.clone(),
            write_health,
            public_url: config.public_url(),
            ingest: config.ingest.clone(),
            max_event_bytes: config.max_payload_bytes,
            traces: traces.clone(),
        });
        tokio::spawn(
            app.clone()
                .raise_alerts(alert_reports, default_org.id.clone()),
        );
        let key_flush = spawn_key_flush(app.clone(), background_stop.clone());
        spawn_export_sweep(app.clone(), backend.lock.is_some(), background_stop.clone());
        let metrics_flush = config.role.delivers().then(|| {
            dispatch::rollups::spawn_flush(
                recorder,
                backend.metrics.clone(),
                Duration::from_secs(config.metrics.flush_secs),
                background_stop.clone(),
            )
        });
        dispatch::rollups::spawn_compaction(
            backend.metrics,
            config.metrics.retention(),
            background_stop.clone(),
        );
        if config.role.schedules() {
            spawn_scheduler(app.clone(), background_stop.clone());
        }
        Ok(Engine {
            app,
            default_org,
            generated_admin_key,
            dispatch,
            background_stop,
            dispatcher_stop,
            dispatcher,
            key_flush: Some(key_flush),
            metrics_flush,
            lock: backend.lock,
            traces,
        })
    }

    /// The use cases.
    pub fn app(&self) -> &App {
        &self.app
    }

    /// The organization made on first start.
    pub fn default_org(&self) -> &Org {
        &self.default_org
    }

    /// The admin key made on this first start (shown once), if any.
    pub fn take_generated_admin_key(&mut self) -> Option<Secret<String>> {
        self.generated_admin_key.take()
    }

    /// Stops gracefully: intake refuses new events from now on, in-flight
    /// deliveries get `grace` (default: `dispatch.shutdown_grace_ms`) to
    /// finish, and every delivery not finished is released for the next
    /// start. Nothing acknowledged is lost.
    pub async fn stop(mut self, grace: Option<Duration>) {
        self.app.begin_shutdown();
        if let Some(grace) = grace {
            self.dispatch.set_shutdown_grace(grace);
        }
        info!("Shutting down: intake answers 503, finishing in-flight deliveries.");
        self.app.stop_exports(EXPORT_STOP_GRACE).await;
        self.dispatcher_stop.cancel();
        if let Some(dispatcher) = self.dispatcher.take()
            && let Err(error) = dispatcher.await
        {
            warn!(%error, "Dispatcher task failed.");
        }
        self.background_stop.cancel();
        if let Some(key_flush) = self.key_flush.take() {
            let _ = key_flush.await;
        }
        if let Some(metrics_flush) = self.metrics_flush.take() {
            let _ = metrics_flush.await;
        }
        self.traces.shutdown().await;
        drop(self.lock.take());
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let Some(dispatcher) = self.dispatcher.take() else {
            return;
        };
        self.app.begin_shutdown();
        self.dispatcher_stop.cancel();
        self.background_stop.cancel();
        let app = self.app.clone();
        // Another engine on this directory must not start while this
        // dispatcher still holds leases: the lock goes when it is done.
        let lock = self.lock.take();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                app.stop_exports(EXPORT_STOP_GRACE).await;
                let _ = dispatcher.await;
                drop(lock);
            });
        }
    }
}

/// The opened store with every capability the engine uses.
struct Backend {
    master: bootstrap::MasterKey,
    store: Arc<dyn Store>,
    queue: Arc<dyn Queue>,
    sources: Arc<dyn SourceStore>,
    ownership: Arc<dyn Ownership>,
    exports: Arc<dyn ExportStore>,
    schedules: Arc<dyn ScheduleStore>,
    config: Arc<dyn ConfigStore>,
    metrics: Arc<dyn MetricsStore>,
    resealing: Arc<dyn Resealing>,
    /// The data-dir lock of the embedded store.
    lock: Option<File>,
    /// PostgreSQL's wake-ups when other processes make work due.
    listener: Option<WorkListener>,
    /// The queue, when it lives outside the store (Redis Streams).
    external_queue: Option<Arc<dyn Queue>>,
}

async fn open_backend(config: &Config) -> anyhow::Result<Backend> {
    if let Some(url) = &config.database_url {
        let master = bootstrap::master_key(&config.data_dir, config.master_key.as_deref())?;
        let options = PgOptions {
            schema: config.database_schema.clone(),
            acquire_timeout: Duration::from_millis(config.store_busy_timeout_ms),
            ..PgOptions::default()
        };
        let pg = PgStore::connect_with(url, master.cipher.clone(), &options)
            .await
            .context("cannot open the PostgreSQL store")?;
        let listener = if config.role.delivers() {
            Some(
                pg.listen_for_work()
                    .await
                    .context("cannot listen for work on PostgreSQL")?,
            )
        } else {
            None
        };
        let external_queue: Option<Arc<dyn Queue>> = match &config.queue_url {
            Some(url) => {
                let options = RedisOptions {
                    prefix: config.queue_prefix.clone(),
                    claim_idle: Duration::from_secs(config.queue_claim_idle_secs),
                    ..RedisOptions::default()
                };
                let queue = RedisQueue::connect(url, pg.clone(), &options)
                    .await
                    .context("cannot open the Redis queue")?;
                info!(prefix = %options.prefix, "Delivery queue on Redis Streams; state in PostgreSQL.");
                Some(Arc::new(queue))
            }
            None => None,
        };
        let queue = external_queue
            .clone()
            .unwrap_or_else(|| Arc::new(pg.clone()) as Arc<dyn Queue>);
        return Ok(Backend {
            master,
            store: Arc::new(pg.clone()),
            queue,
            external_queue,
            sources: Arc::new(pg.clone()),
            ownership: Arc::new(pg.clone()),
            exports: Arc::new(pg.clone()),
            schedules: Arc::new(pg.clone()),
            config: Arc::new(pg.clone()),
            metrics: Arc::new(pg.clone()),
            resealing: Arc::new(pg),
            lock: None,
            listener,
        });
    }
    let lock = bootstrap::lock_data_dir(&config.data_dir)?;
    let master = bootstrap::master_key(&config.data_dir, config.master_key.as_deref())?;
    let db = config.data_dir.join("ferry.db");
    let busy = Duration::from_millis(config.store_busy_timeout_ms);
    let sqlite = SqliteStore::open_with(&db, master.cipher.clone(), busy)
        .await
        .with_context(|| format!("cannot open the store at {}", db.display()))?;
    Ok(Backend {
        master,
        store: Arc::new(sqlite.clone()),
        queue: Arc::new(sqlite.clone()),
        sources: Arc::new(sqlite.clone()),
        ownership: Arc::new(sqlite.clone()),
        exports: Arc::new(sqlite.clone()),
        schedules: Arc::new(sqlite.clone()),
        config: Arc::new(sqlite.clone()),
        metrics: Arc::new(sqlite.clone()),
        resealing: Arc::new(sqlite),
        lock: Some(lock),
        listener: None,
        external_queue: None,
    })
}

/// How long a stop waits for running exports to remove what they wrote.
const EXPORT_STOP_GRACE: Duration = Duration::from_secs(5);

/// A running export reports about once a second; one silent this long has
/// lost its process.
const EXPORT_STALE_AFTER: Duration = Duration::from_secs(60);

/// Fails the exports whose process stopped, and removes their unfinished
/// files: at start and then periodically. On the embedded store no other
/// process can run one, so at start every active export is stale.
fn spawn_export_sweep(app: App, exclusive: bool, stop: CancellationToken) {
    tokio::spawn(async move {
        let stale = chrono::Duration::from_std(EXPORT_STALE_AFTER).unwrap_or_default();
        let mut before = if exclusive {
            chrono::Utc::now()
        } else {
            chrono::Utc::now() - stale
        };
        loop {
            match app.fail_stale_exports(before).await {
                Ok(0) => {}
                Ok(n) => info!(
                    exports = n,
                    "Failed the exports a stopped process left running."
                ),
                Err(error) => warn!(%error, "Looking for stale exports failed."),
            }
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(EXPORT_STALE_AFTER / 2) => {}
            }
            before = chrono::Utc::now() - stale;
        }
    });
}

/// How often a scheduling process looks for due schedules: a run starts at
/// most this long after its time.
const SCHEDULER_EVERY: Duration = Duration::from_secs(1);

/// Starts the export schedules' due runs, about once a second.
fn spawn_scheduler(app: App, stop: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SCHEDULER_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            if let Err(error) = app.run_due_schedules(chrono::Utc::now()).await {
                warn!(%error, "Looking for due export schedules failed.");
            }
        }
    });
}

/// Wakes the dispatcher whenever another process makes work due.
fn spawn_work_listener(
    mut listener: WorkListener,
    dispatch: DispatchHandle,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                next = listener.next() => match next {
                    Ok(()) => dispatch.wake(),
                    Err(error) => {
                        warn!(%error, "Listening for work failed; polling meanwhile.");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        dispatch.wake();
                    }
                },
            }
        }
    });
}

/// Writes API keys' `last_used_at` every few seconds, not per request.
fn spawn_key_flush(app: App, shutdown: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let stopping = tokio::select! {
                () = shutdown.cancelled() => true,
                () = tokio::time::sleep(Duration::from_secs(5)) => false,
            };
            if let Err(error) = app.flush_key_use().await {
                warn!(%error, "Recording API key use failed.");
            }
            if stopping {
                break;
            }
        }
    })
}
