//! Pure tests of the amqp kind: config validation. Publishing against the
//! real broker is in the crate's integration tests.

use ferry_core::destination::Auth;
use ferry_core::secret::Secret;
use serde_json::{Value, json};

use super::AmqpConfig;
use crate::kind_config::KindConfig;
use crate::net_guard::NetworkPolicy;

fn fields(config: Value, auth: &Auth) -> Vec<String> {
    AmqpConfig::validate(&config, auth, &NetworkPolicy::allow_all())
        .unwrap_err()
        .into_iter()
        .map(|e| e.field)
        .collect()
}

#[test]
fn a_minimal_config_gets_its_defaults() {
    let normalized = AmqpConfig::validate(
        &json!({"url": "amqp://broker/%2f"}),
        &Auth::None,
        &NetworkPolicy::allow_all(),
    )
    .unwrap();
    assert_eq!(
        normalized,
        json!({"url": "amqp://broker/%2f", "exchange": "", "routing_key": "{type}",
               "persistent": true, "mandatory": true, "headers": {}, "timeout_ms": 10000,
               "tls": null})
    );
}

#[test]
fn each_invalid_field_is_named() {
    let cases = [
        (json!({}), "config.url"),
        (json!({"url": "redis://broker"}), "config.url"),
        (json!({"url": "amqp://guest:guest@broker"}), "config.url"),
        (
            json!({"url": "amqp://broker?auth_mechanism=external"}),
            "config.url",
        ),
        (
            json!({"url": "amqp://broker", "exchange": "a b"}),
            "config.exchange",
        ),
        (
            json!({"url": "amqp://broker", "exchange": "x".repeat(256)}),
            "config.exchange",
        ),
        (
            json!({"url": "amqp://broker", "routing_key": "{nope}"}),
            "config.routing_key",
        ),
        (
            json!({"url": "amqp://broker", "persistent": "yes"}),
            "config.persistent",
        ),
        (
            json!({"url": "amqp://broker", "headers": {"webhook-id": "x"}}),
            "config.headers.webhook-id",
        ),
        (
            json!({"url": "amqp://broker", "headers": {"x-n": 1}}),
            "config.headers.x-n",
        ),
        (
            json!({"url": "amqp://broker", "headers": []}),
            "config.headers",
        ),
        (
            json!({"url": "amqp://broker", "queue": "q"}),
            "config.queue",
        ),
        (json!({"url": "amqp://broker", "tls": {}}), "config.tls"),
    ];
    for (config, field) in cases {
        assert_eq!(fields(config.clone(), &Auth::None), [field], "{config}");
    }
}

#[test]
fn auth_types_are_checked() {
    let config = json!({"url": "amqp://broker"});
    let token = Auth::Bearer {
        token: Secret::new("t".into()),
    };
    assert_eq!(fields(config.clone(), &token), ["auth.type"]);
    let half = Auth::ClientCertificate {
        certificate: "x".into(),
        private_key: Secret::new("y".into()),
        username: Some("u".into()),
        password: None,
    };
    assert_eq!(
        fields(json!({"url": "amqps://broker"}), &half),
        ["auth.certificate", "auth.private_key", "auth.password"]
    );
}

#[test]
fn the_ssrf_guard_refuses_private_literals() {
    let errors = AmqpConfig::validate(
        &json!({"url": "amqp://192.168.1.10:5672"}),
        &Auth::None,
        &NetworkPolicy::default(),
    )
    .unwrap_err();
    assert_eq!(errors[0].field, "config.url");
    assert!(errors[0].message.contains("private"), "{errors:?}");
}
