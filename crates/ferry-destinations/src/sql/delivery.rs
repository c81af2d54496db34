//! What the postgres and mysql deliverers share: their pool's settings,
//! the SSRF guard before the pool's first connection, a pool time-out
//! named as the server not answering, and how an insert and a connection
//! test are reported.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferry_core::attempt::Receipt;
use ferry_core::delivery::{Captured, Envelope};
use ferry_core::ports::{AttemptError, AttemptReport, CheckReport};
use sqlx::pool::PoolOptions;

use super::{POOL_SIZE, SqlConfig};
use crate::client::report;
use crate::endpoint;
use crate::message::{Payload, metadata};
use crate::net_guard::NetworkPolicy;

/// A pool of at most [`POOL_SIZE`] connections, opened on demand, waiting
/// at most `connect_timeout` for one.
pub fn pool_options<DB: sqlx::Database>(connect_timeout: Duration) -> PoolOptions<DB> {
    PoolOptions::new()
        .max_connections(POOL_SIZE)
        .min_connections(0)
        .acquire_timeout(connect_timeout)
        .idle_timeout(Duration::from_secs(300))
        .test_before_acquire(false)
}

/// The SSRF guard's verdict on the host, before a pool that has no
/// connection (`open` is its size) opens its first one.
pub async fn guard(
    open: u32,
    policy: &NetworkPolicy,
    host: &str,
    port: u16,
    limit: Duration,
) -> Result<(), AttemptError> {
    if open > 0 {
        return Ok(());
    }
    endpoint::resolve(policy, host, port, limit).await.map(drop)
}

/// `classify`'s failure, naming the wait when no connection to `server`
/// could be made.
pub fn pool_aware(
    error: &sqlx::Error,
    connect_timeout: Duration,
    server: &str,
    classify: fn(&sqlx::Error) -> AttemptError,
) -> AttemptError {
    match error {
        sqlx::Error::PoolTimedOut => AttemptError::retryable(format!(
            "could not connect to {server} within {} ms (the server refused or did not answer)",
            connect_timeout.as_millis()
        )),
        other => classify(other),
    }
}

/// The report of one insert of `envelope` by `statement`: the metadata,
/// the statement and the payload as the request, and the receipt.
pub fn attempt(
    envelope: &Envelope,
    statement: &str,
    result: Result<Receipt, AttemptError>,
) -> AttemptReport {
    let mut shown: BTreeMap<String, String> = metadata(envelope)
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
    shown.insert("statement".into(), statement.to_owned());
    let request = Captured {
        headers: shown,
        body: Captured::body_from_bytes(&Payload::of(&envelope.event).to_bytes()),
    };
    report::attempt(request, result)
}

/// The connection test's report, started at `started`: the table was found
/// with its columns, or why not.
pub fn check(
    config: &SqlConfig,
    started: Instant,
    result: Result<(), AttemptError>,
) -> CheckReport {
    report::check(result.map(|()| {
        format!(
            "connected, logged in and found table `{}` with its columns in {} ms",
            config.table.as_text(),
            started.elapsed().as_millis()
        )
    }))
}
