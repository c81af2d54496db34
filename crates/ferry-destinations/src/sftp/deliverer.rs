//! The SFTP adapter (`validate`, `build`) and deliverer: one pooled SSH
//! connection per destination, re-made with backoff after a failure, and
//! atomic uploads (temporary name, then rename).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ferry_core::attempt::Receipt;
use ferry_core::delivery::{Captured, Envelope};
use ferry_core::destination::{Destination, DestinationKind};
use ferry_core::ports::{AttemptError, Delivered};
use ferry_core::ports::{AttemptReport, CheckReport, Deliverer, ExportOutputs};
use serde_json::json;
use tokio::io::AsyncWriteExt;

use super::classify;
use super::config::SftpConfig;
use super::connection::{Connection, Endpoint};
use super::export::SftpExports;
use crate::client_adapter::{ClientAdapter, ClientKind, Reach};
use crate::message::Payload;
use crate::template::{Template, relative_path};

/// First wait before reconnecting after a failed connection; doubles up to
/// [`MAX_RECONNECT_BACKOFF`].
const RECONNECT_BACKOFF: Duration = Duration::from_millis(250);
const MAX_RECONNECT_BACKOFF: Duration = Duration::from_secs(30);

/// The `sftp` kind.
pub struct Sftp;

/// The `sftp` kind's adapter.
pub type SftpAdapter = ClientAdapter<Sftp>;

impl ClientKind for Sftp {
    const KIND: DestinationKind = DestinationKind::Sftp;
    type Config = SftpConfig;

    fn build(
        config: SftpConfig,
        destination: &Destination,
        reach: &Reach,
    ) -> Result<Arc<dyn Deliverer>, String> {
        Ok(Arc::new(SftpDeliverer {
            endpoint: Endpoint::of(&config, destination, reach),
            timeout: Duration::from_millis(config.timeout_ms),
            directory: config.directory,
            file_name: config.file_name,
            pool: tokio::sync::Mutex::new(Pool::default()),
        }))
    }

    fn export_outputs(
        config: SftpConfig,
        destination: &Destination,
        reach: &Reach,
    ) -> Option<Result<Arc<dyn ExportOutputs>, String>> {
        Some(Ok(Arc::new(SftpExports {
            endpoint: Endpoint::of(&config, destination, reach),
            timeout: Duration::from_millis(config.timeout_ms),
            directory: config.directory,
        })))
    }
}

/// The destination's connection, or when the last attempt to make one
/// failed and how long to wait before the next.
#[derive(Default)]
struct Pool {
    connection: Option<Arc<Connection>>,
    failed: Option<(Instant, Duration, AttemptError)>,
}

/// Uploads events to one directory of one server.
pub struct SftpDeliverer {
    endpoint: Endpoint,
    directory: String,
    file_name: Template,
    timeout: Duration,
    pool: tokio::sync::Mutex<Pool>,
}

impl SftpDeliverer {
    /// The pooled connection, made when there is none (or it closed). After
    /// a failed connection, attempts within the backoff fail at once with
    /// that failure instead of hammering the server.
    async fn connection(&self) -> Result<Arc<Connection>, AttemptError> {
        let mut pool = self.pool.lock().await;
        if let Some(connection) = &pool.connection {
            if !connection.is_closed() {
                return Ok(Arc::clone(connection));
            }
            pool.connection = None;
        }
        if let Some((at, wait, failure)) = &pool.failed
            && at.elapsed() < *wait
        {
            return Err(failure.clone());
        }
        match self.endpoint.connect().await {
            Ok(connection) => {
                let connection = Arc::new(connection);
                pool.connection = Some(Arc::clone(&connection));
                pool.failed = None;
                Ok(connection)
            }
            Err(failure) => {
                let wait = match &pool.failed {
                    Some((_, wait, _)) => (*wait * 2).min(MAX_RECONNECT_BACKOFF),
                    None => RECONNECT_BACKOFF,
                };
                pool.failed = Some((Instant::now(), wait, failure.clone()));
                Err(failure)
            }
        }
    }

    /// Forgets a connection that failed an operation (a retryable failure
    /// may mean it is broken); the next delivery makes a new one.
    async fn discard(&self, broken: &Arc<Connection>) {
        let mut pool = self.pool.lock().await;
        if pool
            .connection
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, broken))
        {
            pool.connection = None;
        }
    }

    /// Writes `body` to `<directory>/<name>` through a hidden temporary file
    /// in the same directory, renamed into place once complete (fsync'd
    /// first when the server supports it).
    async fn upload(
        &self,
        sftp: &Connection,
        name: &str,
        body: &[u8],
    ) -> Result<Receipt, AttemptError> {
        let sftp = &sftp.sftp;
        let target = format!("{}/{name}", self.directory.trim_end_matches('/'));
        let (parent, file) = target.rsplit_once('/').unwrap_or(("", &target));
        make_parents(sftp, &self.directory, name).await?;
        let temporary = format!("{parent}/.{file}.{}.tmp", ferry_core::ids::unique_token());
        let written = async {
            let mut remote = sftp.create(&temporary).await.map_err(|e| {
                let failure = classify::sftp(&format!("cannot create a file in {parent}"), &e);
                if failure.reason().ends_with("no such file or directory") {
                    AttemptError::permanent(format!(
                        "directory {parent} does not exist on the server"
                    ))
                } else {
                    failure
                }
            })?;
            remote
                .write_all(body)
                .await
                .map_err(|e| AttemptError::retryable(format!("cannot write {temporary}: {e}")))?;
            remote
                .sync_all()
                .await
                .map_err(|e| classify::sftp(&format!("cannot sync {temporary}"), &e))?;
            remote
                .shutdown()
                .await
                .map_err(|e| AttemptError::retryable(format!("cannot close {temporary}: {e}")))
        };
        if let Err(failure) = written.await {
            let _ = sftp.remove_file(&temporary).await;
            return Err(failure);
        }
        match sftp.rename(&temporary, &target).await {
            Ok(()) => Ok(Receipt::of([("path", json!(target))])),
            Err(error) => {
                // SFTP's rename never replaces a file. The same event renders
                // the same name and the same bytes: if the file is there, an
                // earlier attempt delivered it.
                let _ = sftp.remove_file(&temporary).await;
                if sftp.try_exists(&target).await.unwrap_or(false) {
                    Ok(Receipt::of([
                        ("path", json!(target)),
                        ("already_written", json!(true)),
                    ]))
                } else {
                    Err(classify::sftp(
                        &format!("cannot rename into {target}"),
                        &error,
                    ))
                }
            }
        }
    }
}

/// Creates the subdirectories of `directory` a file name contains
/// (`{date}/{id}.json`).
pub(super) async fn make_parents(
    sftp: &russh_sftp::client::SftpSession,
    directory: &str,
    name: &str,
) -> Result<(), AttemptError> {
    let Some((subdirectories, _)) = name.rsplit_once('/') else {
        return Ok(());
    };
    let mut path = directory.trim_end_matches('/').to_owned();
    for part in subdirectories.split('/') {
        path.push('/');
        path.push_str(part);
        if sftp.try_exists(&path).await.unwrap_or(false) {
            continue;
        }
        if let Err(error) = sftp.create_dir(&path).await
            && !sftp.try_exists(&path).await.unwrap_or(false)
        {
            return Err(classify::sftp(&format!("cannot create {path}"), &error));
        }
    }
    Ok(())
}

#[async_trait]
impl Deliverer for SftpDeliverer {
    /// Uploads the event's body as `<directory>/<file_name>`: a reader
    /// never sees a partial file, and a re-delivery finds the same name.
    async fn deliver(&self, envelope: &Envelope) -> AttemptReport {
        let event = &envelope.event;
        let name = self.file_name.render(event);
        let body = Payload::of(event).to_bytes();
        let request = Captured {
            headers: BTreeMap::from([
                (
                    "host".to_owned(),
                    format!("{}:{}", self.endpoint.host, self.endpoint.port),
                ),
                (
                    "file".to_owned(),
                    format!("{}/{name}", self.directory.trim_end_matches('/')),
                ),
                ("bytes".to_owned(), body.len().to_string()),
            ]),
            body: Captured::body_from_bytes(&body),
        };
        let result = async {
            relative_path(&name)
                .map_err(|m| AttemptError::permanent(format!("config.file_name {m}")))?;
            let connection = self.connection().await?;
            let upload = tokio::time::timeout(self.timeout, self.upload(&connection, &name, &body));
            let result = match upload.await {
                Ok(result) => result,
                Err(_) => Err(AttemptError::retryable(format!(
                    "timed out after {} ms uploading",
                    self.timeout.as_millis()
                ))),
            };
            if result.as_ref().is_err_and(|e| !e.is_permanent()) {
                self.discard(&connection).await;
            }
            result
        }
        .await;
        AttemptReport {
            result: result.map(|receipt| Delivered {
                receipt: Some(receipt),
            }),
            status_code: None,
            request: Some(request),
            response: None,
        }
    }

    /// Connects, authenticates and lists the directory.
    async fn check(&self) -> CheckReport {
        let started = Instant::now();
        let listed = async {
            let connection = self.connection().await?;
            let listing =
                tokio::time::timeout(self.timeout, connection.sftp.read_dir(&self.directory))
                    .await
                    .map_err(|_| AttemptError::retryable("timed out listing the directory"))?;
            match listing {
                Ok(entries) => Ok((entries.count(), connection.fingerprint.clone())),
                Err(error) => {
                    let failure =
                        classify::sftp(&format!("cannot list {}", self.directory), &error);
                    if !failure.is_permanent() {
                        self.discard(&connection).await;
                    }
                    Err(failure)
                }
            }
        };
        match listed.await {
            Ok((entries, fingerprint)) => CheckReport {
                ok: true,
                message: format!(
                    "listed {} ({entries} entries) on {} (host key {fingerprint}) in {} ms",
                    self.directory,
                    self.endpoint.host,
                    started.elapsed().as_millis()
                ),
            },
            Err(failure) => CheckReport {
                ok: false,
                message: failure.into_reason(),
            },
        }
    }
}
