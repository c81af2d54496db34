//! The S3 config, `{"endpoint", "region", "bucket", "key", "content_type",
//! "storage_class", "sse", "timeout_ms"}`, and its pure validation with the
//! destination's auth.

use ferry_core::FieldError;
use ferry_core::destination::Auth;
use object_store::path::Path as ObjectPath;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use crate::config_reader::{ConfigReader, describe, unsupported_auth};
use crate::net_guard::NetworkPolicy;
use crate::template::{Template, sample_event};

/// Default object key template.
pub const DEFAULT_KEY: &str = "{org}/{type}/{date}/{id}.json";
/// Default per-request timeout.
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;
const MAX_TIMEOUT_MS: u64 = 300_000;
const MAX_KEY_LEN: usize = 1024;

/// An S3 destination's `config`, as stored (after [`validate`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// An S3-compatible store's URL; AWS's regional endpoint when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    pub region: String,
    pub bucket: String,
    /// Object key template; must contain `{id}`.
    pub key: String,
    pub content_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    /// `AES256`, `aws:kms` or `aws:kms:<key id or ARN>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sse: Option<String>,
    pub timeout_ms: u64,
}

impl S3Config {
    /// Reads a stored config, validating it again.
    pub fn from_stored(config: &Value, auth: &Auth) -> Result<Self, String> {
        let normalized = validate(config, auth, &NetworkPolicy::allow_all())
            .map_err(|errors| describe(&errors))?;
        serde_json::from_value(normalized).map_err(|e| format!("config: {e}"))
    }
}

/// Checks an S3 config and its auth without I/O; fills in `region`
/// (`us-east-1`), `key` (`{org}/{type}/{date}/{id}.json`), `content_type`
/// (`application/json`) and `timeout_ms` (30000). The endpoint's host goes
/// through the SSRF guard (IP literals and `localhost`). Auth is
/// `access_key` or none (then the standard provider chain: environment,
/// web identity, container and instance credentials).
pub fn validate(
    config: &Value,
    auth: &Auth,
    policy: &NetworkPolicy,
) -> Result<Value, Vec<FieldError>> {
    let mut reader = ConfigReader::new(config);
    match auth {
        Auth::None => {}
        Auth::AccessKey {
            access_key_id,
            secret_access_key,
            ..
        } => {
            if access_key_id.is_empty() || access_key_id.chars().any(|c| !c.is_ascii_graphic()) {
                reader.errors.push(FieldError::new(
                    "auth.access_key_id",
                    "is required (visible ASCII)",
                ));
            }
            if secret_access_key.expose().is_empty() {
                reader
                    .errors
                    .push(FieldError::new("auth.secret_access_key", "is required"));
            }
        }
        other => reader.errors.push(unsupported_auth(
            "s3",
            other.type_name(),
            "access_key, or none for the standard credential chain",
        )),
    }
    let endpoint = match reader.optional_string("endpoint", 2048) {
        Ok(Some(endpoint)) => match check_endpoint(&endpoint, policy) {
            Ok(()) => Ok(Some(endpoint.trim_end_matches('/').to_owned())),
            Err(message) => {
                reader.error("endpoint", message);
                Err(())
            }
        },
        other => other,
    };
    let region = reader
        .string("region", Some("us-east-1"), 64)
        .filter(|region| {
            let ok = region
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !ok {
                reader.error("region", "must be a region name such as eu-west-1");
            }
            ok
        });
    let bucket = reader.string("bucket", None, 63).filter(|bucket| {
        let problem = bucket_problem(bucket);
        if let Some(problem) = problem {
            reader.error("bucket", problem);
        }
        problem.is_none()
    });
    let key = reader
        .string("key", Some(DEFAULT_KEY), MAX_KEY_LEN)
        .filter(|key| match check_key(key) {
            Ok(()) => true,
            Err(error) => {
                reader.errors.push(error);
                false
            }
        });
    let content_type = reader
        .string("content_type", Some("application/json"), 255)
        .filter(|ct| {
            let ok = ct.contains('/') && ct.chars().all(|c| c.is_ascii_graphic() || c == ' ');
            if !ok {
                reader.error(
                    "content_type",
                    "must be a media type such as application/json",
                );
            }
            ok
        });
    let storage_class =
        reader
            .optional_string("storage_class", 64)
            .and_then(|class| match &class {
                Some(c) if !c.chars().all(|c| c.is_ascii_uppercase() || c == '_') => {
                    reader.error(
                        "storage_class",
                        "must be a storage class such as STANDARD_IA or GLACIER_IR",
                    );
                    Err(())
                }
                _ => Ok(class),
            });
    let sse = reader
        .optional_string("sse", 2048)
        .and_then(|sse| match &sse {
            Some(s) if !(s == "AES256" || s == "aws:kms" || s.starts_with("aws:kms:")) => {
                reader.error("sse", "must be AES256, aws:kms or aws:kms:<key id or ARN>");
                Err(())
            }
            _ => Ok(sse),
        });
    let timeout_ms = reader.integer("timeout_ms", Some(DEFAULT_TIMEOUT_MS), 1, MAX_TIMEOUT_MS);
    let errors = reader.finish();
    match (
        endpoint,
        region,
        bucket,
        key,
        content_type,
        storage_class,
        sse,
        timeout_ms,
    ) {
        (
            Ok(endpoint),
            Some(region),
            Some(bucket),
            Some(key),
            Some(content_type),
            Ok(storage_class),
            Ok(sse),
            Some(timeout_ms),
        ) if errors.is_empty() => {
            let config = S3Config {
                endpoint,
                region,
                bucket,
                key,
                content_type,
                storage_class,
                sse,
                timeout_ms,
            };
            Ok(serde_json::to_value(config).expect("the config serializes"))
        }
        _ => Err(errors),
    }
}

fn check_endpoint(text: &str, policy: &NetworkPolicy) -> Result<(), String> {
    let url = Url::parse(text).map_err(|e| format!("is not a valid URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http:// or https:// URL".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials; use `auth` instead".into());
    }
    if url.path() != "/" || url.query().is_some() {
        return Err("must be the store's base URL, without a path (the bucket is `bucket`)".into());
    }
    policy.check_url_host(&url)
}

/// What is wrong with a bucket name (S3's naming rules), if anything.
fn bucket_problem(bucket: &str) -> Option<&'static str> {
    let valid_chars = bucket
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    if bucket.len() < 3 {
        Some("must be 3 to 63 characters")
    } else if !valid_chars {
        Some("may contain only lower-case letters, digits, `-` and `.`")
    } else if !bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !bucket.ends_with(|c: char| c.is_ascii_alphanumeric())
    {
        Some("must start and end with a letter or digit")
    } else {
        None
    }
}

fn check_key(text: &str) -> Result<(), FieldError> {
    let template = Template::parse("config.key", text)?;
    let (first, second) = (sample_event(), sample_event());
    let rendered = template.render(&first);
    object_key(&rendered).map_err(|m| FieldError::new("config.key", m))?;
    if rendered == template.render(&second) {
        return Err(FieldError::new(
            "config.key",
            "must contain {id}: each event is its own object",
        ));
    }
    Ok(())
}

/// The object path of a rendered key: at most 1024 bytes, `/`-separated
/// parts that are neither empty, `.` nor `..`.
pub fn object_key(rendered: &str) -> Result<ObjectPath, String> {
    if rendered.len() > MAX_KEY_LEN {
        return Err(format!("renders to more than {MAX_KEY_LEN} bytes"));
    }
    ObjectPath::parse(rendered)
        .map_err(|e| format!("renders to `{rendered}`, which is not a valid key ({e})"))
}
