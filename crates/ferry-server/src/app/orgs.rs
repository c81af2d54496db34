//! Organizations and API keys: creating and renaming organizations, their
//! alert channels, issuing and revoking keys (a key's secret is returned
//! once; only its hash is stored), authenticating a key, and the master
//! key's rotation. Revoking a key clears the cache of verified keys.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ferry_core::alerting::AlertSettings;
use ferry_core::audit::AuditRecord;
use ferry_core::org::{
    ApiKey, NewKeySecret, Org, Scope, generate_key_secret, hash_key_secret, key_prefix,
};
use ferry_core::page::{Page, PageRequest};
use ferry_core::secret::Secret;
use ferry_core::{ApiKeyId, DestinationId, FieldError, OrgId};
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;

use super::{App, Error, Principal, Result};
use crate::cache::TtlCache;
use crate::views;

const MAX_NAME: usize = 200;
/// How long a verified key is trusted without reading the store again.
const KEY_CACHE_TTL: Duration = Duration::from_secs(10);

/// The body of `POST /v1/orgs`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"name": "acme"})))]
pub struct OrgInput {
    pub name: String,
}

/// The body of `PATCH /v1/orgs/{id}`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"name": "acme-eu", "alert_destinations": ["dst_01jq3v2f7h9k1n3q5s7v9x1z3b"],
    "alerts": {"alert_after": {"consecutive_failures": 10}, "disable_after": {"failing_for_s": 432000}, "debounce_s": 3600}})))]
pub struct OrgUpdate {
    pub name: Option<String>,
    /// Destinations that get the organization's alerts.
    pub alert_destinations: Option<Vec<String>>,
    /// When its destinations count as failing and are disabled (`{}`:
    /// the defaults).
    pub alerts: Option<AlertSettings>,
}

/// The body of `POST /v1/api-keys`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"name": "ci", "scopes": ["ingest", "read"]})))]
pub struct KeyInput {
    #[schema(examples("ci"))]
    pub name: String,
    /// `read`, `ingest`, `manage`, `admin`.
    pub scopes: Vec<String>,
    /// Another organization's (admin keys only); default the caller's.
    pub org_id: Option<String>,
}

/// The outcome of a master key rotation.
#[derive(Debug, Clone)]
pub struct MasterKeyRotated {
    /// How many sealed secrets were rewritten.
    pub resealed: u64,
    /// Where the new key was written (`None`: the operator keeps it).
    pub key_file: Option<std::path::PathBuf>,
}

fn check_name(name: &str, errors: &mut Vec<FieldError>) {
    if name.trim().is_empty() || name.len() > MAX_NAME {
        errors.push(FieldError::new(
            "name",
            format!("must be 1 to {MAX_NAME} characters"),
        ));
    }
}

impl App {
    /// Creates an organization (admin only).
    pub async fn create_org(&self, principal: &Principal, input: OrgInput) -> Result<Org> {
        principal.require(Scope::Admin)?;
        let mut errors = Vec::new();
        check_name(&input.name, &mut errors);
        Error::check(errors)?;
        let org = Org {
            alert_destinations: Vec::new(),
            alerts: AlertSettings::default(),
            id: OrgId::generate(),
            name: input.name,
            created_at: Utc::now(),
        };
        self.0.store.create_org(&org).await?;
        let audit = AuditRecord::new(
            org.id.clone(),
            principal.actor(),
            "org",
            org.id.to_string(),
            "org.created",
        )
        .after(views::snapshot(views::OrgView::from(&org)));
        self.0.store.append_audit(&[audit]).await?;
        Ok(org)
    }

    /// Every organization (admin only).
    pub async fn orgs(&self, principal: &Principal, page: PageRequest) -> Result<Page<Org>> {
        principal.require(Scope::Admin)?;
        Ok(self.0.store.list_orgs(page).await?)
    }

    /// The principal's own organization, or any for an admin.
    pub async fn org(&self, principal: &Principal, id: &OrgId) -> Result<Org> {
        principal.require(Scope::Read)?;
        if id != principal.org() && !principal.allows(Scope::Admin) {
            return Err(Error::NotFound("organization"));
        }
        self.0
            .store
            .get_org(id)
            .await?
            .ok_or(Error::NotFound("organization"))
    }

    /// Renames an organization or sets its alert channels: `admin` for any
    /// organization, `manage` for the principal's own.
    pub async fn update_org(
        &self,
        principal: &Principal,
        id: &OrgId,
        input: OrgUpdate,
    ) -> Result<Org> {
        if id == principal.org() {
            principal.require(Scope::Manage)?;
        } else {
            principal.require(Scope::Admin)?;
        }
        let before = self
            .0
            .store
            .get_org(id)
            .await?
            .ok_or(Error::NotFound("organization"))?;
        let mut after = before.clone();
        let mut errors = Vec::new();
        if let Some(name) = input.name {
            check_name(&name, &mut errors);
            after.name = name;
        }
        if let Some(ids) = input.alert_destinations {
            after.alert_destinations.clear();
            for (i, text) in ids.iter().enumerate() {
                let found = match DestinationId::parse(text) {
                    Ok(d) => self.0.store.get_destination(id, &d).await?.map(|_| d),
                    Err(_) => None,
                };
                match found {
                    Some(d) if !after.alert_destinations.contains(&d) => {
                        after.alert_destinations.push(d)
                    }
                    Some(_) => {}
                    None => errors.push(FieldError::new(
                        format!("alert_destinations[{i}]"),
                        format!("unknown destination {text}"),
                    )),
                }
            }
        }
        if let Some(alerts) = input.alerts {
            errors.extend(alerts.validate("alerts"));
            after.alerts = alerts;
        }
        Error::check(errors)?;
        let audit = AuditRecord::new(
            id.clone(),
            principal.actor(),
            "org",
            id.to_string(),
            "org.updated",
        )
        .before(views::snapshot(views::OrgView::from(&before)))
        .after(views::snapshot(views::OrgView::from(&after)));
        if !self.0.store.update_org(&after, &audit).await? {
            return Err(Error::NotFound("organization"));
        }
        Ok(after)
    }

    /// Issues an API key; returns it with its secret, to show once.
    pub async fn create_api_key(
        &self,
        principal: &Principal,
        input: KeyInput,
    ) -> Result<(ApiKey, Secret<String>)> {
        principal.require(Scope::Manage)?;
        let mut errors = Vec::new();
        check_name(&input.name, &mut errors);
        let mut scopes = Vec::new();
        for (i, s) in input.scopes.iter().enumerate() {
            match s.parse::<Scope>() {
                Ok(scope) if !scopes.contains(&scope) => scopes.push(scope),
                Ok(_) => {}
                Err(e) => errors.push(FieldError::new(format!("scopes[{i}]"), e)),
            }
        }
        if input.scopes.is_empty() {
            errors.push(FieldError::new("scopes", "must name at least one scope"));
        }
        Error::check(errors)?;
        let is_admin = principal.allows(Scope::Admin);
        if scopes.contains(&Scope::Admin) && !is_admin {
            return Err(Error::Forbidden(Scope::Admin));
        }
        let unknown = || Error::invalid("org_id", "unknown organization");
        let org_id = self
            .named_org(principal, input.org_id.as_deref(), unknown)
            .await?;
        let NewKeySecret(secret) = generate_key_secret();
        let key = ApiKey {
            id: ApiKeyId::generate(),
            org_id,
            name: input.name,
            prefix: key_prefix(secret.expose()),
            hash: hash_key_secret(secret.expose()),
            scopes,
            created_at: Utc::now(),
            last_used_at: None,
        };
        let audit = AuditRecord::new(
            key.org_id.clone(),
            principal.actor(),
            "api_key",
            key.id.to_string(),
            "api_key.created",
        )
        .after(views::snapshot(views::ApiKeyView::from(&key)));
        self.0.store.insert_api_key(&key, &audit).await?;
        Ok((key, secret))
    }

    /// The organization a call names (whose keys, whose records to
    /// export): the principal's own by default; another one (`org_id`) only for an admin, and only one that
    /// exists (`unknown` is the error otherwise).
    pub(super) async fn named_org(
        &self,
        principal: &Principal,
        org_id: Option<&str>,
        unknown: impl Fn() -> Error,
    ) -> Result<OrgId> {
        let Some(text) = org_id else {
            return Ok(principal.org().clone());
        };
        if text != principal.org().as_str() && !principal.allows(Scope::Admin) {
            return Err(Error::Forbidden(Scope::Admin));
        }
        let id = OrgId::parse(text).map_err(|_| unknown())?;
        self.0.store.get_org(&id).await?.ok_or_else(unknown)?;
        Ok(id)
    }

    /// An organization's keys (their prefixes, never a secret): the
    /// principal's own, or with `org_id` any organization's for an admin.
    pub async fn api_keys(
        &self,
        principal: &Principal,
        org_id: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<ApiKey>> {
        principal.require(Scope::Manage)?;
        let org = self
            .named_org(principal, org_id, || Error::NotFound("organization"))
            .await?;
        Ok(self.0.store.list_api_keys(&org, page).await?)
    }

    /// Revokes a key: from now on it authenticates nothing. A key of the
    /// principal's organization, or of any organization for an admin (the
    /// audit record goes to the key's organization).
    pub async fn revoke_api_key(&self, principal: &Principal, id: &ApiKeyId) -> Result<()> {
        principal.require(Scope::Manage)?;
        let org = if principal.allows(Scope::Admin) {
            self.0
                .ownership
                .owner_of(id.as_str())
                .await?
                .ok_or(Error::NotFound("API key"))?
        } else {
            principal.org().clone()
        };
        let audit = AuditRecord::new(
            org.clone(),
            principal.actor(),
            "api_key",
            id.to_string(),
            "api_key.revoked",
        );
        if !self.0.store.delete_api_key(&org, id, &audit).await? {
            return Err(Error::NotFound("API key"));
        }
        self.0.keys.clear();
        Ok(())
    }

    /// The key a bearer token names, or `Unauthorized`. Verified keys are
    /// cached briefly; each use is recorded (written in batches by
    /// `flush_key_use`).
    pub async fn authenticate(&self, token: &str) -> Result<ApiKey> {
        let token = token.trim();
        if token.is_empty() {
            return Err(Error::Unauthorized);
        }
        let hash = hash_key_secret(token);
        let keys = &self.0.keys;
        let key = match keys.verified.get(&hash) {
            Some(key) => key,
            None => {
                let key = self
                    .0
                    .store
                    .api_key_by_hash(&hash)
                    .await?
                    .ok_or(Error::Unauthorized)?;
                // The store looked the key up by its hash; compare once more
                // in constant time so that no index shortcut can leak timing.
                if !bool::from(key.hash.ct_eq(&hash)) {
                    return Err(Error::Unauthorized);
                }
                keys.verified.put(hash, key.clone());
                key
            }
        };
        keys.mark_used(&key.id);
        Ok(key)
    }

    /// Writes when keys were last used since the previous call.
    pub async fn flush_key_use(&self) -> Result<()> {
        let used = self.0.keys.take_used();
        if !used.is_empty() {
            self.0.store.touch_api_keys(&used).await?;
        }
        Ok(())
    }

    /// Re-seals every secret at rest under a new master key, without
    /// downtime (admin only). `new_key` (64 hex characters) is required when
    /// the key comes from the environment.
    pub async fn rotate_master_key(
        &self,
        principal: &Principal,
        new_key: Option<&str>,
    ) -> Result<MasterKeyRotated> {
        principal.require(Scope::Admin)?;
        let master = &self.0.master;
        if master.from_env() && new_key.is_none() {
            return Err(Error::Conflict(
                "the master key comes from FERRY_MASTER_KEY: pass new_key (64 hex characters) and set it in the environment before the next start".into(),
            ));
        }
        let (resealed, key_file) = master.rotate(new_key).await.map_err(|error| {
            tracing::error!(error = %format!("{error:#}"), "Master key rotation failed.");
            Error::invalid("new_key", format!("{error:#}"))
        })?;
        let audit = AuditRecord::new(
            principal.org().clone(),
            principal.actor(),
            "master_key",
            "master_key",
            "master_key.rotated",
        )
        .after(json!({"resealed": resealed}));
        self.0.store.append_audit(&[audit]).await?;
        Ok(MasterKeyRotated { resealed, key_file })
    }

    /// Records that `key` asked for objects (`ids`) that may belong to
    /// another organization: each one that does gets a
    /// `security.cross_org_denied` record in its owner's audit log. The
    /// caller was answered 404 as for an unknown id.
    pub async fn record_cross_org(&self, key: &ApiKey, path: &str, ids: &[String]) {
        for id in ids {
            let owner = match self.0.ownership.owner_of(id).await {
                Ok(Some(owner)) if owner != key.org_id => owner,
                Ok(_) => continue,
                Err(error) => {
                    tracing::warn!(%error, "Could not check who owns an id.");
                    continue;
                }
            };
            tracing::warn!(key_id = %key.id, %path, "An API key asked for another organization's object; answered 404.");
            let audit = AuditRecord::new(
                owner,
                key.id.to_string(),
                "security",
                id.clone(),
                "security.cross_org_denied",
            )
            .after(json!({"path": path, "key_id": key.id, "key_org_id": key.org_id}));
            if let Err(error) = self.0.store.append_audit(&[audit]).await {
                tracing::warn!(%error, "Could not record a cross-organization attempt.");
            }
        }
    }
}

/// Verified keys by hash, and when each was last used (flushed in batches).
pub(super) struct KeyCache {
    verified: TtlCache<[u8; 32], ApiKey>,
    used: Mutex<HashMap<ApiKeyId, DateTime<Utc>>>,
}

impl Default for KeyCache {
    fn default() -> Self {
        Self {
            verified: TtlCache::new(KEY_CACHE_TTL),
            used: Mutex::default(),
        }
    }
}

impl KeyCache {
    fn mark_used(&self, id: &ApiKeyId) {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        used.insert(id.clone(), Utc::now());
    }

    fn clear(&self) {
        self.verified.clear();
    }

    fn take_used(&self) -> Vec<(ApiKeyId, DateTime<Utc>)> {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        used.drain().collect()
    }
}
