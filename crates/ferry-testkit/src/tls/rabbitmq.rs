//! A private RabbitMQ node with a TLS listener (and a plain one, for the
//! test's own client): `rabbitmq-server` under a node name, ports and
//! directory of its own, no plugins, the default `guest` user. It runs as
//! the `rabbitmq` user when the test runs as root, so its files are handed
//! to that user. Starting takes about ten seconds.
//!
//! [`TlsRabbitmq::start_certificate_login`] starts a node where the client
//! certificate is the login (SASL `EXTERNAL`, plugin
//! `rabbitmq_auth_mechanism_ssl`): its only users are the certificate's
//! common name, which has no password, and a reader for the plain listener.

use std::process::Command;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use tempfile::TempDir;

use super::{CLIENT_NAME, ClientCertificates, TestCertificates};
use crate::services::{Process, program};
use crate::{free_port, is_root};

/// The plain listener's user on a certificate-login node.
const READER: &str = "reader";

/// A private RabbitMQ node, killed on drop.
pub struct TlsRabbitmq {
    _process: Process,
    dir: TempDir,
    /// The TLS listener (`amqps://127.0.0.1:{tls_port}`).
    pub tls_port: u16,
    /// A plain listener on the same node, for reading back.
    pub plain_port: u16,
    /// The plain listener's login (user and password alike).
    reader: &'static str,
}

impl TlsRabbitmq {
    /// Starts the node with the set's server certificate; with
    /// [`ClientCertificates::Required`] (`fail_if_no_peer_cert`), a TLS
    /// client must present a certificate signed by the set's CA.
    pub fn start(certificates: &TestCertificates, clients: ClientCertificates) -> Self {
        Self::start_with(certificates, clients, false)
    }

    /// Starts a node that requires client certificates and takes the
    /// certificate's common name ([`CLIENT_NAME`]) as the login of a client
    /// that asks for SASL `EXTERNAL`. `guest` does not exist there.
    pub fn start_certificate_login(certificates: &TestCertificates) -> Self {
        Self::start_with(certificates, ClientCertificates::Required, true)
    }

    fn start_with(
        certificates: &TestCertificates,
        clients: ClientCertificates,
        certificate_login: bool,
    ) -> Self {
        let server = program("rabbitmq-server", "rabbitmq-server");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path();
        for name in ["ca.pem", "server.pem", "server.key"] {
            std::fs::copy(certificates.path(name), path.join(name)).expect("copy the TLS files");
        }
        let (tls_port, plain_port) = (free_port(), free_port());
        let require = clients == ClientCertificates::Required;
        let mut config = format!(
            "listeners.tcp.default = {plain_port}\nlisteners.ssl.default = {tls_port}\n\
             ssl_options.cacertfile = {dir}/ca.pem\nssl_options.certfile = {dir}/server.pem\n\
             ssl_options.keyfile = {dir}/server.key\nssl_options.verify = verify_peer\n\
             ssl_options.fail_if_no_peer_cert = {require}\n",
            dir = path.display()
        );
        let (plugins, reader) = if certificate_login {
            config.push_str(&format!(
                "auth_mechanisms.1 = PLAIN\nauth_mechanisms.2 = EXTERNAL\n\
                 ssl_cert_login_from = common_name\nload_definitions = {}\n",
                path.join("definitions.json").display()
            ));
            std::fs::write(path.join("definitions.json"), definitions().to_string())
                .expect("write definitions.json");
            ("[rabbitmq_auth_mechanism_ssl].\n", READER)
        } else {
            ("[].\n", "guest")
        };
        std::fs::write(path.join("rabbitmq.conf"), config).expect("write rabbitmq.conf");
        std::fs::write(path.join("enabled_plugins"), plugins).expect("write enabled_plugins");
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
            reader,
        }
    }

    /// `amqps://127.0.0.1:{tls_port}/%2f`
    pub fn tls_url(&self) -> String {
        format!("amqps://127.0.0.1:{}/%2f", self.tls_port)
    }

    /// `amqp://guest:guest@127.0.0.1:{plain_port}/%2f` (the reader's login
    /// on a certificate-login node)
    pub fn plain_url(&self) -> String {
        let user = self.reader;
        format!("amqp://{user}:{user}@127.0.0.1:{}/%2f", self.plain_port)
    }
}

/// The users of a certificate-login node, each with every permission on
/// `/`: the client certificate's common name without a password, and the
/// reader (loaded at boot, which also skips creating `guest`).
fn definitions() -> serde_json::Value {
    let user = |name: &str, password_hash: String| {
        serde_json::json!({
            "name": name,
            "password_hash": password_hash,
            "hashing_algorithm": "rabbit_password_hashing_sha256",
            "tags": [],
        })
    };
    let permissions = |name: &str| {
        serde_json::json!({
            "user": name, "vhost": "/", "configure": ".*", "write": ".*", "read": ".*",
        })
    };
    serde_json::json!({
        "users": [user(CLIENT_NAME, String::new()), user(READER, password_hash(READER))],
        "vhosts": [{"name": "/"}],
        "permissions": [permissions(CLIENT_NAME), permissions(READER)],
    })
}

/// RabbitMQ's SHA-256 password hash: base64 of a 4-byte salt followed by
/// SHA-256(salt ‖ password). A fixed salt does for a node that lives for
/// one test.
fn password_hash(password: &str) -> String {
    let salt = *b"fery";
    let digest = Sha256::new()
        .chain_update(salt)
        .chain_update(password.as_bytes())
        .finalize();
    let mut bytes = salt.to_vec();
    bytes.extend_from_slice(&digest);
    base64::engine::general_purpose::STANDARD.encode(bytes)
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
