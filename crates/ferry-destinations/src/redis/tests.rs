//! Pure tests of the redis kind: config validation. Delivery against the
//! real server is in the crate's integration tests.

use ferry_core::destination::Auth;
use ferry_core::secret::Secret;
use serde_json::{Value, json};

use super::RedisConfig;
use crate::kind_config::KindConfig;
use crate::net_guard::NetworkPolicy;

fn fields(config: Value, auth: &Auth) -> Vec<String> {
    RedisConfig::validate(&config, auth, &NetworkPolicy::allow_all())
        .unwrap_err()
        .into_iter()
        .map(|e| e.field)
        .collect()
}

#[test]
fn a_minimal_config_gets_its_defaults() {
    let normalized = RedisConfig::validate(
        &json!({"url": "redis://cache:6379/2", "key": "events:{type}"}),
        &Auth::None,
        &NetworkPolicy::allow_all(),
    )
    .unwrap();
    assert_eq!(
        normalized,
        json!({"url": "redis://cache:6379/2", "mode": "stream", "key": "events:{type}",
               "maxlen": null, "timeout_ms": 10000, "tls": null})
    );
}

#[test]
fn each_invalid_field_is_named() {
    let cases = [
        (json!({"key": "k"}), "config.url"),
        (json!({"url": "http://cache", "key": "k"}), "config.url"),
        (
            json!({"url": "redis://u:pw@cache", "key": "k"}),
            "config.url",
        ),
        (json!({"url": "redis://cache/x", "key": "k"}), "config.url"),
        (
            json!({"url": "redis://cache?protocol=resp3", "key": "k"}),
            "config.url",
        ),
        (json!({"url": "redis://cache"}), "config.key"),
        (json!({"url": "redis://cache", "key": ""}), "config.key"),
        (
            json!({"url": "redis://cache", "key": "{nope}"}),
            "config.key",
        ),
        (
            json!({"url": "redis://cache", "key": "k", "mode": "queue"}),
            "config.mode",
        ),
        (
            json!({"url": "redis://cache", "key": "k", "mode": "list", "maxlen": 5}),
            "config.maxlen",
        ),
        (
            json!({"url": "redis://cache", "key": "k", "maxlen": 0}),
            "config.maxlen",
        ),
        (
            json!({"url": "redis://cache", "key": "k", "timeout_ms": 0}),
            "config.timeout_ms",
        ),
        (
            json!({"url": "redis://cache", "key": "k", "stream": "x"}),
            "config.stream",
        ),
        (
            json!({"url": "redis://cache", "key": "k", "tls": {}}),
            "config.tls",
        ),
        (
            json!({"url": "rediss://cache", "key": "k", "tls": {"ca_certificate": "nope"}}),
            "config.tls.ca_certificate",
        ),
        (
            json!({"url": "rediss://cache", "key": "k", "tls": {"verify": false}}),
            "config.tls.verify",
        ),
    ];
    for (config, field) in cases {
        assert_eq!(fields(config.clone(), &Auth::None), [field], "{config}");
    }
    let message = &RedisConfig::validate(
        &json!({"url": "redis://u:pw@cache", "key": "k"}),
        &Auth::None,
        &NetworkPolicy::allow_all(),
    )
    .unwrap_err()[0]
        .message;
    assert!(
        message.contains("auth") && !message.contains("pw"),
        "{message}"
    );
}

#[test]
fn auth_types_are_checked() {
    let config = json!({"url": "redis://cache", "key": "k"});
    let bearer = Auth::Bearer {
        token: Secret::new("t".into()),
    };
    assert_eq!(fields(config.clone(), &bearer), ["auth.type"]);
    let nameless = Auth::Basic {
        username: String::new(),
        password: Secret::new("pw".into()),
    };
    assert_eq!(fields(config.clone(), &nameless), ["auth.username"]);
    let bad_certificate = Auth::ClientCertificate {
        certificate: "not pem".into(),
        private_key: Secret::new("not a key".into()),
        username: None,
        password: None,
    };
    assert_eq!(
        fields(
            json!({"url": "rediss://cache", "key": "k"}),
            &bad_certificate
        ),
        ["auth.certificate", "auth.private_key"]
    );
    assert_eq!(fields(config, &bad_certificate).len(), 3);
}

#[test]
fn the_ssrf_guard_refuses_private_literals_and_localhost() {
    let strict = NetworkPolicy::default();
    for url in [
        "redis://127.0.0.1:6379",
        "redis://[::1]",
        "redis://localhost",
        "redis://10.0.0.5",
    ] {
        let errors = RedisConfig::validate(&json!({"url": url, "key": "k"}), &Auth::None, &strict)
            .unwrap_err();
        assert_eq!(errors[0].field, "config.url", "{url}");
        assert!(
            errors[0].message.contains("private networks are refused"),
            "{url}: {errors:?}"
        );
    }
}
