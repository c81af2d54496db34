//! Errors shared across the ports.

use serde::Serialize;

/// One invalid field of a request or a configuration, for `422` details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Storage cannot be reached or cannot write right now; nothing was changed.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A uniqueness rule was violated (for example a duplicate name).
    #[error("conflict: {0}")]
    Conflict(String),
    /// Stored data could not be decoded (corruption, or a wrong master key).
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;
