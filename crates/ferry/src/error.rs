//! What the operator functions of a `Ferry` can refuse.

use ferry_core::FieldError;

use crate::port::PortError;

/// Why an operation of a [`Ferry`](crate::Ferry) failed. Nothing was
/// changed in every case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Ferry could not start: the directory is locked by another process,
    /// cannot be created, or the settings are invalid.
    #[error("cannot start Ferry: {0}")]
    Start(String),
    /// The input is invalid; `details` names each field (`config.url`).
    #[error("{message}")]
    Invalid {
        /// What is wrong, in one line.
        message: String,
        /// One entry per invalid field.
        details: Vec<FieldError>,
    },
    /// No such entity (`destination`, `event`, …).
    #[error("{0} not found")]
    NotFound(String),
    /// The current state does not allow it; the message says why.
    #[error("{0}")]
    Conflict(String),
    /// A remote Ferry refused the API key or its scope.
    #[error("{0}")]
    Forbidden(String),
    /// The store (or a remote Ferry) cannot answer now; retry later.
    #[error("{0}")]
    Unavailable(String),
    /// This Ferry was shut down.
    #[error("this Ferry is shut down")]
    Closed,
}

impl From<Error> for PortError {
    fn from(error: Error) -> Self {
        match error {
            Error::Closed => PortError::Closed,
            Error::Invalid { message, .. } => PortError::Invalid(message),
            other => PortError::Unavailable(other.to_string()),
        }
    }
}
