//! A real HTTP receiver on 127.0.0.1:0 that records every request and
//! answers as told ([`Behavior`]): the other end of webhook delivery tests
//! and load tests.
//!
//! A request is recorded when it reaches the handler (its body read), before
//! any delay, together with the status it is going to get. Recording takes one
//! short `std::sync::Mutex` lock (never held across an `.await`), and waiters
//! are woken by a `Notify` rather than by polling with sleeps.

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use tokio::net::TcpSocket;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// Largest request body the receiver accepts (events go up to 10 MiB).
const MAX_REQUEST_BODY: usize = 64 * 1024 * 1024;
/// Pending-connection backlog, so that a burst of 1000+ connects is not
/// dropped and retried by the kernel (capped by `net.core.somaxconn`).
const BACKLOG: u32 = 4096;
/// How long `shutdown` waits for open connections to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// The body of a 200 answer.
const OK_BODY: &str = r#"{"ok":true}"#;
/// Chunk size of `Behavior::LargeBody` answers.
const CHUNK: usize = 64 * 1024;
static FILL: [u8; CHUNK] = [b'x'; CHUNK];

/// How the receiver answers from now on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behavior {
    /// 200 with a small JSON body.
    Ok,
    /// Always this status.
    Status(u16),
    /// The first `times` requests (counted from when this was set) get
    /// `status`, then 200.
    FailTimes { times: usize, status: u16 },
    /// The first `times` requests get `status` with `Retry-After: seconds`,
    /// then 200.
    RetryAfter {
        status: u16,
        seconds: u64,
        times: usize,
    },
    /// 200 after a delay (a slow receiver); requests wait concurrently.
    Delay(Duration),
    /// Never answers, until the receiver shuts down (then 503).
    Hang,
    /// 200 with a body of this many bytes, streamed in 64 KiB chunks and
    /// never held in memory whole; `usize::MAX` is practically endless.
    LargeBody(usize),
    /// 200 when the `Authorization` header is exactly this value, 401
    /// otherwise (a receiver that checks credentials).
    RequireAuthorization(String),
}

/// One request as the receiver got it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// The path, without the query.
    pub path: String,
    pub query: Option<String>,
    /// Header names lower-cased (as HTTP/1 parsing gives them), in arrival
    /// order; values decoded lossily.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub received_at: Instant,
    /// The status answered, or 0 for `Behavior::Hang` (no answer).
    pub status_sent: u16,
}

impl Recorded {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The headers as an `http::HeaderMap` (for example to verify a
    /// signature with the `standardwebhooks` crate).
    pub fn header_map(&self) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in &self.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                map.append(name, value);
            }
        }
        map
    }

    /// The body parsed as JSON.
    ///
    /// # Panics
    ///
    /// When the body is not JSON (the test then fails with the body shown).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "request body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// A recording HTTP receiver serving in a tokio task. Accepts any method on
/// any path. Dropping it stops it (without waiting); [`Receiver::shutdown`]
/// also waits for the server to finish.
pub struct Receiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

struct Shared {
    inner: Mutex<Inner>,
    /// Woken after every recorded request.
    arrived: Notify,
    /// `true` once the receiver is shutting down.
    stop: watch::Sender<bool>,
}

struct Inner {
    behavior: Behavior,
    /// Requests answered since the behavior was set.
    answered: usize,
    requests: Vec<Recorded>,
    ids: HashSet<String>,
}

/// What to answer one request.
struct Plan {
    /// 0: never answer.
    status: u16,
    retry_after: Option<u64>,
    delay: Option<Duration>,
    body_len: Option<usize>,
}

impl Inner {
    fn plan(&mut self, authorization: Option<&str>) -> Plan {
        let n = self.answered;
        self.answered += 1;
        let plain = |status| Plan {
            status,
            retry_after: None,
            delay: None,
            body_len: None,
        };
        match self.behavior {
            Behavior::Ok => plain(200),
            Behavior::Status(status) => plain(status),
            Behavior::FailTimes { times, status } => plain(if n < times { status } else { 200 }),
            Behavior::RetryAfter {
                status,
                seconds,
                times,
            } if n < times => Plan {
                retry_after: Some(seconds),
                ..plain(status)
            },
            Behavior::RetryAfter { .. } => plain(200),
            Behavior::Delay(delay) => Plan {
                delay: Some(delay),
                ..plain(200)
            },
            Behavior::Hang => plain(0),
            Behavior::LargeBody(len) => Plan {
                body_len: Some(len),
                ..plain(200)
            },
            Behavior::RequireAuthorization(ref expected) => {
                plain(if authorization == Some(expected.as_str()) {
                    200
                } else {
                    401
                })
            }
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Resolves once the receiver is shutting down.
    async fn stopped(&self) {
        let mut rx = self.stop.subscribe();
        // The sender lives in `self`, so this only ends on `true`.
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

impl Receiver {
    /// Binds 127.0.0.1:0 and serves in a tokio task, answering 200.
    ///
    /// # Panics
    ///
    /// When no loopback port can be bound.
    pub async fn start() -> Receiver {
        Self::start_at(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Binds `addr` (a destination that was down comes back on its old
    /// port) and serves like [`start`](Self::start).
    ///
    /// # Panics
    ///
    /// When `addr` cannot be bound.
    pub async fn start_at(addr: SocketAddr) -> Receiver {
        let socket = TcpSocket::new_v4().expect("create a TCP socket");
        socket.set_reuseaddr(true).expect("set SO_REUSEADDR");
        socket
            .bind(addr)
            .unwrap_or_else(|e| panic!("bind {addr}: {e}"));
        let listener = socket.listen(BACKLOG).expect("listen on 127.0.0.1");
        let addr = listener
            .local_addr()
            .expect("local address of a bound listener");

        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                behavior: Behavior::Ok,
                answered: 0,
                requests: Vec::new(),
                ids: HashSet::new(),
            }),
            arrived: Notify::new(),
            stop: watch::channel(false).0,
        });
        let app = Router::new()
            .fallback(handle)
            .layer(DefaultBodyLimit::max(MAX_REQUEST_BODY))
            .with_state(shared.clone());
        let signal = shared.clone();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move { signal.stopped().await })
                .await;
            if let Err(error) = served {
                tracing::warn!(%error, "Test receiver stopped with an error.");
            }
        });
        Receiver {
            addr,
            shared,
            task: Some(task),
        }
    }

    /// `http://127.0.0.1:PORT/hook`.
    pub fn url(&self) -> String {
        format!("{}/hook", self.base_url())
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What to answer from now on; restarts the `FailTimes`/`RetryAfter`
    /// count.
    pub fn set_behavior(&self, behavior: Behavior) {
        let mut inner = self.shared.lock();
        inner.behavior = behavior;
        inner.answered = 0;
    }

    /// Every request received so far, in order of arrival.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().requests.clone()
    }

    pub fn count(&self) -> usize {
        self.shared.lock().requests.len()
    }

    /// The distinct `webhook-id` header values received.
    pub fn distinct_ids(&self) -> HashSet<String> {
        self.shared.lock().ids.clone()
    }

    /// How many distinct `webhook-id` values were received.
    pub fn distinct_count(&self) -> usize {
        self.shared.lock().ids.len()
    }

    /// Forgets the requests received so far.
    pub fn clear(&self) {
        let mut inner = self.shared.lock();
        inner.requests.clear();
        inner.ids.clear();
    }

    /// Waits until at least `n` requests have arrived, or fails after
    /// `timeout` saying how many did.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> anyhow::Result<()> {
        self.wait_until(timeout, |inner| inner.requests.len() >= n)
            .await
            .map_err(|(count, distinct)| {
                anyhow::anyhow!(
                    "waited {timeout:?} for {n} requests, got {count} ({distinct} distinct webhook ids)"
                )
            })
    }

    /// Waits until at least `n` distinct `webhook-id` values have arrived.
    pub async fn wait_for_distinct(&self, n: usize, timeout: Duration) -> anyhow::Result<()> {
        self.wait_until(timeout, |inner| inner.ids.len() >= n)
            .await
            .map_err(|(count, distinct)| {
                anyhow::anyhow!(
                    "waited {timeout:?} for {n} distinct webhook ids, got {distinct} (in {count} requests)"
                )
            })
    }

    /// Waits for `done`, woken by each arrival; on timeout returns the
    /// request and distinct-id counts.
    async fn wait_until(
        &self,
        timeout: Duration,
        done: impl Fn(&Inner) -> bool,
    ) -> Result<(), (usize, usize)> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.arrived.notified();
            tokio::pin!(notified);
            // Register before checking, so an arrival in between wakes us.
            notified.as_mut().enable();
            {
                let inner = self.shared.lock();
                if done(&inner) {
                    return Ok(());
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let inner = self.shared.lock();
                return if done(&inner) {
                    Ok(())
                } else {
                    Err((inner.requests.len(), inner.ids.len()))
                };
            }
        }
    }

    /// Stops accepting, answers hanging requests with 503, and waits (up to
    /// 5 s) for open connections to close.
    pub async fn shutdown(mut self) {
        self.shared.stop.send_replace(true);
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.shared.stop.send_replace(true);
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let recorded_headers = headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), lossy(value)))
        .collect();
    let webhook_id = headers.get("webhook-id").map(lossy);
    let plan = {
        let mut inner = shared.lock();
        let authorization = headers.get(header::AUTHORIZATION).map(lossy);
        let plan = inner.plan(authorization.as_deref());
        inner.requests.push(Recorded {
            method: method.as_str().to_owned(),
            path: uri.path().to_owned(),
            query: uri.query().map(str::to_owned),
            headers: recorded_headers,
            body,
            received_at: Instant::now(),
            status_sent: plan.status,
        });
        if let Some(id) = webhook_id {
            inner.ids.insert(id);
        }
        plan
    };
    shared.arrived.notify_waiters();

    if plan.status == 0 {
        shared.stopped().await;
        return answer(StatusCode::SERVICE_UNAVAILABLE, Body::empty());
    }
    if let Some(delay) = plan.delay {
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shared.stopped() => return answer(StatusCode::SERVICE_UNAVAILABLE, Body::empty()),
        }
    }
    let status = StatusCode::from_u16(plan.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = match plan.body_len {
        Some(len) => large_body(len),
        None if status.is_success() => Body::from(OK_BODY),
        None => Body::from(format!(r#"{{"status":{}}}"#, status.as_u16())),
    };
    let mut response = answer(status, body);
    if let Some(seconds) = plan.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

fn answer(status: StatusCode, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// `len` bytes of `x`, produced chunk by chunk as the client reads.
fn large_body(len: usize) -> Body {
    let chunks = futures::stream::unfold(len, |left| async move {
        if left == 0 {
            return None;
        }
        let n = left.min(CHUNK);
        Some((
            Ok::<_, Infallible>(Bytes::from_static(&FILL[..n])),
            left - n,
        ))
    });
    Body::from_stream(chunks)
}

fn lossy(value: &HeaderValue) -> String {
    String::from_utf8_lossy(value.as_bytes()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn post(client: &reqwest::Client, url: &str, id: &str) -> reqwest::Response {
        client
            .post(url)
            .header("webhook-id", id)
            .body(r#"{"n":1}"#)
            .send()
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn fail_times_then_ok_records_every_request_with_its_status() {
        let receiver = Receiver::start().await;
        receiver.set_behavior(Behavior::FailTimes {
            times: 2,
            status: 503,
        });
        let client = reqwest::Client::new();
        let mut statuses = Vec::new();
        for id in ["a", "a", "a", "b"] {
            statuses.push(post(&client, &receiver.url(), id).await.status().as_u16());
        }
        assert_eq!(statuses, [503, 503, 200, 200]);
        receiver.wait_for(4, Duration::from_secs(5)).await.unwrap();
        let requests = receiver.requests();
        let sent: Vec<u16> = requests.iter().map(|r| r.status_sent).collect();
        assert_eq!(sent, [503, 503, 200, 200]);
        assert_eq!(requests[0].path, "/hook");
        assert_eq!(requests[0].method, "POST");
        assert_eq!(requests[0].header("Webhook-Id"), Some("a"));
        assert_eq!(requests[0].json()["n"], 1);
        assert_eq!(
            receiver.distinct_ids(),
            HashSet::from(["a".to_owned(), "b".to_owned()])
        );
        receiver
            .wait_for_distinct(2, Duration::from_secs(1))
            .await
            .unwrap();
        receiver.shutdown().await;
    }

    #[tokio::test]
    async fn retry_after_is_sent_the_given_number_of_times() {
        let receiver = Receiver::start().await;
        receiver.set_behavior(Behavior::RetryAfter {
            status: 429,
            seconds: 7,
            times: 1,
        });
        let client = reqwest::Client::new();
        let first = post(&client, &receiver.url(), "x").await;
        assert_eq!(first.status().as_u16(), 429);
        assert_eq!(first.headers()["retry-after"], "7");
        let second = post(&client, &receiver.url(), "x").await;
        assert_eq!(second.status().as_u16(), 200);
        assert!(second.headers().get("retry-after").is_none());
    }

    #[tokio::test]
    async fn waiting_times_out_with_the_counts_and_a_hang_ends_at_shutdown() {
        let receiver = Receiver::start().await;
        receiver.set_behavior(Behavior::Hang);
        let url = receiver.url();
        let pending = tokio::spawn(async move { reqwest::Client::new().post(url).send().await });
        receiver.wait_for(1, Duration::from_secs(5)).await.unwrap();
        assert_eq!(receiver.requests()[0].status_sent, 0);
        let error = receiver
            .wait_for(2, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(error.to_string().contains("got 1"), "{error}");
        receiver.shutdown().await;
        // The hanging request is answered (503) or its connection closed.
        if let Ok(response) = pending.await.unwrap() {
            assert_eq!(response.status().as_u16(), 503);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slow_receiver_holds_a_thousand_concurrent_requests() {
        let receiver = Receiver::start().await;
        receiver.set_behavior(Behavior::Delay(Duration::from_millis(300)));
        let client = reqwest::Client::new();
        let tasks: Vec<_> = (0..1200)
            .map(|i| {
                let (client, url) = (client.clone(), receiver.url());
                tokio::spawn(async move { post(&client, &url, &i.to_string()).await.status() })
            })
            .collect();
        // All of them are in flight at once before the first answer.
        receiver
            .wait_for_distinct(1200, Duration::from_secs(30))
            .await
            .unwrap();
        for task in tasks {
            assert_eq!(task.await.unwrap().as_u16(), 200);
        }
        receiver.shutdown().await;
    }

    #[tokio::test]
    async fn a_large_body_is_streamed_in_full() {
        let receiver = Receiver::start().await;
        receiver.set_behavior(Behavior::LargeBody(200_000));
        let body = reqwest::Client::new()
            .post(receiver.url())
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(body.len(), 200_000);
    }
}
