//! A private RabbitMQ node with a TLS listener (and a plain one, for the
//! test's own client): `rabbitmq-server` under a node name, ports and
//! directory of its own, no plugins, the default `guest` user. It runs as
//! the `rabbitmq` user when the test runs as root, so its files are handed
//! to that user. Starting takes about ten seconds.

use std::process::Command;

use tempfile::TempDir;

use super::{ClientCertificates, TestCertificates};
use crate::services::{Process, program};
use crate::{free_port, is_root};

/// A private RabbitMQ node, killed on drop.
pub struct TlsRabbitmq {
    _process: Process,
    dir: TempDir,
    /// The TLS listener (`amqps://127.0.0.1:{tls_port}`).
    pub tls_port: u16,
    /// A plain listener on the same node, for reading back.
    pub plain_port: u16,
}

impl TlsRabbitmq {
    /// Starts the node with the set's server certificate; with
    /// [`ClientCertificates::Required`] (`fail_if_no_peer_cert`), a TLS
    /// client must present a certificate signed by the set's CA.
    pub fn start(certificates: &TestCertificates, clients: ClientCertificates) -> Self {
        let server = program("rabbitmq-server", "rabbitmq-server");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path();
        for name in ["ca.pem", "server.pem", "server.key"] {
            std::fs::copy(certificates.path(name), path.join(name)).expect("copy the TLS files");
        }
        let (tls_port, plain_port) = (free_port(), free_port());
        let require = clients == ClientCertificates::Required;
        let config = format!(
            "listeners.tcp.default = {plain_port}\nlisteners.ssl.default = {tls_port}\n\
             ssl_options.cacertfile = {dir}/ca.pem\nssl_options.certfile = {dir}/server.pem\n\
             ssl_options.keyfile = {dir}/server.key\nssl_options.verify = verify_peer\n\
             ssl_options.fail_if_no_peer_cert = {require}\n",
            dir = path.display()
        );
        std::fs::write(path.join("rabbitmq.conf"), config).expect("write rabbitmq.conf");
        std::fs::write(path.join("enabled_plugins"), "[].\n").expect("write enabled_plugins");
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "rabbitmq"])
                .arg(path)
                .status()
                .expect("chown runs");
            assert!(
                status.success(),
                "cannot give the node's directory to rabbitmq"
            );
        }
        let mut command = Command::new(server);
        command
            .env(
                "RABBITMQ_NODENAME",
                format!("ferry-tls-{}@localhost", ferry_core::ids::unique_token()),
            )
            .env("RABBITMQ_NODE_PORT", plain_port.to_string())
            .env("RABBITMQ_DIST_PORT", free_port().to_string())
            .env("RABBITMQ_CONFIG_FILE", path.join("rabbitmq.conf"))
            .env(
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                path.join("enabled_plugins"),
            )
            .env("RABBITMQ_MNESIA_BASE", path.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", path.join("log"))
            .env("RABBITMQ_PID_FILE", path.join("pid"));
        let mut process = Process::start("rabbitmq-server", command, plain_port);
        process.wait_listening(tls_port);
        Self {
            _process: process,
            dir,
            tls_port,
            plain_port,
        }
    }

    /// `amqps://127.0.0.1:{tls_port}/%2f`
    pub fn tls_url(&self) -> String {
        format!("amqps://127.0.0.1:{}/%2f", self.tls_port)
    }

    /// `amqp://guest:guest@127.0.0.1:{plain_port}/%2f`
    pub fn plain_url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.plain_port)
    }
}

impl Drop for TlsRabbitmq {
    /// The start script runs the Erlang VM as a process of its own (under
    /// the `rabbitmq` user): it is stopped by the pid it wrote.
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.path().join("pid")) {
            let _ = Command::new("kill").args(["-9", pid.trim()]).status();
        }
    }
}
