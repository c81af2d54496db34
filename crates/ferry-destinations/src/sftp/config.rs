//! The SFTP config, `{"host", "port", "directory", "file_name",
//! "host_key_fingerprint", "trust_on_first_use", "timeout_ms"}`, and its
//! pure validation with the destination's auth.

use ferry_core::FieldError;
use ferry_core::destination::Auth;
use serde::Serialize;
use serde_json::Value;

use crate::fields::{Fields, unsupported_auth};
use crate::host::{check_username, read_host, read_port};
use crate::kind_config::KindConfig;
use crate::net_guard::NetworkPolicy;
use crate::template::{MAX_PATH_LEN, Template, relative_path, sample_event};

/// Default per-operation timeout.
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;
const MAX_TIMEOUT_MS: u64 = 300_000;
const KNOWN: &[&str] = &[
    "host",
    "port",
    "directory",
    "file_name",
    "host_key_fingerprint",
    "trust_on_first_use",
    "timeout_ms",
];

/// An SFTP destination's `config`, as stored (after [`KindConfig::validate`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SftpConfig {
    pub host: String,
    pub port: u16,
    /// Absolute directory on the server; must exist.
    pub directory: String,
    /// Name template, relative to `directory`; must contain `{id}`.
    pub file_name: Template,
    /// The pinned host key, `SHA256:<base64>` as `ssh-keygen -l` prints it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_key_fingerprint: Option<String>,
    /// Accept the first host key seen (then pin it for this process).
    pub trust_on_first_use: bool,
    pub timeout_ms: u64,
}

impl KindConfig for SftpConfig {
    type Context = NetworkPolicy;

    /// Checks an SFTP config and its auth without I/O; fills in `port` (22),
    /// `file_name` (`{id}.json`), `trust_on_first_use` (false) and `timeout_ms`
    /// (30000). A host key must be pinned unless `trust_on_first_use` is set.
    /// The host goes through the SSRF guard (IP literals and `localhost`). Auth
    /// is `password` or `private_key` (an OpenSSH, PKCS#8 or PuTTY key,
    /// decrypted here to check the passphrase).
    fn parse(config: &Value, auth: &Auth, policy: &NetworkPolicy) -> Result<Self, Vec<FieldError>> {
        let mut fields = Fields::new(config, KNOWN);
        fields.extend(check_auth(auth));
        let host = read_host(&mut fields, policy, |_| Ok(()));
        let port = read_port(&mut fields, 22);
        let directory = fields.text("directory", None, MAX_PATH_LEN);
        let directory = fields.checked("directory", directory, |dir| {
            if dir.starts_with('/') && dir.split('/').all(|part| part != "." && part != "..") {
                Ok(())
            } else {
                Err("must be an absolute path without `.` or `..` parts".into())
            }
        });
        let file_name = fields
            .text("file_name", Some("{id}.json"), MAX_PATH_LEN)
            .and_then(|name| match check_file_name(&name) {
                Ok(template) => Some(template),
                Err(error) => {
                    fields.extend([error]);
                    None
                }
            });
        let fingerprint = fields.optional_text("host_key_fingerprint", 128);
        let fingerprint = fields.checked("host_key_fingerprint", fingerprint, |fp| {
            match fp {
        Some(text) if !is_fingerprint(text) => Err(
            "must be a SHA256 fingerprint as `ssh-keygen -lf <key>` prints it (SHA256:<base64>)"
                .into(),
        ),
        _ => Ok(()),
    }
        });
        let tofu = fields.bool_or("trust_on_first_use", false);
        if matches!(fingerprint, Some(None)) && tofu == Some(false) {
            fields.error(
            "host_key_fingerprint",
            "is required to authenticate the server (or set trust_on_first_use to accept the first key seen)",
        );
        }
        let timeout_ms = fields.u64_in("timeout_ms", 1, MAX_TIMEOUT_MS, DEFAULT_TIMEOUT_MS);
        let config = (|| {
            Some(SftpConfig {
                host: host?,
                port: port?,
                directory: trim_directory(&directory?),
                file_name: file_name?,
                host_key_fingerprint: fingerprint?,
                trust_on_first_use: tofu?,
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

/// `/upload/` → `/upload`, `/` stays `/`.
fn trim_directory(dir: &str) -> String {
    let trimmed = dir.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".into()
    } else {
        trimmed.into()
    }
}

fn check_file_name(text: &str) -> Result<Template, FieldError> {
    let template = Template::parse("config.file_name", text)?;
    let rendered = template.render(&sample_event());
    relative_path(&rendered).map_err(|m| FieldError::new("config.file_name", m))?;
    if rendered == template.render(&sample_event()) {
        return Err(FieldError::new(
            "config.file_name",
            "must contain {id}: each event is its own file",
        ));
    }
    Ok(template)
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

fn check_auth(auth: &Auth) -> Vec<FieldError> {
    let mut errors = Vec::new();
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
            return vec![unsupported_auth(
                "sftp",
                other.type_name(),
                "password or private_key",
            )];
        }
    };
    errors.extend(check_username(username));
    errors
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
