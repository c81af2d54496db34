//! The API's error type: each variant has a status code and the error JSON of
//! API.md. Internal details (SQL, paths) are logged, never sent.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ferry_core::FieldError;

use crate::app::Error as AppError;
use crate::store_health::Reason;
use crate::views::ErrorBody;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidJson(String),
    #[error("{message}")]
    InvalidRequest {
        message: String,
        details: Vec<FieldError>,
    },
    #[error("missing or unknown API key")]
    Unauthorized,
    /// An inbound request's signature was refused, with the reason.
    #[error("{0}")]
    Signature(String),
    #[error("this API key lacks the `{0}` scope")]
    Forbidden(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{message}")]
    Validation {
        message: String,
        details: Vec<FieldError>,
    },
    #[error("{message}")]
    RateLimited { message: String, retry_after_s: u64 },
    /// Storage cannot commit; `reason` says why in public words.
    #[error("{}; nothing was accepted, retry later", .reason.describe())]
    Unavailable { reason: Reason, retry_after_s: u64 },
    #[error("Ferry is shutting down; nothing was accepted, retry later")]
    ShuttingDown,
    #[error("internal error")]
    Internal,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError::InvalidRequest {
            message: format!("{field}: {message}"),
            details: vec![FieldError::new(field, message)],
        }
    }

    pub fn validation(details: Vec<FieldError>) -> Self {
        let message = match details.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            many => format!("{} fields are invalid", many.len()),
        };
        ApiError::Validation { message, details }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::InvalidJson(_) => (StatusCode::BAD_REQUEST, "invalid_json"),
            ApiError::InvalidRequest { .. } => (StatusCode::BAD_REQUEST, "invalid_request"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Signature(_) => (StatusCode::UNAUTHORIZED, "invalid_signature"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::Validation { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Unavailable { .. } | ApiError::ShuttingDown => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
            ApiError::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// The JSON body, also used per item by the batch endpoint.
    pub fn body(&self) -> ErrorBody {
        let (_, code) = self.status_and_code();
        let details = match self {
            ApiError::InvalidRequest { details, .. } | ApiError::Validation { details, .. } => {
                details.clone()
            }
            _ => Vec::new(),
        };
        ErrorBody {
            error: code,
            message: self.to_string(),
            details,
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status_and_code().0
    }
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        let message = error.to_string();
        match error {
            AppError::Malformed(details) => ApiError::InvalidRequest { message, details },
            AppError::InvalidJson(message) => ApiError::InvalidJson(message),
            AppError::Invalid(details) => ApiError::Validation { message, details },
            AppError::Unauthorized => ApiError::Unauthorized,
            AppError::Signature(reason) => ApiError::Signature(reason),
            AppError::Forbidden(scope) => ApiError::Forbidden(scope.as_str()),
            AppError::NotFound(what) => ApiError::NotFound(what),
            AppError::RateLimited {
                message,
                retry_after_s,
            } => ApiError::RateLimited {
                message,
                retry_after_s,
            },
            AppError::Conflict(message) => ApiError::Conflict(message),
            AppError::TooLarge { limit, .. } => ApiError::PayloadTooLarge(limit),
            AppError::Unavailable(reason) => ApiError::Unavailable {
                reason,
                retry_after_s: 1,
            },
            AppError::ShuttingDown => ApiError::ShuttingDown,
            AppError::Internal => ApiError::Internal,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, Json(self.body())).into_response();
        let retry_after = match self {
            ApiError::Unavailable { retry_after_s, .. }
            | ApiError::RateLimited { retry_after_s, .. } => Some(retry_after_s),
            ApiError::ShuttingDown => Some(1),
            _ => None,
        };
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
