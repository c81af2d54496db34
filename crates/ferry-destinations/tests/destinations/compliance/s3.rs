//! S3 against moto's server, a bucket per test, read back with boto3.

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

/// Any key works with moto (it checks no signature).
pub fn access_key() -> Auth {
    Auth::AccessKey {
        access_key_id: "AKIAFERRYTEST".into(),
        secret_access_key: Secret::new("ferry-test-secret".into()),
        session_token: None,
    }
}

#[async_trait]
impl Target for S3 {
    const KIND: DestinationKind = DestinationKind::S3;
    const DEDUPLICATES: bool = true;

    async fn provision() -> (Self, Value, Auth) {
        let server = S3Server::start();
        let bucket = format!("ferry-{}", ferry_core::ids::unique_token());
        server.create_bucket(&bucket);
        let config = json!({"endpoint": server.endpoint(), "bucket": bucket, "key": "events/{type}/{id}.json"});
        (Self { server, bucket }, config, access_key())
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
            })
            .collect()
    }

    /// moto accepts every access key, so there are no wrong credentials to
    /// try; a missing bucket stands for the permanent failure instead
    /// (`tests/destinations/s3.rs`).
    fn wrong_credentials(&self, _config: &Value, _auth: &Auth) -> Option<(Value, Auth)> {
        None
    }

    fn unreachable(&self, config: &Value) -> Value {
        let mut config = config.clone();
        config["endpoint"] = json!(format!("http://127.0.0.1:{}", free_port()));
        config
    }
}

compliance!(S3);
