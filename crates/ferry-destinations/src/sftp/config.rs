//! The SFTP config, `{"host", "port", "directory", "file_name",
//! "host_key_fingerprint", "trust_on_first_use", "timeout_ms"}`, and its
//! pure validation with the destination's auth.

use std::net::IpAddr;

use ferry_core::FieldError;
use ferry_core::destination::Auth;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config_reader::{ConfigReader, describe, unsupported_auth};
use crate::net_guard::{NetworkPolicy, is_localhost_name};
use crate::template::{MAX_PATH_LEN, Template, relative_path, sample_event};

/// Default per-operation timeout.
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;
const MAX_TIMEOUT_MS: u64 = 300_000;

/// An SFTP destination's `config`, as stored (after [`validate`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SftpConfig {
    pub host: String,
    pub port: u16,
    /// Absolute directory on the server; must exist.
    pub directory: String,
    /// Name template, relative to `directory`; must contain `{id}`.
    pub file_name: String,
    /// The pinned host key, `SHA256:<base64>` as `ssh-keygen -l` prints it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_key_fingerprint: Option<String>,
    /// Accept the first host key seen (then pin it for this process).
    pub trust_on_first_use: bool,
    pub timeout_ms: u64,
}

impl SftpConfig {
    /// Reads a stored config, validating it again.
    pub fn from_stored(config: &Value, auth: &Auth) -> Result<Self, String> {
        let normalized = validate(config, auth, &NetworkPolicy::allow_all())
            .map_err(|errors| describe(&errors))?;
        serde_json::from_value(normalized).map_err(|e| format!("config: {e}"))
    }
}

/// Checks an SFTP config and its auth without I/O; fills in `port` (22),
/// `file_name` (`{id}.json`), `trust_on_first_use` (false) and
/// `timeout_ms` (30000). A host key must be pinned unless
/// `trust_on_first_use` is set. The host goes through the SSRF guard (IP
/// literals and `localhost`). Auth is `password` or `private_key` (an
/// OpenSSH, PKCS#8 or PuTTY key, decrypted here to check the passphrase).
pub fn validate(
    config: &Value,
    auth: &Auth,
    policy: &NetworkPolicy,
) -> Result<Value, Vec<FieldError>> {
    let mut reader = ConfigReader::new(config);
    validate_auth(auth, &mut reader.errors);
    let host = reader
        .string("host", None, 253)
        .filter(|host| match check_host(host, policy) {
            Ok(()) => true,
            Err(message) => {
                reader.error("host", message);
                false
            }
        });
    let port = reader.integer("port", Some(22), 1, u64::from(u16::MAX));
    let directory = reader
        .string("directory", None, MAX_PATH_LEN)
        .filter(|dir| {
            let ok = dir.starts_with('/') && dir.split('/').all(|part| part != "." && part != "..");
            if !ok {
                reader.error(
                    "directory",
                    "must be an absolute path without `.` or `..` parts",
                );
            }
            ok
        });
    let file_name = reader
        .string("file_name", Some("{id}.json"), MAX_PATH_LEN)
        .filter(|name| match check_file_name(name) {
            Ok(()) => true,
            Err(error) => {
                reader.errors.push(error);
                false
            }
        });
    let fingerprint = reader
        .optional_string("host_key_fingerprint", 128)
        .and_then(|fp| match &fp {
            Some(text) if !is_fingerprint(text) => {
                reader.error(
                    "host_key_fingerprint",
                    "must be a SHA256 fingerprint as `ssh-keygen -lf <key>` prints it (SHA256:<base64>)",
                );
                Err(())
            }
            _ => Ok(fp),
        });
    let tofu = reader.boolean("trust_on_first_use", false);
    if matches!(fingerprint, Ok(None)) && tofu == Some(false) {
        reader.error(
            "host_key_fingerprint",
            "is required to authenticate the server (or set trust_on_first_use to accept the first key seen)",
        );
    }
    let timeout_ms = reader.integer("timeout_ms", Some(DEFAULT_TIMEOUT_MS), 1, MAX_TIMEOUT_MS);
    let errors = reader.finish();
    match (
        host,
        port,
        directory,
        file_name,
        fingerprint,
        tofu,
        timeout_ms,
    ) {
        (
            Some(host),
            Some(port),
            Some(directory),
            Some(file_name),
            Ok(host_key_fingerprint),
            Some(trust_on_first_use),
            Some(timeout_ms),
        ) if errors.is_empty() => {
            let config = SftpConfig {
                host,
                port: port as u16,
                directory: trim_directory(&directory),
                file_name,
                host_key_fingerprint,
                trust_on_first_use,
                timeout_ms,
            };
            Ok(serde_json::to_value(config).expect("the config serializes"))
        }
        _ => Err(errors),
    }
}

/// `/upload/` → `/upload`, `/` stays `/`.
fn trim_directory(dir: &str) -> String {
    let trimmed = dir.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".into()
    } else {
        trimmed.into()
    }
}

fn check_host(host: &str, policy: &NetworkPolicy) -> Result<(), String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
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

fn check_file_name(text: &str) -> Result<(), FieldError> {
    let template = Template::parse("config.file_name", text)?;
    let rendered = template.render(&sample_event());
    relative_path(&rendered).map_err(|m| FieldError::new("config.file_name", m))?;
    if rendered == template.render(&sample_event()) {
        return Err(FieldError::new(
            "config.file_name",
            "must contain {id}: each event is its own file",
        ));
    }
    Ok(())
}

/// `SHA256:` and 43 unpadded base64 characters.
fn is_fingerprint(text: &str) -> bool {
    text.strip_prefix("SHA256:").is_some_and(|b64| {
        b64.len() == 43
            && b64
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/')
    })
}

fn validate_auth(auth: &Auth, errors: &mut Vec<FieldError>) {
    let username = match auth {
        Auth::Password { username, password } => {
            if password.expose().is_empty() {
                errors.push(FieldError::new("auth.password", "is required"));
            }
            username
        }
        Auth::PrivateKey {
            username,
            private_key,
            passphrase,
        } => {
            let passphrase = passphrase.as_ref().map(|p| p.expose().as_str());
            if let Err(error) = russh::keys::decode_secret_key(private_key.expose(), passphrase) {
                errors.push(FieldError::new(
                    "auth.private_key",
                    format!(
                        "cannot be read as an OpenSSH, PKCS#8 or PuTTY private key ({})",
                        key_error(&error)
                    ),
                ));
            }
            username
        }
        other => {
            errors.push(unsupported_auth(
                "sftp",
                other.type_name(),
                "password or private_key",
            ));
            return;
        }
    };
    if username.is_empty() || username.chars().any(|c| c.is_control()) {
        errors.push(FieldError::new(
            "auth.username",
            "is required (no control characters)",
        ));
    }
}

/// A key error without key material: wrong passphrase or unreadable.
fn key_error(error: &russh::keys::Error) -> &'static str {
    let text = error.to_string().to_lowercase();
    if text.contains("decrypt") || text.contains("passphrase") || text.contains("encrypted") {
        "wrong or missing passphrase"
    } else {
        "not a supported key format"
    }
}
