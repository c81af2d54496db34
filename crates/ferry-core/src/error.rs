//! Errors shared across the ports.

use serde::{Deserialize, Serialize};

/// One invalid field of a request or a configuration, for `422` details.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// What a `Store` or `Queue` adapter can fail with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// Storage cannot be reached or cannot write right now; nothing was changed.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The disk (or quota) that holds the data is full; nothing was changed.
    /// Like `Unavailable`, it passes once there is space again: a separate
    /// case because an operator must act, and callers are told why.
    #[error("storage is full: {0}")]
    Full(String),
    /// A uniqueness rule was violated (for example a duplicate name).
    #[error("conflict: {0}")]
    Conflict(String),
    /// Stored data could not be decoded (corruption, or a wrong master key).
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether storage itself failed (`Unavailable`, `Full`), as opposed to
    /// the request (`Conflict`) or the data (`Corrupt`): such a failure
    /// passes by itself, and the same write may be tried again.
    pub fn is_outage(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Full(_))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
