//! The redis config, `{"url", "mode", "key", "maxlen", "timeout_ms",
//! "tls"}`, and its pure validation together with the destination's auth.

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

impl KindConfig for RedisConfig {
    type Context = NetworkPolicy;

    /// Checks a redis config and its auth without I/O; returns the config with
    /// defaults filled in (`mode: "stream"`, `maxlen: null`, `timeout_ms:
    /// 10000`) or one error per invalid field. The SSRF guard refuses
    /// IP-literal and `localhost` hosts the policy does not allow.
    fn parse(config: &Value, auth: &Auth, policy: &NetworkPolicy) -> Result<Self, Vec<FieldError>> {
        let mut fields = Fields::new(config, KNOWN);
        fields.extend(check_auth(auth));
        let url = endpoint::read_url(&mut fields, |text| check_url(text, policy));
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
        let uses_tls = url.as_ref().map(|u| u.scheme() == "rediss");
        let tls = tls::read_with_auth(&mut fields, auth, uses_tls, "use a rediss:// URL");
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

    /// The config as stored, defaults filled in.
    fn to_json(&self) -> Value {
        json!({
            "url": self.url.as_str(),
            "mode": self.mode.as_str(),
            "key": self.key.as_str(),
            "maxlen": self.maxlen,
            "timeout_ms": self.timeout_ms,
            "tls": self.tls.as_ref().map(TlsConfig::to_json),
        })
    }
}

fn check_url(text: &str, policy: &NetworkPolicy) -> Result<Url, String> {
    let url = endpoint::parse_broker_url(
        text,
        &["redis", "rediss"],
        "a redis:// or rediss:// URL",
        "type basic",
    )?;
    let path = url.path().trim_start_matches('/');
    if !path.is_empty() && path.parse::<u16>().is_err() {
        return Err("the path must be a database number, like /0".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".to_owned());
    }
    endpoint::check_host(policy, url.host_str().unwrap_or_default())?;
    Ok(url)
}

fn check_auth(auth: &Auth) -> Vec<FieldError> {
    auth::check(
        auth,
        "redis",
        UserName::Required("is required (`default` is the user of a plain `requirepass` password)"),
        "none, basic or client_certificate",
    )
}
