//! Starting and stopping a whole server: store, dispatcher, ingest writer
//! and the HTTP API, with a graceful stop that loses nothing.

use std::fs::File;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ferry_core::ports::{Ownership, Queue, Resealing, SourceStore, Store};
use ferry_core::secret::Secret;
use ferry_destinations::{Catalog, CatalogOptions};
use ferry_store::{PgOptions, PgStore, RedisOptions, RedisQueue, SqliteStore, WorkListener};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::app::{self, App};
use crate::config::Config;
use crate::dispatch::{DispatchHandle, Dispatcher, DispatcherParts};
use crate::http::AppState;
use crate::store_health::{self, WriteHealth};
use crate::{bootstrap, dispatch, http, ingest, metrics};

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    /// The admin key generated on first start (shown once), if any.
    pub generated_admin_key: Option<Secret<String>>,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Begins a graceful stop.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// A token that stops the server when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits until the server has stopped.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("server task failed")?
    }

    /// Stops gracefully and waits.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown();
        self.wait().await
    }
}

/// Starts the server: on the embedded store in `config.data_dir`, or on
/// PostgreSQL with `database_url`, doing what `config.role` says.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    let backend = open_backend(&config).await?;
    let master = backend.master;
    let (store, queue, sources, ownership, resealing) = (
        backend.store,
        backend.queue,
        backend.sources,
        backend.ownership,
        backend.resealing,
    );
    let lock = backend.lock;
    let listener = backend.listener;
    let write_health = Arc::new(WriteHealth::default());
    let queue = store_health::Reporting::wrap(queue, write_health.clone());
    let external_queue = backend.external_queue;
    if master.pending_rotation {
        let n = bootstrap::finish_rotation(&master, resealing.as_ref()).await?;
        info!(secrets = n, "Finished an interrupted master key rotation.");
    }
    let org = bootstrap::default_org(store.as_ref()).await?;
    let generated_admin_key =
        bootstrap::admin_key(store.as_ref(), &org, config.bootstrap_admin_key.as_deref()).await?;

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
    let shutdown = CancellationToken::new();
    let dispatcher_stop = CancellationToken::new();
    let (alerts, alert_reports) = dispatch::alerts::channel();
    let (dispatch, dispatcher) = if config.role.delivers() {
        let (handle, task) = Dispatcher::spawn(
            DispatcherParts {
                store: store.clone(),
                queue,
                catalog: catalog.clone(),
                config: config.dispatch.clone(),
                // Only the embedded store guarantees that no other process
                // holds leases: there every earlier lease is taken back.
                exclusive: lock.is_some(),
                alerts,
            },
            dispatcher_stop.clone(),
        );
        (handle, Some(task))
    } else {
        (DispatchHandle::detached(), None)
    };
    if let Some(listener) = listener {
        spawn_work_listener(listener, dispatch.clone(), shutdown.clone());
    }
    let (ingest, _writer) = ingest::spawn_writer(
        store.clone(),
        external_queue.clone(),
        dispatch.clone(),
        write_health.clone(),
        config.ingest.max_batch,
        config.ingest.queue_capacity,
    );
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let mut config = config;
    if config.public_url.is_none() {
        config.public_url = Some(format!("http://{addr}"));
    }
    let app = App::new(app::Parts {
        store: store.clone(),
        sources,
        ownership,
        external_queue,
        master: bootstrap::MasterKeyControl::new(master, resealing),
        catalog,
        writer: ingest,
        dispatch,
        write_health,
        public_url: config.public_url(),
        ingest: config.ingest.clone(),
    });
    tokio::spawn(app.clone().raise_alerts(alert_reports));
    let key_flush = spawn_key_flush(app.clone(), shutdown.clone());
    let state = AppState::new(app.clone(), config, metrics::handle());
    let router = if state.config().role.serves_api() {
        http::app(state)
    } else {
        http::operations_app(state)
    };
    info!(%addr, "Ferry is listening.");

    let stop = shutdown.clone();
    let task = tokio::spawn(async move {
        let _lock = lock;
        // The HTTP server outlives the dispatcher's drain so that intake can
        // answer 503 (and readiness fail) while in-flight deliveries finish.
        let http_stop = CancellationToken::new();
        let http_stopped = http_stop.clone();
        let mut server = tokio::spawn(
            axum::serve(listener, router)
                .with_graceful_shutdown(async move { http_stopped.cancelled().await })
                .into_future(),
        );
        let early = tokio::select! {
            () = stop.cancelled() => None,
            served = &mut server => Some(served),
        };
        stop.cancel();
        app.begin_shutdown();
        info!("Shutting down: intake answers 503, finishing in-flight deliveries.");
        dispatcher_stop.cancel();
        if let Some(dispatcher) = dispatcher
            && let Err(error) = dispatcher.await
        {
            warn!(%error, "Dispatcher task failed.");
        }
        http_stop.cancel();
        let served = match early {
            Some(served) => served,
            None => server.await,
        };
        drop(app);
        let _ = key_flush.await;
        info!("Ferry stopped.");
        served
            .context("HTTP server task failed")?
            .context("HTTP server failed")
    });
    Ok(Running {
        addr,
        generated_admin_key,
        shutdown,
        task,
    })
}

/// The opened store with every capability the server uses.
struct Backend {
    master: bootstrap::MasterKey,
    store: Arc<dyn Store>,
    queue: Arc<dyn Queue>,
    sources: Arc<dyn SourceStore>,
    ownership: Arc<dyn Ownership>,
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
        resealing: Arc::new(sqlite),
        lock: Some(lock),
        listener: None,
        external_queue: None,
    })
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
