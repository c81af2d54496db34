//! The S3 adapter (`validate`, `build`) and deliverer: one `PUT` per event
//! (a multipart upload for large bodies) through `object_store`, over an
//! HTTP client shared by every S3 destination with the SSRF guard in its
//! resolver; and the classification of S3's errors.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use ferry_core::FieldError;
use ferry_core::attempt::Receipt;
use ferry_core::delivery::{Captured, Envelope};
use ferry_core::destination::{Auth, Destination, DestinationKind};
use ferry_core::ports::{AttemptError, Delivered};
use ferry_core::ports::{AttemptReport, CheckReport, Deliverer, DestinationAdapter, ExportOutputs};
use futures::{FutureExt, StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::client::{HttpClient, HttpConnector, HttpError};
use object_store::path::Path as ObjectPath;
use object_store::{
    Attribute, Attributes, ClientOptions, ObjectStore, PutMultipartOptions, PutOptions, PutPayload,
    RetryConfig,
};
use serde_json::Value;
use serde_json::json;

use super::chain::{self, AwsEnvironment};
use super::config::{DEFAULT_REGION, S3Config, object_key};
use super::export::S3Exports;
use crate::CatalogOptions;
use crate::error_chain::{describe_chain, find_cause};
use crate::kind_config::KindConfig;
use crate::message::{Payload, metadata};
use crate::net_guard::{GuardedResolver, NetworkPolicy, ResolvedToRefused};
use crate::template::Template;

/// Bodies larger than this go up in parts (S3 needs parts of 5 MiB or more,
/// except the last).
pub const MULTIPART_THRESHOLD: usize = 8 * 1024 * 1024;
/// Size of each part of a multipart upload.
const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts of one upload in flight at once.
const PARALLEL_PARTS: usize = 4;

/// The `s3` kind. Owns the HTTP client shared by every S3 destination
/// (pooled connections, no proxy from the environment, the SSRF guard in
/// its resolver) and the environment of the standard provider chain.
pub struct S3Adapter {
    client: Result<reqwest::Client, String>,
    policy: Arc<NetworkPolicy>,
    environment: AwsEnvironment,
}

impl S3Adapter {
    /// The kind, its provider chain reading the process's environment.
    pub fn new(options: &CatalogOptions, policy: NetworkPolicy) -> Self {
        Self::with_environment(options, policy, AwsEnvironment::from_process())
    }

    /// The kind, its provider chain reading `environment`.
    pub fn with_environment(
        options: &CatalogOptions,
        policy: NetworkPolicy,
        environment: AwsEnvironment,
    ) -> Self {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(options.pool_max_idle_per_host)
            .connect_timeout(options.connect_timeout)
            .user_agent(options.user_agent.clone())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver {
                policy: Arc::clone(&policy),
            }))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {}", describe_chain(&e)));
        if let Err(error) = &client {
            tracing::error!(%error, "S3 destinations are unavailable.");
        }
        Self {
            client,
            policy,
            environment,
        }
    }
}

/// Hands `object_store` the shared, guarded client.
#[derive(Debug)]
struct SharedClient(reqwest::Client);

impl HttpConnector for SharedClient {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        Ok(HttpClient::new(self.0.clone()))
    }
}

impl DestinationAdapter for S3Adapter {
    fn kind(&self) -> DestinationKind {
        DestinationKind::S3
    }

    fn validate(&self, config: &Value, auth: &Auth) -> Result<Value, Vec<FieldError>> {
        S3Config::validate(config, auth, &self.policy)
    }

    fn build(&self, destination: &Destination) -> Result<Arc<dyn Deliverer>, String> {
        let client = self.client(destination)?;
        Ok(Arc::new(S3Deliverer {
            store: client.store,
            key: client.config.key,
            bucket: client.config.bucket,
            content_type: client.config.content_type,
            storage_class: client.config.storage_class,
            timeout: Duration::from_millis(client.config.timeout_ms),
            guard: S3Guard {
                endpoint: client.endpoint,
                policy: Arc::clone(&self.policy),
            },
        }))
    }

    fn export_outputs(
        &self,
        destination: &Destination,
    ) -> Option<Result<Arc<dyn ExportOutputs>, String>> {
        Some(self.client(destination).map(|client| {
            Arc::new(S3Exports {
                timeout: Duration::from_millis(client.config.timeout_ms),
                guard: S3Guard {
                    endpoint: client.endpoint,
                    policy: Arc::clone(&self.policy),
                },
                store: client.store,
                bucket: client.config.bucket,
                storage_class: client.config.storage_class,
            }) as Arc<dyn ExportOutputs>
        }))
    }
}

/// A destination's S3 client, with the config it was built from.
pub(super) struct S3Client {
    pub store: AmazonS3,
    pub config: S3Config,
    pub endpoint: Option<url::Url>,
}

impl S3Adapter {
    /// The client of a stored destination: its credentials (or the
    /// provider chain), bucket, endpoint and encryption.
    fn client(&self, destination: &Destination) -> Result<S3Client, String> {
        let auth = &destination.secrets.auth;
        // Read again under no policy, like the client kinds' configs: the
        // guard in the shared client refuses what the policy does not allow.
        let config = S3Config::from_stored(&destination.config, auth, &NetworkPolicy::allow_all())?;
        let client = self.client.clone()?;
        let mut builder = match auth {
            Auth::AccessKey {
                access_key_id,
                secret_access_key,
                session_token,
            } => {
                let builder = AmazonS3Builder::new()
                    .with_access_key_id(access_key_id)
                    .with_secret_access_key(secret_access_key.expose())
                    .with_region(config.region.as_deref().unwrap_or(DEFAULT_REGION));
                match session_token {
                    Some(token) => builder.with_token(token.expose()),
                    None => builder,
                }
            }
            // The standard provider chain.
            _ => chain::builder(&self.environment, config.region.as_deref())?,
        };
        builder = builder
            .with_bucket_name(&config.bucket)
            .with_http_connector(SharedClient(client))
            .with_retry(RetryConfig {
                // The engine retries with its own backoff and records each attempt.
                max_retries: 0,
                retry_timeout: Duration::from_millis(config.timeout_ms),
                ..RetryConfig::default()
            });
        let mut endpoint_url = None;
        if let Some(endpoint) = &config.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
            endpoint_url = url::Url::parse(endpoint).ok();
        }
        match config.sse.as_deref() {
            None => {}
            Some(kms) if kms.starts_with("aws:kms:") => {
                builder = builder.with_sse_kms_encryption(&kms["aws:kms:".len()..]);
            }
            Some(kind) => {
                let key: AmazonS3ConfigKey = "aws_server_side_encryption"
                    .parse()
                    .map_err(|e| format!("cannot configure encryption: {e}"))?;
                builder = builder.with_config(key, kind);
            }
        }
        let store = builder
            .build()
            .map_err(|e| format!("cannot configure the S3 client: {e}"))?;
        Ok(S3Client {
            store,
            config,
            endpoint: endpoint_url,
        })
    }
}

/// Puts events into one bucket.
pub struct S3Deliverer {
    store: AmazonS3,
    key: Template,
    bucket: String,
    content_type: String,
    storage_class: Option<String>,
    timeout: Duration,
    guard: S3Guard,
}

/// The SSRF guard's check of an IP-literal endpoint (names are checked by
/// the resolver in the shared client).
pub(super) struct S3Guard {
    endpoint: Option<url::Url>,
    policy: Arc<NetworkPolicy>,
}

impl S3Guard {
    pub fn check(&self) -> Result<(), AttemptError> {
        match &self.endpoint {
            Some(url) => self
                .policy
                .check_ip_literal(url)
                .map_err(|refusal| AttemptError::permanent(refusal.to_string())),
            None => Ok(()),
        }
    }
}

impl std::fmt::Debug for S3Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Deliverer")
            .field("bucket", &self.bucket)
            .field("key", &self.key.as_str())
            .finish_non_exhaustive()
    }
}

impl S3Deliverer {
    async fn put(
        &self,
        path: &ObjectPath,
        body: Bytes,
        attributes: Attributes,
    ) -> Result<object_store::PutResult, AttemptError> {
        let size = body.len();
        if size <= MULTIPART_THRESHOLD {
            let options = PutOptions {
                attributes,
                ..PutOptions::default()
            };
            let put = self.store.put_opts(path, PutPayload::from(body), options);
            return self.deadline(self.timeout, put).await;
        }
        let options = PutMultipartOptions {
            attributes,
            ..PutMultipartOptions::default()
        };
        let start = self.store.put_multipart_opts(path, options);
        let mut upload = self.deadline(self.timeout, start).await?;
        // Up to four parts go up at once; each part gets the per-request
        // timeout.
        let parts: Vec<_> = (0..size)
            .step_by(PART_SIZE)
            .map(|at| upload.put_part(PutPayload::from(body.slice(at..(at + PART_SIZE).min(size)))))
            .collect();
        let limit = self.timeout * (parts.len() as u32 + 1);
        let uploaded = async {
            futures::stream::iter(parts)
                .buffer_unordered(PARALLEL_PARTS)
                .try_collect::<Vec<()>>()
                .await?;
            upload.complete().await
        };
        let result = self.deadline(limit, uploaded).await;
        if result.is_err() {
            // Parts of an unfinished upload are kept (and billed) until
            // aborted.
            let abort = upload.abort();
            if let Err(error) = self.deadline(self.timeout, abort).await {
                tracing::warn!(bucket = %self.bucket, ?error, "Could not abort a failed multipart upload.");
            }
        }
        result
    }

    async fn deadline<T>(
        &self,
        limit: Duration,
        work: impl Future<Output = object_store::Result<T>>,
    ) -> Result<T, AttemptError> {
        match tokio::time::timeout(limit, work).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(classify(&error, &self.bucket)),
            Err(_) => Err(AttemptError::retryable(format!(
                "timed out after {} ms",
                limit.as_millis()
            ))),
        }
    }
}

#[async_trait]
impl Deliverer for S3Deliverer {
    /// Puts the event's body at the rendered key (the same key on every
    /// attempt: a re-delivery overwrites the object with the same bytes),
    /// with the event's metadata as `x-amz-meta-*`.
    async fn deliver(&self, envelope: &Envelope) -> AttemptReport {
        let event = &envelope.event;
        let key = self.key.render(event);
        let body = Payload::of(event).to_bytes();
        let mut headers = BTreeMap::from([
            ("bucket".to_owned(), self.bucket.clone()),
            ("key".to_owned(), key.clone()),
            ("content-type".to_owned(), self.content_type.clone()),
            ("bytes".to_owned(), body.len().to_string()),
        ]);
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::ContentType, self.content_type.clone().into());
        if let Some(class) = &self.storage_class {
            attributes.insert(Attribute::StorageClass, class.clone().into());
        }
        for (name, value) in metadata(envelope) {
            headers.insert(format!("x-amz-meta-{name}"), value.clone());
            attributes.insert(Attribute::Metadata(Cow::Borrowed(name)), value.into());
        }
        let request = Captured {
            headers,
            body: Captured::body_from_bytes(&body),
        };
        let result = match (self.guard.check(), object_key(&key)) {
            (Err(error), _) => Err(error),
            (_, Err(message)) => Err(AttemptError::permanent(format!("config.key {message}"))),
            (Ok(()), Ok(path)) => self.put(&path, Bytes::from(body), attributes).await,
        };
        AttemptReport {
            result: result.map(|put| Delivered {
                receipt: Some(Receipt::of([
                    ("bucket", json!(self.bucket)),
                    ("key", json!(key)),
                    ("etag", json!(put.e_tag)),
                    ("version_id", json!(put.version)),
                ])),
            }),
            status_code: None,
            request: Some(request),
            response: None,
        }
    }

    /// Lists the bucket (one page, under a prefix that matches nothing):
    /// proves the endpoint, the credentials and that the bucket exists.
    async fn check(&self) -> CheckReport {
        let started = Instant::now();
        let prefix = ObjectPath::from(".ferry-check");
        let listed = async {
            self.guard.check()?;
            let list = self
                .store
                .list_with_delimiter(Some(&prefix))
                .map(|r| r.map(drop));
            self.deadline(self.timeout, list).await
        };
        match listed.await {
            Ok(()) => CheckReport {
                ok: true,
                message: format!(
                    "bucket {} is reachable in {} ms",
                    self.bucket,
                    started.elapsed().as_millis()
                ),
            },
            Err(error) => CheckReport {
                ok: false,
                message: error.into_reason(),
            },
        }
    }
}

/// Classifies an `object_store` error: a missing bucket, refused access
/// and failed authentication are permanent, and so are other 4xx answers;
/// connection failures, timeouts, 408, 429 and 5xx are retryable. The
/// message names the S3 error code when the answer had one, never a
/// credential.
pub fn classify(error: &object_store::Error, bucket: &str) -> AttemptError {
    let code = s3_code(error);
    let with_code = |text: String| match &code {
        Some(code) => format!("{text} ({code})"),
        None => text,
    };
    let permanent = AttemptError::permanent;
    if let Some(refused) = find_cause::<ResolvedToRefused>(error) {
        return permanent(refused.to_string());
    }
    let status = match error {
        object_store::Error::NotFound { .. } => Some(404),
        object_store::Error::PermissionDenied { .. } => Some(403),
        object_store::Error::Unauthenticated { .. } => Some(401),
        _ => http_status(error),
    };
    match status {
        Some(404) => permanent(with_code(format!(
            "bucket {bucket} does not exist (HTTP 404)"
        ))),
        Some(403) => permanent(with_code(format!(
            "access denied to bucket {bucket}: check the credentials and the bucket policy (HTTP 403)"
        ))),
        Some(401) => permanent(with_code(
            "authentication failed: check the credentials (HTTP 401)".into(),
        )),
        Some(status @ (408 | 429 | 500..=599)) => {
            AttemptError::retryable(with_code(format!("S3 answered HTTP {status}")))
        }
        Some(status) => permanent(with_code(format!("S3 refused the object (HTTP {status})"))),
        None => {
            let reason = match find_cause::<HttpError>(error) {
                Some(http) => {
                    use object_store::client::HttpErrorKind;
                    let detail = describe_chain(http);
                    match http.kind() {
                        HttpErrorKind::Timeout => "timed out".to_owned(),
                        HttpErrorKind::Connect if !detail.starts_with("connection") => {
                            format!("could not connect: {detail}")
                        }
                        _ => detail,
                    }
                }
                None => describe_chain(error),
            };
            AttemptError::retryable(reason)
        }
    }
}

/// The HTTP status `object_store` reports in its error text
/// (`… status code: 503 Service Unavailable …`).
fn http_status(error: &object_store::Error) -> Option<u16> {
    let text = chain_text(error);
    let at = text.find("status code: ")? + "status code: ".len();
    text[at..].get(..3)?.parse().ok()
}

/// S3's error code from an XML error body (`<Code>NoSuchBucket</Code>`).
fn s3_code(error: &object_store::Error) -> Option<String> {
    let text = chain_text(error);
    let start = text.find("<Code>")? + "<Code>".len();
    let end = start + text[start..].find("</Code>")?;
    let code = &text[start..end];
    (code.len() <= 64 && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '.'))
        .then(|| code.to_owned())
}

fn chain_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut current = error.source();
    while let Some(cause) = current {
        text.push_str(" | ");
        text.push_str(&cause.to_string());
        current = cause.source();
    }
    text
}
