//! Bearer-key authentication: the `Caller` extractor, scope checks, and a
//! short-lived cache of verified keys (revocation clears it).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use ferry_core::org::{ApiKey, Scope, hash_key_secret};
use ferry_core::{ApiKeyId, OrgId};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::cache::TtlCache;
use crate::state::AppState;

/// How long a verified key is trusted without reading the store again.
const CACHE_TTL: Duration = Duration::from_secs(10);

/// The authenticated key of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key: ApiKey,
}

impl Caller {
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.key.allows(scope) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(scope.as_str()))
        }
    }

    pub fn org(&self) -> &OrgId {
        &self.key.org_id
    }

    /// The actor recorded in audit records.
    pub fn actor(&self) -> String {
        self.key.id.to_string()
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or(ApiError::Unauthorized)?;
        let key = authenticate(state, header.to_str().unwrap_or_default()).await?;
        state.inner().keys.mark_used(&key.id);
        Ok(Caller { key })
    }
}

/// The API key of an `Authorization: Bearer …` header value.
pub async fn authenticate(state: &AppState, header: &str) -> Result<ApiKey, ApiError> {
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Unauthorized)?;
    let hash = hash_key_secret(token);
    let keys = &state.inner().keys;
    if let Some(key) = keys.get(&hash) {
        return Ok(key);
    }
    let key = state
        .store()
        .api_key_by_hash(&hash)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    // The store looked the key up by its hash; compare once more in constant
    // time so that no index shortcut can leak timing.
    if !bool::from(key.hash.ct_eq(&hash)) {
        return Err(ApiError::Unauthorized);
    }
    keys.put(hash, key.clone());
    Ok(key)
}

/// Verified keys by hash, and when each was last used (flushed in batches).
pub struct KeyCache {
    verified: TtlCache<[u8; 32], ApiKey>,
    used: Mutex<HashMap<ApiKeyId, DateTime<Utc>>>,
}

impl Default for KeyCache {
    fn default() -> Self {
        Self {
            verified: TtlCache::new(CACHE_TTL),
            used: Mutex::default(),
        }
    }
}

impl KeyCache {
    fn get(&self, hash: &[u8; 32]) -> Option<ApiKey> {
        self.verified.get(hash)
    }

    fn put(&self, hash: [u8; 32], key: ApiKey) {
        self.verified.put(hash, key);
    }

    fn mark_used(&self, id: &ApiKeyId) {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        used.insert(id.clone(), Utc::now());
    }

    /// Forgets every verified key (after a revocation).
    pub fn clear(&self) {
        self.verified.clear();
    }

    /// Takes the keys used since the last call.
    pub fn take_used(&self) -> Vec<(ApiKeyId, DateTime<Utc>)> {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        used.drain().collect()
    }
}
