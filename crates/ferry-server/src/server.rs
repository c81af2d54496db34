//! Starting and stopping a whole server: the engine (`crate::engine`) with
//! the HTTP API in front, and a graceful stop that loses nothing.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use ferry_core::secret::Secret;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::config::Config;
use crate::engine::{AdminKey, Engine};
use crate::http::{self, AppState};
use crate::metrics;

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    /// The admin key generated on first start (shown once), if any.
    pub generated_admin_key: Option<Secret<String>>,
    shutdown: CancellationToken,
    grace: std::sync::Arc<std::sync::Mutex<Option<Duration>>>,
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

    /// Stops gracefully, giving in-flight deliveries `grace` instead of
    /// `dispatch.shutdown_grace_ms`, and waits.
    pub async fn stop_within(self, grace: Duration) -> anyhow::Result<()> {
        *self.grace.lock().unwrap_or_else(|e| e.into_inner()) = Some(grace);
        self.stop().await
    }
}

/// Starts the server: on the embedded store in `config.data_dir`, or on
/// PostgreSQL with `database_url`, doing what `config.role` says.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let (listener, config) = bind(config).await?;
    let mut engine = Engine::start(&config, AdminKey::Ensure).await?;
    let generated_admin_key = engine.take_generated_admin_key();
    let mut running = serve(engine, config, listener)?;
    running.generated_admin_key = generated_admin_key;
    Ok(running)
}

/// Binds `config.listen`; the public URL defaults to the bound address.
pub async fn bind(mut config: Config) -> anyhow::Result<(TcpListener, Config)> {
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    config.listen = listener.local_addr()?;
    if config.public_url.is_none() {
        config.public_url = Some(format!("http://{}", config.listen));
    }
    Ok((listener, config))
}

/// Serves the HTTP API of a started engine on `listener` until stopped;
/// then stops the engine.
pub fn serve(engine: Engine, config: Config, listener: TcpListener) -> anyhow::Result<Running> {
    let addr = listener.local_addr()?;
    let app = engine.app().clone();
    let state = AppState::new(app, config, metrics::handle());
    let router = if state.config().role.serves_api() {
        http::app(state)
    } else {
        http::operations_app(state)
    };
    info!(%addr, "Ferry is listening.");
    let shutdown = CancellationToken::new();
    let grace = std::sync::Arc::new(std::sync::Mutex::new(None));
    let stop = shutdown.clone();
    let chosen_grace = grace.clone();
    let task = tokio::spawn(async move {
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
        let grace = *chosen_grace.lock().unwrap_or_else(|e| e.into_inner());
        engine.stop(grace).await;
        http_stop.cancel();
        let served = match early {
            Some(served) => served,
            None => server.await,
        };
        info!("Ferry stopped.");
        served
            .context("HTTP server task failed")?
            .context("HTTP server failed")
    });
    Ok(Running {
        addr,
        generated_admin_key: None,
        shutdown,
        grace,
        task,
    })
}
