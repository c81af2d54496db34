//! The email config, `{"host", "port", "tls", "from", "to", "cc", "bcc",
//! "subject", "body", "attach_payload", "timeout_ms"}`, and its pure
//! validation with the destination's auth.

use std::net::IpAddr;

use ferry_core::FieldError;
use ferry_core::destination::Auth;
use lettre::message::Mailbox;
use serde::Serialize;
use serde_json::Value;

use super::render::Templates;
use crate::fields::{Fields, unsupported_auth};
use crate::host::{check_username, read_host, read_port};
use crate::kind_config::KindConfig;
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
const KNOWN: &[&str] = &[
    "tls",
    "host",
    "port",
    "from",
    "to",
    "cc",
    "bcc",
    "subject",
    "body",
    "attach_payload",
    "timeout_ms",
];

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
    fn default_port(self) -> u16 {
        match self {
            TlsMode::Implicit => 465,
            TlsMode::Starttls => 587,
            TlsMode::None => 25,
        }
    }
}

/// An email destination's `config`, as stored (after [`KindConfig::validate`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EmailConfig {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub from: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    pub subject: String,
    pub body: String,
    pub attach_payload: bool,
    pub timeout_ms: u64,
}

impl KindConfig for EmailConfig {
    type Context = NetworkPolicy;

    /// Checks an email config and its auth without I/O; fills in `tls`
    /// (`starttls`), `port` (465, 587 or 25 by `tls`), `subject`, `body`,
    /// `attach_payload` (false) and `timeout_ms` (30000). Addresses are
    /// mailboxes (`a@example.com` or `Name <a@example.com>`), at least one
    /// recipient in all. `subject` and `body` are minijinja templates over
    /// `id`, `type`, `timestamp`, `org`, `data` and `metadata`; a syntax error
    /// or an unknown variable is refused here. `tls: none` is for loopback
    /// hosts only. Auth is none, `basic` (PLAIN/LOGIN) or `xoauth2`.
    fn parse(config: &Value, auth: &Auth, policy: &NetworkPolicy) -> Result<Self, Vec<FieldError>> {
        let mut fields = Fields::new(config, KNOWN);
        fields.extend(check_auth(auth));
        let tls = match fields.choice("tls", &["implicit", "starttls", "none"], Some("starttls")) {
            Some("implicit") => Some(TlsMode::Implicit),
            Some("none") => Some(TlsMode::None),
            Some(_) => Some(TlsMode::Starttls),
            None => None,
        };
        let host = read_host(&mut fields, policy, |host| check_clear_text(host, tls));
        let port = read_port(&mut fields, tls.unwrap_or(TlsMode::Starttls).default_port());
        let from = fields.text("from", None, 320);
        let from = fields.checked("from", from, |from| match from.parse::<Mailbox>() {
            Ok(_) => Ok(()),
            Err(_) => Err(
                "must be an address such as ferry@example.com or Ferry <ferry@example.com>".into(),
            ),
        });
        let to = mailboxes(&mut fields, "to");
        let cc = mailboxes(&mut fields, "cc");
        let bcc = mailboxes(&mut fields, "bcc");
        if let (Some(to), Some(cc), Some(bcc)) = (&to, &cc, &bcc) {
            let count = to.len() + cc.len() + bcc.len();
            if count == 0 {
                fields.error("to", "needs at least one recipient (in to, cc or bcc)");
            } else if count > MAX_RECIPIENTS {
                fields.error(
                    "to",
                    format!("at most {MAX_RECIPIENTS} recipients in to, cc and bcc together"),
                );
            }
        }
        let subject = fields.text("subject", Some(DEFAULT_SUBJECT), MAX_TEMPLATE_LEN);
        // Bodies span lines: read them raw so line breaks are allowed.
        let body = match fields.raw("body") {
            None => Ok(DEFAULT_BODY.to_owned()),
            Some(Value::String(body)) if body.len() <= MAX_TEMPLATE_LEN => Ok(body.clone()),
            Some(Value::String(_)) => Err(format!("must be at most {MAX_TEMPLATE_LEN} bytes")),
            Some(_) => Err("must be a string (a template)".to_owned()),
        };
        let body = body.map_err(|message| fields.error("body", message)).ok();
        if let (Some(subject), Some(body)) = (&subject, &body)
            && let Err(errors) = Templates::new(subject, body)
        {
            fields.extend(errors);
        }
        let attach_payload = fields.bool_or("attach_payload", false);
        let timeout_ms = fields.u64_in("timeout_ms", 1, MAX_TIMEOUT_MS, DEFAULT_TIMEOUT_MS);
        let config = (|| {
            Some(EmailConfig {
                host: host?,
                port: port?,
                tls: tls?,
                from: from?,
                to: to?,
                cc: cc?,
                bcc: bcc?,
                subject: subject?,
                body: body?,
                attach_payload: attach_payload?,
                timeout_ms: timeout_ms?,
            })
        })();
        fields.finish(config)
    }

    fn to_json(&self) -> Value {
        // Strings, numbers and unit enums: serializing cannot fail.
        serde_json::to_value(self).expect("the config serializes")
    }
}

/// A list of mailboxes (a single string is a list of one).
fn mailboxes(fields: &mut Fields<'_>, name: &str) -> Option<Vec<String>> {
    let list = match fields.raw(name) {
        None => return Some(Vec::new()),
        Some(Value::String(one)) => vec![Value::String(one.clone())],
        Some(Value::Array(many)) => many.clone(),
        Some(_) => {
            fields.error(name, "must be a list of addresses");
            return None;
        }
    };
    let mut found = Vec::with_capacity(list.len());
    let mut ok = true;
    for (i, item) in list.iter().enumerate() {
        match item.as_str().map(|s| (s, s.parse::<Mailbox>())) {
            Some((text, Ok(_))) => found.push(text.to_owned()),
            _ => {
                fields.error(
                    &format!("{name}[{i}]"),
                    "must be an address such as ops@example.com",
                );
                ok = false;
            }
        }
    }
    ok.then_some(found)
}

/// `tls: none` sends credentials and mail in clear text: loopback relays
/// only.
fn check_clear_text(host: &str, tls: Option<TlsMode>) -> Result<(), String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if tls == Some(TlsMode::None) && !loopback && !is_localhost_name(host) {
        return Err("tls `none` sends credentials and mail in clear text: only for a loopback relay (127.0.0.1, ::1, localhost)".into());
    }
    Ok(())
}

fn check_auth(auth: &Auth) -> Vec<FieldError> {
    let (username, secret, field) = match auth {
        Auth::None => return Vec::new(),
        Auth::Basic { username, password } => (username, password.expose(), "auth.password"),
        Auth::Xoauth2 { username, token } => (username, token.expose(), "auth.token"),
        other => {
            return vec![unsupported_auth(
                "email",
                other.type_name(),
                "basic, xoauth2 or none",
            )];
        }
    };
    let mut errors: Vec<_> = check_username(username).into_iter().collect();
    if secret.is_empty() {
        errors.push(FieldError::new(field, "is required"));
    }
    errors
}
