//! The remote Ferry: a client of a Ferry server that never fails or slows
//! the caller when the server is unreachable. Ports commit each event to a
//! local spool (`spool`) and a background task forwards it (`forward`); the
//! operator functions are calls to the server's API.

mod forward;
mod port;
mod spool;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use ferry_client::api::{ApiClient, ApiError};
use ferry_core::{DestinationId, EventId};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use self::port::RemotePort;
use self::spool::Spool;
use crate::error::Error;
use crate::facade::Backend;
use crate::port::{IntegrationPort, PortError};

/// The largest event a remote port spools, as JSON: the server's default
/// `max_payload_bytes`.
const MAX_EVENT_BYTES: usize = 1024 * 1024;
/// Time allowed for one call to the server.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What the remote Ferry and its ports share.
pub(crate) struct Shared {
    client: ApiClient,
    spool: Arc<Spool>,
    max_event_bytes: usize,
    closed: AtomicBool,
}

impl Shared {
    fn closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }
}

pub(crate) struct Remote {
    shared: Arc<Shared>,
    stop: CancellationToken,
    forwarder: Mutex<Option<JoinHandle<()>>>,
}

impl Remote {
    /// Opens the spool and starts forwarding; does not contact the server,
    /// so an unreachable server does not stop the application.
    pub(crate) async fn open(url: &str, api_key: &str, spool_dir: &Path) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(2))
            .user_agent(concat!("ferry-remote/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Start(format!("cannot build the HTTP client: {e}")))?;
        let client =
            ApiClient::with_http(http, url, api_key).map_err(|e| Error::Start(format!("{e:#}")))?;
        let spool = Arc::new(Spool::open(spool_dir).await?);
        match spool.depth().await {
            Ok(0) | Err(_) => {}
            Ok(n) => tracing::info!(events = n, "Forwarding events spooled by a previous run."),
        }
        let stop = CancellationToken::new();
        let forwarder = tokio::spawn(forward::run(spool.clone(), client.clone(), stop.clone()));
        Ok(Self {
            shared: Arc::new(Shared {
                client,
                spool,
                max_event_bytes: MAX_EVENT_BYTES,
                closed: AtomicBool::new(false),
            }),
            stop,
            forwarder: Mutex::new(Some(forwarder)),
        })
    }

    fn client(&self) -> Result<&ApiClient, Error> {
        if self.shared.closed() {
            return Err(Error::Closed);
        }
        Ok(&self.shared.client)
    }

    async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, Error> {
        Ok(self
            .client()?
            .get(path, query)
            .await
            .map_err(api_error)?
            .body)
    }

    async fn post(&self, path: &str, body: &Value) -> Result<Value, Error> {
        Ok(self
            .client()?
            .post(path, body)
            .await
            .map_err(api_error)?
            .body)
    }

    /// Every page of a list.
    async fn all(&self, path: &str) -> Result<Vec<Value>, Error> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = vec![("limit", "1000".to_owned())];
            if let Some(c) = &cursor {
                query.push(("cursor", c.clone()));
            }
            let mut page = self.get(path, &query).await?;
            if let Some(Value::Array(items)) = page.get_mut("data").map(Value::take) {
                out.extend(items);
            }
            match page.get("next_cursor").and_then(Value::as_str) {
                Some(next) => cursor = Some(next.to_owned()),
                None => return Ok(out),
            }
        }
    }
}

/// The operator functions' error for an API answer.
fn api_error(error: anyhow::Error) -> Error {
    let Some(e) = error.downcast_ref::<ApiError>() else {
        return Error::Unavailable(format!("{error:#}"));
    };
    let message = e.message.clone();
    match e.status {
        StatusCode::BAD_REQUEST
        | StatusCode::UNPROCESSABLE_ENTITY
        | StatusCode::PAYLOAD_TOO_LARGE => Error::Invalid {
            message,
            details: e
                .details
                .iter()
                .map(|(field, message)| ferry_core::FieldError::new(field, message))
                .collect(),
        },
        StatusCode::NOT_FOUND => Error::NotFound(
            message
                .strip_suffix(" not found")
                .unwrap_or(&message)
                .to_owned(),
        ),
        StatusCode::CONFLICT => Error::Conflict(message),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Error::Forbidden(message),
        _ => Error::Unavailable(e.to_string()),
    }
}

#[async_trait]
impl Backend for Remote {
    async fn create_destination(&self, body: Value) -> Result<Value, Error> {
        self.post("/v1/destinations", &body).await
    }

    async fn list_destinations(&self) -> Result<Vec<Value>, Error> {
        self.all("/v1/destinations").await
    }

    async fn get_destination(&self, id: &DestinationId) -> Result<Option<Value>, Error> {
        match self.get(&format!("/v1/destinations/{id}"), &[]).await {
            Ok(d) => Ok(Some(d)),
            Err(Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn delete_destination(&self, id: &DestinationId) -> Result<(), Error> {
        self.client()?
            .delete(&format!("/v1/destinations/{id}"))
            .await
            .map_err(api_error)?;
        Ok(())
    }

    async fn dead_letters(&self) -> Result<Vec<Value>, Error> {
        self.all("/v1/dlq").await
    }

    async fn replay(&self, id: &EventId) -> Result<usize, Error> {
        let answer = self
            .post(&format!("/v1/events/{id}/replay"), &json!({}))
            .await?;
        Ok(count(&answer))
    }

    async fn replay_dead_letters(&self) -> Result<usize, Error> {
        let answer = self.post("/v1/dlq/replay", &json!({})).await?;
        Ok(count(&answer))
    }

    async fn audit(&self, limit: usize) -> Result<Vec<Value>, Error> {
        let mut page = self
            .get("/v1/audit", &[("limit", limit.min(1000).to_string())])
            .await?;
        match page.get_mut("data").map(Value::take) {
            Some(Value::Array(items)) => Ok(items),
            _ => Ok(Vec::new()),
        }
    }

    fn port(&self, destination: &DestinationId) -> Result<Arc<dyn IntegrationPort>, PortError> {
        if self.shared.closed() {
            return Err(PortError::Closed);
        }
        Ok(Arc::new(RemotePort {
            shared: self.shared.clone(),
            destination: destination.clone(),
            known: AtomicBool::new(false),
            skip_until: std::sync::Mutex::new(None),
        }))
    }

    /// Stops: sends are refused from now on; the forwarder gets up to
    /// `grace` to empty the spool. What the server has not confirmed stays
    /// in the spool for the next start (a repeated forward is a duplicate
    /// there).
    async fn shutdown(&self, grace: Duration) -> Result<(), Error> {
        let Some(forwarder) = self.forwarder.lock().await.take() else {
            return Ok(());
        };
        self.shared.closed.store(true, Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + grace;
        while tokio::time::Instant::now() < deadline {
            if matches!(self.shared.spool.depth().await, Ok(0) | Err(_)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.stop.cancel();
        let _ = forwarder.await;
        self.shared.spool.close().await;
        Ok(())
    }
}

fn count(answer: &Value) -> usize {
    answer
        .get("requeued")
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0)
}
