//! What a broker or database destination reports: an attempt's outcome
//! with the request it sent and the receipt it got, and a connection
//! test's verdict.

use std::collections::BTreeMap;

use ferry_core::delivery::Captured;
use ferry_core::ports::{AttemptReport, CheckReport, Outcome};

use crate::link::Failure;

/// The report of one attempt that sent `request`: delivered with the
/// receipt (also kept as the response), or the failure's outcome.
pub fn attempt(request: Captured, result: Result<String, Failure>) -> AttemptReport {
    let (outcome, response) = match result {
        Ok(receipt) => (
            Outcome::Delivered {
                receipt: Some(receipt.clone()),
            },
            Some(Captured {
                headers: BTreeMap::new(),
                body: receipt,
            }),
        ),
        Err(failure) => (failure.into_outcome(), None),
    };
    AttemptReport {
        outcome,
        status_code: None,
        request: Some(request),
        response,
    }
}

/// A connection test's report: passed, saying what was checked, or failed
/// with the reason.
pub fn check(result: Result<String, Failure>) -> CheckReport {
    match result {
        Ok(message) => CheckReport { ok: true, message },
        Err(failure) => CheckReport {
            ok: false,
            message: failure.error,
        },
    }
}
