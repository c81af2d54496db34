//! The amqp config, `{"url", "exchange", "routing_key", "persistent",
//! "mandatory", "headers", "timeout_ms", "tls"}`, and its pure validation
//! together with the destination's auth.

use std::collections::BTreeMap;
use std::str::FromStr;

use ferry_core::FieldError;
use ferry_core::destination::Auth;
use lapin::uri::AMQPUri;
use serde_json::{Value, json};
use url::Url;

use crate::client::auth::{self, UserName};
use crate::endpoint;
use crate::fields::Fields;
use crate::kind_config::KindConfig;
use crate::net_guard::NetworkPolicy;
use crate::template::Template;
use crate::tls::{self, TlsConfig};

/// Default limit of connecting and of one publish (until its confirm).
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// Largest accepted `timeout_ms` (five minutes).
pub const MAX_TIMEOUT_MS: u64 = 300_000;
/// AMQP short strings (exchange names, routing keys) hold 255 bytes.
pub const MAX_SHORT_STRING: usize = 255;
const MAX_HEADERS: usize = 64;
const KNOWN: &[&str] = &[
    "url",
    "exchange",
    "routing_key",
    "persistent",
    "mandatory",
    "headers",
    "timeout_ms",
    "tls",
];

/// Headers Ferry sets on every message, which `headers` may not override.
pub const RESERVED_HEADERS: &[&str] = &[
    "webhook-id",
    "idempotency-key",
    "ferry-event-type",
    "ferry-delivery-id",
    "ferry-attempt",
    "traceparent",
    "tracestate",
];

/// An amqp destination's config, validated.
#[derive(Debug, Clone)]
pub struct AmqpConfig {
    pub url: Url,
    /// `""` is the default exchange (the routing key names a queue).
    pub exchange: String,
    pub routing_key: Template,
    /// Delivery mode 2: the broker writes the message to disk.
    pub persistent: bool,
    /// An unroutable message (no queue bound for its key) is returned by
    /// the broker and the attempt retried, instead of being dropped.
    pub mandatory: bool,
    pub headers: BTreeMap<String, String>,
    pub timeout_ms: u64,
    pub tls: Option<TlsConfig>,
}

impl KindConfig for AmqpConfig {
    type Context = NetworkPolicy;

    /// Checks an amqp config and its auth without I/O; returns the config with
    /// defaults filled in (`exchange: ""`, `routing_key: "{type}"`,
    /// `persistent: true`, `mandatory: true`, `headers: {}`, `timeout_ms:
    /// 10000`) or one error per invalid field.
    fn parse(config: &Value, auth: &Auth, policy: &NetworkPolicy) -> Result<Self, Vec<FieldError>> {
        let mut fields = Fields::new(config, KNOWN);
        fields.extend(check_auth(auth));
        let url = endpoint::read_url(&mut fields, |text| check_url(text, policy));
        let exchange = fields
            .str_or("exchange", "")
            .and_then(|name| match check_exchange(&name) {
                Ok(()) => Some(name),
                Err(message) => {
                    fields.error("exchange", message);
                    None
                }
            });
        let routing_key = fields.template("routing_key", Some("{type}"));
        if let Some(key) = &routing_key
            && key.as_str().len() > MAX_SHORT_STRING
        {
            fields.error(
                "routing_key",
                format!("must be at most {MAX_SHORT_STRING} bytes"),
            );
        }
        let persistent = fields.bool_or("persistent", true);
        let mandatory = fields.bool_or("mandatory", true);
        let headers = read_headers(&mut fields);
        let timeout_ms = fields.u64_in("timeout_ms", 1, MAX_TIMEOUT_MS, DEFAULT_TIMEOUT_MS);
        let uses_tls = url.as_ref().map(|u| u.scheme() == "amqps");
        let tls = tls::read_with_auth(&mut fields, auth, uses_tls, "use an amqps:// URL");
        let config = (|| {
            Some(AmqpConfig {
                url: url?,
                exchange: exchange?,
                routing_key: routing_key?,
                persistent: persistent?,
                mandatory: mandatory?,
                headers: headers?,
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
            "exchange": self.exchange,
            "routing_key": self.routing_key.as_str(),
            "persistent": self.persistent,
            "mandatory": self.mandatory,
            "headers": self.headers,
            "timeout_ms": self.timeout_ms,
            "tls": self.tls.as_ref().map(TlsConfig::to_json),
        })
    }
}

fn check_url(text: &str, policy: &NetworkPolicy) -> Result<Url, String> {
    let url = endpoint::parse_broker_url(
        text,
        &["amqp", "amqps"],
        "an amqp:// or amqps:// URL",
        "type basic",
    )?;
    if url.query_pairs().any(|(name, _)| name == "auth_mechanism") {
        return Err("must not set auth_mechanism: it follows from `auth`".to_owned());
    }
    AMQPUri::from_str(text).map_err(|e| format!("is not a valid AMQP URI ({e})"))?;
    endpoint::check_host(policy, url.host_str().unwrap_or_default())?;
    Ok(url)
}

/// Exchange names as RabbitMQ accepts them: letters, digits, `-`, `_`,
/// `.` and `:`, at most 255 bytes; `""` is the default exchange.
fn check_exchange(name: &str) -> Result<(), String> {
    if name.len() > MAX_SHORT_STRING {
        return Err(format!("must be at most {MAX_SHORT_STRING} bytes"));
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-_.:".contains(*c)))
    {
        Some(c) => Err(format!(
            "may contain only ASCII letters, digits, `-`, `_`, `.` and `:`; `{}` is not allowed",
            c.escape_default()
        )),
        None => Ok(()),
    }
}

fn read_headers(fields: &mut Fields<'_>) -> Option<BTreeMap<String, String>> {
    let Some(raw) = fields.raw("headers").cloned() else {
        return Some(BTreeMap::new());
    };
    let Value::Object(map) = raw else {
        fields.error(
            "headers",
            "must be an object of header names to string values",
        );
        return None;
    };
    if map.len() > MAX_HEADERS {
        fields.error("headers", format!("at most {MAX_HEADERS} headers"));
        return None;
    }
    let mut headers = BTreeMap::new();
    let mut ok = true;
    for (name, value) in map {
        let field = format!("headers.{name}");
        if name.is_empty() || name.len() > MAX_SHORT_STRING {
            fields.error(&field, format!("names are 1 to {MAX_SHORT_STRING} bytes"));
            ok = false;
        } else if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            fields.error(&field, "is set by Ferry and cannot be overridden");
            ok = false;
        } else if let Value::String(value) = value {
            headers.insert(name, value);
        } else {
            fields.error(&field, "must be a string");
            ok = false;
        }
    }
    ok.then_some(headers)
}

fn check_auth(auth: &Auth) -> Vec<FieldError> {
    let mut errors = auth::check(
        auth,
        "amqp",
        UserName::Required("is required"),
        "none, basic or client_certificate",
    );
    if let Auth::ClientCertificate {
        username, password, ..
    } = auth
        && username.is_some() != password.is_some()
    {
        errors.push(FieldError::new(
            "auth.password",
            "give both username and password (PLAIN over TLS), or neither (EXTERNAL: the certificate is the login)",
        ));
    }
    errors
}
