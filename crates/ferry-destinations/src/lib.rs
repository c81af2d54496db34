//! Ferry's destination kinds: for each, a pure `validate` of its config and
//! auth, a `build` that makes a [`Deliverer`] (owning pooled connections), a
//! `check` that talks to the real system, and `deliver`, which classifies
//! every attempt as delivered, retryable or permanent.
//!
//! One folder per kind (`webhook/`, …) with the same files in each:
//! `mod.rs`, `config.rs` (the typed config and its pure
//! [`KindConfig::parse`](kind_config::KindConfig::parse)), `deliverer.rs`
//! (the adapter) and `tests.rs`. Each kind with a heavy client sits behind a
//! cargo feature, all on by default. The [`Catalog`] registers every kind
//! compiled in.
//!
//! What the kinds share: [`kind_config`] (the one way from a `config`
//! object to a kind's typed config and back), [`fields`] (reading a config
//! with one error per field), the client adapter of the kinds that connect
//! to a server, `host` (the server and login of email and sftp), [`tls`] (the
//! `tls` object and client certificates), [`endpoint`] (the SSRF guard for
//! hosts a client connects to itself), [`link`] (one reused connection,
//! reconnected with backoff, and [`timed`](link::timed) for the deadline of one step) and
//! `sql` (the postgres and mysql config, identifiers and SQLSTATE
//! classification).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ferry_core::FieldError;
use ferry_core::destination::{Auth, Destination, DestinationKind};
use ferry_core::ports::{Deliverer, DestinationAdapter, ExportOutputs};
use serde_json::Value;

#[cfg(feature = "amqp")]
pub mod amqp;
#[cfg(any(
    feature = "amqp",
    feature = "nats",
    feature = "redis",
    feature = "mqtt",
    feature = "postgres",
    feature = "mysql"
))]
mod client;
#[cfg(any(
    feature = "amqp",
    feature = "nats",
    feature = "redis",
    feature = "mqtt",
    feature = "postgres",
    feature = "mysql",
    feature = "sftp",
    feature = "email"
))]
mod client_adapter;
#[cfg(feature = "email")]
pub mod email;
pub mod endpoint;
#[cfg(any(feature = "webhook", feature = "s3", feature = "email"))]
mod error_chain;
pub mod fields;
#[cfg(feature = "file")]
pub mod file;
#[cfg(any(feature = "sftp", feature = "email"))]
mod host;
pub mod kind_config;
pub mod link;
pub mod message;
#[cfg(feature = "mqtt")]
pub mod mqtt;
#[cfg(feature = "mysql")]
pub mod mysql;
#[cfg(feature = "nats")]
pub mod nats;
pub mod net_guard;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "s3")]
pub mod s3;
#[cfg(feature = "sftp")]
pub mod sftp;
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub mod sql;
pub mod template;
pub mod tls;
#[cfg(feature = "webhook")]
pub mod webhook;

pub use net_guard::{IpCidr, NetworkPolicy, parse_cidrs};

/// The longest a single delivery attempt may take, whatever the kind: no
/// destination accepts a longer timeout. Queues whose entries can be taken
/// over by another worker must wait longer than this.
pub const MAX_DELIVERY_TIMEOUT: Duration = Duration::from_secs(300);

/// Settings shared by every destination kind of a process.
#[derive(Debug, Clone)]
pub struct CatalogOptions {
    /// Whether destinations may target loopback, private, link-local,
    /// unique-local and other reserved addresses (see [`net_guard`]). When
    /// false (the default) the SSRF guard refuses them when a destination is
    /// created (IP-literal and `localhost` URLs) and at connect time (the
    /// shared HTTP client's DNS resolver drops refused addresses, so DNS
    /// rebinding cannot reach them either).
    pub allow_private_networks: bool,
    /// Networks reachable even though the guard refuses them otherwise,
    /// e.g. `10.20.0.0/16` or `fd00::/8` (a bare address is one host).
    /// Checked by [`Catalog::try_new`]; see [`parse_cidrs`].
    pub allowed_cidrs: Vec<String>,
    /// `User-Agent` of outbound HTTP requests (a destination's own
    /// `User-Agent` header, if configured, wins).
    pub user_agent: String,
    /// Idle keep-alive connections kept per host by the shared HTTP client.
    /// It does not cap connections in use: concurrency per destination is the
    /// engine's `max_in_flight`.
    pub pool_max_idle_per_host: usize,
    /// Longest wait for a TCP (and TLS) connection to be established; a
    /// destination's own timeout, when shorter, applies too.
    pub connect_timeout: Duration,
    /// Directories `file` destinations may write under (their `directory`
    /// must be inside one); none by default, which disables the kind.
    pub file_roots: Vec<PathBuf>,
}

impl Default for CatalogOptions {
    fn default() -> Self {
        Self {
            allow_private_networks: false,
            allowed_cidrs: Vec::new(),
            user_agent: concat!("ferry/", env!("CARGO_PKG_VERSION")).to_owned(),
            pool_max_idle_per_host: 1024,
            connect_timeout: Duration::from_secs(5),
            file_roots: Vec::new(),
        }
    }
}

/// Every destination kind compiled in, by kind. Cheap to clone; the kinds
/// share process-wide clients (one pooled HTTP client for all webhooks).
#[derive(Clone)]
pub struct Catalog {
    adapters: HashMap<DestinationKind, Arc<dyn DestinationAdapter>>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("kinds", &self.kinds())
            .finish()
    }
}

impl CatalogOptions {
    /// The SSRF guard's policy these options describe; an error naming
    /// every invalid entry of `allowed_cidrs`.
    pub fn network_policy(&self) -> Result<NetworkPolicy, String> {
        Ok(NetworkPolicy {
            allow_private: self.allow_private_networks,
            allowed: parse_cidrs(&self.allowed_cidrs)?,
        })
    }
}

impl Catalog {
    /// Registers every kind compiled in, building their shared clients; an
    /// error when the options are invalid (an `allowed_cidrs` entry that is
    /// not a CIDR).
    pub fn try_new(options: CatalogOptions) -> Result<Self, String> {
        let policy = options.network_policy()?;
        Ok(Self::with_policy(&options, policy))
    }

    /// Like [`Catalog::try_new`], but never fails: invalid options fail
    /// closed — the error is logged and the SSRF guard then refuses every
    /// private address (no allowlist, `allow_private_networks` ignored).
    pub fn new(options: CatalogOptions) -> Self {
        match options.network_policy() {
            Ok(policy) => Self::with_policy(&options, policy),
            Err(error) => {
                tracing::error!(%error, "Invalid destination options; refusing every private network.");
                Self::with_policy(&options, NetworkPolicy::default())
            }
        }
    }

    fn with_policy(options: &CatalogOptions, policy: NetworkPolicy) -> Self {
        let compiled_in: Vec<Arc<dyn DestinationAdapter>> = vec![
            #[cfg(feature = "webhook")]
            Arc::new(webhook::WebhookAdapter::new(options, policy.clone())),
            #[cfg(feature = "s3")]
            Arc::new(s3::S3Adapter::new(options, policy.clone())),
            #[cfg(feature = "sftp")]
            Arc::new(sftp::SftpAdapter::new(options, policy.clone())),
            #[cfg(feature = "email")]
            Arc::new(email::EmailAdapter::new(options, policy.clone())),
            #[cfg(feature = "file")]
            Arc::new(file::FileAdapter::new(&options.file_roots)),
            #[cfg(feature = "amqp")]
            Arc::new(amqp::AmqpAdapter::new(options, policy.clone())),
            #[cfg(feature = "mqtt")]
            Arc::new(mqtt::MqttAdapter::new(options, policy.clone())),
            #[cfg(feature = "mysql")]
            Arc::new(mysql::MysqlAdapter::new(options, policy.clone())),
            #[cfg(feature = "nats")]
            Arc::new(nats::NatsAdapter::new(options, policy.clone())),
            #[cfg(feature = "postgres")]
            Arc::new(postgres::PostgresAdapter::new(options, policy.clone())),
            #[cfg(feature = "redis")]
            Arc::new(redis::RedisAdapter::new(options, policy.clone())),
        ];
        // Kinds compiled out leave the options unused.
        let _ = (options, policy);
        let adapters = compiled_in.into_iter().map(|a| (a.kind(), a)).collect();
        Self { adapters }
    }

    /// The adapter of a kind, when that kind is compiled in.
    pub fn adapter(&self, kind: DestinationKind) -> Option<Arc<dyn DestinationAdapter>> {
        self.adapters.get(&kind).cloned()
    }

    /// The kinds available, sorted by name.
    pub fn kinds(&self) -> Vec<DestinationKind> {
        let mut kinds: Vec<_> = self.adapters.keys().copied().collect();
        kinds.sort_by_key(|k| k.as_str());
        kinds
    }

    /// Checks a kind's config and auth without I/O; returns the config with
    /// defaults filled in, or one error per invalid field.
    pub fn validate(
        &self,
        kind: DestinationKind,
        config: &Value,
        auth: &Auth,
    ) -> Result<Value, Vec<FieldError>> {
        match self.adapters.get(&kind) {
            Some(adapter) => adapter.validate(config, auth),
            None => Err(vec![FieldError::new(
                "kind",
                format!("destination kind `{kind}` is not available in this build"),
            )]),
        }
    }

    /// Builds the deliverer of a stored destination.
    pub fn build(&self, destination: &Destination) -> Result<Arc<dyn Deliverer>, String> {
        match self.adapters.get(&destination.kind) {
            Some(adapter) => adapter.build(destination),
            None => Err(format!(
                "destination kind `{}` is not available in this build",
                destination.kind
            )),
        }
    }
}

impl Catalog {
    /// Where exports go on a stored destination (its credentials reused);
    /// an error when its kind does not take exports or is not compiled in.
    pub fn export_outputs(
        &self,
        destination: &Destination,
    ) -> Result<Arc<dyn ExportOutputs>, String> {
        let kind = destination.kind;
        self.adapters
            .get(&kind)
            .ok_or_else(|| format!("destination kind `{kind}` is not available in this build"))?
            .export_outputs(destination)
            .unwrap_or_else(|| {
                Err(format!(
                    "an export is written to a `file`, `s3` or `sftp` destination, not to a `{kind}` one"
                ))
            })
    }
}

impl Default for Catalog {
    fn default() -> Self {
        Self::new(CatalogOptions::default())
    }
}
