//! An SFTP server: OpenSSH's sshd on a free loopback port with a fresh host
//! key, accepting the test user by password and by key (SFTP only).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use super::{Process, installed};
use crate::{free_port, is_root};

/// The system user the SFTP tests log in as, and its password (both set
/// up by `scripts/test-services`).
pub const SFTP_USER: &str = "ferry-sftp-test";
pub const SFTP_PASSWORD: &str = "ferry-sftp-test-password";

/// sshd on 127.0.0.1, killed on drop.
pub struct SftpServer {
    _process: Process,
    port: u16,
    keys: TempDir,
    host_key_fingerprint: String,
}

impl SftpServer {
    /// Starts sshd with a new ed25519 host key and a new client key that
    /// the test user may log in with.
    pub fn start() -> Self {
        let sshd = installed(
            std::env::var_os("FERRY_TEST_SSHD")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/usr/sbin/sshd")),
            "OpenSSH's sshd",
        );
        assert!(
            is_root(),
            "the SFTP tests run sshd, which must be root to log the test user in"
        );
        let users = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        assert!(
            users
                .lines()
                .any(|l| l.starts_with(&format!("{SFTP_USER}:"))),
            "the SFTP test user {SFTP_USER} does not exist: run scripts/test-services (scripts/test runs it)"
        );
        let _ = std::fs::create_dir_all("/run/sshd");
        let keys = tempfile::tempdir().expect("a temporary directory");
        let dir = keys.path();
        keygen(&dir.join("host_key"));
        keygen(&dir.join("client_key"));
        std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys"))
            .expect("copy the client key");
        let port = free_port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {dir}/host_key\nPidFile {dir}/sshd.pid\n\
             AuthorizedKeysFile {dir}/authorized_keys\nPasswordAuthentication yes\n\
             KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nUsePAM no\n\
             StrictModes no\nPermitRootLogin no\nAllowUsers {SFTP_USER}\n\
             Subsystem sftp internal-sftp\nForceCommand internal-sftp\nLogLevel ERROR\n",
            dir = dir.display()
        );
        std::fs::write(dir.join("sshd_config"), config).expect("write sshd_config");
        let mut command = Command::new(sshd);
        command
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(dir.join("sshd_config"));
        let process = Process::start("sshd", command, port);
        let host_key_fingerprint = fingerprint(&dir.join("host_key.pub"));
        Self {
            _process: process,
            port,
            keys,
            host_key_fingerprint,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The host key's `SHA256:…` fingerprint, as `ssh-keygen -l` prints it.
    pub fn host_key_fingerprint(&self) -> &str {
        &self.host_key_fingerprint
    }

    /// The OpenSSH private key the test user may log in with.
    pub fn private_key(&self) -> String {
        std::fs::read_to_string(self.keys.path().join("client_key")).expect("the client key")
    }

    /// A new directory the test user may write to (removed on drop).
    pub fn directory(&self) -> TempDir {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
            .expect("open the directory to the test user");
        dir
    }
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "ferry-test", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen (openssh-client) runs");
    assert!(status.success(), "ssh-keygen failed");
}

fn fingerprint(public_key: &Path) -> String {
    let output = Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(public_key)
        .output()
        .expect("ssh-keygen runs");
    let text = String::from_utf8_lossy(&output.stdout);
    text.split_whitespace()
        .nth(1)
        .expect("ssh-keygen -l prints `<bits> SHA256:… <comment> (<type>)`")
        .to_owned()
}
