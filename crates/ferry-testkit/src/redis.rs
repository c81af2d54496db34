//! A private Redis server for tests that must break Redis (`FLUSHALL`,
//! deleting the consumer group) without touching the shared one: the
//! machine's `redis-server` on a free loopback port, keeping nothing on
//! disk, stopped when dropped. Also one that speaks TLS, for the redis
//! destination's TLS tests.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;
use crate::tls::{ClientCertificates, TestCertificates};

pub struct PrivateRedis {
    child: Child,
    /// The plain-text port (`redis-cli` and reading back use it).
    pub port: u16,
    /// The TLS port, when started with [`PrivateRedis::start_tls`].
    pub tls_port: Option<u16>,
}

impl PrivateRedis {
    /// Starts `redis-server` and waits until it answers `PING`.
    ///
    /// # Panics
    ///
    /// When `redis-server` is missing or does not start within 10 s.
    pub fn start() -> Self {
        Self::spawn(free_port(), None, &[])
    }

    /// As [`PrivateRedis::start`], with a TLS port too (`tls_port`) serving
    /// the set's server certificate; with [`ClientCertificates::Required`]
    /// (`--tls-auth-clients yes`), a TLS client must present a certificate
    /// signed by the set's CA.
    pub fn start_tls(certificates: &TestCertificates, clients: ClientCertificates) -> Self {
        let tls_port = free_port();
        let file = |name: &str| certificates.path(name).display().to_string();
        let auth_clients = match clients {
            ClientCertificates::NotAsked => "no",
            ClientCertificates::Required => "yes",
        };
        let args = [
            "--tls-port".to_owned(),
            tls_port.to_string(),
            "--tls-cert-file".to_owned(),
            file("server.pem"),
            "--tls-key-file".to_owned(),
            file("server.key"),
            "--tls-ca-cert-file".to_owned(),
            file("ca.pem"),
            "--tls-auth-clients".to_owned(),
            auth_clients.to_owned(),
        ];
        Self::spawn(free_port(), Some(tls_port), &args)
    }

    fn spawn(port: u16, tls_port: Option<u16>, extra: &[String]) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is needed for this test (Debian package redis-server)");
        let server = Self {
            child,
            port,
            tls_port,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.cli(&["PING"]).as_deref() != Some("PONG") {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `rediss://127.0.0.1:{tls_port}`.
    ///
    /// # Panics
    ///
    /// When the server was started without TLS.
    pub fn tls_url(&self) -> String {
        let port = self.tls_port.expect("a server started with start_tls");
        format!("rediss://127.0.0.1:{port}")
    }

    /// Runs one command with `redis-cli`; its trimmed output, or `None` when
    /// it could not run.
    pub fn cli(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
