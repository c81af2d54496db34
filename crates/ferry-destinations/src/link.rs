//! The one connection (or channel) a broker or database destination keeps
//! and reuses across deliveries: made on first use, dropped when an
//! operation shows it broken, and made again with capped exponential
//! backoff, so that a destination that is down costs one connection attempt
//! per backoff period, not one per delivery.

use std::future::Future;
use std::time::{Duration, Instant};

use ferry_core::ports::AttemptError;
use tokio::sync::Mutex;

/// First wait after a failed connection attempt; it doubles per failure.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// Longest wait between connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Runs `operation` for at most `limit`; a timeout is retryable and says
/// what timed out.
pub async fn timed<T>(
    what: &str,
    limit: Duration,
    operation: impl Future<Output = Result<T, AttemptError>>,
) -> Result<T, AttemptError> {
    match tokio::time::timeout(limit, operation).await {
        Ok(result) => result,
        Err(_) => Err(AttemptError::retryable(format!(
            "{what} timed out after {} ms",
            limit.as_millis()
        ))),
    }
}

/// A connection handed out by [`Link::get`], with the generation to name
/// when reporting it broken.
pub struct Connected<C> {
    pub conn: C,
    generation: u64,
}

/// A shared, lazily made connection with reconnection backoff. `C` is a
/// cheap handle to it (clients of these brokers are `Clone` handles over
/// one socket).
pub struct Link<C> {
    state: Mutex<State<C>>,
}

struct State<C> {
    current: Option<C>,
    generation: u64,
    failures: u32,
    retry_at: Option<Instant>,
    last_error: Option<AttemptError>,
}

impl<C> Default for Link<C> {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                current: None,
                generation: 0,
                failures: 0,
                retry_at: None,
                last_error: None,
            }),
        }
    }
}

impl<C: Clone> Link<C> {
    /// The current connection, or a new one from `connect`. While the
    /// backoff after a failed attempt runs, fails at once with the last
    /// error (same classification) instead of connecting. Concurrent callers
    /// wait for one connection attempt rather than each making their own.
    pub async fn get<F, Fut>(&self, connect: F) -> Result<Connected<C>, AttemptError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<C, AttemptError>>,
    {
        let mut state = self.state.lock().await;
        if let Some(conn) = &state.current {
            return Ok(Connected {
                conn: conn.clone(),
                generation: state.generation,
            });
        }
        let now = Instant::now();
        if let (Some(at), Some(last)) = (state.retry_at, &state.last_error)
            && at > now
        {
            let wait = (at - now).as_millis();
            return Err(last
                .clone()
                .map_reason(|reason| format!("{reason} (next connection attempt in {wait} ms)")));
        }
        match connect().await {
            Ok(conn) => {
                state.generation += 1;
                state.current = Some(conn.clone());
                state.failures = 0;
                state.retry_at = None;
                state.last_error = None;
                Ok(Connected {
                    conn,
                    generation: state.generation,
                })
            }
            Err(error) => {
                state.failures = state.failures.saturating_add(1);
                state.retry_at = Some(Instant::now() + backoff(state.failures));
                state.last_error = Some(error.clone());
                Err(error)
            }
        }
    }

    /// Drops the connection of `generation` after an operation showed it
    /// broken; the next [`Link::get`] makes a new one. A connection made
    /// since by another caller is kept.
    pub async fn reset(&self, connected: &Connected<C>) {
        let mut state = self.state.lock().await;
        if state.generation == connected.generation {
            state.current = None;
        }
    }
}

/// The wait after the `failures`-th failed connection attempt in a row.
pub fn backoff(failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(16);
    FIRST_BACKOFF.saturating_mul(1 << exponent).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(2), Duration::from_millis(400));
        assert_eq!(backoff(5), Duration::from_millis(3200));
        assert_eq!(backoff(7), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    #[tokio::test]
    async fn a_failed_connection_is_not_retried_before_its_backoff() {
        let link: Link<u32> = Link::default();
        let first = link
            .get(|| async { Err(AttemptError::permanent("authentication failed")) })
            .await;
        assert_eq!(first.err().unwrap().reason(), "authentication failed");
        // Within the backoff the connector is not called again.
        let second = link
            .get(|| async { panic!("connected during the backoff") })
            .await;
        let error = second.err().unwrap();
        assert!(error.is_permanent());
        assert!(
            error
                .reason()
                .starts_with("authentication failed (next connection attempt in ")
        );
        tokio::time::sleep(backoff(1)).await;
        let third = link.get(|| async { Ok(7) }).await.ok().unwrap();
        assert_eq!(third.conn, 7);
    }

    #[tokio::test]
    async fn a_reset_only_drops_the_connection_it_names() {
        let link: Link<u32> = Link::default();
        let old = link.get(|| async { Ok(1) }).await.ok().unwrap();
        link.reset(&old).await;
        let new = link.get(|| async { Ok(2) }).await.ok().unwrap();
        // A late report about the old connection keeps the new one.
        link.reset(&old).await;
        let again = link.get(|| async { Ok(3) }).await.ok().unwrap();
        assert_eq!((new.conn, again.conn), (2, 2));
    }
}
