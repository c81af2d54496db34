//! The server the load tool starts when no `--url` is given: this executable
//! (or `--server-bin`) run as `serve` on a temporary data dir and a free
//! loopback port, with a random bootstrap admin key; readiness through
//! `/readyz`; resident memory sampled from `/proc/<pid>/status`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use rand::RngCore as _;
use tokio::process::{Child, Command};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

/// How long the started server has to answer `/readyz` with 200.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How often the server's resident memory is sampled.
const RSS_SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// A `ferry serve` child process, killed when stopped or dropped.
pub struct ManagedServer {
    /// Replaced by a restart.
    process: Mutex<Process>,
    pid: AtomicU32,
    bin: PathBuf,
    listen: String,
    base_url: String,
    api_key: String,
    data_dir: Option<tempfile::TempDir>,
    data_path: PathBuf,
    log_path: PathBuf,
    peak_rss_kb: Arc<AtomicU64>,
}

/// The running process and the task sampling its memory.
struct Process {
    child: Child,
    sampler: JoinHandle<()>,
}

impl Process {
    async fn kill(&mut self) {
        self.sampler.abort();
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

impl ManagedServer {
    /// Starts `bin serve` and waits until it is ready.
    pub async fn start(bin: &Path, http: &reqwest::Client) -> anyhow::Result<Self> {
        let data_dir = tempfile::Builder::new()
            .prefix("ferry-loadtest-")
            .tempdir()
            .context("cannot create a temporary data dir")?;
        let port = free_port()?;
        let listen = format!("127.0.0.1:{port}");
        let api_key = random_api_key();
        let log_path = data_dir.path().join("server.log");
        let data_path = data_dir.path().join("data");
        std::fs::create_dir(&data_path)
            .with_context(|| format!("cannot create {}", data_path.display()))?;
        let peak_rss_kb = Arc::new(AtomicU64::new(0));
        let child = spawn_serve(bin, &data_path, &listen, &api_key, &log_path)?;
        let (process, pid) = watch(child, &peak_rss_kb)?;
        let server = Self {
            process: Mutex::new(process),
            pid: AtomicU32::new(pid),
            bin: bin.to_owned(),
            listen,
            base_url: format!("http://127.0.0.1:{port}"),
            api_key,
            data_dir: Some(data_dir),
            data_path,
            log_path,
            peak_rss_kb,
        };
        server.wait_ready(http).await?;
        Ok(server)
    }

    /// Stops the server (as a crash would: what it acknowledged is stored)
    /// and starts it again on the same data, waiting until it is ready.
    pub async fn restart(&self, http: &reqwest::Client) -> anyhow::Result<()> {
        {
            let mut process = self.process.lock().await;
            process.kill().await;
            let child = spawn_serve(
                &self.bin,
                &self.data_path,
                &self.listen,
                &self.api_key,
                &self.log_path,
            )?;
            let (fresh, pid) = watch(child, &self.peak_rss_kb)?;
            *process = fresh;
            self.pid.store(pid, Ordering::Relaxed);
        }
        self.wait_ready(http).await
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// Peak resident memory seen so far, in KiB (the kernel's high-water mark
    /// when readable, else the highest sample).
    pub fn peak_rss_kb(&self) -> Option<u64> {
        let sampled = self.peak_rss_kb.load(Ordering::Relaxed);
        let hwm = read_status_kb(self.pid(), "VmHWM:").unwrap_or(0);
        Some(sampled.max(hwm)).filter(|&kb| kb > 0)
    }

    /// Starts counting the peak anew: the kernel's high-water mark is reset
    /// through `/proc/<pid>/clear_refs` (where writable) and so is the
    /// sampled one.
    pub fn reset_peak_rss(&self) {
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5");
        self.peak_rss_kb.store(0, Ordering::Relaxed);
    }

    /// Resident memory right now, in KiB.
    pub fn rss_kb(&self) -> Option<u64> {
        read_status_kb(self.pid(), "VmRSS:")
    }

    /// Keeps the data dir and log after the run; returns where they are.
    pub fn keep_data(&mut self) -> Option<PathBuf> {
        self.data_dir.take().map(tempfile::TempDir::keep)
    }

    /// Kills the server and waits for it to exit.
    pub async fn stop(self) {
        self.process.into_inner().kill().await;
    }

    fn pid(&self) -> u32 {
        self.pid.load(Ordering::Relaxed)
    }

    async fn wait_ready(&self, http: &reqwest::Client) -> anyhow::Result<()> {
        let url = format!("{}/readyz", self.base_url);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let exited = self.process.lock().await.child.try_wait()?;
            if let Some(status) = exited {
                bail!(
                    "the server exited during start-up ({status}); its log ({}):\n{}",
                    self.log_path.display(),
                    log_tail(&self.log_path, 20)
                );
            }
            let ready = http
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the server did not become ready within {} s at {url}; its log ({}):\n{}",
                    READY_TIMEOUT.as_secs(),
                    self.log_path.display(),
                    log_tail(&self.log_path, 20)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Samples the memory of `child`, just started; with its pid.
fn watch(child: Child, peak_rss_kb: &Arc<AtomicU64>) -> anyhow::Result<(Process, u32)> {
    let pid = child.id().context("the server exited at once")?;
    peak_rss_kb.store(0, Ordering::Relaxed);
    let sampler = tokio::spawn(sample_rss(pid, peak_rss_kb.clone()));
    Ok((Process { child, sampler }, pid))
}

/// `bin serve` on `data_path`, its output appended to the log at `log_path`.
fn spawn_serve(
    bin: &Path,
    data_path: &Path,
    listen: &str,
    api_key: &str,
    log_path: &Path,
) -> anyhow::Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;
    Command::new(bin)
        .arg("serve")
        .arg("--data-dir")
        .arg(data_path)
        .arg("--listen")
        .arg(listen)
        .env("FERRY_BOOTSTRAP_ADMIN_KEY", api_key)
        .env("FERRY_ALLOW_PRIVATE_NETWORKS", "true")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {} serve", bin.display()))
}

/// A loopback port nobody listens on right now.
fn free_port() -> anyhow::Result<u16> {
    let listener =
        std::net::TcpListener::bind(("127.0.0.1", 0)).context("cannot find a free port")?;
    Ok(listener.local_addr()?.port())
}

/// `fk_` and 256 random bits in lower-case hex.
fn random_api_key() -> String {
    format!("fk_{}", random_hex(32))
}

/// `bytes` random bytes as lower-case hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Samples `VmRSS` until aborted, keeping the highest value.
async fn sample_rss(pid: u32, peak_kb: Arc<AtomicU64>) {
    loop {
        if let Some(kb) = read_status_kb(pid, "VmRSS:") {
            peak_kb.fetch_max(kb, Ordering::Relaxed);
        }
        tokio::time::sleep(RSS_SAMPLE_EVERY).await;
    }
}

/// A `kB` line of `/proc/<pid>/status` (Linux only; `None` elsewhere).
fn read_status_kb(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kb(&status, key)
}

fn parse_status_kb(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// The last `lines` lines of a log file.
fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_are_parsed() {
        let status = "Name:\tferry\nVmHWM:\t  90112 kB\nVmRSS:\t   81234 kB\n";
        assert_eq!(parse_status_kb(status, "VmRSS:"), Some(81234));
        assert_eq!(parse_status_kb(status, "VmHWM:"), Some(90112));
        assert_eq!(parse_status_kb(status, "VmSwap:"), None);
    }

    #[test]
    fn own_process_rss_is_readable_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(read_status_kb(std::process::id(), "VmRSS:").unwrap() > 0);
        }
    }

    #[test]
    fn api_keys_are_random_hex() {
        let (a, b) = (random_api_key(), random_api_key());
        assert_ne!(a, b);
        assert_eq!(a.len(), 3 + 64);
        assert!(
            a[3..]
                .bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }
}
