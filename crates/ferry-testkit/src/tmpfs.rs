//! A small private tmpfs, for tests of a full disk: mounted at a path,
//! resized to make room again, unmounted when dropped (even when the test
//! fails). Mounting needs root; without it [`Tmpfs::mount`] says why and
//! returns `None` so that the test can pass with a note, except under CI
//! (`CI=true`, which runs as root), where it panics: CI must run the
//! full-disk checks.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct Tmpfs {
    path: PathBuf,
}

/// Says why the full-disk checks cannot run here.
fn skipped(why: &str) -> Option<Tmpfs> {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{why} (CI must run the full-disk checks)"
    );
    eprintln!("SKIPPED: {why}.");
    None
}

impl Tmpfs {
    /// Mounts one of `mib` MiB at `path` (created), or says why it cannot.
    ///
    /// # Panics
    ///
    /// Under CI when it cannot mount, and when `mount` cannot be run at all.
    pub fn mount(path: &Path, mib: u32) -> Option<Self> {
        if !crate::is_root() {
            return skipped(
                "mounting a tmpfs needs root; run the tests as root to check a full disk",
            );
        }
        std::fs::create_dir_all(path).expect("create the mount point");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(path)
            .stderr(Stdio::piped())
            .output()
            .expect("run mount");
        if !mounted.status.success() {
            return skipped(&format!(
                "mounting a tmpfs is not permitted here ({}); the full-disk checks need it",
                String::from_utf8_lossy(&mounted.stderr).trim()
            ));
        }
        Some(Self {
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Changes its size (to make room again).
    ///
    /// # Panics
    ///
    /// When the remount fails.
    pub fn resize(&self, mib: u32) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={mib}m")])
            .arg(&self.path)
            .status()
            .expect("run mount");
        assert!(status.success(), "remount failed: {status}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(&self.path).status();
        if !unmounted.is_ok_and(|s| s.success()) {
            // Something still has a file open there: detach it anyway.
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}
