//! Destinations: CRUD, connection test, secret rotation, enable/disable,
//! health. Secrets are shown once (the signing secret at creation or
//! rotation) and redacted everywhere else.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use chrono::{Duration, Utc};
use ferry_core::audit::AuditRecord;
use ferry_core::destination::{
    Auth, DEFAULT_MAX_IN_FLIGHT, Destination, DestinationKind, DestinationSecrets, Filter, Health,
    Signing, SigningKey,
};
use ferry_core::org::Scope;
use ferry_core::retry::RetryPolicy;
use ferry_core::signing::SigningSecret;
use ferry_core::{DestinationId, FieldError};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiQuery, PageParams, list_body, parse_optional_json};
use super::views;
use crate::state::AppState;

const MAX_NAME: usize = 200;
const MAX_IN_FLIGHT_LIMIT: u32 = 1_024;
const DEFAULT_GRACE_S: u64 = 86_400;
const MAX_GRACE_S: u64 = 30 * 86_400;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/v1/destinations", get(list).post(create))
        .route(
            "/v1/destinations/{id}",
            get(show).patch(update).delete(remove),
        )
        .route("/v1/destinations/{id}/test", post(test))
        .route("/v1/destinations/{id}/rotate-secret", post(rotate_secret))
        .route("/v1/destinations/{id}/enable", post(enable))
        .route("/v1/destinations/{id}/disable", post(disable))
        .route("/v1/destinations/{id}/health", get(health))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DestinationInput {
    name: Option<String>,
    kind: Option<String>,
    config: Option<Value>,
    auth: Option<Value>,
    filter: Option<Value>,
    retry: Option<Value>,
    default: Option<bool>,
    enabled: Option<bool>,
    max_in_flight: Option<u32>,
    signing: Option<SigningInput>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SigningInput {
    secret: Option<String>,
    scheme: Option<String>,
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

    fn finish(self) -> ApiResult<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(self.0))
        }
    }
}

/// Applies `input` over `base` (a new destination or the stored one) and
/// validates the result. Returns the destination and a newly made signing
/// secret to show once, if any.
fn apply(
    state: &AppState,
    mut d: Destination,
    input: DestinationInput,
    creating: bool,
) -> ApiResult<(Destination, Option<SigningSecret>)> {
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
        Some(config) => match state
            .inner()
            .catalog
            .validate(d.kind, &config, &d.secrets.auth)
        {
            Ok(normalized) => d.config = normalized,
            Err(e) => errors.0.extend(e),
        },
        None if creating => errors.add("config", "is required"),
        None => {
            if let Err(e) = state
                .inner()
                .catalog
                .validate(d.kind, &d.config, &d.secrets.auth)
            {
                errors.0.extend(e);
            }
        }
    }
    errors.finish()?;
    Ok((d, shown))
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<DestinationInput>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require(Scope::Manage)?;
    let now = Utc::now();
    let blank = Destination {
        id: DestinationId::generate(),
        org_id: caller.org().clone(),
        name: String::new(),
        kind: DestinationKind::Webhook,
        config: Value::Null,
        filter: Filter::default(),
        retry: RetryPolicy::default(),
        is_default: false,
        enabled: true,
        max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        secrets: DestinationSecrets::default(),
        health: Health::default(),
        created_at: now,
        updated_at: now,
    };
    let (d, secret) = apply(&state, blank, input, true)?;
    let view = views::destination(&d);
    let audit = AuditRecord::new(
        d.org_id.clone(),
        caller.actor(),
        "destination",
        d.id.to_string(),
        "destination.created",
    )
    .after(view.clone());
    state.store().insert_destination(&d, &audit).await?;
    state.inner().routes.invalidate(&d.org_id);
    let mut body = view;
    if let Some(secret) = secret {
        show_once(&mut body, &secret);
    }
    Ok((StatusCode::CREATED, Json(body)))
}

/// A new signing secret is shown once: an HMAC secret itself (the receiver
/// needs it), an Ed25519 key only by its public half (Ferry keeps the rest).
fn show_once(body: &mut Value, secret: &SigningSecret) {
    match secret.public_key() {
        Some(public) => body["signing_public_key"] = json!(public),
        None => body["signing_secret"] = json!(secret.expose()),
    }
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(p): ApiQuery<PageParams>,
) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    let page = state
        .store()
        .list_destinations(caller.org(), p.page()?)
        .await?;
    Ok(Json(list_body(
        page.items.iter().map(views::destination).collect(),
        page.next,
    )))
}

async fn load(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Destination> {
    let id = DestinationId::parse(id).map_err(|_| ApiError::NotFound("destination"))?;
    state
        .store()
        .get_destination(caller.org(), &id)
        .await?
        .ok_or(ApiError::NotFound("destination"))
}

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    Ok(Json(views::destination(&load(&state, &caller, &id).await?)))
}

/// Stores a changed destination with its audit record and tells the
/// dispatcher and the router.
async fn save(
    state: &AppState,
    caller: &Caller,
    before: &Destination,
    mut after: Destination,
    action: &str,
) -> ApiResult<Destination> {
    after.updated_at = Utc::now();
    let audit = AuditRecord::new(
        after.org_id.clone(),
        caller.actor(),
        "destination",
        after.id.to_string(),
        action,
    )
    .before(views::destination(before))
    .after(views::destination(&after));
    if !state.store().update_destination(&after, &audit).await? {
        return Err(ApiError::NotFound("destination"));
    }
    state.inner().routes.invalidate(&after.org_id);
    state
        .inner()
        .dispatch
        .destination_changed(&after.id, action == "destination.enabled");
    Ok(after)
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<DestinationInput>,
) -> ApiResult<Json<Value>> {
    caller.require(Scope::Manage)?;
    let before = load(&state, &caller, &id).await?;
    let (after, _) = apply(&state, before.clone(), input, false)?;
    let after = save(&state, &caller, &before, after, "destination.updated").await?;
    Ok(Json(views::destination(&after)))
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(Scope::Manage)?;
    let d = load(&state, &caller, &id).await?;
    let audit = AuditRecord::new(
        d.org_id.clone(),
        caller.actor(),
        "destination",
        d.id.to_string(),
        "destination.deleted",
    )
    .before(views::destination(&d));
    if !state
        .store()
        .delete_destination(caller.org(), &d.id, &audit)
        .await?
    {
        return Err(ApiError::NotFound("destination"));
    }
    state.inner().routes.invalidate(&d.org_id);
    state.inner().dispatch.destination_changed(&d.id, false);
    Ok(StatusCode::NO_CONTENT)
}

async fn test(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(Scope::Manage)?;
    let d = load(&state, &caller, &id).await?;
    let report = match state.inner().catalog.build(&d) {
        Ok(deliverer) => deliverer.check().await,
        Err(error) => ferry_core::ports::CheckReport {
            ok: false,
            message: error,
        },
    };
    Ok(Json(json!({"ok": report.ok, "message": report.message})))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateInput {
    grace_period_s: Option<u64>,
    secret: Option<String>,
}

async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    caller.require(Scope::Manage)?;
    let input: RotateInput = parse_optional_json(&body)?;
    let grace = input.grace_period_s.unwrap_or(DEFAULT_GRACE_S);
    if grace > MAX_GRACE_S {
        return Err(ApiError::validation(vec![FieldError::new(
            "grace_period_s",
            format!("must be at most {MAX_GRACE_S}"),
        )]));
    }
    let new_secret =
        match input.secret {
            Some(s) => Some(SigningSecret::parse(&s).map_err(|e| {
                ApiError::validation(vec![FieldError::new("secret", e.to_string())])
            })?),
            None => None,
        };
    let before = load(&state, &caller, &id).await?;
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
    save(
        &state,
        &caller,
        &before,
        after,
        "destination.secret_rotated",
    )
    .await?;
    let mut body = json!({"previous_secret_expires_at": expires_at});
    show_once(&mut body, &new_secret);
    Ok(Json(body))
}

async fn set_enabled(
    state: AppState,
    caller: Caller,
    id: String,
    enabled: bool,
) -> ApiResult<Json<Value>> {
    caller.require(Scope::Manage)?;
    let before = load(&state, &caller, &id).await?;
    let mut after = before.clone();
    after.enabled = enabled;
    let action = if enabled {
        "destination.enabled"
    } else {
        "destination.disabled"
    };
    if enabled {
        after.health.consecutive_failures = 0;
        after.health.next_probe_at = None;
        after.health.probe_backoff_ms = 0;
    }
    let after = save(&state, &caller, &before, after, action).await?;
    Ok(Json(views::destination(&after)))
}

async fn enable(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    set_enabled(state, caller, id, true).await
}

async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    set_enabled(state, caller, id, false).await
}

async fn health(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    let d = load(&state, &caller, &id).await?;
    let live = state.inner().dispatch.health(&d.id);
    Ok(Json(views::health(&d, live.as_ref().unwrap_or(&d.health))))
}
