//! SFTP against OpenSSH's sshd, a directory per test, read back from the
//! served directory (the files are local to the test).

use async_trait::async_trait;
use ferry_core::destination::{Auth, DestinationKind};
use ferry_core::secret::Secret;
use ferry_testkit::free_port;
use ferry_testkit::services::{SFTP_PASSWORD, SFTP_USER, SftpServer};
use serde_json::{Value, json};
use tempfile::TempDir;

use super::{Received, Target};

pub struct Sftp {
    _server: SftpServer,
    dir: TempDir,
}

pub fn password(password: &str) -> Auth {
    Auth::Password {
        username: SFTP_USER.into(),
        password: Secret::new(password.into()),
    }
}

/// The files of a directory that are complete events (hidden names are
/// temporary files).
pub fn events_in(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with('.') || path.is_dir() {
            continue;
        }
        if let Ok(bytes) = std::fs::read(&path) {
            found.push((name, bytes));
        }
    }
    found
}

#[async_trait]
impl Target for Sftp {
    const KIND: DestinationKind = DestinationKind::Sftp;
    const RECEIPT: &'static [&'static str] = &["path"];
    const DEDUPLICATES: bool = true;

    async fn provision() -> (Self, Value, Auth) {
        let server = SftpServer::start();
        let dir = server.directory();
        let config = json!({
            "host": "127.0.0.1",
            "port": server.port(),
            "directory": dir.path(),
            "file_name": "{id}.json",
            "host_key_fingerprint": server.host_key_fingerprint(),
        });
        (
            Self {
                _server: server,
                dir,
            },
            config,
            password(SFTP_PASSWORD),
        )
    }

    async fn received(&mut self) -> Vec<Received> {
        events_in(self.dir.path())
            .into_iter()
            .map(|(name, bytes)| Received {
                id: name.strip_suffix(".json").unwrap().to_owned(),
                payload: serde_json::from_slice(&bytes).unwrap(),
                traceparent: None,
            })
            .collect()
    }

    fn wrong_credentials(&self, config: &Value, _auth: &Auth) -> Option<(Value, Auth)> {
        Some((config.clone(), password("not-the-password")))
    }

    fn unreachable(&self, config: &Value) -> Value {
        let mut config = config.clone();
        config["port"] = json!(free_port());
        config
    }
}

compliance!(Sftp);
