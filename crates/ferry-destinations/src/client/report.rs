//! What a broker or database destination reports: an attempt's outcome
//! with the request it sent and the receipt it got, and a connection
//! test's verdict.

use std::collections::BTreeMap;

use ferry_core::delivery::Captured;
use ferry_core::ports::{AttemptError, AttemptReport, CheckReport, Delivered};

/// The report of one attempt that sent `request`: delivered with the
/// receipt (also kept as the response), or the attempt error.
pub fn attempt(request: Captured, result: Result<String, AttemptError>) -> AttemptReport {
    let (result, response) = match result {
        Ok(receipt) => (
            Ok(Delivered {
                receipt: Some(receipt.clone()),
            }),
            Some(Captured {
                headers: BTreeMap::new(),
                body: receipt,
            }),
        ),
        Err(error) => (Err(error), None),
    };
    AttemptReport {
        result,
        status_code: None,
        request: Some(request),
        response,
    }
}

/// A connection test's report: passed, saying what was checked, or failed
/// with the reason.
pub fn check(result: Result<String, AttemptError>) -> CheckReport {
    match result {
        Ok(message) => CheckReport { ok: true, message },
        Err(failure) => CheckReport {
            ok: false,
            message: failure.into_reason(),
        },
    }
}
