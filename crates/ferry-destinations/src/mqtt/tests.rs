//! Pure tests of the mqtt kind: config validation and topics.

use ferry_core::destination::Auth;
use ferry_core::secret::Secret;
use serde_json::{Value, json};

use super::MqttConfig;
use super::config::check_topic;
use crate::kind_config::KindConfig;
use crate::net_guard::NetworkPolicy;

fn fields(config: Value, auth: &Auth) -> Vec<String> {
    MqttConfig::validate(&config, auth, &NetworkPolicy::allow_all())
        .unwrap_err()
        .into_iter()
        .map(|e| e.field)
        .collect()
}

#[test]
fn a_minimal_config_gets_its_defaults() {
    let normalized = MqttConfig::validate(
        &json!({"url": "mqtt://broker:1883", "topic": "events/{type}"}),
        &Auth::None,
        &NetworkPolicy::allow_all(),
    )
    .unwrap();
    assert_eq!(
        normalized,
        json!({"url": "mqtt://broker:1883", "topic": "events/{type}", "qos": 1, "retain": false,
               "client_id": null, "timeout_ms": 10000, "tls": null})
    );
}

#[test]
fn each_invalid_field_is_named() {
    let cases = [
        (json!({"topic": "t"}), "config.url"),
        (json!({"url": "tcp://broker", "topic": "t"}), "config.url"),
        (
            json!({"url": "mqtt://u:p@broker", "topic": "t"}),
            "config.url",
        ),
        (json!({"url": "mqtt://broker"}), "config.topic"),
        (
            json!({"url": "mqtt://broker", "topic": "a/+/b"}),
            "config.topic",
        ),
        (
            json!({"url": "mqtt://broker", "topic": "a/#"}),
            "config.topic",
        ),
        (
            json!({"url": "mqtt://broker", "topic": "t", "qos": 0}),
            "config.qos",
        ),
        (
            json!({"url": "mqtt://broker", "topic": "t", "qos": 3}),
            "config.qos",
        ),
        (
            json!({"url": "mqtt://broker", "topic": "t", "retain": 1}),
            "config.retain",
        ),
        (
            json!({"url": "mqtt://broker", "topic": "t", "client_id": ""}),
            "config.client_id",
        ),
        (
            json!({"url": "mqtt://broker", "topic": "t", "tls": {}}),
            "config.tls",
        ),
    ];
    for (config, field) in cases {
        assert_eq!(fields(config.clone(), &Auth::None), [field], "{config}");
    }
    let token = Auth::Bearer {
        token: Secret::new("t".into()),
    };
    assert_eq!(
        fields(json!({"url": "mqtt://broker", "topic": "t"}), &token),
        ["auth.type"]
    );
}

#[test]
fn topics_have_no_wildcards() {
    assert!(check_topic("events/order.created").is_ok());
    for bad in ["", "a/+", "#", "a\0b"] {
        assert!(check_topic(bad).is_err(), "{bad:?}");
    }
}
