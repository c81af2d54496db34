//! Reading an error's source chain: the first cause of a given type, and
//! the most useful sentence for an operator (a plain I/O error kind such as
//! `connection refused`, else the innermost message).

// A build with only some of the kinds uses only some of the helpers.
#![cfg_attr(
    not(all(feature = "webhook", feature = "s3", feature = "email")),
    allow(dead_code)
)]

use std::io;

/// The first error of type `T` in an error's source chain (itself included).
pub fn find_cause<'a, T: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut current = Some(error);
    while let Some(cause) = current {
        if let Some(found) = cause.downcast_ref::<T>() {
            return Some(found);
        }
        current = cause.source();
    }
    None
}

/// The most useful message in an error's source chain: the kind of the
/// first I/O error that has a plain name, else the innermost message.
pub fn describe_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut current = error.source();
    while let Some(cause) = current {
        if let Some(io) = cause.downcast_ref::<io::Error>()
            && let Some(text) = io_kind_text(io.kind())
        {
            return text.to_owned();
        }
        message = cause.to_string();
        current = cause.source();
    }
    message
}

fn io_kind_text(kind: io::ErrorKind) -> Option<&'static str> {
    use io::ErrorKind::*;
    Some(match kind {
        ConnectionRefused => "connection refused",
        ConnectionReset => "connection reset by peer",
        ConnectionAborted => "connection aborted",
        BrokenPipe => "connection closed by peer (broken pipe)",
        UnexpectedEof => "connection closed before the answer was complete",
        NotConnected => "not connected",
        AddrNotAvailable => "address not available",
        HostUnreachable => "host unreachable",
        NetworkUnreachable => "network unreachable",
        TimedOut => "timed out",
        _ => return None,
    })
}
