//! What a broker or database destination reports: an attempt's outcome
//! with the request it sent and the receipt it got, and a connection
//! test's verdict.

use std::collections::BTreeMap;

use ferry_core::attempt::Receipt;
use ferry_core::delivery::Captured;
use ferry_core::ports::{AttemptError, AttemptReport, CheckReport, Delivered};

/// The report of one attempt that sent `request`: delivered with the
/// receipt (also kept, in words, as the response), or the attempt error.
pub fn attempt(request: Captured, result: Result<Receipt, AttemptError>) -> AttemptReport {
    let (result, response) = match result {
        Ok(receipt) => {
            let body = receipt.summary();
            (
                Ok(Delivered {
                    receipt: Some(receipt),
                }),
                Some(Captured {
                    headers: BTreeMap::new(),
                    body,
                }),
            )
        }
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
