use ferry_core::destination::Auth;
use ferry_core::secret::Secret;
use serde_json::{Value, json};

use super::render::Templates;
use super::*;
use crate::kind_config::KindConfig;
use crate::net_guard::NetworkPolicy;
use crate::template::sample_event;

fn basic() -> Auth {
    Auth::Basic {
        username: "ferry".into(),
        password: Secret::new("pw-secret".into()),
    }
}

fn base() -> Value {
    json!({"host": "smtp.example.com", "from": "ferry@example.com", "to": ["ops@example.com"]})
}

fn errors(config: Value, auth: &Auth) -> Vec<(String, String)> {
    EmailConfig::validate(&config, auth, &NetworkPolicy::allow_all())
        .unwrap_err()
        .into_iter()
        .map(|e| (e.field, e.message))
        .collect()
}

#[test]
fn defaults_are_filled_in() {
    let config = EmailConfig::validate(&base(), &basic(), &NetworkPolicy::default()).unwrap();
    assert_eq!(
        config,
        json!({
            "host": "smtp.example.com",
            "port": 587,
            "tls": "starttls",
            "from": "ferry@example.com",
            "to": ["ops@example.com"],
            "cc": [],
            "bcc": [],
            "subject": DEFAULT_SUBJECT,
            "body": DEFAULT_BODY,
            "attach_payload": false,
            "timeout_ms": 30000,
        })
    );
    let mut implicit = base();
    implicit["tls"] = json!("implicit");
    let config = EmailConfig::validate(&implicit, &Auth::None, &NetworkPolicy::default()).unwrap();
    assert_eq!(config["port"], 465);
}

#[test]
fn every_bad_field_is_named() {
    let found = errors(
        json!({
            "host": "smtp.example.com",
            "tls": "ssl",
            "from": "not an address",
            "to": ["ok@example.com", "broken"],
            "cc": "also broken",
            "subject": "{{ type ",
            "body": 7,
            "attach_payload": "yes",
            "priority": "high",
        }),
        &basic(),
    );
    let fields: Vec<_> = found.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        [
            "config.priority",
            "config.tls",
            "config.from",
            "config.to[1]",
            "config.cc[0]",
            "config.body",
            "config.attach_payload",
        ],
        "{found:?}"
    );
    let found = errors(
        json!({"host": "smtp.example.com", "from": "a@example.com"}),
        &basic(),
    );
    assert_eq!(found[0].0, "config.to");
    assert!(found[0].1.contains("at least one recipient"));
}

#[test]
fn templates_are_checked_when_the_destination_is_created() {
    let mut config = base();
    config["subject"] = json!("{{ type ");
    config["body"] =
        json!("{{ user.name }} {{ data.x }} {% for i in range(3) %}{{ i }}{% endfor %}");
    let found = errors(config, &basic());
    assert_eq!(found[0].0, "config.subject");
    assert!(
        found[0]
            .1
            .starts_with("is not a valid template: syntax error"),
        "{found:?}"
    );
    assert_eq!(found[1].0, "config.body");
    assert_eq!(
        found[1].1,
        "uses unknown variables: user (known: id, type, timestamp, org, data, metadata)"
    );
}

#[test]
fn templates_render_every_event_field_and_refuse_missing_ones() {
    let mut event = sample_event();
    event.data = json!({"order": {"id": "A-1"}, "items": [1, 2]});
    let templates = Templates::new(
        "{{ type }}:\n {{ data.order.id }}",
        "{{ id }} {{ org }} {{ timestamp }} {{ data.items | length }}",
    )
    .unwrap();
    let (subject, body) = templates.render(&event).unwrap();
    assert_eq!(subject, "sample.event: A-1", "subjects stay on one line");
    assert_eq!(
        body,
        format!(
            "{} {} {} 2",
            event.id,
            event.org_id,
            event.created_at.to_rfc3339()
        )
    );
    let strict = Templates::new("{{ data.order.missing }}", "x").unwrap();
    let error = strict.render(&event).unwrap_err();
    assert!(
        error.starts_with("config.subject: undefined value"),
        "{error}"
    );
    // Runaway templates stop on the fuel limit.
    let runaway = Templates::new("x", "{% for i in range(100000) %}{{ i }}{% endfor %}").unwrap();
    assert!(
        runaway
            .render(&event)
            .unwrap_err()
            .starts_with("config.body: ")
    );
}

#[test]
fn tls_none_is_for_loopback_relays_only() {
    let mut config = base();
    config["tls"] = json!("none");
    let found = errors(config.clone(), &basic());
    assert_eq!(found[0].0, "config.host");
    assert!(
        found[0].1.contains("only for a loopback relay"),
        "{found:?}"
    );
    config["host"] = json!("127.0.0.1");
    let config = EmailConfig::validate(&config, &basic(), &NetworkPolicy::allow_all()).unwrap();
    assert_eq!(config["port"], 25);
}

#[test]
fn auth_is_basic_xoauth2_or_none_and_the_guard_refuses_private_hosts() {
    let found = errors(
        base(),
        &Auth::Bearer {
            token: Secret::new("t".into()),
        },
    );
    assert_eq!(found[0].0, "auth.type");
    assert!(found[0].1.contains("basic, xoauth2 or none"));
    let xoauth2 = Auth::Xoauth2 {
        username: "ferry@example.com".into(),
        token: Secret::new(String::new()),
    };
    assert_eq!(errors(base(), &xoauth2)[0].0, "auth.token");

    let mut private = base();
    private["host"] = json!("10.0.0.5");
    let found = EmailConfig::validate(&private, &basic(), &NetworkPolicy::default()).unwrap_err();
    assert_eq!(found[0].field, "config.host");
    assert!(found[0].message.contains("private networks are refused"));
}
