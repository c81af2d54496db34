//! The redis config, `{"url", "mode", "key", "maxlen", "timeout_ms",
//! "tls"}`, and its pure validation together with the destination's auth.

use ferry_core::FieldError;
use ferry_core::destination::Auth;
use serde_json::{Value, json};
use url::Url;

use crate::endpoint;
use crate::fields::{Fields, join_errors};
use crate::net_guard::NetworkPolicy;
use crate::template::Template;
use crate::tls::{self, TlsConfig};

/// Default limit of one command (and of connecting).
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// Largest accepted `timeout_ms` (five minutes).
pub const MAX_TIMEOUT_MS: u64 = 300_000;
const MAX_KEY_LEN: usize = 1024;
const KNOWN: &[&str] = &["url", "mode", "key", "maxlen", "timeout_ms", "tls"];

/// How events reach the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `XADD key [MAXLEN ~ n] * id <event id> payload <json> …`.
    Stream,
    /// `LPUSH key <json>` (consumers `BRPOP` in order).
    List,
    /// `PUBLISH channel <json>` (only subscribers connected now get it).
    Pubsub,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Stream => "stream",
            Mode::List => "list",
            Mode::Pubsub => "pubsub",
        }
    }
}

/// A redis destination's config, validated.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    pub url: Url,
    pub mode: Mode,
    /// The stream or list key, or the pub/sub channel.
    pub key: Template,
    /// Stream mode: trim to about this many entries (`MAXLEN ~`); `None`
    /// keeps every entry.
    pub maxlen: Option<u64>,
    pub timeout_ms: u64,
    pub tls: Option<TlsConfig>,
}

impl RedisConfig {
    /// The config as stored, defaults filled in.
    pub fn to_json(&self) -> Value {
        json!({
            "url": self.url.as_str(),
            "mode": self.mode.as_str(),
            "key": self.key.as_str(),
            "maxlen": self.maxlen,
            "timeout_ms": self.timeout_ms,
            "tls": self.tls.as_ref().map(TlsConfig::to_json),
        })
    }

    /// Reads a stored config, validating it again.
    pub fn from_stored(config: &Value, auth: &Auth) -> Result<Self, String> {
        parse(config, auth, &NetworkPolicy::allow_all()).map_err(|e| join_errors(&e))
    }
}

/// Checks a redis config and its auth without I/O; returns the config with
/// defaults filled in (`mode: "stream"`, `maxlen: null`, `timeout_ms:
/// 10000`) or one error per invalid field. The SSRF guard refuses
/// IP-literal and `localhost` hosts the policy does not allow.
pub fn validate(
    config: &Value,
    auth: &Auth,
    policy: &NetworkPolicy,
) -> Result<Value, Vec<FieldError>> {
    parse(config, auth, policy).map(|c| c.to_json())
}

/// [`validate`], giving the typed config.
pub fn parse(
    config: &Value,
    auth: &Auth,
    policy: &NetworkPolicy,
) -> Result<RedisConfig, Vec<FieldError>> {
    let mut fields = Fields::new(config, KNOWN);
    fields.extend(check_auth(auth));
    let url = fields
        .required_str("url")
        .and_then(|text| match check_url(&text, policy) {
            Ok(url) => Some(url),
            Err(message) => {
                fields.error("url", message);
                None
            }
        });
    let mode = fields
        .str_or("mode", "stream")
        .and_then(|mode| match mode.as_str() {
            "stream" => Some(Mode::Stream),
            "list" => Some(Mode::List),
            "pubsub" => Some(Mode::Pubsub),
            other => {
                fields.error(
                    "mode",
                    format!("`{other}` is not a mode (use stream, list or pubsub)"),
                );
                None
            }
        });
    let key = fields.template("key", None);
    if let Some(key) = &key
        && key.as_str().len() > MAX_KEY_LEN
    {
        fields.error("key", format!("must be at most {MAX_KEY_LEN} bytes"));
    }
    let maxlen = match fields.raw("maxlen") {
        None => Some(None),
        Some(_) if mode.is_some_and(|m| m != Mode::Stream) => {
            fields.error("maxlen", "applies only to mode `stream`");
            None
        }
        Some(_) => fields.u64_in("maxlen", 1, u64::MAX, 0).map(Some),
    };
    let timeout_ms = fields.u64_in("timeout_ms", 1, MAX_TIMEOUT_MS, DEFAULT_TIMEOUT_MS);
    let uses_tls = url.as_ref().is_some_and(|u| u.scheme() == "rediss");
    let tls = match fields.raw("tls") {
        None => Some(None),
        Some(_) => tls::read(&mut fields, uses_tls, "use a rediss:// URL").map(Some),
    };
    if matches!(auth, Auth::ClientCertificate { .. }) && url.is_some() && !uses_tls {
        fields.error(
            "auth.type",
            "client_certificate needs TLS: use a rediss:// URL",
        );
    }
    let config = (|| {
        Some(RedisConfig {
            url: url?,
            mode: mode?,
            key: key?,
            maxlen: maxlen?,
            timeout_ms: timeout_ms?,
            tls: tls?,
        })
    })();
    fields.finish(config)
}

fn check_url(text: &str, policy: &NetworkPolicy) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("is not a valid URL ({e})"))?;
    if !matches!(url.scheme(), "redis" | "rediss") {
        return Err("must be a redis:// or rediss:// URL".to_owned());
    }
    let host = url.host_str().filter(|h| !h.is_empty());
    let Some(host) = host else {
        return Err("must name a host".to_owned());
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "must not contain credentials; use `auth` (type basic), where they are encrypted at rest"
                .to_owned(),
        );
    }
    let path = url.path().trim_start_matches('/');
    if !path.is_empty() && path.parse::<u16>().is_err() {
        return Err("the path must be a database number, like /0".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".to_owned());
    }
    endpoint::check_host(policy, host)?;
    Ok(url)
}

fn check_auth(auth: &Auth) -> Vec<FieldError> {
    match auth {
        Auth::None => Vec::new(),
        Auth::Basic { username, .. } if username.is_empty() => vec![FieldError::new(
            "auth.username",
            "is required (`default` is the user of a plain `requirepass` password)",
        )],
        Auth::Basic { .. } => Vec::new(),
        Auth::ClientCertificate {
            certificate,
            private_key,
            ..
        } => tls::check_identity(certificate, private_key.expose()),
        other => vec![FieldError::new(
            "auth.type",
            format!(
                "`{}` is not supported by redis destinations (use none, basic or client_certificate)",
                other.type_name()
            ),
        )],
    }
}
