//! Real servers the destination tests deliver to, started on a free
//! loopback port and killed on drop: [`S3Server`] (moto), [`SftpServer`]
//! (OpenSSH's sshd) and [`SmtpServer`] (aiosmtpd).
//!
//! `scripts/test-services` installs them (a Python virtualenv, default
//! `target/test-services/venv`, and Debian's `openssh-server`) and
//! `scripts/test` runs it and exports where they are (`FERRY_TEST_VENV`,
//! `FERRY_TEST_SSHD`). A missing server fails the test with a message
//! saying to run that script: nothing is skipped.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod s3;
mod sftp;
mod smtp;

pub use s3::{S3Object, S3Server};
pub use sftp::{SFTP_PASSWORD, SFTP_USER, SftpServer};
pub use smtp::SmtpServer;

/// How long a server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The workspace root (where `scripts/` and `target/` are).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Python virtualenv holding moto, boto3, aiosmtpd and schemathesis.
pub fn venv() -> PathBuf {
    std::env::var_os("FERRY_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/test-services/venv"))
}

/// Schemathesis, which tests the API against its OpenAPI document.
pub fn schemathesis() -> PathBuf {
    installed(venv().join("bin/schemathesis"), "schemathesis")
}

/// Debian's Chromium, for tests of the pages Ferry serves, headless.
pub fn chromium() -> PathBuf {
    program("chromium", "chromium")
}

/// A program of the test services, or a panic saying how to install it.
fn installed(path: PathBuf, what: &str) -> PathBuf {
    assert!(
        path.exists(),
        "{what} is not installed at {}: run scripts/test-services (scripts/test runs it)",
        path.display()
    );
    path
}

/// A server program from the machine's packages (on the `PATH` or in
/// `/usr/sbin`), or a panic naming the Debian package to install.
pub(crate) fn program(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} is not installed: install the Debian package {package} (scripts/test-services does)"
            )
        })
}

/// The virtualenv's Python, with the test services' packages.
pub fn python() -> PathBuf {
    installed(
        venv().join("bin/python"),
        "the test services' Python virtualenv",
    )
}

/// A script of this crate's `python/` folder.
fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(name)
}

/// Runs a helper script with the virtualenv's Python; its standard output,
/// or a panic with its error output.
fn run_python(name: &str, args: &[&str]) -> Vec<u8> {
    let output = Command::new(python())
        .arg(script(name))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
    assert!(
        output.status.success(),
        "{name} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// A started server process, killed (and reaped) on drop.
pub(crate) struct Process {
    child: Child,
    name: &'static str,
}

impl Process {
    /// Starts `command` and waits until `port` accepts connections ([`Process::wait_listening`]).
    pub(crate) fn start(name: &'static str, mut command: Command, port: u16) -> Self {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let mut process = Self { child, name };
        process.wait_listening(port);
        // Its error output was read only to explain a failed start; from
        // now on it is drained, so that a chatty server never blocks on a
        // full pipe.
        if let Some(mut stderr) = process.child.stderr.take() {
            std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        }
        process
    }

    pub(crate) fn wait_listening(&mut self, port: u16) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut error = String::new();
                if let Some(mut stderr) = self.child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut stderr, &mut error);
                }
                panic!("{} exited at start ({status}): {error}", self.name);
            }
            assert!(
                Instant::now() < deadline,
                "{} did not listen on port {port} within {START_TIMEOUT:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
