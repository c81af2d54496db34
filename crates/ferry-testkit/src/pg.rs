//! The PostgreSQL server tests use (`FERRY_TEST_DATABASE_URL`, default the
//! local `test` database) and a schema of a test's own, dropped afterwards;
//! and a private server for tests that crash and restart PostgreSQL, or
//! that need it to speak TLS.

use crate::is_root;
use crate::tls::{CLIENT_NAME, TestCertificates};

/// The PostgreSQL server tests connect to.
pub fn database_url() -> String {
    std::env::var("FERRY_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A schema owned by one test: dropped (best effort, with `psql`) when this
/// is dropped; a leftover schema only takes space.
pub struct PgSchema {
    pub name: String,
}

impl PgSchema {
    /// A fresh schema name with `prefix`; Ferry creates it on connect.
    pub fn new(prefix: &str) -> Self {
        Self {
            name: format!("{prefix}_{}", ferry_core::ids::unique_token()),
        }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .arg(database_url())
            .args([
                "-q",
                "-c",
                &format!(
                    "SET lock_timeout = '2s'; DROP SCHEMA IF EXISTS {} CASCADE",
                    self.name
                ),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// A PostgreSQL server of a test's own, for tests that stop and start it:
/// the machine's PostgreSQL binaries, a fresh cluster in a temporary
/// directory (owned by the `postgres` user when the test runs as root, since
/// PostgreSQL refuses to run as root), listening on a free loopback port
/// with trust authentication. Stopped and removed when dropped.
pub struct PrivateCluster {
    dir: std::path::PathBuf,
    bin: std::path::PathBuf,
    pub port: u16,
}

impl PrivateCluster {
    /// Creates and starts the cluster.
    ///
    /// # Panics
    ///
    /// When the PostgreSQL server binaries are missing or the cluster does
    /// not start.
    pub fn start() -> Self {
        Self::create(None)
    }

    /// As [`PrivateCluster::start`], with TLS (`ssl = on`, the set's server
    /// certificate and CA): `postgres` logs in with or without TLS (trust),
    /// and a role [`CLIENT_NAME`] only over TLS with a client certificate
    /// signed by the set's CA whose common name is its name (`hostssl …
    /// cert`).
    pub fn start_tls(certificates: &TestCertificates) -> Self {
        Self::create(Some(certificates))
    }

    fn create(tls: Option<&TestCertificates>) -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| {
                versions
                    .filter_map(Result::ok)
                    .map(|v| v.path().join("bin"))
                    .filter(|bin| bin.join("initdb").exists())
                    .max()
            })
            .expect("the PostgreSQL server binaries (Debian package postgresql) are needed");
        let dir =
            std::env::temp_dir().join(format!("ferry-pg-{}", ferry_core::ids::unique_token()));
        std::fs::create_dir_all(&dir).expect("create the cluster directory");
        let cluster = Self {
            dir,
            bin,
            port: crate::free_port(),
        };
        // The server reads its key only when the key is its own.
        if let Some(certificates) = tls {
            for name in ["ca.pem", "server.pem", "server.key"] {
                std::fs::copy(certificates.path(name), cluster.dir.join(name))
                    .expect("copy the TLS files");
            }
            std::fs::set_permissions(
                cluster.dir.join("server.key"),
                std::os::unix::fs::PermissionsExt::from_mode(0o600),
            )
            .expect("make the key private");
        }
        if is_root() {
            let status = std::process::Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&cluster.dir)
                .status()
                .expect("chown runs");
            assert!(
                status.success(),
                "cannot give the cluster directory to postgres"
            );
        }
        let data = cluster.dir.join("data");
        cluster.run(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        if tls.is_some() {
            cluster.enable_tls();
        }
        cluster.start_server();
        if tls.is_some() {
            cluster.run(
                "createuser",
                &[
                    "-h",
                    path_str(&cluster.dir),
                    "-p",
                    &cluster.port.to_string(),
                    "-U",
                    "postgres",
                    CLIENT_NAME,
                ],
            );
        }
        cluster
    }

    fn enable_tls(&self) {
        let data = self.dir.join("data");
        let settings = format!(
            "\nssl = on\nssl_ca_file = '{dir}/ca.pem'\nssl_cert_file = '{dir}/server.pem'\n\
             ssl_key_file = '{dir}/server.key'\n",
            dir = self.dir.display()
        );
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .expect("open postgresql.conf");
        std::io::Write::write_all(&mut conf, settings.as_bytes()).expect("write postgresql.conf");
        let hba = format!(
            "local all all trust\nhost all postgres 127.0.0.1/32 trust\n\
             hostssl all {CLIENT_NAME} 127.0.0.1/32 cert\n"
        );
        std::fs::write(data.join("pg_hba.conf"), hba).expect("write pg_hba.conf");
    }

    /// `postgres://postgres@127.0.0.1:{port}/postgres`
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub fn start_server(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=on",
            self.port,
            path_str(&self.dir)
        );
        let data = self.dir.join("data");
        let log = self.dir.join("server.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&data),
                "-o",
                &options,
                "-l",
                path_str(&log),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
    }

    /// Stops the server at once, as a crash would (`immediate` mode: no
    /// checkpoint; the next start replays the WAL).
    pub fn crash(&self) {
        let data = self.dir.join("data");
        self.run(
            "pg_ctl",
            &["-D", path_str(&data), "-m", "immediate", "-w", "stop"],
        );
    }

    fn run(&self, program: &str, args: &[&str]) {
        let mut command = if is_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(self.bin.join(program));
            c
        } else {
            std::process::Command::new(self.bin.join(program))
        };
        let out = command
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{program} could not run: {e}"));
        assert!(
            out.status.success(),
            "{program} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let mut command = if is_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"));
            c
        } else {
            std::process::Command::new(self.bin.join("pg_ctl"))
        };
        let _ = command
            .args(["-D", path_str(&data), "-m", "immediate", "stop"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn path_str(path: &std::path::Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}
