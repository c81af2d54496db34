//! Bearer-key authentication: the `Caller` extractor, which turns the
//! `Authorization` header into the use cases' `Principal`.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use ferry_core::org::ApiKey;

use super::error::ApiError;
use super::state::AppState;
use crate::app::Principal;

/// The authenticated key of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key: ApiKey,
    pub principal: Principal,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or(ApiError::Unauthorized)?;
        let key = authenticate(state, header.to_str().unwrap_or_default()).await?;
        let principal = Principal::from_key(&key);
        Ok(Caller { key, principal })
    }
}

/// The API key of an `Authorization: Bearer …` header value.
pub async fn authenticate(state: &AppState, header: &str) -> Result<ApiKey, ApiError> {
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .ok_or(ApiError::Unauthorized)?;
    Ok(state.app().authenticate(token).await?)
}
