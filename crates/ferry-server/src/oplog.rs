//! Ferry's own operational log, kept in the data directory besides being
//! printed: JSON lines in `<data_dir>/logs/ferry.log`, rotated by size
//! (`ferry.log.1` is the previous file, up to `ferry.log.<max_files - 1>`),
//! so the log never takes more than `max_files × max_file_mb`.
//!
//! Each formatted line reaches [`OperationalLog::write`] whole and is
//! written with one call under a lock, so lines never interleave and a
//! rotation happens between lines. A line that cannot be written (a full
//! disk, a removed directory) is dropped — cut back off the file if part of
//! it was written — and the file is opened again for the next one: losing
//! log lines is acceptable, stopping the server for them is not.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

/// The current file's name in the log directory.
pub const FILE_NAME: &str = "ferry.log";

/// How much of its own log Ferry keeps (`[log]` in `ferry.toml`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Keep the operational log in `<data_dir>/logs` (it is printed to
    /// stderr either way).
    pub enabled: bool,
    /// Size at which the current file is rotated, in MiB (1 to 1024).
    pub max_file_mb: u64,
    /// Files kept, the current one included (2 to 100).
    pub max_files: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_file_mb: 16,
            max_files: 4,
        }
    }
}

impl LogConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=1024).contains(&self.max_file_mb) {
            return Err(format!(
                "log.max_file_mb must be 1 to 1024, not {}",
                self.max_file_mb
            ));
        }
        if !(2..=100).contains(&self.max_files) {
            return Err(format!(
                "log.max_files must be 2 to 100, not {}",
                self.max_files
            ));
        }
        Ok(())
    }
}

/// Where a process keeps its log, for the `log` export source to read.
#[derive(Debug, Clone)]
pub struct LogFiles {
    pub directory: PathBuf,
    pub max_files: u32,
}

impl LogFiles {
    /// The log a process with this configuration keeps, when it keeps one.
    pub fn of(data_dir: &Path, config: &LogConfig) -> Option<Self> {
        config.enabled.then(|| Self {
            directory: directory(data_dir),
            max_files: config.max_files,
        })
    }

    /// The files present, oldest first.
    pub fn files(&self) -> Vec<PathBuf> {
        files(&self.directory, self.max_files)
    }
}

/// The log directory of a data directory.
pub fn directory(data_dir: &Path) -> PathBuf {
    data_dir.join("logs")
}

/// The files of the log in `directory`, oldest first (those present).
pub fn files(directory: &Path, max_files: u32) -> Vec<PathBuf> {
    (0..max_files)
        .rev()
        .map(|n| numbered(directory, n))
        .filter(|path| path.is_file())
        .collect()
}

/// `ferry.log` for 0, else `ferry.log.<n>`.
fn numbered(directory: &Path, n: u32) -> PathBuf {
    match n {
        0 => directory.join(FILE_NAME),
        n => directory.join(format!("{FILE_NAME}.{n}")),
    }
}

/// A writer of the operational log; cheap to clone (a handle per line).
#[derive(Clone)]
pub struct OperationalLog {
    inner: Arc<Mutex<State>>,
}

struct State {
    directory: PathBuf,
    max_file_bytes: u64,
    max_files: u32,
    /// The current file and its size, when open.
    open: Option<(File, u64)>,
}

impl OperationalLog {
    /// Keeps the log in `directory` (created when the first line is
    /// written).
    pub fn new(directory: PathBuf, config: &LogConfig) -> Self {
        Self {
            inner: Arc::new(Mutex::new(State {
                directory,
                max_file_bytes: config.max_file_mb.saturating_mul(1024 * 1024),
                max_files: config.max_files,
                open: None,
            })),
        }
    }
}

impl State {
    /// Writes one line, rotating first when it would take the current
    /// file past its size (a file always takes at least one line).
    fn append(&mut self, line: &[u8]) -> io::Result<()> {
        let (mut file, mut size) = match self.open.take() {
            Some(open) => open,
            None => self.open_current()?,
        };
        if size > 0 && size + line.len() as u64 > self.max_file_bytes {
            drop(file);
            self.rotate()?;
            (file, size) = self.open_current()?;
        }
        if let Err(error) = file.write_all(line) {
            // No half line stays behind to garble the next one.
            let _ = file.set_len(size);
            return Err(error);
        }
        self.open = Some((file, size + line.len() as u64));
        Ok(())
    }

    fn open_current(&self) -> io::Result<(File, u64)> {
        fs::create_dir_all(&self.directory)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(numbered(&self.directory, 0))?;
        let size = file.metadata()?.len();
        Ok((file, size))
    }

    /// Shifts every file up by one; the oldest falls off.
    fn rotate(&self) -> io::Result<()> {
        let last = self.max_files.saturating_sub(1).max(1);
        match fs::remove_file(numbered(&self.directory, last)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        for n in (0..last).rev() {
            match fs::rename(
                numbered(&self.directory, n),
                numbered(&self.directory, n + 1),
            ) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Write for OperationalLog {
    /// Takes one whole line (the formatter writes each event at once).
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let mut state = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        state.append(line)?;
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(max_files: u32) -> LogConfig {
        LogConfig {
            enabled: true,
            max_file_mb: 1,
            max_files,
        }
    }

    #[test]
    fn the_log_rotates_by_size_and_keeps_at_most_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        let mut log = OperationalLog::new(logs.clone(), &config(3));
        let line = format!("{{\"n\":\"{}\"}}\n", "x".repeat(1000));
        let lines = 4 * 1024 * 1024 / line.len();
        for _ in 0..lines {
            log.write_all(line.as_bytes()).unwrap();
        }
        let kept = files(&logs, 3);
        assert_eq!(
            kept,
            [
                logs.join("ferry.log.2"),
                logs.join("ferry.log.1"),
                logs.join("ferry.log")
            ]
        );
        for path in &kept {
            let text = std::fs::read_to_string(path).unwrap();
            assert!(text.len() as u64 <= 1024 * 1024, "{}", path.display());
            assert!(
                text.lines().all(|l| l == line.trim_end()),
                "whole lines only"
            );
        }
        assert!(!logs.join("ferry.log.3").exists());
    }

    #[test]
    fn a_line_that_cannot_be_written_is_dropped_and_the_log_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        // A file stands where the directory should be.
        std::fs::write(&logs, b"").unwrap();
        let mut log = OperationalLog::new(logs.clone(), &LogConfig::default());
        assert!(log.write_all(b"{\"n\":1}\n").is_err());
        std::fs::remove_file(&logs).unwrap();
        log.write_all(b"{\"n\":2}\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(logs.join("ferry.log")).unwrap(),
            "{\"n\":2}\n"
        );
    }

    #[test]
    fn a_full_disk_drops_lines_until_there_is_room_again() {
        let dir = tempfile::tempdir().unwrap();
        let Some(disk) = ferry_testkit::Tmpfs::mount(&dir.path().join("small"), 1) else {
            return;
        };
        let logs = disk.path().join("logs");
        let mut log = OperationalLog::new(logs.clone(), &LogConfig::default());
        let line = format!("{{\"n\":\"{}\"}}\n", "x".repeat(1000));
        let mut written = 0;
        while log.write_all(line.as_bytes()).is_ok() {
            written += 1;
            assert!(written < 2_000, "a 1 MiB disk never filled");
        }
        // Still full: dropped again (and cut back off).
        assert!(log.write_all(line.as_bytes()).is_err());
        disk.resize(4);
        log.write_all(b"{\"after\":true}\n").unwrap();
        let text = std::fs::read_to_string(logs.join("ferry.log")).unwrap();
        assert!(text.ends_with("{\"after\":true}\n"));
        assert_eq!(text.lines().count(), written + 1);
        for l in text.lines() {
            serde_json::from_str::<serde_json::Value>(l).expect("no line is cut short");
        }
    }

    #[test]
    fn limits_are_checked() {
        assert!(LogConfig::default().validate().is_ok());
        let few = LogConfig {
            max_files: 1,
            ..LogConfig::default()
        };
        assert!(few.validate().unwrap_err().contains("log.max_files"));
        let small = LogConfig {
            max_file_mb: 0,
            ..LogConfig::default()
        };
        assert!(small.validate().unwrap_err().contains("log.max_file_mb"));
    }
}
