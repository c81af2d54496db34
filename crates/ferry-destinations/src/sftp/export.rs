//! Exports to an SFTP server, never half-written: each export has its own
//! connection and is written to a hidden temporary name beside its target
//! (`.NAME.<export id>.partial`), then synced and renamed into place. A
//! failure or a cancel removes the temporary file, and so does the restart
//! after a process died mid-export ([`ExportOutputs::clean_up`]).

use std::time::Duration;

use async_trait::async_trait;
use ferry_core::ports::{AttemptError, ExportObject, ExportOutputs, ExportSink};
use russh_sftp::client::SftpSession;
use russh_sftp::client::fs::File;
use tokio::io::AsyncWriteExt;

use super::classify;
use super::connection::{Connection, Endpoint};
use super::deliverer::make_parents;
use crate::template::relative_path;

/// Where a destination's exports go: its directory on its server.
pub(super) struct SftpExports {
    pub endpoint: Endpoint,
    pub directory: String,
    /// Bounds connecting and each operation.
    pub timeout: Duration,
}

/// The target and temporary paths of an export.
struct Paths {
    target: String,
    temporary: String,
}

impl SftpExports {
    fn paths(&self, object: &ExportObject<'_>) -> Result<Paths, String> {
        relative_path(object.path).map_err(|e| format!("the path {e}"))?;
        let target = format!("{}/{}", self.directory.trim_end_matches('/'), object.path);
        let (parent, file) = target.rsplit_once('/').unwrap_or(("", &target));
        let temporary = format!("{parent}/.{file}.{}.partial", object.export_id);
        Ok(Paths { target, temporary })
    }

    async fn connect(&self) -> Result<Connection, String> {
        self.endpoint
            .connect()
            .await
            .map_err(AttemptError::into_reason)
    }
}

#[async_trait]
impl ExportOutputs for SftpExports {
    async fn create(&self, object: ExportObject<'_>) -> Result<Box<dyn ExportSink>, String> {
        let paths = self.paths(&object)?;
        let connection = self.connect().await?;
        let sftp = &connection.sftp;
        let opened = async {
            make_parents(sftp, &self.directory, object.path)
                .await
                .map_err(AttemptError::into_reason)?;
            sftp.create(&paths.temporary).await.map_err(|e| {
                classify::sftp(&format!("cannot create {}", paths.temporary), &e).into_reason()
            })
        };
        let file = within(self.timeout, "creating the file", opened).await?;
        Ok(Box::new(SftpSink {
            location: format!(
                "sftp://{}:{}{}",
                self.endpoint.host, self.endpoint.port, paths.target
            ),
            paths,
            file: Some(file),
            connection,
            timeout: self.timeout,
        }))
    }

    async fn clean_up(&self, object: ExportObject<'_>) {
        let Ok(paths) = self.paths(&object) else {
            return;
        };
        let removed = async {
            let connection = self.connect().await?;
            remove_if_present(&connection.sftp, &paths.temporary).await
        };
        if let Err(error) = within(self.timeout, "removing the file", removed).await {
            tracing::warn!(path = %paths.temporary, %error, "Could not remove an unfinished export file on an SFTP server.");
        }
    }

    async fn delete(&self, object: ExportObject<'_>) -> Result<(), String> {
        let paths = self.paths(&object)?;
        let removed = async {
            let connection = self.connect().await?;
            remove_if_present(&connection.sftp, &paths.target).await
        };
        within(self.timeout, "removing the file", removed).await
    }
}

/// One export being written.
struct SftpSink {
    connection: Connection,
    paths: Paths,
    /// Open until committed or aborted.
    file: Option<File>,
    location: String,
    timeout: Duration,
}

impl SftpSink {
    /// Why a write failed, naming a full disk when the server says so
    /// (SFTP reports it only as a generic failure).
    async fn explain(&self, error: std::io::Error) -> String {
        let parent = self
            .paths
            .target
            .rsplit_once('/')
            .map_or("/", |(parent, _)| parent);
        let statvfs = self.connection.sftp.fs_info(parent);
        let full = matches!(
            tokio::time::timeout(self.timeout, statvfs).await,
            Ok(Ok(Some(stats))) if stats.blocks_avail == 0
        );
        if full {
            format!(
                "cannot write {}: no space left on the server",
                self.paths.temporary
            )
        } else {
            format!("cannot write {}: {error}", self.paths.temporary)
        }
    }

    /// Syncs and closes the file, then renames it into place (replacing
    /// a file already there: SFTP's rename does not, so that one is
    /// removed first).
    async fn finish(&mut self) -> Result<(), String> {
        let temporary = &self.paths.temporary;
        let target = &self.paths.target;
        let sftp = &self.connection.sftp;
        if let Some(mut file) = self.file.take() {
            file.sync_all().await.map_err(|e| {
                classify::sftp(&format!("cannot sync {temporary}"), &e).into_reason()
            })?;
            file.shutdown()
                .await
                .map_err(|e| format!("cannot close {temporary}: {e}"))?;
        }
        if sftp.try_exists(target).await.unwrap_or(false) {
            sftp.remove_file(target).await.map_err(|e| {
                classify::sftp(&format!("cannot replace {target}"), &e).into_reason()
            })?;
        }
        sftp.rename(temporary, target)
            .await
            .map_err(|e| classify::sftp(&format!("cannot rename into {target}"), &e).into_reason())
    }
}

#[async_trait]
impl ExportSink for SftpSink {
    async fn write(&mut self, chunk: Vec<u8>) -> Result<(), String> {
        let Some(file) = self.file.as_mut() else {
            return Err("the export file is closed".into());
        };
        match tokio::time::timeout(self.timeout, file.write_all(&chunk)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(self.explain(error).await),
            Err(_) => Err(format!(
                "writing {} timed out after {} ms",
                self.paths.temporary,
                self.timeout.as_millis()
            )),
        }
    }

    async fn commit(mut self: Box<Self>) -> Result<String, String> {
        let timeout = self.timeout;
        let finished = within(timeout, "committing the file", self.finish()).await;
        match finished {
            Ok(()) => Ok(std::mem::take(&mut self.location)),
            Err(error) => {
                self.abort().await;
                Err(error)
            }
        }
    }

    async fn abort(mut self: Box<Self>) {
        if let Some(mut file) = self.file.take() {
            let _ = tokio::time::timeout(self.timeout, file.shutdown()).await;
        }
        let removed = remove_if_present(&self.connection.sftp, &self.paths.temporary);
        if let Err(error) = within(self.timeout, "removing the file", removed).await {
            tracing::warn!(path = %self.paths.temporary, %error, "Could not remove an unfinished export file on an SFTP server.");
        }
    }
}

async fn remove_if_present(sftp: &SftpSession, path: &str) -> Result<(), String> {
    match sftp.remove_file(path).await {
        Ok(()) => Ok(()),
        Err(error) => {
            let failure = classify::sftp(&format!("cannot remove {path}"), &error);
            if failure.reason().ends_with("no such file or directory") {
                Ok(())
            } else {
                Err(failure.into_reason())
            }
        }
    }
}

/// `work` within `timeout`.
async fn within<T>(
    timeout: Duration,
    what: &str,
    work: impl Future<Output = Result<T, String>>,
) -> Result<T, String> {
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or_else(|_| Err(format!("{what} timed out after {} ms", timeout.as_millis())))
}
