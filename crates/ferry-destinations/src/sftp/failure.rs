//! Why an SFTP attempt failed, classified: a wrong host key, refused
//! credentials, a missing directory or a refused permission need an
//! operator (permanent); connection failures, timeouts and other server
//! errors may pass (retryable, and the connection is dropped).

use std::io;

use ferry_core::ports::Outcome;
use russh_sftp::protocol::StatusCode;

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Failure {
    pub error: String,
    pub permanent: bool,
}

impl Failure {
    pub fn permanent(error: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            permanent: true,
        }
    }

    pub fn retryable(error: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            permanent: false,
        }
    }

    pub fn io(what: &str, error: &io::Error) -> Self {
        let detail = match error.kind() {
            io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
            io::ErrorKind::TimedOut => "timed out".to_owned(),
            _ => error.to_string(),
        };
        Self::retryable(format!("{what}: {detail}"))
    }

    /// The server's key is not the pinned one (or not the one trusted first).
    pub fn host_key(seen: Option<&str>, pinned: bool) -> Self {
        let seen = seen.unwrap_or("an unsupported key type");
        let against = if pinned {
            "the pinned host_key_fingerprint"
        } else {
            "the key trusted on first use"
        };
        Self::permanent(format!(
            "the server's host key {seen} does not match {against}: refused (a changed key may mean an attack)"
        ))
    }

    pub fn ssh(what: &str, error: &russh::Error) -> Self {
        match error {
            russh::Error::IO(io) => Self::io(what, io),
            other => Self::retryable(format!("{what}: {other}")),
        }
    }

    /// An SFTP error of an operation on `path`.
    pub fn sftp(what: &str, error: &russh_sftp::client::error::Error) -> Self {
        use russh_sftp::client::error::Error;
        match error {
            Error::Status(status) => match status.status_code {
                StatusCode::NoSuchFile => {
                    Self::permanent(format!("{what}: no such file or directory"))
                }
                StatusCode::PermissionDenied => {
                    Self::permanent(format!("{what}: permission denied"))
                }
                _ => Self::retryable(format!("{what}: {}", status.error_message)),
            },
            Error::Timeout => Self::retryable(format!("{what}: the server did not answer in time")),
            other => Self::retryable(format!("{what}: {other}")),
        }
    }

    pub fn into_outcome(self) -> Outcome {
        if self.permanent {
            Outcome::Permanent { error: self.error }
        } else {
            Outcome::Retryable {
                error: self.error,
                retry_after: None,
            }
        }
    }
}
