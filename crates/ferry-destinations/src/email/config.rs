//! The email config, `{"host", "port", "tls", "from", "to", "cc", "bcc",
//! "subject", "body", "attach_payload", "timeout_ms"}`, and its pure
//! validation with the destination's auth.

use std::net::IpAddr;

use ferry_core::FieldError;
use ferry_core::destination::Auth;
use lettre::message::Mailbox;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::render::Templates;
use crate::config_reader::{ConfigReader, describe, unsupported_auth};
use crate::net_guard::{NetworkPolicy, is_localhost_name};

/// Default subject template.
pub const DEFAULT_SUBJECT: &str = "{{ type }} {{ id }}";
/// Default body template: the event's data as indented JSON.
pub const DEFAULT_BODY: &str =
    "Event {{ id }} ({{ type }}) at {{ timestamp }}:\n\n{{ data | tojson(indent=2) }}\n";
/// Default per-operation timeout.
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;
const MAX_TIMEOUT_MS: u64 = 300_000;
const MAX_RECIPIENTS: usize = 100;
const MAX_TEMPLATE_LEN: usize = 64 * 1024;

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    /// TLS from the first byte (SMTPS, port 465).
    Implicit,
    /// Plain text upgraded with STARTTLS, required (port 587).
    Starttls,
    /// No TLS: loopback servers only (a local relay).
    None,
}

impl TlsMode {
    fn default_port(self) -> u64 {
        match self {
            TlsMode::Implicit => 465,
            TlsMode::Starttls => 587,
            TlsMode::None => 25,
        }
    }
}

/// An email destination's `config`, as stored (after [`validate`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub from: String,
    #[serde(default)]
    pub to: Vec<String>,
    #[serde(default)]
    pub cc: Vec<String>,
    #[serde(default)]
    pub bcc: Vec<String>,
    pub subject: String,
    pub body: String,
    pub attach_payload: bool,
    pub timeout_ms: u64,
}

impl EmailConfig {
    /// Reads a stored config, validating it again.
    pub fn from_stored(config: &Value, auth: &Auth) -> Result<Self, String> {
        let normalized = validate(config, auth, &NetworkPolicy::allow_all())
            .map_err(|errors| describe(&errors))?;
        serde_json::from_value(normalized).map_err(|e| format!("config: {e}"))
    }
}

/// Checks an email config and its auth without I/O; fills in `tls`
/// (`starttls`), `port` (465, 587 or 25 by `tls`), `subject`, `body`,
/// `attach_payload` (false) and `timeout_ms` (30000). Addresses are
/// mailboxes (`a@example.com` or `Name <a@example.com>`), at least one
/// recipient in all. `subject` and `body` are minijinja templates over
/// `id`, `type`, `timestamp`, `org`, `data` and `metadata`; a syntax error
/// or an unknown variable is refused here. `tls: none` is for loopback
/// hosts only. Auth is none, `basic` (PLAIN/LOGIN) or `xoauth2`.
pub fn validate(
    config: &Value,
    auth: &Auth,
    policy: &NetworkPolicy,
) -> Result<Value, Vec<FieldError>> {
    let mut reader = ConfigReader::new(config);
    validate_auth(auth, &mut reader.errors);
    let tls = match reader.choice("tls", &["implicit", "starttls", "none"], Some("starttls")) {
        Some("implicit") => Some(TlsMode::Implicit),
        Some("none") => Some(TlsMode::None),
        Some(_) => Some(TlsMode::Starttls),
        None => None,
    };
    let host =
        reader
            .string("host", None, 253)
            .filter(|host| match check_host(host, tls, policy) {
                Ok(()) => true,
                Err(message) => {
                    reader.error("host", message);
                    false
                }
            });
    let default_port = tls.unwrap_or(TlsMode::Starttls).default_port();
    let port = reader.integer("port", Some(default_port), 1, u64::from(u16::MAX));
    let from = reader.string("from", None, 320).filter(|from| {
        let ok = from.parse::<Mailbox>().is_ok();
        if !ok {
            reader.error(
                "from",
                "must be an address such as ferry@example.com or Ferry <ferry@example.com>",
            );
        }
        ok
    });
    let to = mailboxes(&mut reader, "to");
    let cc = mailboxes(&mut reader, "cc");
    let bcc = mailboxes(&mut reader, "bcc");
    if let (Some(to), Some(cc), Some(bcc)) = (&to, &cc, &bcc) {
        let count = to.len() + cc.len() + bcc.len();
        if count == 0 {
            reader.error("to", "needs at least one recipient (in to, cc or bcc)");
        } else if count > MAX_RECIPIENTS {
            reader.error(
                "to",
                format!("at most {MAX_RECIPIENTS} recipients in to, cc and bcc together"),
            );
        }
    }
    let subject = reader.string("subject", Some(DEFAULT_SUBJECT), MAX_TEMPLATE_LEN);
    // Bodies span lines: read them raw so line breaks are allowed.
    let body = match reader.value("body") {
        None => Some(DEFAULT_BODY.to_owned()),
        Some(Value::String(body)) if body.len() <= MAX_TEMPLATE_LEN => Some(body.clone()),
        Some(Value::String(_)) => {
            reader.error("body", format!("must be at most {MAX_TEMPLATE_LEN} bytes"));
            None
        }
        Some(_) => {
            reader.error("body", "must be a string (a template)");
            None
        }
    };
    if let (Some(subject), Some(body)) = (&subject, &body)
        && let Err(errors) = Templates::new(subject, body)
    {
        reader.errors.extend(errors);
    }
    let attach_payload = reader.boolean("attach_payload", false);
    let timeout_ms = reader.integer("timeout_ms", Some(DEFAULT_TIMEOUT_MS), 1, MAX_TIMEOUT_MS);
    let errors = reader.finish();
    match (
        host,
        port,
        tls,
        from,
        to,
        cc,
        bcc,
        subject,
        body,
        attach_payload,
        timeout_ms,
    ) {
        (
            Some(host),
            Some(port),
            Some(tls),
            Some(from),
            Some(to),
            Some(cc),
            Some(bcc),
            Some(subject),
            Some(body),
            Some(attach_payload),
            Some(timeout_ms),
        ) if errors.is_empty() => {
            let config = EmailConfig {
                host,
                port: port as u16,
                tls,
                from,
                to,
                cc,
                bcc,
                subject,
                body,
                attach_payload,
                timeout_ms,
            };
            Ok(serde_json::to_value(config).expect("the config serializes"))
        }
        _ => Err(errors),
    }
}

/// A list of mailboxes (a single string is a list of one).
fn mailboxes(reader: &mut ConfigReader<'_>, name: &'static str) -> Option<Vec<String>> {
    let list = match reader.value(name) {
        None => return Some(Vec::new()),
        Some(Value::String(one)) => vec![Value::String(one.clone())],
        Some(Value::Array(many)) => many.clone(),
        Some(_) => {
            reader.error(name, "must be a list of addresses");
            return None;
        }
    };
    let mut found = Vec::with_capacity(list.len());
    let mut ok = true;
    for (i, item) in list.iter().enumerate() {
        match item.as_str().map(|s| (s, s.parse::<Mailbox>())) {
            Some((text, Ok(_))) => found.push(text.to_owned()),
            _ => {
                reader.error(
                    &format!("{name}[{i}]"),
                    "must be an address such as ops@example.com",
                );
                ok = false;
            }
        }
    }
    ok.then_some(found)
}

fn check_host(host: &str, tls: Option<TlsMode>, policy: &NetworkPolicy) -> Result<(), String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let ip = bare.parse::<IpAddr>().ok();
    if tls == Some(TlsMode::None)
        && !ip.is_some_and(|ip| ip.is_loopback())
        && !is_localhost_name(host)
    {
        return Err("tls `none` sends credentials and mail in clear text: only for a loopback relay (127.0.0.1, ::1, localhost)".into());
    }
    if let Some(ip) = ip {
        return policy.check(ip).map_err(|refusal| refusal.to_string());
    }
    let valid = host.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    if !valid {
        return Err("must be a host name or an IP address".into());
    }
    if is_localhost_name(host) && !policy.allows(IpAddr::from([127, 0, 0, 1])) {
        return Err(format!(
            "{host} is a loopback name; private networks are refused (set FERRY_ALLOW_PRIVATE_NETWORKS=true or allow a CIDR)"
        ));
    }
    Ok(())
}

fn validate_auth(auth: &Auth, errors: &mut Vec<FieldError>) {
    let (username, secret, field) = match auth {
        Auth::None => return,
        Auth::Basic { username, password } => (username, password.expose(), "auth.password"),
        Auth::Xoauth2 { username, token } => (username, token.expose(), "auth.token"),
        other => {
            errors.push(unsupported_auth(
                "email",
                other.type_name(),
                "basic, xoauth2 or none",
            ));
            return;
        }
    };
    if username.is_empty() || username.chars().any(char::is_control) {
        errors.push(FieldError::new(
            "auth.username",
            "is required (no control characters)",
        ));
    }
    if secret.is_empty() {
        errors.push(FieldError::new(field, "is required"));
    }
}
