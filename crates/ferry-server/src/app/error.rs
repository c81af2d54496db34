//! What a use case can refuse, in words fit for whoever asked: each face
//! maps a variant to its own form (an HTTP status and the API's error JSON,
//! a message next to a form field, a `PortError`). Store errors arrive here
//! already stripped of internals: the driver's text is logged, never kept.

use ferry_core::org::Scope;
use ferry_core::{FieldError, StoreError};

use crate::store_health::Reason;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed: a required field is missing, a value has
    /// the wrong shape (HTTP 400 `invalid_request`).
    #[error("{}", summary(.0))]
    Malformed(Vec<FieldError>),
    /// A body that is not JSON (HTTP 400 `invalid_json`).
    #[error("{0}")]
    InvalidJson(String),
    /// Well-formed but semantically invalid; one error per field (HTTP 422).
    #[error("{}", summary(.0))]
    Invalid(Vec<FieldError>),
    #[error("missing or unknown API key")]
    Unauthorized,
    /// An inbound request's signature was refused, with the reason.
    #[error("{0}")]
    Signature(String),
    #[error("this API key lacks the `{0}` scope")]
    Forbidden(Scope),
    /// Unknown, or another organization's (which is not revealed).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// An in-process caller's event is larger than the API would accept.
    #[error("the event is {size} bytes; the largest accepted is {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    /// The API key sent more events than its rate allows.
    #[error("{message}")]
    RateLimited { message: String, retry_after_s: u64 },
    /// The current state does not allow the operation; the message says why.
    #[error("{0}")]
    Conflict(String),
    /// Storage cannot commit now; nothing was changed.
    #[error("{}; nothing was accepted, retry later", .0.describe())]
    Unavailable(Reason),
    #[error("Ferry is shutting down; nothing was accepted, retry later")]
    ShuttingDown,
    /// A fault of Ferry's own (logged where it happened).
    #[error("internal error")]
    Internal,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn summary(details: &[FieldError]) -> String {
    match details {
        [one] => format!("{}: {}", one.field, one.message),
        many => format!("{} fields are invalid", many.len()),
    }
}

impl Error {
    /// One malformed field.
    pub fn malformed(field: &str, message: impl Into<String>) -> Self {
        Error::Malformed(vec![FieldError::new(field, message)])
    }

    /// One invalid field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid(vec![FieldError::new(field, message)])
    }

    /// The field errors of `Malformed` and `Invalid`.
    pub fn details(&self) -> &[FieldError] {
        match self {
            Error::Malformed(d) | Error::Invalid(d) => d,
            _ => &[],
        }
    }

    /// `Ok` when `errors` is empty, else `Invalid` with all of them.
    pub fn check(errors: Vec<FieldError>) -> Result<()> {
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid(errors))
        }
    }
}

impl From<StoreError> for Error {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(reason) => {
                tracing::warn!(%reason, "Storage unavailable.");
                Error::Unavailable(Reason::Unavailable)
            }
            StoreError::Full(reason) => {
                tracing::warn!(%reason, "Storage is full.");
                Error::Unavailable(Reason::Full)
            }
            StoreError::Conflict(reason) => Error::Conflict(reason),
            StoreError::Corrupt(reason) => {
                tracing::error!(%reason, "Stored data could not be read.");
                Error::Internal
            }
        }
    }
}
