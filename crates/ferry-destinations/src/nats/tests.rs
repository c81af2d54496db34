//! Pure tests of the nats kind: config validation and subjects.

use ferry_core::destination::Auth;
use ferry_core::secret::Secret;
use serde_json::{Value, json};

use super::NatsConfig;
use super::config::check_subject;
use crate::kind_config::KindConfig;
use crate::net_guard::NetworkPolicy;

fn fields(config: Value, auth: &Auth) -> Vec<String> {
    NatsConfig::validate(&config, auth, &NetworkPolicy::allow_all())
        .unwrap_err()
        .into_iter()
        .map(|e| e.field)
        .collect()
}

#[test]
fn a_minimal_config_gets_its_defaults() {
    let normalized = NatsConfig::validate(
        &json!({"servers": ["nats://a:4222", "nats://b"], "subject": "events.{type}"}),
        &Auth::None,
        &NetworkPolicy::allow_all(),
    )
    .unwrap();
    assert_eq!(
        normalized,
        json!({"servers": ["nats://a:4222", "nats://b"], "subject": "events.{type}",
               "stream": null, "timeout_ms": 10000, "tls": null})
    );
}

#[test]
fn each_invalid_field_is_named() {
    let cases = [
        (json!({"subject": "s"}), "config.servers"),
        (json!({"servers": [], "subject": "s"}), "config.servers"),
        (
            json!({"servers": "nats://a", "subject": "s"}),
            "config.servers",
        ),
        (
            json!({"servers": ["nats://a", "http://b"], "subject": "s"}),
            "config.servers.1",
        ),
        (
            json!({"servers": ["nats://u:p@a"], "subject": "s"}),
            "config.servers.0",
        ),
        (json!({"servers": ["nats://a"]}), "config.subject"),
        (
            json!({"servers": ["nats://a"], "subject": "events.*"}),
            "config.subject",
        ),
        (
            json!({"servers": ["nats://a"], "subject": "a b"}),
            "config.subject",
        ),
        (
            json!({"servers": ["nats://a"], "subject": "s", "stream": "a.b"}),
            "config.stream",
        ),
        (
            json!({"servers": ["nats://a"], "subject": "s", "tls": {}}),
            "config.tls",
        ),
    ];
    for (config, field) in cases {
        assert_eq!(fields(config.clone(), &Auth::None), [field], "{config}");
    }
    let key = Auth::AccessKey {
        access_key_id: "a".into(),
        secret_access_key: Secret::new("s".into()),
        session_token: None,
    };
    assert_eq!(
        fields(json!({"servers": ["nats://a"], "subject": "s"}), &key),
        ["auth.type"]
    );
}

#[test]
fn subjects_are_dot_separated_tokens_without_wildcards() {
    for good in ["events", "events.order-created", "a.b.c_d"] {
        assert!(check_subject(good).is_ok(), "{good}");
    }
    for bad in ["", "a..b", ".a", "a.", "a.>", "*", "a\tb"] {
        assert!(check_subject(bad).is_err(), "{bad}");
    }
}
