//! Test helpers for Ferry's crates: a real recording HTTP receiver
//! ([`Receiver`]) to deliver webhooks to, PostgreSQL schemas and private
//! PostgreSQL and Redis servers, the real S3, SFTP and SMTP servers of the
//! storage kinds ([`services`]), TLS-speaking brokers and databases with
//! certificates made for the test ([`tls`]), another process holding an
//! SQLite write lock ([`SqliteWriteLock`]), a small tmpfs to fill
//! ([`Tmpfs`]), an OTLP trace collector ([`otlp::OtlpReceiver`]), and
//! small helpers.
//!
//! Everything here talks over real sockets on 127.0.0.1; nothing is a fake
//! of a component that exists for real.

pub mod otlp;
pub mod pg;
mod receiver;
pub mod redis;
pub mod services;
mod sqlite_lock;
pub mod tls;
pub mod tmpfs;

pub use receiver::{Behavior, Receiver, Recorded};
pub use sqlite_lock::SqliteWriteLock;
pub use tmpfs::Tmpfs;

/// A TCP port on 127.0.0.1 that was free a moment ago: bound to port 0, read
/// and released. Nothing listens on it afterwards (until something else takes
/// it), so it is a target for "connection refused".
///
/// # Panics
///
/// When no loopback port can be bound (a broken test machine).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener
        .local_addr()
        .expect("local address of a bound listener")
        .port()
}

/// Whether the tests run as root (servers that refuse to, or that switch
/// users, are then told whom to run as).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        == Some("0")
}
