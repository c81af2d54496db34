//! One SSH connection with its SFTP session: connecting through the SSRF
//! guard, checking the server's host key against the pin (or the key
//! trusted on first use), and authenticating.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ferry_core::destination::{Auth, Destination};
use ferry_core::ports::AttemptError;
use russh::client::{self, Handle};
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh_sftp::client::SftpSession;
use tokio::net::TcpStream;

use super::classify;
use super::config::SftpConfig;
use crate::client_adapter::Reach;
use crate::net_guard::NetworkPolicy;

/// What a connection needs, fixed when the destination is built.
pub(super) struct Endpoint {
    pub host: String,
    pub port: u16,
    pub auth: Auth,
    pub pinned: Option<String>,
    /// The key accepted on first use, when `trust_on_first_use` is set
    /// (shared by every connection of the destination).
    pub trusted: Option<Arc<Mutex<Option<String>>>>,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub policy: Arc<NetworkPolicy>,
}

/// A live SSH connection and its SFTP session (shared by concurrent
/// deliveries: SFTP requests carry their own ids).
pub(super) struct Connection {
    pub handle: Handle<HostKeyCheck>,
    pub sftp: SftpSession,
    /// The server's key, `SHA256:…`.
    pub fingerprint: String,
}

impl Connection {
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }
}

/// Accepts the server's key only when it matches the pin, or the key first
/// trusted; remembers what it saw for the error message.
pub(super) struct HostKeyCheck {
    pinned: Option<String>,
    trusted: Option<Arc<Mutex<Option<String>>>>,
    seen: Arc<Mutex<Option<String>>>,
}

impl client::Handler for HostKeyCheck {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            return Ok(false);
        };
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner) = Some(fingerprint.clone());
        if let Some(pinned) = &self.pinned {
            return Ok(*pinned == fingerprint);
        }
        let Some(trusted) = &self.trusted else {
            return Ok(false);
        };
        let mut trusted = trusted.lock().unwrap_or_else(PoisonError::into_inner);
        match trusted.as_ref() {
            Some(known) => Ok(*known == fingerprint),
            None => {
                tracing::info!(%fingerprint, "Trusting an SFTP server's host key on first use.");
                *trusted = Some(fingerprint);
                Ok(true)
            }
        }
    }
}

impl Endpoint {
    /// The endpoint of a destination's config and auth.
    pub fn of(config: &SftpConfig, destination: &Destination, reach: &Reach) -> Self {
        let timeout = Duration::from_millis(config.timeout_ms);
        Self {
            host: config.host.clone(),
            port: config.port,
            auth: destination.secrets.auth.clone(),
            trusted: (config.host_key_fingerprint.is_none() && config.trust_on_first_use)
                .then(|| Arc::new(Mutex::new(None))),
            pinned: config.host_key_fingerprint.clone(),
            timeout,
            connect_timeout: reach.connect_timeout.min(timeout),
            policy: Arc::clone(&reach.policy),
        }
    }

    /// Connects, checks the host key, authenticates and starts SFTP, all
    /// within the connect timeout (plus the operation timeout for the
    /// SSH handshake and authentication).
    pub async fn connect(&self) -> Result<Connection, AttemptError> {
        let addresses = self.resolve().await?;
        let stream = self.tcp(&addresses).await?;
        let seen = Arc::new(Mutex::new(None));
        let handler = HostKeyCheck {
            pinned: self.pinned.clone(),
            trusted: self.trusted.clone(),
            seen: Arc::clone(&seen),
        };
        let config = Arc::new(client::Config {
            inactivity_timeout: None,
            keepalive_interval: Some(Duration::from_secs(30)),
            nodelay: true,
            ..client::Config::default()
        });
        let handshake = async {
            let mut handle = client::connect_stream(config, stream, handler)
                .await
                .map_err(|error| match error {
                    russh::Error::UnknownKey => {
                        let seen = seen.lock().unwrap_or_else(PoisonError::into_inner).clone();
                        classify::host_key(seen.as_deref(), self.pinned.is_some())
                    }
                    other => classify::ssh("SSH handshake failed", &other),
                })?;
            self.authenticate(&mut handle).await?;
            let channel = handle
                .channel_open_session()
                .await
                .map_err(|e| classify::ssh("cannot open an SSH session", &e))?;
            channel
                .request_subsystem(true, "sftp")
                .await
                .map_err(|e| classify::ssh("the server refused the sftp subsystem", &e))?;
            let sftp = SftpSession::new(channel.into_stream())
                .await
                .map_err(|e| classify::sftp("cannot start SFTP", &e))?;
            sftp.set_timeout(self.timeout.as_secs().max(1));
            Ok::<_, AttemptError>((handle, sftp))
        };
        let (handle, sftp) = tokio::time::timeout(self.timeout, handshake)
            .await
            .map_err(|_| {
                AttemptError::retryable(format!(
                    "timed out after {} ms during the SSH handshake",
                    self.timeout.as_millis()
                ))
            })??;
        let fingerprint = seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .unwrap_or_default();
        Ok(Connection {
            handle,
            sftp,
            fingerprint,
        })
    }

    /// The host's addresses the SSRF guard allows.
    async fn resolve(&self) -> Result<Vec<SocketAddr>, AttemptError> {
        let lookup = tokio::net::lookup_host((self.host.as_str(), self.port));
        let found: Vec<SocketAddr> = tokio::time::timeout(self.connect_timeout, lookup)
            .await
            .map_err(|_| AttemptError::retryable(format!("DNS lookup of {} timed out", self.host)))?
            .map_err(|e| {
                AttemptError::retryable(format!("DNS lookup of {} failed: {e}", self.host))
            })?
            .collect();
        self.policy
            .filter_resolved(&self.host, found)
            .map_err(|refused| AttemptError::permanent(refused.to_string()))
    }

    async fn tcp(&self, addresses: &[SocketAddr]) -> Result<TcpStream, AttemptError> {
        let mut last = AttemptError::retryable(format!("{} has no address", self.host));
        for address in addresses {
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(address)).await {
                Ok(Ok(stream)) => return Ok(stream),
                Ok(Err(error)) => last = classify::io("could not connect", &error),
                Err(_) => {
                    last = AttemptError::retryable(format!(
                        "timed out connecting after {} ms",
                        self.connect_timeout.as_millis()
                    ));
                }
            }
        }
        Err(last)
    }

    async fn authenticate(&self, handle: &mut Handle<HostKeyCheck>) -> Result<(), AttemptError> {
        let (username, result) = match &self.auth {
            Auth::Password { username, password } => (
                username,
                handle
                    .authenticate_password(username, password.expose())
                    .await,
            ),
            Auth::PrivateKey {
                username,
                private_key,
                passphrase,
            } => {
                let passphrase = passphrase.as_ref().map(|p| p.expose().as_str());
                let key = russh::keys::decode_secret_key(private_key.expose(), passphrase)
                    .map_err(|_| AttemptError::permanent("auth.private_key cannot be read"))?;
                let hash = handle
                    .best_supported_rsa_hash()
                    .await
                    .map_err(|e| classify::ssh("SSH handshake failed", &e))?
                    .flatten();
                let key = PrivateKeyWithHashAlg::new(Arc::new(key), hash);
                (username, handle.authenticate_publickey(username, key).await)
            }
            other => {
                return Err(AttemptError::permanent(format!(
                    "auth type {} is not supported by sftp destinations",
                    other.type_name()
                )));
            }
        };
        match result {
            Ok(result) if result.success() => Ok(()),
            Ok(_) => Err(AttemptError::permanent(format!(
                "authentication failed for user {username}: the server refused the credentials"
            ))),
            Err(error) => Err(classify::ssh("authentication failed", &error)),
        }
    }
}
