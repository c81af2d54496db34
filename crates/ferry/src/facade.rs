//! `Ferry`: the handle an application holds, over the embedded engine or a
//! remote server, and the `Port`s it hands out.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ferry_core::{DestinationId, EventId};
use serde_json::Value;

use crate::destinations::{AuditEntry, DeadLetter, Destinations, parse};
use crate::error::Error;
use crate::port::{ExternalEvent, IntegrationPort, IntegrationResult, PortError};
use crate::{embedded, remote};

/// What `Ferry` asks of where it runs: the operator functions, in the
/// API's JSON views, and ports.
#[async_trait]
pub(crate) trait Backend: Send + Sync {
    async fn create_destination(&self, body: Value) -> Result<Value, Error>;
    async fn list_destinations(&self) -> Result<Vec<Value>, Error>;
    async fn get_destination(&self, id: &DestinationId) -> Result<Option<Value>, Error>;
    async fn delete_destination(&self, id: &DestinationId) -> Result<(), Error>;
    async fn dead_letters(&self) -> Result<Vec<Value>, Error>;
    async fn replay(&self, id: &EventId) -> Result<usize, Error>;
    async fn replay_dead_letters(&self) -> Result<usize, Error>;
    async fn audit(&self, limit: usize) -> Result<Vec<Value>, Error>;
    fn port(&self, destination: &DestinationId) -> Result<Arc<dyn IntegrationPort>, PortError>;
    async fn shutdown(&self, grace: Duration) -> Result<(), Error>;
    fn http_addr(&self) -> Option<SocketAddr> {
        None
    }
    fn generated_admin_key(&self) -> Option<String> {
        None
    }
}

/// Ferry in an application: the embedded engine ([`Ferry::embedded`],
/// [`Ferry::builder`]) or a client of a Ferry server ([`Ferry::remote`]).
/// Cheap to clone; every clone is the same Ferry.
#[derive(Clone)]
pub struct Ferry {
    backend: Arc<dyn Backend>,
}

impl std::fmt::Debug for Ferry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ferry")
            .field("http_addr", &self.backend.http_addr())
            .finish_non_exhaustive()
    }
}

impl Ferry {
    /// Settings for an embedded Ferry whose store lives in `dir` (created
    /// if missing; one process at a time).
    pub fn builder(dir: impl AsRef<Path>) -> FerryBuilder {
        FerryBuilder::new(dir.as_ref().to_path_buf())
    }

    /// The whole engine in this process, on the embedded store in `dir`,
    /// with the default settings: `Ferry::builder(dir).open()`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use ferry::port::{DeliveryStatus, ExternalEvent, IntegrationPort};
    /// use ferry::{Ferry, NewDestination};
    /// use serde_json::json;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let ferry = Ferry::builder(dir.path()).allow_private_networks(true).open().await?;
    /// // Nothing listens there: the event waits, and `send` does not.
    /// let dst = ferry
    ///     .destinations()
    ///     .create(NewDestination::webhook("http://127.0.0.1:9/hook").max_retries(0))
    ///     .await?;
    /// let port = ferry.port(&dst.id)?;
    /// let sent = port.send(ExternalEvent::new("evaluation.completed", json!({"run": 1}))).await?;
    /// assert_eq!(sent.status, DeliveryStatus::Pending);
    /// assert!(port.status(&sent.event_id).await?.is_some());
    /// ferry.shutdown(Duration::from_secs(1)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn embedded(dir: impl AsRef<Path>) -> Result<Ferry, Error> {
        Self::builder(dir).open().await
    }

    /// A client of the Ferry server at `url` (an API key with the `ingest`,
    /// `read` and `manage` scopes). Ports commit each event to a local
    /// spool in `spool_dir` first and forward it in the background, so a
    /// server that is down or restarting never fails or slows the caller.
    pub async fn remote(
        url: &str,
        api_key: &str,
        spool_dir: impl AsRef<Path>,
    ) -> Result<Ferry, Error> {
        let backend = remote::Remote::open(url, api_key, spool_dir.as_ref()).await?;
        Ok(Ferry {
            backend: Arc::new(backend),
        })
    }

    pub(crate) fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// The destinations: create, list, read, delete.
    pub fn destinations(&self) -> Destinations<'_> {
        Destinations { ferry: self }
    }

    /// The port of one destination. Each integration is its own port: a
    /// caller exporting to two systems holds two ports. An unknown
    /// destination is reported by `send` (`PortError::UnknownDestination`).
    pub fn port(&self, destination: &DestinationId) -> Result<Port, PortError> {
        Ok(Port {
            destination: destination.clone(),
            inner: self.backend.port(destination)?,
        })
    }

    /// The dead-letter queue: deliveries whose retries are spent or that
    /// were refused for good, newest first.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, Error> {
        self.backend
            .dead_letters()
            .await?
            .into_iter()
            .map(parse)
            .collect()
    }

    /// Sends an event again to every destination it had, with the same id
    /// (`webhook-id`); returns how many deliveries now wait. Audited.
    pub async fn replay(&self, event_id: &EventId) -> Result<usize, Error> {
        self.backend.replay(event_id).await
    }

    /// Sends every delivery of the dead-letter queue again; returns how
    /// many. Audited.
    pub async fn replay_dead_letters(&self) -> Result<usize, Error> {
        self.backend.replay_dead_letters().await
    }

    /// The newest audit records (up to 1,000), newest first.
    pub async fn audit(&self) -> Result<Vec<AuditEntry>, Error> {
        self.backend
            .audit(1_000)
            .await?
            .into_iter()
            .map(parse)
            .collect()
    }

    /// Where the HTTP API is served, when the builder asked for it.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.backend.http_addr()
    }

    /// The admin API key made when this store was first served over HTTP
    /// (shown once), if this start made one.
    pub fn generated_admin_key(&self) -> Option<String> {
        self.backend.generated_admin_key()
    }

    /// Stops: sends are refused from now on (`PortError::Closed`),
    /// in-flight deliveries get `grace` to finish, and everything not
    /// delivered is kept for the next start. A second call does nothing.
    pub async fn shutdown(&self, grace: Duration) -> Result<(), Error> {
        self.backend.shutdown(grace).await
    }
}

/// One destination's [`IntegrationPort`]. Cheap to clone.
#[derive(Clone)]
pub struct Port {
    destination: DestinationId,
    inner: Arc<dyn IntegrationPort>,
}

impl Port {
    /// The destination this port sends to.
    pub fn destination(&self) -> &DestinationId {
        &self.destination
    }
}

impl std::fmt::Debug for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Port")
            .field("destination", &self.destination)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl IntegrationPort for Port {
    async fn send(&self, event: ExternalEvent) -> Result<IntegrationResult, PortError> {
        self.inner.send(event).await
    }

    async fn status(&self, id: &EventId) -> Result<Option<IntegrationResult>, PortError> {
        self.inner.status(id).await
    }
}

/// Settings of an embedded Ferry; [`open`](Self::open) starts it.
#[derive(Clone)]
pub struct FerryBuilder {
    pub(crate) config: ferry_server::Config,
    pub(crate) serve: bool,
    pub(crate) actor: String,
}

/// Keys stay out of debug output.
impl std::fmt::Debug for FerryBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FerryBuilder")
            .field("dir", &self.config.data_dir)
            .field(
                "allow_private_networks",
                &self.config.allow_private_networks,
            )
            .field("serve_http", &self.serve.then_some(self.config.listen))
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

impl FerryBuilder {
    fn new(dir: PathBuf) -> Self {
        let config = ferry_server::Config {
            data_dir: dir,
            ..ferry_server::Config::default()
        };
        Self {
            config,
            serve: false,
            actor: "embedded".into(),
        }
    }

    /// Allow destinations on loopback and private networks (default: no,
    /// the same SSRF guard as the server).
    #[must_use]
    pub fn allow_private_networks(mut self, allow: bool) -> Self {
        self.config.allow_private_networks = allow;
        self
    }

    /// Private networks allowed anyway, as CIDRs (`"10.1.0.0/16"`).
    #[must_use]
    pub fn allowed_networks<I, S>(mut self, cidrs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.config.allowed_networks = cidrs.into_iter().map(Into::into).collect();
        self
    }

    /// Directories `file` destinations may write under (default
    /// `<dir>/files`).
    #[must_use]
    pub fn file_roots<I, P>(mut self, roots: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        self.config.file_roots = roots.into_iter().map(Into::into).collect();
        self
    }

    /// The largest event accepted, as JSON (default 1 MiB, at most 10 MiB).
    #[must_use]
    pub fn max_event_bytes(mut self, bytes: usize) -> Self {
        self.config.max_payload_bytes = bytes;
        self
    }

    /// Deliveries in flight at once, across destinations (default 1,024).
    #[must_use]
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.config.dispatch.max_in_flight = n;
        self
    }

    /// The master key sealing destination secrets, 64 hex characters
    /// (default: a key file in the directory, made on first start).
    #[must_use]
    pub fn master_key(mut self, hex: impl Into<String>) -> Self {
        self.config.master_key = Some(hex.into());
        self
    }

    /// The name audit records give to what the application does
    /// (default `embedded`).
    #[must_use]
    pub fn actor(mut self, name: impl Into<String>) -> Self {
        self.actor = name.into();
        self
    }

    /// Also serve the HTTP API, `/metrics` and `/docs` on `addr` (port 0
    /// picks a free one; see [`Ferry::http_addr`]). The first start makes
    /// an admin API key ([`Ferry::generated_admin_key`]) unless one is
    /// given with [`admin_key`](Self::admin_key).
    #[must_use]
    pub fn serve_http(mut self, addr: SocketAddr) -> Self {
        self.config.listen = addr;
        self.serve = true;
        self
    }

    /// The admin API key (at least 32 characters) of the served API,
    /// instead of a generated one.
    #[must_use]
    pub fn admin_key(mut self, key: impl Into<String>) -> Self {
        self.config.bootstrap_admin_key = Some(key.into());
        self
    }

    /// Starts the engine: opens (or creates) the store, takes back what a
    /// previous run left in flight, and starts delivering.
    pub async fn open(self) -> Result<Ferry, Error> {
        let backend = embedded::Embedded::start(self).await?;
        Ok(Ferry {
            backend: Arc::new(backend),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_builder_never_shows_its_keys() {
        let builder = Ferry::builder("exports-data")
            .master_key("5a".repeat(32))
            .admin_key("fk_very_secret_admin_key_0123456789abcdef");
        let shown = format!("{builder:?}");
        assert!(shown.contains("exports-data"), "{shown}");
        assert!(
            !shown.contains("5a5a") && !shown.contains("very_secret"),
            "{shown}"
        );
    }
}
