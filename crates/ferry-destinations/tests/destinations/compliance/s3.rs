//! S3 against moto's server, a bucket per test, read back with boto3. The
//! server checks access keys (and signatures) against its IAM user.

use async_trait::async_trait;
use ferry_core::destination::{Auth, DestinationKind};
use ferry_core::secret::Secret;
use ferry_testkit::free_port;
use ferry_testkit::services::S3Server;
use serde_json::{Value, json};

use super::{Received, Target};

pub struct S3 {
    server: S3Server,
    bucket: String,
}

/// A key that a server started with [`S3Server::start`] accepts (it
/// accepts any).
pub fn access_key() -> Auth {
    key("AKIAFERRYTEST", "ferry-test-secret")
}

pub fn key(access_key_id: &str, secret_access_key: &str) -> Auth {
    Auth::AccessKey {
        access_key_id: access_key_id.into(),
        secret_access_key: Secret::new(secret_access_key.into()),
        session_token: None,
    }
}

#[async_trait]
impl Target for S3 {
    const KIND: DestinationKind = DestinationKind::S3;
    const RECEIPT: &'static [&'static str] = &["bucket", "key", "etag"];
    const DEDUPLICATES: bool = true;
    const CARRIES_TRACE: bool = true;

    async fn provision() -> (Self, Value, Auth) {
        let server = S3Server::start_with_iam();
        let bucket = format!("ferry-{}", ferry_core::ids::unique_token());
        server.create_bucket(&bucket);
        let config = json!({"endpoint": server.endpoint(), "bucket": bucket, "key": "events/{type}/{id}.json"});
        let (id, secret) = server.access_key().expect("the server checks keys");
        let auth = key(id, secret);
        (Self { server, bucket }, config, auth)
    }

    async fn received(&mut self) -> Vec<Received> {
        self.server
            .objects(&self.bucket)
            .into_iter()
            .map(|object| Received {
                id: object
                    .metadata
                    .get("webhook-id")
                    .cloned()
                    .unwrap_or_default(),
                payload: serde_json::from_str(object.body.as_deref().unwrap_or("null")).unwrap(),
                traceparent: object.metadata.get("traceparent").cloned(),
            })
            .collect()
    }

    /// The server's own key id with another secret: the signature does
    /// not match.
    fn wrong_credentials(&self, config: &Value, _auth: &Auth) -> Option<(Value, Auth)> {
        let (id, _) = self.server.access_key()?;
        Some((config.clone(), key(id, "not-the-secret")))
    }

    fn unreachable(&self, config: &Value) -> Value {
        let mut config = config.clone();
        config["endpoint"] = json!(format!("http://127.0.0.1:{}", free_port()));
        config
    }
}

compliance!(S3);
