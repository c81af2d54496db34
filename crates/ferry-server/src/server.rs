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
use ferry_store::SqliteStore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::Config;
use crate::dispatch::{Dispatcher, DispatcherParts};
use crate::state::{AppState, InnerParts};
use crate::{bootstrap, http, ingest, metrics};

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

/// Starts everything on the embedded store in `config.data_dir`.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    let lock: File = bootstrap::lock_data_dir(&config.data_dir)?;
    let master = bootstrap::master_key(&config.data_dir, config.master_key.as_deref())?;
    let cipher = master.cipher.clone();
    let db = config.data_dir.join("ferry.db");
    let busy = Duration::from_millis(config.store_busy_timeout_ms);
    let sqlite = SqliteStore::open_with(&db, cipher, busy)
        .await
        .with_context(|| format!("cannot open the store at {}", db.display()))?;
    let store: Arc<dyn Store> = Arc::new(sqlite.clone());
    let sources: Arc<dyn SourceStore> = Arc::new(sqlite.clone());
    let ownership: Arc<dyn Ownership> = Arc::new(sqlite.clone());
    let resealing: Arc<dyn Resealing> = Arc::new(sqlite.clone());
    if master.pending_rotation {
        let n = bootstrap::finish_rotation(&master, resealing.as_ref()).await?;
        info!(secrets = n, "Finished an interrupted master key rotation.");
    }
    let queue: Arc<dyn Queue> = Arc::new(sqlite);
    let org = bootstrap::default_org(store.as_ref()).await?;
    let generated_admin_key =
        bootstrap::admin_key(store.as_ref(), &org, config.bootstrap_admin_key.as_deref()).await?;

    let catalog = Catalog::try_new(CatalogOptions {
        allow_private_networks: config.allow_private_networks,
        allowed_cidrs: config.allowed_networks.clone(),
        ..CatalogOptions::default()
    })
    .map_err(|e| anyhow::anyhow!("invalid allowed_networks: {e}"))?;
    let catalog = Arc::new(catalog);
    let shutdown = CancellationToken::new();
    let dispatcher_stop = CancellationToken::new();
    let (dispatch, dispatcher) = Dispatcher::spawn(
        DispatcherParts {
            store: store.clone(),
            queue,
            catalog: catalog.clone(),
            config: config.dispatch.clone(),
            exclusive: true,
        },
        dispatcher_stop.clone(),
    );
    let (ingest, _writer) = ingest::spawn_writer(
        store.clone(),
        dispatch.clone(),
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
    let state = AppState::new(InnerParts {
        config,
        store: store.clone(),
        sources,
        ownership,
        master: Arc::new(bootstrap::MasterKeyControl::new(master, resealing)),
        catalog,
        ingest,
        dispatch,
        metrics: metrics::handle(),
    });
    let key_flush = spawn_key_flush(state.clone(), shutdown.clone());
    let app = http::app(state.clone());
    info!(%addr, "Ferry is listening.");

    let stop = shutdown.clone();
    let task = tokio::spawn(async move {
        let _lock = lock;
        // The HTTP server outlives the dispatcher's drain so that intake can
        // answer 503 (and readiness fail) while in-flight deliveries finish.
        let http_stop = CancellationToken::new();
        let http_stopped = http_stop.clone();
        let mut server = tokio::spawn(
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { http_stopped.cancelled().await })
                .into_future(),
        );
        let early = tokio::select! {
            () = stop.cancelled() => None,
            served = &mut server => Some(served),
        };
        stop.cancel();
        state.begin_shutdown();
        info!("Shutting down: intake answers 503, finishing in-flight deliveries.");
        dispatcher_stop.cancel();
        if let Err(error) = dispatcher.await {
            warn!(%error, "Dispatcher task failed.");
        }
        http_stop.cancel();
        let served = match early {
            Some(served) => served,
            None => server.await,
        };
        drop(state);
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

/// Writes API keys' `last_used_at` every few seconds, not per request.
fn spawn_key_flush(state: AppState, shutdown: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let stopping = tokio::select! {
                () = shutdown.cancelled() => true,
                () = tokio::time::sleep(Duration::from_secs(5)) => false,
            };
            let used = state.inner().keys.take_used();
            if !used.is_empty()
                && let Err(error) = state.store().touch_api_keys(&used).await
            {
                warn!(%error, "Recording API key use failed.");
            }
            if stopping {
                break;
            }
        }
    })
}
