//! nats-server with TLS on its one client port and JetStream, keeping its
//! streams in a temporary directory.

use std::process::Command;

use tempfile::TempDir;

use super::{ClientCertificates, TestCertificates};
use crate::free_port;
use crate::services::{Process, program};

/// A private NATS server, killed on drop.
pub struct TlsNats {
    _process: Process,
    _dir: TempDir,
    pub port: u16,
}

impl TlsNats {
    /// Starts the server with the set's server certificate; with
    /// [`ClientCertificates::Required`] (`verify: true`), a client must
    /// present a certificate signed by the set's CA.
    pub fn start(certificates: &TestCertificates, clients: ClientCertificates) -> Self {
        let nats = program("nats-server", "nats-server");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let port = free_port();
        let verify = clients == ClientCertificates::Required;
        let config = format!(
            "listen: \"127.0.0.1:{port}\"\n\
             tls {{\n  cert_file: \"{cert}\"\n  key_file: \"{key}\"\n  ca_file: \"{ca}\"\n  verify: {verify}\n}}\n\
             jetstream {{\n  store_dir: \"{store}\"\n}}\n",
            cert = certificates.path("server.pem").display(),
            key = certificates.path("server.key").display(),
            ca = certificates.path("ca.pem").display(),
            store = dir.path().join("jetstream").display(),
        );
        let file = dir.path().join("nats.conf");
        std::fs::write(&file, config).expect("write nats.conf");
        let mut command = Command::new(nats);
        command.arg("-c").arg(&file);
        let process = Process::start("nats-server", command, port);
        Self {
            _process: process,
            _dir: dir,
            port,
        }
    }

    /// `tls://127.0.0.1:{port}`
    pub fn url(&self) -> String {
        format!("tls://127.0.0.1:{}", self.port)
    }
}
