//! The PostgreSQL server tests use (`FERRY_TEST_DATABASE_URL`, default the
//! local `test` database) and a schema of a test's own, dropped afterwards;
//! and a private server for tests that crash and restart PostgreSQL.

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
        cluster.start_server();
        cluster
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

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}
