//! The nats config, `{"servers", "subject", "stream", "timeout_ms",
//! "tls"}`, and its pure validation together with the destination's auth.

use ferry_core::FieldError;
use ferry_core::destination::Auth;
use serde_json::{Value, json};
use url::Url;

use crate::client::auth::{self, UserName};
use crate::endpoint;
use crate::fields::{Fields, check_name};
use crate::kind_config::KindConfig;
use crate::net_guard::NetworkPolicy;
use crate::template::Template;
use crate::tls::{self, TlsConfig};

/// Default limit of connecting and of one publish (until its ack).
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// Largest accepted `timeout_ms` (five minutes).
pub const MAX_TIMEOUT_MS: u64 = 300_000;
const MAX_SERVERS: usize = 16;
const MAX_SUBJECT: usize = 1024;
const KNOWN: &[&str] = &["servers", "subject", "stream", "timeout_ms", "tls"];

/// A nats destination's config, validated.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// `nats://` or `tls://` URLs of the cluster's servers.
    pub servers: Vec<Url>,
    pub subject: Template,
    /// The JetStream stream expected to capture the subject; `None`
    /// publishes on core NATS (no ack, no de-duplication).
    pub stream: Option<String>,
    pub timeout_ms: u64,
    pub tls: Option<TlsConfig>,
}

impl NatsConfig {
    /// Whether the servers are reached over TLS.
    pub fn uses_tls(&self) -> bool {
        self.servers.iter().any(|s| s.scheme() == "tls")
    }
}

impl KindConfig for NatsConfig {
    type Context = NetworkPolicy;

    /// Checks a nats config and its auth without I/O; returns the config with
    /// defaults filled in (`stream: null`, `timeout_ms: 10000`) or one error
    /// per invalid field.
    fn parse(config: &Value, auth: &Auth, policy: &NetworkPolicy) -> Result<Self, Vec<FieldError>> {
        let mut fields = Fields::new(config, KNOWN);
        fields.extend(check_auth(auth));
        let servers = read_servers(&mut fields, policy);
        let subject = fields.template("subject", None);
        if let Some(subject) = &subject
            && let Err(message) = check_subject(subject.as_str())
        {
            fields.error("subject", message);
        }
        let stream = fields
            .optional_str("stream")
            .and_then(|stream| match stream {
                Some(name) => match check_name(&name, 255, "-") {
                    Ok(()) => Some(Some(name)),
                    Err(message) => {
                        fields.error("stream", message);
                        None
                    }
                },
                None => Some(None),
            });
        let timeout_ms = fields.u64_in("timeout_ms", 1, MAX_TIMEOUT_MS, DEFAULT_TIMEOUT_MS);
        let uses_tls = servers
            .as_ref()
            .map(|s| s.iter().all(|url| url.scheme() == "tls"));
        let tls = tls::read_with_auth(&mut fields, auth, uses_tls, "use tls:// server URLs");
        let config = (|| {
            Some(NatsConfig {
                servers: servers?,
                subject: subject?,
                stream: stream?,
                timeout_ms: timeout_ms?,
                tls: tls?,
            })
        })();
        fields.finish(config)
    }

    /// The config as stored, defaults filled in.
    fn to_json(&self) -> Value {
        let servers: Vec<&str> = self.servers.iter().map(Url::as_str).collect();
        json!({
            "servers": servers,
            "subject": self.subject.as_str(),
            "stream": self.stream,
            "timeout_ms": self.timeout_ms,
            "tls": self.tls.as_ref().map(TlsConfig::to_json),
        })
    }
}

fn read_servers(fields: &mut Fields<'_>, policy: &NetworkPolicy) -> Option<Vec<Url>> {
    let list = match fields.raw("servers").cloned() {
        None => {
            fields.error("servers", "is required (a list of nats:// or tls:// URLs)");
            return None;
        }
        Some(Value::Array(list)) if !list.is_empty() && list.len() <= MAX_SERVERS => list,
        Some(_) => {
            fields.error(
                "servers",
                format!("must be a list of 1 to {MAX_SERVERS} nats:// or tls:// URLs"),
            );
            return None;
        }
    };
    let mut servers = Vec::new();
    for (n, server) in list.iter().enumerate() {
        let field = format!("servers.{n}");
        let checked = match server {
            Value::String(text) => check_server(text, policy),
            _ => Err("must be a string".to_owned()),
        };
        match checked {
            Ok(url) => servers.push(url),
            Err(message) => fields.error(&field, message),
        }
    }
    (servers.len() == list.len()).then_some(servers)
}

fn check_server(text: &str, policy: &NetworkPolicy) -> Result<Url, String> {
    endpoint::check_broker_url(
        text,
        &["nats", "tls"],
        "a nats:// or tls:// URL",
        "basic or bearer",
        policy,
    )
}

/// A subject to publish on: dot-separated non-empty tokens, no whitespace,
/// no wildcards (`*`, `>`).
pub fn check_subject(subject: &str) -> Result<(), String> {
    if subject.len() > MAX_SUBJECT {
        return Err(format!("must be at most {MAX_SUBJECT} bytes"));
    }
    if subject.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces or control characters".to_owned());
    }
    if subject.split('.').any(|token| token == "*" || token == ">") {
        return Err(
            "must not contain wildcards (`*`, `>`): events are published to one subject".to_owned(),
        );
    }
    if subject.split('.').any(str::is_empty) {
        return Err("must not have empty tokens (`..`, or a leading or trailing `.`)".to_owned());
    }
    Ok(())
}

fn check_auth(auth: &Auth) -> Vec<FieldError> {
    match auth {
        Auth::Bearer { token } if token.expose().is_empty() => {
            vec![FieldError::new("auth.token", "is required")]
        }
        Auth::Bearer { .. } => Vec::new(),
        other => auth::check(
            other,
            "nats",
            UserName::Optional,
            "none, basic, bearer or client_certificate",
        ),
    }
}
