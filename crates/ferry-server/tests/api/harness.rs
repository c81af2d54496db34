//! Starting a server for a test and talking to it.

use std::time::{Duration, Instant};

use ferry_server::{Config, Running};
use ferry_testkit::pg::{PgSchema, database_url};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;

pub const ADMIN_KEY: &str = "fk_test_admin_key_0123456789abcdefghijklmnop";

pub struct TestServer {
    pub running: Option<Running>,
    pub base: String,
    pub http: reqwest::Client,
    pub dir: TempDir,
    pub config: Config,
    schema: Option<PgSchema>,
}

pub fn test_config(dir: &TempDir) -> Config {
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        allow_private_networks: true,
        bootstrap_admin_key: Some(ADMIN_KEY.to_owned()),
        ..Config::default()
    };
    if crate::POSTGRES {
        config.database_url = Some(database_url());
        config.database_schema = Some(format!("ferry_api_{}", ferry_core::ids::unique_token()));
        config.master_key = Some("5a".repeat(32));
    }
    config.dispatch.poll_interval_ms = 200;
    config.dispatch.shutdown_grace_ms = 2_000;
    config
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(&dir);
        tweak(&mut config);
        Self::start_in(dir, config).await
    }

    pub async fn start_in(dir: TempDir, config: Config) -> Self {
        let schema = config.database_schema.clone().map(|name| PgSchema { name });
        let mut server = Self::launch(dir, config).await;
        server.schema = schema;
        server
    }

    async fn launch(dir: TempDir, config: Config) -> Self {
        let running = ferry_server::start(config.clone())
            .await
            .expect("server starts");
        let base = format!("http://{}", running.addr);
        Self {
            running: Some(running),
            base,
            http: reqwest::Client::new(),
            dir,
            config,
            schema: None,
        }
    }

    /// Another server on the same store (the same PostgreSQL schema), such
    /// as a worker joining; it leaves the schema to this one.
    // Used only by the PostgreSQL binary.
    #[allow(dead_code)]
    pub async fn join(&self, tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = self.config.clone();
        config.data_dir = dir.path().to_path_buf();
        config.listen = "127.0.0.1:0".parse().unwrap();
        tweak(&mut config);
        Self::launch(dir, config).await
    }

    /// Stops gracefully and starts again on the same data dir.
    pub async fn restart(mut self) -> Self {
        let running = self.running.take().unwrap();
        running.shutdown();
        running.wait().await.unwrap();
        let config = self.config.clone();
        // The same schema (PostgreSQL) or data dir (SQLite) again.
        let mut next = Self::launch(self.dir, config).await;
        next.schema = self.schema.take();
        next
    }

    /// Stops gracefully and hands back the data dir (the embedded-store
    /// tests read its files).
    // Unused in the PostgreSQL binary, which leaves the embedded tests out.
    #[allow(dead_code)]
    pub async fn stop_and_keep(mut self) -> TempDir {
        let running = self.running.take().unwrap();
        running.shutdown();
        running.wait().await.unwrap();
        self.dir
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    /// Changes the default (first) organization, as the admin.
    pub async fn patch_default_org(&self, body: Value) -> (StatusCode, Value) {
        let (_, orgs) = self.get("/v1/orgs").await;
        let org = orgs["data"][0]["id"].as_str().unwrap().to_owned();
        let path = format!("/v1/orgs/{org}");
        self.call(Method::PATCH, &path, Some(ADMIN_KEY), Some(body))
            .await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(ADMIN_KEY), None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(ADMIN_KEY), Some(body))
            .await
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        let response = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.text().await.unwrap()
    }

    /// Creates a webhook destination; returns (id, signing secret).
    pub async fn webhook(&self, url: &str, extra: Value) -> (String, String) {
        let mut body = json!({"name": "hook", "kind": "webhook", "config": {"url": url}, "filter": {"event_types": ["*"]}});
        merge(&mut body, extra);
        let (status, v) = self.post("/v1/destinations", body).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        (
            v["id"].as_str().unwrap().to_owned(),
            // Shown only when Ferry made the secret.
            v["signing_secret"].as_str().unwrap_or_default().to_owned(),
        )
    }

    pub async fn send(&self, body: Value) -> Value {
        let (status, v) = self.post("/v1/events", body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{v}");
        v
    }

    /// Polls a delivery until it reaches `status`.
    pub async fn wait_status(&self, delivery: &str, status: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (_, v) = self.get(&format!("/v1/deliveries/{delivery}")).await;
            if v["status"] == status {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "delivery {delivery} did not become {status}: {v}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Counts deliveries with a status (up to 1000).
    pub async fn count(&self, status: &str) -> usize {
        let (_, v) = self
            .get(&format!("/v1/deliveries?status={status}&limit=1000"))
            .await;
        v["data"].as_array().unwrap().len()
    }
}

pub fn merge(base: &mut Value, extra: Value) {
    if let (Value::Object(b), Value::Object(e)) = (base, extra) {
        for (k, v) in e {
            b.insert(k, v);
        }
    }
}

/// Fast retries for tests.
pub fn fast_retry(max_retries: u32) -> Value {
    json!({"retry": {"max_retries": max_retries, "initial_backoff_ms": 20, "multiplier": 2.0, "max_backoff_ms": 200}})
}
