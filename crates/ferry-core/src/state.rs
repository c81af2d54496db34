//! The delivery state machine: every allowed status transition is here.
//!
//! ```text
//! pending ──lease──▶ delivering ──▶ delivered
//!    ▲                 │  │  └────▶ retrying ──lease──▶ delivering …
//!    │                 │  └───────▶ dead      (retries exhausted or permanent error)
//!    │                 └──────────▶ pending   (lease released or expired)
//!    └── operator retry / replay ── retrying | delivered | dead | failed
//! failed: the delivery can never be attempted (its destination was deleted).
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Delivering,
    Retrying,
    Delivered,
    Failed,
    Dead,
}

/// Why a status changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// A worker leased the delivery for an attempt.
    Lease,
    /// The attempt succeeded.
    Succeed,
    /// The attempt failed and a retry is scheduled.
    ScheduleRetry,
    /// The attempt failed permanently or the retries are exhausted.
    Kill,
    /// The lease was released (shutdown) or expired (crash).
    Release,
    /// The destination is gone: the delivery can never be attempted.
    Abandon,
    /// An operator asked for another try (retry, replay, DLQ replay).
    Requeue,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {from} delivery cannot {transition:?}")]
pub struct InvalidTransition {
    pub from: DeliveryStatus,
    pub transition: Transition,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 6] = [
        DeliveryStatus::Pending,
        DeliveryStatus::Delivering,
        DeliveryStatus::Retrying,
        DeliveryStatus::Delivered,
        DeliveryStatus::Failed,
        DeliveryStatus::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivering => "delivering",
            DeliveryStatus::Retrying => "retrying",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Dead => "dead",
        }
    }

    /// No further attempt will happen without an operator.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            DeliveryStatus::Delivered | DeliveryStatus::Failed | DeliveryStatus::Dead
        )
    }

    /// The status after `transition`, or why it is not allowed.
    pub fn apply(self, transition: Transition) -> Result<DeliveryStatus, InvalidTransition> {
        use DeliveryStatus::*;
        use Transition::*;
        let next = match (self, transition) {
            (Pending | Retrying, Lease) => Delivering,
            (Delivering, Succeed) => Delivered,
            (Delivering, ScheduleRetry) => Retrying,
            (Delivering, Kill) => Dead,
            (Delivering, Release) => Pending,
            (Pending | Retrying | Delivering, Abandon) => Failed,
            (Retrying | Delivered | Failed | Dead, Requeue) => Pending,
            (from, transition) => return Err(InvalidTransition { from, transition }),
        };
        Ok(next)
    }

    /// Statuses from which `transition` is allowed (for set-based updates).
    pub fn sources_of(transition: Transition) -> Vec<DeliveryStatus> {
        Self::ALL
            .into_iter()
            .filter(|s| s.apply(transition).is_ok())
            .collect()
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeliveryStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|st| st.as_str() == s).ok_or_else(|| {
            format!(
                "unknown status `{s}` (expected pending, delivering, retrying, delivered, failed or dead)"
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::DeliveryStatus::*;
    use super::Transition::*;
    use super::*;

    #[test]
    fn happy_path_and_retry_loop() {
        assert_eq!(Pending.apply(Lease), Ok(Delivering));
        assert_eq!(Delivering.apply(ScheduleRetry), Ok(Retrying));
        assert_eq!(Retrying.apply(Lease), Ok(Delivering));
        assert_eq!(Delivering.apply(Succeed), Ok(Delivered));
    }

    #[test]
    fn terminal_states_only_leave_by_operator() {
        for terminal in [Delivered, Failed, Dead] {
            assert!(terminal.is_terminal());
            for t in [Lease, Succeed, ScheduleRetry, Kill, Release, Abandon] {
                assert!(terminal.apply(t).is_err(), "{terminal} {t:?}");
            }
            assert_eq!(terminal.apply(Requeue), Ok(Pending));
        }
    }

    #[test]
    fn in_flight_deliveries_cannot_be_requeued() {
        assert!(Delivering.apply(Requeue).is_err());
        assert_eq!(
            DeliveryStatus::sources_of(Requeue),
            vec![Retrying, Delivered, Failed, Dead]
        );
    }

    proptest::proptest! {
        /// Whatever happens, a delivery never leaves `delivered`/`dead`
        /// except by an operator requeue, and never reaches an unknown state.
        #[test]
        fn random_walks_keep_the_invariants(steps in proptest::collection::vec(0usize..7, 0..64)) {
            let all = [Lease, Succeed, ScheduleRetry, Kill, Release, Abandon, Requeue];
            let mut status = Pending;
            for step in steps {
                let t = all[step];
                match status.apply(t) {
                    Ok(next) => {
                        if status.is_terminal() { proptest::prop_assert_eq!(t, Requeue); }
                        proptest::prop_assert!(status != Delivering || t != Requeue);
                        status = next;
                    }
                    Err(e) => proptest::prop_assert_eq!(e.from, status),
                }
            }
        }
    }
}
