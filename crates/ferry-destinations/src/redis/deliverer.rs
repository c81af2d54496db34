//! The redis adapter (`validate`, `build`) and deliverer (`deliver`,
//! `check`), and the classification of Redis errors.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ferry_core::attempt::Receipt;
use ferry_core::delivery::{Captured, Envelope};
use ferry_core::destination::{Auth, Destination, DestinationKind};
use ferry_core::ports::{AttemptError, AttemptReport, CheckReport, Deliverer};
use redis::aio::MultiplexedConnection;
use redis::io::AsyncDNSResolver;
use redis::{AsyncConnectionConfig, Client, ErrorKind, IntoConnectionInfo, RedisError};
use redis::{ServerErrorKind, TlsCertificates};
use serde_json::json;

use super::config::{Mode, RedisConfig};
use crate::client::{self, auth, report};
use crate::client_adapter::{ClientAdapter, ClientKind, Reach};
use crate::endpoint;
use crate::link::{Link, timed};
use crate::message::{Payload, metadata};
use crate::net_guard::NetworkPolicy;
use crate::tls;

/// The `redis` kind.
pub struct Redis;

/// The `redis` kind's adapter.
pub type RedisAdapter = ClientAdapter<Redis>;

impl ClientKind for Redis {
    const KIND: DestinationKind = DestinationKind::Redis;
    type Config = RedisConfig;

    fn build(
        config: RedisConfig,
        destination: &Destination,
        reach: &Reach,
    ) -> Result<Arc<dyn Deliverer>, String> {
        let auth = &destination.secrets.auth;
        let client = client(&config, auth)?;
        let timeout = Duration::from_millis(config.timeout_ms);
        let connect_timeout = reach.connect_timeout.min(timeout);
        let connection = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(Some(timeout))
            .set_dns_resolver(GuardedResolver {
                policy: Arc::clone(&reach.policy),
                timeout: connect_timeout,
            });
        Ok(Arc::new(RedisDeliverer {
            client,
            connection,
            config,
            timeout,
            connect_timeout,
            policy: Arc::clone(&reach.policy),
            link: Link::default(),
        }))
    }
}

/// The client of a destination: its URL with the auth's credentials and
/// TLS material (nothing connects yet).
fn client(config: &RedisConfig, auth: &Auth) -> Result<Client, String> {
    let mut info = config
        .url
        .as_str()
        .into_connection_info()
        .map_err(|e| format!("config.url: {e}"))?;
    if let Some((username, password)) = auth::user_and_password(auth) {
        let settings = info
            .redis_settings()
            .clone()
            .set_username(username)
            .set_password(password);
        info = info.set_redis_settings(settings);
    }
    let identity = tls::identity(auth);
    let ca = config.tls.as_ref().and_then(|t| t.ca_certificate.clone());
    if identity.is_none() && ca.is_none() {
        return Client::open(info).map_err(|e| format!("config.url: {e}"));
    }
    let certificates = TlsCertificates {
        client_tls: identity.map(|id| redis::ClientTlsConfig {
            client_cert: id.certificate.into_bytes(),
            client_key: id.private_key.into_bytes(),
        }),
        root_cert: ca.map(String::into_bytes),
    };
    // The error may quote TLS material, never the password: name the field.
    Client::build_with_tls(info, certificates)
        .map_err(|_| "tls: the certificates could not be loaded".to_owned())
}

/// Resolves with the system resolver and keeps the addresses the SSRF
/// guard allows, so the client never connects to a refused one.
struct GuardedResolver {
    policy: Arc<NetworkPolicy>,
    timeout: Duration,
}

impl AsyncDNSResolver for GuardedResolver {
    fn resolve<'a, 'b: 'a>(
        &'a self,
        host: &'b str,
        port: u16,
    ) -> redis::RedisFuture<'a, Box<dyn Iterator<Item = SocketAddr> + Send + 'a>> {
        Box::pin(async move {
            let found = endpoint::resolve(&self.policy, host, port, self.timeout)
                .await
                .map_err(|failure| {
                    RedisError::from(std::io::Error::new(
                        std::io::ErrorKind::PermissionDenied,
                        failure.into_reason(),
                    ))
                })?;
            Ok(Box::new(found.into_iter()) as Box<dyn Iterator<Item = SocketAddr> + Send>)
        })
    }
}

/// One redis destination, built: its client and its one multiplexed
/// connection, shared by every delivery.
pub struct RedisDeliverer {
    client: Client,
    connection: AsyncConnectionConfig,
    config: RedisConfig,
    timeout: Duration,
    connect_timeout: Duration,
    policy: Arc<NetworkPolicy>,
    link: Link<MultiplexedConnection>,
}

impl RedisDeliverer {
    /// A new connection: the guard's verdict on the host first (so that a
    /// refused address fails for good), then connect and authenticate.
    async fn connect(&self) -> Result<MultiplexedConnection, AttemptError> {
        let host = self.config.url.host_str().unwrap_or_default();
        let port = self.config.url.port().unwrap_or(6379);
        endpoint::resolve(&self.policy, host, port, self.connect_timeout).await?;
        // The handshake (AUTH, SELECT) is bounded by the command timeout.
        timed(
            "connecting to Redis",
            self.connect_timeout + self.timeout,
            async {
                self.client
                    .get_multiplexed_async_connection_with_config(&self.connection)
                    .await
                    .map_err(|e| classify(&e))
            },
        )
        .await
    }

    /// The command that delivers `envelope`, and what it shows operators.
    fn command(&self, envelope: &Envelope) -> (redis::Cmd, Captured) {
        let key = self.config.key.render(&envelope.event);
        let body = Payload::of(&envelope.event).to_bytes();
        let mut shown = BTreeMap::from([
            ("command".to_owned(), self.verb().to_owned()),
            ("key".to_owned(), key.clone()),
        ]);
        let mut cmd = redis::cmd(self.verb());
        cmd.arg(&key);
        match self.config.mode {
            Mode::Stream => {
                if let Some(maxlen) = self.config.maxlen {
                    cmd.arg("MAXLEN").arg("~").arg(maxlen);
                }
                cmd.arg("*")
                    .arg("id")
                    .arg(envelope.event.id.as_str())
                    .arg("payload")
                    .arg(&body);
                for (name, value) in metadata(envelope) {
                    cmd.arg(name).arg(&value);
                    shown.insert(name.to_owned(), value);
                }
            }
            Mode::List | Mode::Pubsub => {
                cmd.arg(&body);
            }
        }
        let captured = Captured {
            headers: shown,
            body: Captured::body_from_bytes(&body),
        };
        (cmd, captured)
    }

    fn verb(&self) -> &'static str {
        match self.config.mode {
            Mode::Stream => "XADD",
            Mode::List => "LPUSH",
            Mode::Pubsub => "PUBLISH",
        }
    }

    /// Runs `cmd` on the shared connection, dropping the connection when
    /// the failure shows it broken.
    async fn run(&self, cmd: &redis::Cmd) -> Result<redis::Value, AttemptError> {
        let connected = self.link.get(|| self.connect()).await?;
        let mut conn = connected.conn.clone();
        match tokio::time::timeout(self.timeout, cmd.query_async(&mut conn)).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(error)) => {
                if is_broken(&error) {
                    self.link.reset(&connected).await;
                }
                Err(classify(&error))
            }
            Err(_) => {
                self.link.reset(&connected).await;
                Err(AttemptError::retryable(format!(
                    "Redis did not answer within {} ms",
                    self.timeout.as_millis()
                )))
            }
        }
    }
}

#[async_trait]
impl Deliverer for RedisDeliverer {
    /// One `XADD`, `LPUSH` or `PUBLISH`; delivered when Redis answers it.
    async fn deliver(&self, envelope: &Envelope) -> AttemptReport {
        let (cmd, request) = self.command(envelope);
        let result = self.run(&cmd).await;
        report::attempt(
            request,
            result.map(|answer| receipt(self.config.mode, &answer)),
        )
    }

    /// Connects and authenticates on a fresh connection, `PING`s, and when
    /// the key has no placeholder, checks that it holds the mode's type (or
    /// nothing yet).
    async fn check(&self) -> CheckReport {
        let started = Instant::now();
        let result = async {
            let mut conn = self.connect().await?;
            timed("PING", self.timeout, async {
                redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .map_err(|e| classify(&e))
            })
            .await?;
            let expected = match self.config.mode {
                Mode::Stream => "stream",
                Mode::List => "list",
                Mode::Pubsub => return Ok(()),
            };
            if !self.config.key.is_constant() {
                return Ok(());
            }
            let found = timed("TYPE", self.timeout, async {
                redis::cmd("TYPE")
                    .arg(self.config.key.as_str())
                    .query_async::<String>(&mut conn)
                    .await
                    .map_err(|e| classify(&e))
            })
            .await?;
            if found != "none" && found != expected {
                return Err(AttemptError::permanent(format!(
                    "key `{}` holds a {found}, not a {expected}",
                    self.config.key.as_str()
                )));
            }
            Ok(())
        }
        .await;
        report::check(result.map(|()| {
            format!(
                "connected, authenticated and PINGed in {} ms",
                started.elapsed().as_millis()
            )
        }))
    }
}

/// The stream entry's id, the list's length, or how many subscribers got
/// the message.
fn receipt(mode: Mode, answer: &redis::Value) -> Receipt {
    match (mode, answer) {
        (Mode::Stream, redis::Value::BulkString(id)) => {
            Receipt::of([("entry_id", json!(String::from_utf8_lossy(id)))])
        }
        (Mode::List, redis::Value::Int(n)) => Receipt::of([("list_length", json!(n))]),
        (Mode::Pubsub, redis::Value::Int(n)) => Receipt::of([("subscribers", json!(n))]),
        (_, other) => Receipt::of([("answer", json!(format!("{other:?}")))]),
    }
}

/// Whether the error means the connection itself is gone.
fn is_broken(error: &RedisError) -> bool {
    error.is_io_error() || error.is_connection_dropped() || error.is_timeout()
}

/// Classifies a Redis error: I/O failures, timeouts, a server loading,
/// busy, out of memory, read-only or failing over are retryable; refused
/// credentials, missing permissions, a key of another type and other
/// command errors are permanent.
pub fn classify(error: &RedisError) -> AttemptError {
    if let Some(failure) = client::certificate_failure(error, "the Redis server") {
        return failure;
    }
    let detail = error.detail().unwrap_or_default();
    if error.is_connection_refusal() {
        return AttemptError::retryable("Redis refused the connection (is the server running?)");
    }
    if error.is_timeout() {
        return AttemptError::retryable("Redis did not answer in time");
    }
    if error.is_io_error() || error.is_connection_dropped() {
        return AttemptError::retryable(format!("connection to Redis failed: {error}"));
    }
    match error.kind() {
        ErrorKind::AuthenticationFailed => AttemptError::permanent(
            "authentication failed: Redis refused the username or password (check `auth`)",
        ),
        ErrorKind::Server(
            ServerErrorKind::BusyLoading
            | ServerErrorKind::TryAgain
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::MasterDown
            | ServerErrorKind::ReadOnly
            | ServerErrorKind::Moved
            | ServerErrorKind::Ask,
        ) => AttemptError::retryable(format!("Redis is unavailable: {error}")),
        ErrorKind::Server(ServerErrorKind::NoPerm) => AttemptError::permanent(format!(
            "permission denied: the Redis user may not run this command on this key ({detail})"
        )),
        ErrorKind::InvalidClientConfig => {
            AttemptError::permanent(format!("invalid Redis settings: {error}"))
        }
        _ => match error.code() {
            Some("OOM") => AttemptError::retryable(format!("Redis is out of memory: {detail}")),
            Some("NOAUTH") => AttemptError::permanent(
                "authentication required: Redis needs a password (set `auth`)",
            ),
            Some("WRONGPASS") => AttemptError::permanent(
                "authentication failed: Redis refused the username or password (check `auth`)",
            ),
            Some("WRONGTYPE") => AttemptError::permanent(
                "the key already holds a value of another type (WRONGTYPE): use another key",
            ),
            Some(code) => {
                AttemptError::permanent(format!("Redis refused the command: {code} {detail}"))
            }
            None => AttemptError::retryable(format!("Redis error: {error}")),
        },
    }
}
