//! Another process holding an SQLite database's write lock, as a backup
//! tool might: Ferry's writes then wait out their busy timeout and fail.
//! The holder is a real `sqlite3` client (Python's), not Ferry's own code.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Holds `BEGIN EXCLUSIVE` on a database until dropped.
pub struct SqliteWriteLock {
    holder: Child,
}

impl SqliteWriteLock {
    /// Takes the write lock of the database at `db`; returns once it is held.
    ///
    /// # Panics
    ///
    /// When `python3` cannot run or the lock cannot be taken.
    pub fn take(db: &Path) -> Self {
        let mut holder = Command::new("python3")
            .arg("-c")
            .arg("import sqlite3,sys\nc=sqlite3.connect(sys.argv[1],isolation_level=None)\nc.execute('BEGIN EXCLUSIVE')\nprint('locked',flush=True)\nsys.stdin.read()")
            .arg(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(holder.stdout.as_mut().expect("piped stdout"))
            .read_line(&mut line)
            .expect("the lock holder answers");
        assert_eq!(
            line.trim(),
            "locked",
            "the lock holder could not lock {db:?}"
        );
        Self { holder }
    }
}

impl Drop for SqliteWriteLock {
    /// Closing its stdin ends the holder, which releases the lock.
    fn drop(&mut self) {
        drop(self.holder.stdin.take());
        let _ = self.holder.wait();
    }
}
