//! Mosquitto with a TLS listener (and a plain one, for the test's own
//! subscriber), anonymous access, nothing kept on disk.

use std::process::Command;

use tempfile::TempDir;

use super::{ClientCertificates, TestCertificates};
use crate::free_port;
use crate::services::{Process, program};

/// A private Mosquitto, killed on drop.
pub struct TlsMosquitto {
    _process: Process,
    _dir: TempDir,
    /// The TLS listener (`mqtts://127.0.0.1:{tls_port}`).
    pub tls_port: u16,
    /// A plain listener on the same broker, for reading back.
    pub plain_port: u16,
}

impl TlsMosquitto {
    /// Starts the broker with the set's server certificate; with
    /// [`ClientCertificates::Required`], a TLS client must present a
    /// certificate signed by the set's CA.
    pub fn start(certificates: &TestCertificates, clients: ClientCertificates) -> Self {
        let mosquitto = program("mosquitto", "mosquitto");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (tls_port, plain_port) = (free_port(), free_port());
        let require = clients == ClientCertificates::Required;
        // Run as root, Mosquitto switches to its own user unless told to
        // stay: the generated files are readable by their owner only.
        let config = format!(
            "user root\npersistence false\nlog_dest stderr\nallow_anonymous true\n\
             listener {tls_port} 127.0.0.1\ncafile {ca}\ncertfile {cert}\nkeyfile {key}\n\
             require_certificate {require}\n\
             listener {plain_port} 127.0.0.1\n",
            ca = certificates.path("ca.pem").display(),
            cert = certificates.path("server.pem").display(),
            key = certificates.path("server.key").display(),
        );
        let file = dir.path().join("mosquitto.conf");
        std::fs::write(&file, config).expect("write mosquitto.conf");
        let mut command = Command::new(mosquitto);
        command.arg("-c").arg(&file);
        // Listeners open in the config's order: the plain one is last.
        let process = Process::start("mosquitto", command, plain_port);
        Self {
            _process: process,
            _dir: dir,
            tls_port,
            plain_port,
        }
    }

    /// `mqtts://127.0.0.1:{tls_port}`
    pub fn tls_url(&self) -> String {
        format!("mqtts://127.0.0.1:{}", self.tls_port)
    }
}
