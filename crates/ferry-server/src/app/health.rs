//! Readiness: whether this Ferry can take events now. Storage must answer
//! and, after a write failed, commit again — a read succeeds on a full disk,
//! so then a real write (`Store::probe_write`) decides. A server shutting
//! down is not ready.

use std::time::Duration;

use tracing::warn;

use super::App;
use crate::store_health::{Operation, Reason};

/// How long readiness waits for the store's answer; a load balancer's own
/// check usually gives up after a few seconds.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Why Ferry is not ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotReady {
    ShuttingDown,
    /// Storage cannot serve; the text says why in public words.
    Storage(&'static str),
}

impl App {
    pub async fn readiness(&self) -> Result<(), NotReady> {
        if self.is_shutting_down() {
            return Err(NotReady::ShuttingDown);
        }
        let health = &self.0.write_health;
        let store = &self.0.store;
        let check = async {
            if health.failing().is_some() {
                let probe = store.probe_write().await;
                match &probe {
                    Ok(()) => health.succeeded(),
                    Err(error) => health.failed(Operation::ReadinessProbe, error),
                }
                probe
            } else {
                store.ping().await
            }
        };
        match tokio::time::timeout(PROBE_TIMEOUT, check).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => {
                warn!(%error, "Readiness check failed.");
                Err(NotReady::Storage(
                    Reason::of(&error).map_or("stored data cannot be read", Reason::describe),
                ))
            }
            Err(_) => {
                warn!(timeout = ?PROBE_TIMEOUT, "Readiness check: the store did not answer in time.");
                Err(NotReady::Storage("storage did not answer in time"))
            }
        }
    }
}
