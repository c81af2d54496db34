//! The mqtt config, `{"url", "topic", "qos", "retain", "client_id",
//! "timeout_ms", "tls"}`, and its pure validation together with the
//! destination's auth.

use ferry_core::FieldError;
use ferry_core::destination::Auth;
use serde_json::{Value, json};
use url::Url;

use crate::client::auth::{self, UserName};
use crate::endpoint;
use crate::fields::Fields;
use crate::kind_config::KindConfig;
use crate::net_guard::NetworkPolicy;
use crate::template::Template;
use crate::tls::{self, TlsConfig};

/// Default limit of connecting and of one publish (until its ack).
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// Largest accepted `timeout_ms` (five minutes).
pub const MAX_TIMEOUT_MS: u64 = 300_000;
const MAX_TOPIC: usize = 4096;
/// MQTT 5 allows 23 characters everywhere; brokers often allow more.
const MAX_CLIENT_ID: usize = 64;
const KNOWN: &[&str] = &[
    "url",
    "topic",
    "qos",
    "retain",
    "client_id",
    "timeout_ms",
    "tls",
];

/// An mqtt destination's config, validated.
#[derive(Debug, Clone)]
pub struct MqttConfig {
    pub url: Url,
    pub topic: Template,
    /// 1 (PUBACK) or 2 (PUBCOMP).
    pub qos: u8,
    pub retain: bool,
    /// `None`: a fresh id per connection (`ferry-…`), so that several Ferry
    /// processes never take each other's session over.
    pub client_id: Option<String>,
    pub timeout_ms: u64,
    pub tls: Option<TlsConfig>,
}

impl KindConfig for MqttConfig {
    type Context = NetworkPolicy;

    /// Checks an mqtt config and its auth without I/O; returns the config with
    /// defaults filled in (`qos: 1`, `retain: false`, `client_id: null`,
    /// `timeout_ms: 10000`) or one error per invalid field.
    fn parse(config: &Value, auth: &Auth, policy: &NetworkPolicy) -> Result<Self, Vec<FieldError>> {
        let mut fields = Fields::new(config, KNOWN);
        fields.extend(check_auth(auth));
        let url = endpoint::read_url(&mut fields, |text| check_url(text, policy));
        let topic = fields.template("topic", None);
        if let Some(topic) = &topic
            && let Err(message) = check_topic(topic.as_str())
        {
            fields.error("topic", message);
        }
        let qos = match fields.raw("qos") {
            None => Some(1),
            Some(Value::Number(n)) if n.as_u64() == Some(1) || n.as_u64() == Some(2) => {
                n.as_u64().map(|q| q as u8)
            }
            Some(_) => {
                fields.error(
                    "qos",
                    "must be 1 (PUBACK) or 2 (PUBCOMP): QoS 0 has no acknowledgement",
                );
                None
            }
        };
        let retain = fields.bool_or("retain", false);
        let client_id = fields.optional_str("client_id").and_then(|id| match id {
            Some(id)
                if id.is_empty()
                    || id.len() > MAX_CLIENT_ID
                    || id.chars().any(|c| c.is_control()) =>
            {
                fields.error(
                    "client_id",
                    format!("must be 1 to {MAX_CLIENT_ID} characters without control characters"),
                );
                None
            }
            id => Some(id),
        });
        let timeout_ms = fields.u64_in("timeout_ms", 1, MAX_TIMEOUT_MS, DEFAULT_TIMEOUT_MS);
        let uses_tls = url.as_ref().map(|u| u.scheme() == "mqtts");
        let tls = tls::read_with_auth(&mut fields, auth, uses_tls, "use an mqtts:// URL");
        let config = (|| {
            Some(MqttConfig {
                url: url?,
                topic: topic?,
                qos: qos?,
                retain: retain?,
                client_id: client_id?,
                timeout_ms: timeout_ms?,
                tls: tls?,
            })
        })();
        fields.finish(config)
    }

    /// The config as stored, defaults filled in.
    fn to_json(&self) -> Value {
        json!({
            "url": self.url.as_str(),
            "topic": self.topic.as_str(),
            "qos": self.qos,
            "retain": self.retain,
            "client_id": self.client_id,
            "timeout_ms": self.timeout_ms,
            "tls": self.tls.as_ref().map(TlsConfig::to_json),
        })
    }
}

fn check_url(text: &str, policy: &NetworkPolicy) -> Result<Url, String> {
    endpoint::check_broker_url(
        text,
        &["mqtt", "mqtts"],
        "an mqtt:// or mqtts:// URL",
        "type basic",
        policy,
    )
}

/// A topic to publish to: not empty, no wildcards (`+`, `#`), no NUL.
pub fn check_topic(topic: &str) -> Result<(), String> {
    if topic.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if topic.len() > MAX_TOPIC {
        return Err(format!("must be at most {MAX_TOPIC} bytes"));
    }
    if topic.contains(['+', '#']) {
        return Err(
            "must not contain wildcards (`+`, `#`): events are published to one topic".to_owned(),
        );
    }
    if topic.contains('\0') {
        return Err("must not contain NUL".to_owned());
    }
    Ok(())
}

fn check_auth(auth: &Auth) -> Vec<FieldError> {
    auth::check(
        auth,
        "mqtt",
        UserName::Optional,
        "none, basic or client_certificate",
    )
}
