//! Redis streams against the local Redis, read back with `XRANGE`. Redis
//! here has no password, but ACL users are still checked: `AUTH` as a user
//! that does not exist answers `WRONGPASS`.

use async_trait::async_trait;
use ferry_core::destination::{Auth, DestinationKind};
use ferry_core::secret::Secret;
use ferry_testkit::free_port;
use redis::AsyncCommands;
use serde_json::{Value, json};

use super::{Received, Target, unique_name};

pub const URL: &str = "redis://127.0.0.1:6379";

pub struct RedisStream {
    pub conn: redis::aio::MultiplexedConnection,
    pub key: String,
}

/// A connection of the test's own, to read back what was delivered.
pub async fn connection() -> redis::aio::MultiplexedConnection {
    redis::Client::open(URL)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("the local Redis at 127.0.0.1:6379")
}

#[async_trait]
impl Target for RedisStream {
    const KIND: DestinationKind = DestinationKind::Redis;
    const RECEIPT: &'static [&'static str] = &["entry_id"];
    const DEDUPLICATES: bool = false;
    const CARRIES_TRACE: bool = true;

    async fn provision() -> (Self, Value, Auth) {
        let key = unique_name("ferry-test");
        let config = json!({"url": URL, "key": key, "maxlen": 1000});
        (
            Self {
                conn: connection().await,
                key,
            },
            config,
            Auth::None,
        )
    }

    async fn received(&mut self) -> Vec<Received> {
        let entries: redis::streams::StreamRangeReply =
            self.conn.xrange_all(&self.key).await.unwrap();
        entries
            .ids
            .iter()
            .map(|entry| {
                let id: String = entry.get("id").unwrap();
                let payload: String = entry.get("payload").unwrap();
                let webhook_id: String = entry.get("webhook-id").unwrap();
                assert_eq!(webhook_id, id);
                Received {
                    id,
                    payload: serde_json::from_str(&payload).unwrap(),
                    traceparent: entry.get("traceparent"),
                }
            })
            .collect()
    }

    fn wrong_credentials(&self, config: &Value, _auth: &Auth) -> Option<(Value, Auth)> {
        let wrong = Auth::Basic {
            username: "ferry-no-such-user".into(),
            password: Secret::new("wrong-s3cr3t".into()),
        };
        Some((config.clone(), wrong))
    }

    fn unreachable(&self, config: &Value) -> Value {
        let mut config = config.clone();
        config["url"] = json!(format!("redis://127.0.0.1:{}", free_port()));
        config
    }
}

compliance!(RedisStream);
