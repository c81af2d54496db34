//! Dispatch: leasing due deliveries, delivering them with bounded global and
//! per-destination concurrency, recording attempts in batches, retries with
//! backoff, the breaker, and a graceful stop.
//!
//! New deliveries arrive in memory right after their commit (`hand_over`);
//! polling for due deliveries and lease expiry are the safety net.

pub mod alerts;
mod breaker;
mod completions;
mod engine;
mod failing;
mod outcome;
pub mod rollups;
mod warnings;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ferry_core::DestinationId;
use ferry_core::delivery::Delivery;
use ferry_core::destination::Health;
use ferry_core::event::Event;
use tokio::sync::{Notify, mpsc};

pub use alerts::{Alert, AlertKind, AlertSender, Report};
pub use breaker::Breaker;
pub use engine::{Dispatcher, DispatcherParts};

/// A delivery just committed, with its event, handed over in memory.
#[derive(Debug, Clone)]
pub struct Handoff {
    pub delivery: Delivery,
    pub event: Arc<Event>,
}

/// Messages from the API to the dispatcher.
#[derive(Debug)]
pub(crate) enum Control {
    /// A destination changed: reload it; `reset_health` after an enable.
    Reload {
        id: DestinationId,
        reset_health: bool,
    },
}

/// How the rest of the server talks to the dispatcher. Cheap to clone. A
/// process without a dispatcher (an ingest-only role) uses `detached()`.
#[derive(Clone)]
pub struct DispatchHandle {
    handoff: Option<mpsc::Sender<Vec<Handoff>>>,
    control: Option<mpsc::UnboundedSender<Control>>,
    wake: Arc<Notify>,
    health: Arc<RwLock<HashMap<DestinationId, Health>>>,
    /// How long a graceful stop waits for in-flight deliveries, in ms.
    grace_ms: Arc<AtomicU64>,
}

/// Handoff batches waiting for the dispatcher; when full, new deliveries
/// simply wait in the store for the next poll.
const HANDOFF_CAPACITY: usize = 4_096;

impl DispatchHandle {
    pub fn detached() -> Self {
        Self {
            handoff: None,
            control: None,
            wake: Arc::default(),
            health: Arc::default(),
            grace_ms: Arc::default(),
        }
    }

    /// How long the coming graceful stop gives in-flight deliveries
    /// (instead of `shutdown_grace_ms`); set it before the stop begins.
    pub fn set_shutdown_grace(&self, grace: Duration) {
        let ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
        self.grace_ms.store(ms, Ordering::SeqCst);
    }

    /// Hands committed deliveries over. Never blocks: if the dispatcher is
    /// behind, it is woken to poll the store instead.
    pub fn hand_over(&self, handoffs: Vec<Handoff>) {
        if handoffs.is_empty() {
            return;
        }
        if let Some(tx) = &self.handoff
            && tx.try_send(handoffs).is_err()
        {
            self.wake.notify_one();
        }
    }

    /// Asks for a poll now (after a retry, replay or DLQ replay).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// A destination was changed through the API.
    pub fn destination_changed(&self, id: &DestinationId, reset_health: bool) {
        if let Some(tx) = &self.control {
            let _ = tx.send(Control::Reload {
                id: id.clone(),
                reset_health,
            });
        }
        self.wake.notify_one();
    }

    /// The dispatcher's live view of a destination's health, if it has one.
    pub fn health(&self, id: &DestinationId) -> Option<Health> {
        self.health
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }
}
