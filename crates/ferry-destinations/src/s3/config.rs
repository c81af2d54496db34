//! The S3 config, `{"endpoint", "region", "bucket", "key", "content_type",
//! "storage_class", "sse", "timeout_ms"}`, and its pure validation with the
//! destination's auth.

use ferry_core::FieldError;
use ferry_core::destination::Auth;
use object_store::path::Path as ObjectPath;
use serde::Serialize;
use serde_json::Value;
use url::Url;

use crate::fields::{Fields, unsupported_auth};
use crate::kind_config::KindConfig;
use crate::net_guard::NetworkPolicy;
use crate::template::{Template, sample_event};

/// Default object key template.
pub const DEFAULT_KEY: &str = "{org}/{type}/{date}/{id}.json";
/// Default per-request timeout.
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;
const MAX_TIMEOUT_MS: u64 = 300_000;
const MAX_KEY_LEN: usize = 1024;
/// The region of a destination with an access key and no `region`.
pub const DEFAULT_REGION: &str = "us-east-1";
const KNOWN: &[&str] = &[
    "endpoint",
    "region",
    "bucket",
    "key",
    "content_type",
    "storage_class",
    "sse",
    "timeout_ms",
];

/// An S3 destination's `config`, as stored (after [`KindConfig::validate`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct S3Config {
    /// An S3-compatible store's URL; AWS's regional endpoint when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Absent only without `auth`: the standard provider chain then gives
    /// the region (see `chain`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub bucket: String,
    /// Object key template; must contain `{id}`.
    pub key: Template,
    pub content_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    /// `AES256`, `aws:kms` or `aws:kms:<key id or ARN>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sse: Option<String>,
    pub timeout_ms: u64,
}

impl KindConfig for S3Config {
    type Context = NetworkPolicy;

    /// Checks an S3 config and its auth without I/O; fills in `key`
    /// (`{org}/{type}/{date}/{id}.json`), `content_type` (`application/json`),
    /// `timeout_ms` (30000) and, with an access key, `region` (`us-east-1`).
    /// The endpoint's host goes through the SSRF guard (IP literals and
    /// `localhost`). Auth is `access_key` or none (then the standard provider
    /// chain gives the credentials and, when `region` is absent, the region:
    /// see `chain`).
    fn parse(config: &Value, auth: &Auth, policy: &NetworkPolicy) -> Result<Self, Vec<FieldError>> {
        let mut fields = Fields::new(config, KNOWN);
        fields.extend(check_auth(auth));
        let endpoint = fields.optional_text("endpoint", 2048);
        let endpoint = fields
            .checked("endpoint", endpoint, |endpoint| match endpoint {
                Some(endpoint) => check_endpoint(endpoint, policy),
                None => Ok(()),
            })
            .map(|endpoint| endpoint.map(|e| e.trim_end_matches('/').to_owned()));
        let region = fields.optional_text("region", 64);
        let region = fields
            .checked("region", region, |region| match region {
                Some(region)
                    if !region
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-') =>
                {
                    Err("must be a region name such as eu-west-1".into())
                }
                _ => Ok(()),
            })
            .map(|region| match auth {
                Auth::None => region,
                _ => region.or_else(|| Some(DEFAULT_REGION.to_owned())),
            });
        let bucket = fields.text("bucket", None, 63);
        let bucket = fields.checked("bucket", bucket, |bucket| match bucket_problem(bucket) {
            Some(problem) => Err(problem.into()),
            None => Ok(()),
        });
        let key =
            fields
                .text("key", Some(DEFAULT_KEY), MAX_KEY_LEN)
                .and_then(|key| match check_key(&key) {
                    Ok(template) => Some(template),
                    Err(error) => {
                        fields.extend([error]);
                        None
                    }
                });
        let content_type = fields.text("content_type", Some("application/json"), 255);
        let content_type = fields.checked("content_type", content_type, |ct| {
            if ct.contains('/') && ct.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
                Ok(())
            } else {
                Err("must be a media type such as application/json".into())
            }
        });
        let storage_class = fields.optional_text("storage_class", 64);
        let storage_class = fields.checked("storage_class", storage_class, |class| match class {
            Some(c) if !c.chars().all(|c| c.is_ascii_uppercase() || c == '_') => {
                Err("must be a storage class such as STANDARD_IA or GLACIER_IR".into())
            }
            _ => Ok(()),
        });
        let sse = fields.optional_text("sse", 2048);
        let sse = fields.checked("sse", sse, |sse| match sse {
            Some(s) if !(s == "AES256" || s == "aws:kms" || s.starts_with("aws:kms:")) => {
                Err("must be AES256, aws:kms or aws:kms:<key id or ARN>".into())
            }
            _ => Ok(()),
        });
        let timeout_ms = fields.u64_in("timeout_ms", 1, MAX_TIMEOUT_MS, DEFAULT_TIMEOUT_MS);
        let config = (|| {
            Some(S3Config {
                endpoint: endpoint?,
                region: region?,
                bucket: bucket?,
                key: key?,
                content_type: content_type?,
                storage_class: storage_class?,
                sse: sse?,
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

fn check_auth(auth: &Auth) -> Vec<FieldError> {
    let mut errors = Vec::new();
    match auth {
        Auth::None => {}
        Auth::AccessKey {
            access_key_id,
            secret_access_key,
            ..
        } => {
            if access_key_id.is_empty() || access_key_id.chars().any(|c| !c.is_ascii_graphic()) {
                errors.push(FieldError::new(
                    "auth.access_key_id",
                    "is required (visible ASCII)",
                ));
            }
            if secret_access_key.expose().is_empty() {
                errors.push(FieldError::new("auth.secret_access_key", "is required"));
            }
        }
        other => errors.push(unsupported_auth(
            "s3",
            other.type_name(),
            "access_key, or none for the standard credential chain",
        )),
    }
    errors
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

fn check_key(text: &str) -> Result<Template, FieldError> {
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
    Ok(template)
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
