//! Destinations: create and change them (validated field by field, every
//! error at once), delete, enable and disable, rotate the signing secret,
//! test the connection, and read their health. Each change is stored with
//! its audit record (secrets redacted) in one transaction, then the routes
//! are refreshed and the dispatcher reloads the destination. A new signing
//! secret is returned once, to be shown once.

use chrono::{DateTime, Duration, Utc};
use ferry_core::alerting::AlertSettings;
use ferry_core::audit::AuditRecord;
use ferry_core::destination::{
    Auth, DEFAULT_MAX_IN_FLIGHT, Destination, DestinationKind, DestinationSecrets, Filter, Health,
    Signing, SigningKey,
};
use ferry_core::org::Scope;
use ferry_core::page::{Page, PageRequest};
use ferry_core::ports::CheckReport;
use ferry_core::retry::RetryPolicy;
use ferry_core::signing::SigningSecret;
use ferry_core::{DestinationId, FieldError, OrgId};
use ferry_destinations::Catalog;
use serde::Deserialize;
use serde_json::Value;

use super::{App, Error, Principal, Result};
use crate::views;

const MAX_NAME: usize = 200;
/// The audit actor of what Ferry does by itself.
const SYSTEM_ACTOR: &str = "system";
const MAX_IN_FLIGHT_LIMIT: u32 = 1_024;
const DEFAULT_GRACE_S: u64 = 86_400;
const MAX_GRACE_S: u64 = 30 * 86_400;

/// The body of `POST /v1/destinations` (and of `PATCH`, where every field
/// is optional and an absent one keeps its value).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({
    "name": "billing hook", "kind": "webhook",
    "config": {"url": "https://billing.example.com/hooks/ferry", "headers": {}, "timeout_ms": 10000},
    "auth": {"type": "bearer", "token": "s3cr3t-billing-token"},
    "filter": {"event_types": ["order.*"]},
    "retry": {"max_retries": 5, "initial_backoff_ms": 1000, "multiplier": 2.0, "max_backoff_ms": 3600000},
    "default": false
})))]
pub struct DestinationInput {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub config: Option<Value>,
    pub auth: Option<Value>,
    pub filter: Option<Value>,
    pub retry: Option<Value>,
    pub default: Option<bool>,
    pub enabled: Option<bool>,
    pub max_in_flight: Option<u32>,
    pub signing: Option<SigningInput>,
    /// Overrides of the organization's alert settings (`{}` clears them).
    #[schema(value_type = Option<AlertSettings>)]
    pub alerts: Option<Value>,
}

/// Bring your own signing secret (`whsec_…`), or choose `ed25519` (`v1a`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}), json!({"scheme": "ed25519"})))]
pub struct SigningInput {
    pub secret: Option<String>,
    pub scheme: Option<String>,
}

/// Field-by-field validation that gathers every error before answering.
#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    fn typed<T: serde::de::DeserializeOwned + Default>(
        &mut self,
        field: &str,
        v: Option<Value>,
    ) -> Option<T> {
        match v {
            None | Some(Value::Null) => None,
            Some(v) => match serde_json::from_value(v) {
                Ok(t) => Some(t),
                Err(e) => {
                    self.add(field, e.to_string());
                    Some(T::default())
                }
            },
        }
    }

    fn finish(self) -> Result<()> {
        Error::check(self.0)
    }
}

/// A destination with nothing set yet, for `apply` to fill in.
pub(super) fn blank(id: DestinationId, org_id: OrgId, now: DateTime<Utc>) -> Destination {
    Destination {
        id,
        org_id,
        name: String::new(),
        kind: DestinationKind::Webhook,
        config: Value::Null,
        filter: Filter::default(),
        retry: RetryPolicy::default(),
        is_default: false,
        enabled: true,
        max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        alerts: AlertSettings::default(),
        secrets: DestinationSecrets::default(),
        health: Health::default(),
        created_at: now,
        updated_at: now,
    }
}

/// Applies `input` over `base` (a new destination or the stored one) and
/// validates the result. Returns the destination and a newly made signing
/// secret to show once, if any.
pub(super) fn apply(
    catalog: &Catalog,
    mut d: Destination,
    input: DestinationInput,
    creating: bool,
) -> Result<(Destination, Option<SigningSecret>)> {
    let mut errors = Errors::default();
    if let Some(name) = input.name {
        if name.trim().is_empty() || name.len() > MAX_NAME {
            errors.add("name", format!("must be 1 to {MAX_NAME} characters"));
        }
        d.name = name;
    } else if creating {
        errors.add("name", "is required");
    }
    match (input.kind, creating) {
        (Some(kind), true) => match kind.parse::<DestinationKind>() {
            Ok(k) => d.kind = k,
            Err(e) => errors.add("kind", e),
        },
        (None, true) => errors.add("kind", "is required"),
        (Some(kind), false) if kind != d.kind.as_str() => {
            errors.add("kind", "cannot be changed; create a new destination")
        }
        _ => {}
    }
    if let Some(auth) = input.auth {
        match serde_json::from_value::<Auth>(auth) {
            Ok(a) => d.secrets.auth = a,
            Err(e) => errors.add("auth", format!("{e} (types: none, bearer, basic, api_key)")),
        }
    }
    if let Some(filter) = errors.typed::<Filter>("filter", input.filter) {
        for (i, p) in filter.event_types.iter().enumerate() {
            if p.is_empty() || p.len() > 256 {
                errors.add(
                    &format!("filter.event_types[{i}]"),
                    "must be 1 to 256 characters",
                );
            }
        }
        d.filter = filter;
    }
    if let Some(retry) = errors.typed::<RetryPolicy>("retry", input.retry) {
        if let Err(e) = retry.validate() {
            errors.0.extend(e);
        }
        d.retry = retry;
    }
    if let Some(default) = input.default {
        d.is_default = default;
    }
    if let Some(enabled) = input.enabled {
        d.enabled = enabled;
    }
    if let Some(n) = input.max_in_flight {
        if n == 0 || n > MAX_IN_FLIGHT_LIMIT {
            errors.add(
                "max_in_flight",
                format!("must be between 1 and {MAX_IN_FLIGHT_LIMIT}"),
            );
        }
        d.max_in_flight = n;
    }
    if let Some(alerts) = errors.typed::<AlertSettings>("alerts", input.alerts) {
        errors.0.extend(alerts.validate("alerts"));
        d.alerts = alerts;
    }
    let mut shown = None;
    if let Some(signing) = input.signing {
        let asymmetric = match signing.scheme.as_deref() {
            None => None,
            Some("v1" | "hmac-sha256") => Some(false),
            Some("v1a" | "ed25519") => Some(true),
            Some(other) => {
                errors.add(
                    "signing.scheme",
                    format!("`{other}` is unknown (supported: v1, ed25519)"),
                );
                None
            }
        };
        let secret = match signing.secret {
            Some(text) => match SigningSecret::parse(&text) {
                Ok(s) if asymmetric.is_some_and(|a| a != (s.scheme() == "v1a")) => {
                    errors.add("signing.secret", "does not match signing.scheme");
                    None
                }
                Ok(s) => Some(s),
                Err(e) => {
                    errors.add("signing.secret", e.to_string());
                    None
                }
            },
            None if asymmetric == Some(true) => {
                Some(SigningSecret::generate_ed25519()).inspect(|s| shown = Some(s.clone()))
            }
            None => Some(SigningSecret::generate()).inspect(|s| shown = Some(s.clone())),
        };
        if let Some(secret) = secret {
            d.secrets.signing = Signing {
                secrets: vec![SigningKey {
                    secret,
                    expires_at: None,
                }],
            };
        }
    } else if creating {
        let secret = SigningSecret::generate();
        d.secrets.signing = Signing {
            secrets: vec![SigningKey {
                secret: secret.clone(),
                expires_at: None,
            }],
        };
        shown = Some(secret);
    }
    match input.config {
        Some(config) => match catalog.validate(d.kind, &config, &d.secrets.auth) {
            Ok(normalized) => d.config = normalized,
            Err(e) => errors.0.extend(e),
        },
        None if creating => errors.add("config", "is required"),
        None => {
            if let Err(e) = catalog.validate(d.kind, &d.config, &d.secrets.auth) {
                errors.0.extend(e);
            }
        }
    }
    errors.finish()?;
    Ok((d, shown))
}

/// The body of `POST /v1/destinations/{id}/rotate-secret`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"grace_period_s": 86400})))]
pub struct RotateInput {
    /// How long the previous secret stays valid (default a day, at most 30).
    pub grace_period_s: Option<u64>,
    /// Bring your own new secret (`whsec_…`); else one is made.
    pub secret: Option<String>,
}

/// A new signing secret, to show once, and when the previous ones expire.
#[derive(Debug, Clone)]
pub struct Rotated {
    pub secret: SigningSecret,
    pub previous_expires_at: DateTime<Utc>,
}

impl App {
    /// Creates a destination; returns it and its new signing secret (unless
    /// the caller brought one), to show once.
    pub async fn create_destination(
        &self,
        principal: &Principal,
        input: DestinationInput,
    ) -> Result<(Destination, Option<SigningSecret>)> {
        principal.require(Scope::Manage)?;
        let now = Utc::now();
        let blank = blank(DestinationId::generate(), principal.org().clone(), now);
        let (d, secret) = apply(&self.0.catalog, blank, input, true)?;
        let audit = AuditRecord::new(
            d.org_id.clone(),
            principal.actor(),
            "destination",
            d.id.to_string(),
            "destination.created",
        )
        .after(views::snapshot(views::DestinationView::from(&d)));
        self.0.store.insert_destination(&d, &audit).await?;
        self.0.routes.invalidate(&d.org_id);
        Ok((d, secret))
    }

    /// The organization's destinations, oldest first.
    pub async fn destinations(
        &self,
        principal: &Principal,
        page: PageRequest,
    ) -> Result<Page<Destination>> {
        principal.require(Scope::Read)?;
        Ok(self
            .0
            .store
            .list_destinations(principal.org(), page)
            .await?)
    }

    pub async fn destination(
        &self,
        principal: &Principal,
        id: &DestinationId,
    ) -> Result<Destination> {
        principal.require(Scope::Read)?;
        self.load_destination(principal, id).await
    }

    async fn load_destination(
        &self,
        principal: &Principal,
        id: &DestinationId,
    ) -> Result<Destination> {
        self.0
            .store
            .get_destination(principal.org(), id)
            .await?
            .ok_or(Error::NotFound("destination"))
    }

    /// Changes the fields `input` names; the kind cannot change.
    pub async fn update_destination(
        &self,
        principal: &Principal,
        id: &DestinationId,
        input: DestinationInput,
    ) -> Result<Destination> {
        principal.require(Scope::Manage)?;
        let before = self.load_destination(principal, id).await?;
        let (after, _) = apply(&self.0.catalog, before.clone(), input, false)?;
        self.save_destination(principal, &before, after, "destination.updated")
            .await
    }

    /// Deletes a destination; its unfinished deliveries become `failed`.
    pub async fn delete_destination(
        &self,
        principal: &Principal,
        id: &DestinationId,
    ) -> Result<()> {
        principal.require(Scope::Manage)?;
        let d = self.load_destination(principal, id).await?;
        let audit = AuditRecord::new(
            d.org_id.clone(),
            principal.actor(),
            "destination",
            d.id.to_string(),
            "destination.deleted",
        )
        .before(views::snapshot(views::DestinationView::from(&d)));
        if !self
            .0
            .store
            .delete_destination(principal.org(), &d.id, &audit)
            .await?
        {
            return Err(Error::NotFound("destination"));
        }
        self.0.routes.invalidate(&d.org_id);
        self.0.dispatch.destination_changed(&d.id, false);
        Ok(())
    }

    /// Connects and authenticates for real.
    pub async fn test_destination(
        &self,
        principal: &Principal,
        id: &DestinationId,
    ) -> Result<CheckReport> {
        principal.require(Scope::Manage)?;
        let d = self.load_destination(principal, id).await?;
        Ok(match self.0.catalog.build(&d) {
            Ok(deliverer) => deliverer.check().await,
            Err(message) => CheckReport { ok: false, message },
        })
    }

    /// Makes a new signing secret the one that signs; the previous ones stay
    /// valid for the grace period (receivers accept either meanwhile).
    pub async fn rotate_signing_secret(
        &self,
        principal: &Principal,
        id: &DestinationId,
        input: RotateInput,
    ) -> Result<Rotated> {
        principal.require(Scope::Manage)?;
        let grace = input.grace_period_s.unwrap_or(DEFAULT_GRACE_S);
        if grace > MAX_GRACE_S {
            return Err(Error::invalid(
                "grace_period_s",
                format!("must be at most {MAX_GRACE_S}"),
            ));
        }
        let new_secret = input
            .secret
            .map(|s| SigningSecret::parse(&s).map_err(|e| Error::invalid("secret", e.to_string())))
            .transpose()?;
        let before = self.load_destination(principal, id).await?;
        let new_secret = match (new_secret, before.secrets.signing.secrets.first()) {
            (Some(s), _) => s,
            (None, Some(current)) => current.secret.generate_like(),
            (None, None) => SigningSecret::generate(),
        };
        let now = Utc::now();
        let expires_at = now + Duration::seconds(grace as i64);
        let mut after = before.clone();
        let mut keys: Vec<SigningKey> = after
            .secrets
            .signing
            .secrets
            .into_iter()
            .filter(|k| k.expires_at.is_none_or(|at| at > now))
            .map(|mut k| {
                if k.expires_at.is_none() {
                    k.expires_at = Some(expires_at);
                }
                k
            })
            .filter(|k| grace > 0 || k.expires_at.is_none())
            .collect();
        keys.insert(
            0,
            SigningKey {
                secret: new_secret.clone(),
                expires_at: None,
            },
        );
        after.secrets.signing = Signing { secrets: keys };
        self.save_destination(principal, &before, after, "destination.secret_rotated")
            .await?;
        Ok(Rotated {
            secret: new_secret,
            previous_expires_at: expires_at,
        })
    }

    /// Enables (resetting the breaker) or disables a destination; a disabled
    /// destination's deliveries wait.
    pub async fn set_destination_enabled(
        &self,
        principal: &Principal,
        id: &DestinationId,
        enabled: bool,
    ) -> Result<Destination> {
        principal.require(Scope::Manage)?;
        let before = self.load_destination(principal, id).await?;
        let mut after = before.clone();
        after.enabled = enabled;
        let action = if enabled {
            "destination.enabled"
        } else {
            "destination.disabled"
        };
        if enabled {
            after.health.reset_on_enable();
        }
        self.save_destination(principal, &before, after, action)
            .await
    }

    /// A destination with its health: the dispatcher's live view when this
    /// process delivers, else the last one stored.
    pub async fn destination_health(
        &self,
        principal: &Principal,
        id: &DestinationId,
    ) -> Result<(Destination, Health)> {
        principal.require(Scope::Read)?;
        let d = self.load_destination(principal, id).await?;
        let live = self.0.dispatch.health(&d.id);
        let health = live.unwrap_or_else(|| d.health.clone());
        Ok((d, health))
    }

    /// Disables a destination that failed for too long, as `system`;
    /// whether it was enabled (an operator may have disabled or deleted it
    /// meanwhile).
    pub(super) async fn disable_failing_destination(
        &self,
        org: &OrgId,
        id: &DestinationId,
    ) -> Result<bool> {
        let Some(before) = self.0.store.get_destination(org, id).await? else {
            return Ok(false);
        };
        if !before.enabled {
            return Ok(false);
        }
        let mut after = before.clone();
        after.enabled = false;
        let system = Principal::in_process(org.clone(), SYSTEM_ACTOR);
        self.save_destination(&system, &before, after, "destination.disabled")
            .await?;
        Ok(true)
    }

    /// Stores a changed destination with its audit record and tells the
    /// dispatcher and the router.
    async fn save_destination(
        &self,
        principal: &Principal,
        before: &Destination,
        mut after: Destination,
        action: &str,
    ) -> Result<Destination> {
        after.updated_at = Utc::now();
        let audit = AuditRecord::new(
            after.org_id.clone(),
            principal.actor(),
            "destination",
            after.id.to_string(),
            action,
        )
        .before(views::snapshot(views::DestinationView::from(before)))
        .after(views::snapshot(views::DestinationView::from(&after)));
        if !self.0.store.update_destination(&after, &audit).await? {
            return Err(Error::NotFound("destination"));
        }
        self.0.routes.invalidate(&after.org_id);
        self.0
            .dispatch
            .destination_changed(&after.id, action == "destination.enabled");
        Ok(after)
    }
}
