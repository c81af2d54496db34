//! What becomes of the deliveries of a deleted destination, on every
//! backend. Waiting ones fail with it. One whose attempt is in flight keeps
//! its lease until the attempt ends: if it delivered, the delivery is
//! `delivered` (it was); if it failed, or its lease is given back, the
//! delivery fails, since there is nothing left to retry to.

use std::borrow::Cow;

use ferry_core::audit::AuditRecord;
use ferry_core::delivery::DeliveryStatus;
use ferry_core::ports::Completion;
use serde_json::json;

/// Why such a delivery failed, as a literal for the SQL that writes it.
macro_rules! deleted_error {
    () => {
        "destination deleted"
    };
}
pub(crate) use deleted_error;

/// Why such a delivery failed.
pub(crate) const ERROR: &str = deleted_error!();

/// The audit record of a completion that moved its delivery to `moved_to`:
/// the dispatcher's own record, or one telling that the delivery failed
/// because its destination was deleted during the attempt.
pub(crate) fn completion_audit(c: &Completion, moved_to: DeliveryStatus) -> Cow<'_, AuditRecord> {
    if moved_to == c.settled.status() {
        return Cow::Borrowed(&c.audit);
    }
    let mut audit = c.audit.clone();
    audit.action = format!("delivery.{moved_to}");
    audit.after = Some(json!({
        "status": moved_to,
        "attempt": c.attempt.number,
        "status_code": c.attempt.status_code,
        "error": ERROR,
        "attempt_error": c.attempt.error,
    }));
    Cow::Owned(audit)
}

#[cfg(test)]
mod tests {
    use ferry_core::delivery::DeliveryStatus;

    #[test]
    fn a_deleted_destination_fails_what_it_abandons() {
        use ferry_core::state::Transition;
        // Completions and given-back leases of a deleted destination end
        // where the state machine abandons a delivery.
        assert_eq!(
            DeliveryStatus::Delivering.apply(Transition::Abandon).ok(),
            Some(DeliveryStatus::Failed)
        );
    }
}
