//! The PostgreSQL+Redis fixture: the state in a PostgreSQL schema of the
//! fixture's own, the queue on Redis Streams under a key prefix of its own
//! (`FERRY_TEST_REDIS_URL`, default the local server), whose keys are
//! deleted when the fixture is dropped. A Redis that cannot be reached
//! fails the test, never skips it.

use std::sync::Arc;
use std::time::Duration;

use ferry_core::crypto::Cipher;
use ferry_store::{RedisOptions, RedisQueue};

use crate::pg::PgFixture;
use crate::support::{Backend, Fixture};

pub fn redis_url() -> String {
    std::env::var("FERRY_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

pub struct RedisFixture {
    pub pg: PgFixture,
    pub prefix: String,
    pub options: RedisOptions,
}

impl RedisFixture {
    pub fn new() -> Self {
        Self::with_options(Duration::from_secs(330), Duration::from_secs(10))
    }

    pub fn with_options(claim_idle: Duration, stranded_after: Duration) -> Self {
        let prefix = format!("ferry-test-{}", ferry_core::ids::unique_token());
        Self {
            pg: PgFixture::new(),
            options: RedisOptions {
                prefix: prefix.clone(),
                claim_idle,
                stranded_after,
            },
            prefix,
        }
    }

    pub async fn open_queue(&self) -> RedisQueue {
        let pg = self.pg.open_pg().await;
        RedisQueue::connect(&redis_url(), pg, &self.options)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "Redis is needed for these tests and is not usable at {} ({e}). Start it \
                     with `redis-server --daemonize yes`, or point FERRY_TEST_REDIS_URL at \
                     another server.",
                    redis_url()
                )
            })
    }

    /// A plain connection to the same Redis, to break things with.
    pub async fn redis(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(redis_url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }
}

impl Fixture for RedisFixture {
    async fn open(&self) -> Backend {
        let queue = self.open_queue().await;
        let cipher = Cipher::new(&self.pg.key).unwrap();
        let store = self.pg.open_with_cipher(cipher.clone()).await;
        Backend::new(store, Arc::new(queue), cipher)
    }

    async fn refuse_audit(&self, action: &str) {
        self.pg.refuse_audit(action).await;
    }
}

impl Drop for RedisFixture {
    fn drop(&mut self) {
        let pattern = format!("{}:*", self.prefix);
        let Ok(client) = redis::Client::open(redis_url()) else {
            return;
        };
        if let Ok(mut conn) = client.get_connection() {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(&pattern)
                .query(&mut conn)
                .unwrap_or_default();
            if !keys.is_empty() {
                let _: redis::RedisResult<()> = redis::cmd("DEL").arg(&keys).query(&mut conn);
            }
        }
    }
}
