//! A remote port: `send` commits to the spool and answers `Pending`;
//! `status` answers from the spool while the event is there, else asks the
//! server.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use ferry_client::api::ApiError;
use ferry_core::event::{MAX_KEY_LEN, MAX_TYPE_LEN};
use ferry_core::{DestinationId, EventId};
use ferry_server::views::EventDeliveryView;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::Shared;
use crate::port::{
    DeliveryError, DeliveryStatus, ExternalEvent, IntegrationPort, IntegrationResult, PortError,
};

/// How long `send` waits to learn whether its destination exists; a server
/// that does not answer by then is not waited for.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);
/// After a check the server could not answer, how long sends skip it: a
/// server that drops connections must not cost every send the timeout.
const CHECK_PAUSE: Duration = Duration::from_secs(30);

pub(crate) struct RemotePort {
    pub(super) shared: Arc<Shared>,
    pub(super) destination: DestinationId,
    /// The server has confirmed the destination exists.
    pub(super) known: AtomicBool,
    /// No check before this (the last one went unanswered).
    pub(super) skip_until: std::sync::Mutex<Option<Instant>>,
}

#[async_trait]
impl IntegrationPort for RemotePort {
    async fn send(&self, event: ExternalEvent) -> Result<IntegrationResult, PortError> {
        if self.shared.closed() {
            return Err(PortError::Closed);
        }
        let event_id = event.id_at(&self.destination);
        let body = self.body(event)?;
        self.check_destination().await?;
        self.shared
            .spool
            .append(event_id.clone(), self.destination.clone(), body)
            .await?;
        Ok(IntegrationResult::pending(event_id, None))
    }

    async fn status(&self, id: &EventId) -> Result<Option<IntegrationResult>, PortError> {
        let spool = &self.shared.spool;
        if spool.waiting(id, &self.destination).await? {
            return Ok(Some(IntegrationResult::pending(id.clone(), None)));
        }
        if let Some(refusal) = spool.refusal(id, &self.destination).await? {
            return Ok(Some(IntegrationResult {
                event_id: id.clone(),
                status: DeliveryStatus::Failed,
                attempts: 0,
                last_error: Some(DeliveryError {
                    message: refusal.message,
                    code: refusal.code,
                }),
                delivered_at: None,
                next_attempt_at: None,
                attempts_remaining: Some(0),
                at: refusal.at.max(Utc::now()),
            }));
        }
        let path = format!("/v1/destinations/{}/events/{id}", self.destination);
        match self.shared.client.get(&path, &[]).await {
            Ok(answer) => {
                let view: EventDeliveryView = serde_json::from_value(answer.body).map_err(|e| {
                    PortError::Unavailable(format!("unexpected answer from Ferry: {e}"))
                })?;
                Ok(Some(IntegrationResult::from_view(&view)))
            }
            Err(error) => match error.downcast_ref::<ApiError>() {
                Some(e) if e.status == StatusCode::NOT_FOUND => Ok(None),
                _ => Err(PortError::Unavailable(format!("{error:#}"))),
            },
        }
    }
}

impl RemotePort {
    /// The body the server takes, after the checks the server would make.
    fn body(&self, event: ExternalEvent) -> Result<String, PortError> {
        let (event_type, data, id, metadata) = event.into_parts();
        if event_type.trim().is_empty() {
            return Err(PortError::Invalid("type: must not be empty".into()));
        }
        if event_type.len() > MAX_TYPE_LEN || event_type.chars().any(char::is_control) {
            return Err(PortError::Invalid(format!(
                "type: must be at most {MAX_TYPE_LEN} bytes of printable text"
            )));
        }
        if let Some(key) = &id
            && (key.is_empty() || key.len() > MAX_KEY_LEN)
        {
            return Err(PortError::Invalid(format!(
                "id: must be 1 to {MAX_KEY_LEN} bytes"
            )));
        }
        let body = json!({"type": event_type, "data": data, "id": id, "metadata": Value::Object(metadata)});
        let text = body.to_string();
        let limit = self.shared.max_event_bytes;
        if text.len() > limit {
            return Err(PortError::TooLarge {
                size: text.len(),
                limit,
            });
        }
        Ok(text)
    }

    /// Refuses an unknown destination when the server can say so at once;
    /// a server that cannot answer now does not hold the send up.
    async fn check_destination(&self) -> Result<(), PortError> {
        if self.known.load(Ordering::Relaxed) {
            return Ok(());
        }
        let skip = *self.skip_until.lock().unwrap_or_else(|e| e.into_inner());
        if skip.is_some_and(|until| Instant::now() < until) {
            return Ok(());
        }
        let path = format!("/v1/destinations/{}", self.destination);
        let unanswered = || {
            *self.skip_until.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(Instant::now() + CHECK_PAUSE);
        };
        match tokio::time::timeout(CHECK_TIMEOUT, self.shared.client.get(&path, &[])).await {
            Ok(Ok(_)) => {
                self.known.store(true, Ordering::Relaxed);
                Ok(())
            }
            Ok(Err(error)) => match error.downcast_ref::<ApiError>() {
                Some(e) if e.status == StatusCode::NOT_FOUND => {
                    Err(PortError::UnknownDestination(self.destination.clone()))
                }
                Some(_) => Ok(()),
                None => {
                    unanswered();
                    Ok(())
                }
            },
            Err(_) => {
                unanswered();
                Ok(())
            }
        }
    }
}
