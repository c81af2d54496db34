//! A private MariaDB server with TLS: a fresh data directory
//! (`mariadb-install-db`), `mariadbd` on a free loopback port with the set's
//! CA and server certificate, a database `test`, and two users: `root`
//! (no password, TLS optional) and [`CLIENT_NAME`] (`REQUIRE X509`: only
//! with a client certificate signed by the set's CA).

use std::path::PathBuf;
use std::process::Command;

use tempfile::TempDir;

use super::{CLIENT_NAME, TestCertificates};
use crate::services::{Process, program};
use crate::{free_port, is_root};

/// A private MariaDB, killed on drop.
pub struct TlsMariadb {
    _process: Process,
    dir: TempDir,
    pub port: u16,
}

impl TlsMariadb {
    /// Creates the data directory and starts the server (a few seconds).
    pub fn start(certificates: &TestCertificates) -> Self {
        let install = program("mariadb-install-db", "mariadb-server");
        let mariadbd = program("mariadbd", "mariadb-server");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let data = dir.path().join("data");
        // Temporary tables of its own: in the shared /tmp, the bootstrap's
        // names (from its pid) can meet another server's leftovers.
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).expect("a temporary directory for MariaDB");
        let user = if is_root() { "root" } else { "" };
        let mut command = Command::new(install);
        command
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db");
        if !user.is_empty() {
            command.arg(format!("--user={user}"));
        }
        let output = command.output().expect("mariadb-install-db runs");
        assert!(
            output.status.success(),
            "mariadb-install-db failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let port = free_port();
        let mut command = Command::new(mariadbd);
        command
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", dir.path().join("sock").display()))
            .arg(format!("--pid-file={}", dir.path().join("pid").display()))
            .arg(format!(
                "--ssl-ca={}",
                certificates.path("ca.pem").display()
            ))
            .arg(format!(
                "--ssl-cert={}",
                certificates.path("server.pem").display()
            ))
            .arg(format!(
                "--ssl-key={}",
                certificates.path("server.key").display()
            ))
            .args(["--skip-log-bin", "--skip-name-resolve"])
            .arg("--innodb-buffer-pool-size=16M");
        if !user.is_empty() {
            command.arg(format!("--user={user}"));
        }
        let process = Process::start("mariadbd", command, port);
        let server = Self {
            _process: process,
            dir,
            port,
        };
        server.sql(&format!(
            "CREATE DATABASE test; CREATE USER '{CLIENT_NAME}'@'%' REQUIRE X509; \
             GRANT ALL ON test.* TO '{CLIENT_NAME}'@'%';"
        ));
        server
    }

    /// Runs SQL as `root` over the server's Unix socket, panicking with the
    /// client's error.
    pub fn sql(&self, statements: &str) {
        let client = program("mariadb", "mariadb-client");
        let output = Command::new(client)
            .arg(format!("--socket={}", self.socket().display()))
            .args(["-uroot", "-e", statements])
            .output()
            .expect("the mariadb client runs");
        assert!(
            output.status.success(),
            "mariadb -e {statements:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// `mysql://root@127.0.0.1:{port}/test` (no TLS parameter).
    pub fn root_url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}/test", self.port)
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("sock")
    }
}
