//! SSH and SFTP errors classified as [`AttemptError`]s: a wrong host key, refused
//! credentials, a missing directory or a refused permission need an
//! operator (permanent); connection failures, timeouts and other server
//! errors may pass (retryable, and the connection is dropped).

use std::io;

use ferry_core::ports::AttemptError;
use russh_sftp::protocol::StatusCode;

pub(super) fn io(what: &str, error: &io::Error) -> AttemptError {
    let detail = match error.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        io::ErrorKind::TimedOut => "timed out".to_owned(),
        _ => error.to_string(),
    };
    AttemptError::retryable(format!("{what}: {detail}"))
}

/// The server's key is not the pinned one (or not the one trusted first).
pub(super) fn host_key(seen: Option<&str>, pinned: bool) -> AttemptError {
    let seen = seen.unwrap_or("an unsupported key type");
    let against = if pinned {
        "the pinned host_key_fingerprint"
    } else {
        "the key trusted on first use"
    };
    AttemptError::permanent(format!(
        "the server's host key {seen} does not match {against}: refused (a changed key may mean an attack)"
    ))
}

pub(super) fn ssh(what: &str, error: &russh::Error) -> AttemptError {
    match error {
        russh::Error::IO(error) => io(what, error),
        other => AttemptError::retryable(format!("{what}: {other}")),
    }
}

/// An SFTP error of an operation on `path`.
pub(super) fn sftp(what: &str, error: &russh_sftp::client::error::Error) -> AttemptError {
    use russh_sftp::client::error::Error;
    match error {
        Error::Status(status) => match status.status_code {
            StatusCode::NoSuchFile => {
                AttemptError::permanent(format!("{what}: no such file or directory"))
            }
            StatusCode::PermissionDenied => {
                AttemptError::permanent(format!("{what}: permission denied"))
            }
            _ => AttemptError::retryable(format!("{what}: {}", status.error_message)),
        },
        Error::Timeout => {
            AttemptError::retryable(format!("{what}: the server did not answer in time"))
        }
        other => AttemptError::retryable(format!("{what}: {other}")),
    }
}
