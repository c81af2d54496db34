//! Running `ferry serve` as a child process.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ADMIN_KEY: &str = "fk_cli_test_admin_key_0123456789abcdefghijkl";

pub struct FerryProcess {
    pub child: Child,
    pub base: String,
}

/// Where a child's stdout and stderr go.
pub enum Output<'a> {
    /// Appended to this file.
    File(&'a Path),
    /// `/dev/full`: every write fails with ENOSPC.
    Full,
}

impl FerryProcess {
    /// Starts `ferry serve` on `dir` and waits until it is ready.
    pub async fn start(dir: &Path) -> Self {
        Self::start_logging(dir, "info").await
    }

    /// Starts with `RUST_LOG` set to `filter`.
    pub async fn start_logging(dir: &Path, filter: &str) -> Self {
        Self::start_with(dir, filter, &[], &[]).await
    }

    /// Starts with extra arguments and environment; `dir` holds the log.
    pub async fn start_with(
        dir: &Path,
        filter: &str,
        args: &[&str],
        envs: &[(&str, String)],
    ) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let log = dir.join("server.log");
        Self::launch(&dir.join("data"), Output::File(&log), filter, args, envs).await
    }

    /// Starts on `data_dir`, with stdout and stderr going to `output`.
    pub async fn launch(
        data_dir: &Path,
        output: Output<'_>,
        filter: &str,
        args: &[&str],
        envs: &[(&str, String)],
    ) -> Self {
        Self::launch_at(
            data_dir,
            output,
            filter,
            args,
            envs,
            ferry_testkit::free_port(),
        )
        .await
    }

    /// Like `launch`, listening on `port` (a server started again where its
    /// clients expect it).
    pub async fn launch_at(
        data_dir: &Path,
        output: Output<'_>,
        filter: &str,
        args: &[&str],
        envs: &[(&str, String)],
        port: u16,
    ) -> Self {
        let (log, described) = match output {
            Output::File(path) => (
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .unwrap(),
                format!("see {}", path.display()),
            ),
            Output::Full => (
                std::fs::OpenOptions::new()
                    .write(true)
                    .open("/dev/full")
                    .unwrap(),
                "its output went to /dev/full".to_owned(),
            ),
        };
        let child = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(["serve", "--data-dir"])
            .arg(data_dir)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("FERRY_BOOTSTRAP_ADMIN_KEY", ADMIN_KEY)
            .env("FERRY_ALLOW_PRIVATE_NETWORKS", "true")
            .env("RUST_LOG", filter)
            .args(args)
            .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("ferry starts");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http.get(format!("{base}/readyz")).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "ferry did not become ready; {described}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { child, base }
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill_9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then wait for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for FerryProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the receiver has every one of `ids` (distinct `webhook-id`s).
pub async fn wait_until_received(
    receiver: &ferry_testkit::Receiver,
    ids: &std::collections::HashSet<String>,
    timeout: Duration,
) {
    let deadline = Instant::now() + timeout;
    loop {
        let received = receiver.distinct_ids();
        let missing = ids.iter().filter(|id| !received.contains(*id)).count();
        if missing == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} acknowledged events never arrived"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET url` with the admin key; the JSON answer, which must be a 200.
pub async fn api_get(http: &reqwest::Client, url: &str) -> serde_json::Value {
    let response = http.get(url).bearer_auth(ADMIN_KEY).send().await.unwrap();
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(status.as_u16(), 200, "GET {url}: {body}");
    body
}

/// Asserts that, within `timeout`, no delivery is left pending, in flight,
/// waiting for a retry, or dead.
pub async fn assert_nothing_waiting(http: &reqwest::Client, base: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    for status in ["pending", "delivering", "retrying", "dead"] {
        loop {
            let list = api_get(
                http,
                &format!("{base}/v1/deliveries?status={status}&limit=10"),
            )
            .await;
            if list["data"].as_array().unwrap().is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "deliveries left {status}: {list}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Concurrent clients sending events (type `scale.test`, ids
/// `{id_prefix}-{i}`) round-robin to several ingest processes; every one
/// must be acknowledged with 202, and the acknowledged ids are kept.
pub struct Load {
    acked: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    pub fn start(bases: &[String], events: usize, clients: usize, id_prefix: &str) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let http = reqwest::Client::new();
        let acked = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
        let next = std::sync::Arc::new(AtomicUsize::new(0));
        let tasks = (0..clients)
            .map(|c| {
                let (http, base, acked, next) = (
                    http.clone(),
                    bases[c % bases.len()].clone(),
                    acked.clone(),
                    next.clone(),
                );
                let id_prefix = id_prefix.to_owned();
                tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        if i >= events {
                            break;
                        }
                        let r = http
                            .post(format!("{base}/v1/events"))
                            .bearer_auth(ADMIN_KEY)
                            .json(&serde_json::json!({"type": "scale.test", "id": format!("{id_prefix}-{i}"), "data": {"i": i}}))
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(r.status().as_u16(), 202, "{}", r.text().await.unwrap_or_default());
                        let body: serde_json::Value = r.json().await.unwrap();
                        let id = body["id"].as_str().unwrap().to_owned();
                        acked.lock().unwrap().insert(id);
                    }
                })
            })
            .collect();
        Self { acked, tasks }
    }

    /// Waits for every client; the acknowledged event ids.
    pub async fn finish(self) -> std::collections::HashSet<String> {
        for task in self.tasks {
            task.await.unwrap();
        }
        self.acked.lock().unwrap().clone()
    }
}

/// Waits until the receiver has at least `n` distinct events.
pub async fn wait_for_progress(receiver: &ferry_testkit::Receiver, n: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while receiver.distinct_count() < n {
        assert!(
            Instant::now() < deadline,
            "deliveries too slow: {} of {n}",
            receiver.distinct_count()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Creates a webhook destination to `url` for the event types matching
/// `pattern`, with at most `max_in_flight` deliveries at once.
pub async fn create_webhook(base: &str, url: &str, pattern: &str, max_in_flight: u32) {
    let created: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/v1/destinations"))
        .bearer_auth(ADMIN_KEY)
        .json(
            &serde_json::json!({"name": "receiver", "kind": "webhook", "config": {"url": url},
                  "filter": {"event_types": [pattern]}, "max_in_flight": max_in_flight}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(created["id"].is_string(), "{created}");
}

/// Starts the processes of a scale-out topology, one at a time (the first
/// creates the organization and the admin key): `(name, role)` each, under
/// `dir`, with `env`.
pub async fn start_roles(
    dir: &Path,
    roles: &[(&str, &str)],
    env: &[(&str, String)],
) -> Vec<FerryProcess> {
    let mut started = Vec::with_capacity(roles.len());
    for (name, role) in roles {
        started
            .push(FerryProcess::start_with(&dir.join(name), "info", &["--role", role], env).await);
    }
    started
}
