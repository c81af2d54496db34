//! The public representation of each entity, secrets redacted: what the
//! API answers, what audit records keep as `before`/`after`, and what the
//! console shows.

use ferry_core::delivery::{Attempt, Delivery};
use ferry_core::destination::{Destination, Health};
use ferry_core::event::Event;
use ferry_core::org::{ApiKey, Org};
use ferry_core::source::{Extractor, Source};
use serde_json::{Value, json};

pub fn delivery_brief(d: &Delivery) -> Value {
    json!({"id": d.id, "destination_id": d.destination_id, "status": d.status})
}

pub fn delivery(d: &Delivery) -> Value {
    json!({
        "id": d.id,
        "event_id": d.event_id,
        "destination_id": d.destination_id,
        "status": d.status,
        "attempt_count": d.attempt_count,
        "next_attempt_at": d.next_attempt_at,
        "last_error": d.last_error,
        "created_at": d.created_at,
        "updated_at": d.updated_at,
    })
}

pub fn delivery_detail(d: &Delivery, attempts: &[Attempt], public_url: &str) -> Value {
    let mut v = delivery(d);
    v["attempts"] = attempts.iter().map(attempt).collect();
    v["links"] =
        json!({"ui": format!("{}/ui/deliveries/{}", public_url.trim_end_matches('/'), d.id)});
    v
}

fn attempt(a: &Attempt) -> Value {
    json!({
        "number": a.number,
        "started_at": a.started_at,
        "duration_ms": a.duration_ms,
        "outcome": a.outcome,
        "status_code": a.status_code,
        "error": a.error,
        "request": a.request,
        "response": a.response,
    })
}

pub fn event(e: &Event, deliveries: &[Delivery]) -> Value {
    json!({
        "id": e.id,
        "type": e.event_type,
        "data": e.data,
        "metadata": e.metadata,
        "idempotency_key": e.idempotency_key,
        "created_at": e.created_at,
        "deliveries": deliveries.iter().map(delivery).collect::<Vec<_>>(),
    })
}

pub fn destination(d: &Destination) -> Value {
    json!({
        "id": d.id,
        "name": d.name,
        "kind": d.kind,
        "config": d.config,
        "auth": d.secrets.auth.redacted(),
        "filter": d.filter,
        "retry": d.retry,
        "default": d.is_default,
        "enabled": d.enabled,
        "max_in_flight": d.max_in_flight,
        "state": d.state(),
        "signing": {
            "scheme": d.secrets.signing.secrets.first().map(|k| k.secret.scheme()),
            "public_key": d.secrets.signing.secrets.first().and_then(|k| k.secret.public_key()),
            "secrets": d.secrets.signing.secrets.iter()
                .map(|k| json!({"scheme": k.secret.scheme(), "public_key": k.secret.public_key(), "expires_at": k.expires_at}))
                .collect::<Vec<_>>(),
        },
        "created_at": d.created_at,
        "updated_at": d.updated_at,
    })
}

pub fn health(d: &Destination, h: &Health) -> Value {
    let total = h.success_count + h.failure_count;
    let rate = if total == 0 {
        None
    } else {
        Some(h.success_count as f64 / total as f64)
    };
    let state = if !d.enabled {
        "disabled"
    } else if h.next_probe_at.is_some() {
        "paused"
    } else {
        "healthy"
    };
    json!({
        "destination_id": d.id,
        "state": state,
        "consecutive_failures": h.consecutive_failures,
        "last_success_at": h.last_success_at,
        "last_failure_at": h.last_failure_at,
        "last_error": h.last_error,
        "success_count": h.success_count,
        "failure_count": h.failure_count,
        "success_rate": rate,
        "next_probe_at": h.next_probe_at,
    })
}

pub fn api_key(k: &ApiKey) -> Value {
    json!({
        "id": k.id,
        "name": k.name,
        "prefix": k.prefix,
        "scopes": k.scopes,
        "org_id": k.org_id,
        "created_at": k.created_at,
        "last_used_at": k.last_used_at,
    })
}

pub fn org(o: &Org) -> Value {
    json!({"id": o.id, "name": o.name, "alert_destinations": o.alert_destinations, "created_at": o.created_at})
}

pub fn source(s: &Source) -> Value {
    json!({
        "id": s.id,
        "url": format!("/in/{}", s.id),
        "name": s.name,
        "verification": s.verification.redacted(),
        "id_from": s.id_from.as_ref().map(Extractor::as_text),
        "type_from": s.type_from.as_text(),
        "required": s.required,
        "destinations": s.destinations,
        "created_at": s.created_at,
    })
}
