//! The embedded Ferry: the engine in the application's process, called
//! through the use cases (`ferry_server::app`), never through HTTP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ferry_core::page::{MAX_LIMIT, Page, PageRequest};
use ferry_core::{DestinationId, EventId};
use ferry_server::app::audit::AuditQuery;
use ferry_server::app::deliveries::DeliveryQuery;
use ferry_server::app::destinations::DestinationInput;
use ferry_server::app::events::ReplayInput;
use ferry_server::app::integrations::DirectEventInput;
use ferry_server::app::{self, App, Principal};
use ferry_server::server::{self, Running};
use ferry_server::views::{
    AuditView, CreatedDestination, DeliveryView, DestinationView, EventDeliveryView,
};
use ferry_server::{AdminKey, Engine};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::error::Error;
use crate::facade::{Backend, FerryBuilder};
use crate::port::{ExternalEvent, IntegrationPort, IntegrationResult, PortError};

/// What stops the engine: the engine itself, or the server around it.
enum Stopper {
    Engine(Box<Engine>),
    Http(Running),
}

pub(crate) struct Embedded {
    app: App,
    principal: Arc<Principal>,
    stopper: Mutex<Option<Stopper>>,
    http_addr: Option<SocketAddr>,
    admin_key: Option<String>,
}

fn start_error(error: anyhow::Error) -> Error {
    Error::Start(format!("{error:#}"))
}

impl Embedded {
    pub(crate) async fn start(builder: FerryBuilder) -> Result<Self, Error> {
        let FerryBuilder {
            config,
            serve,
            actor,
        } = builder;
        if serve {
            let (listener, config) = server::bind(config).await.map_err(start_error)?;
            let mut engine = Engine::start(&config, AdminKey::Ensure)
                .await
                .map_err(start_error)?;
            let admin_key = engine
                .take_generated_admin_key()
                .map(|k| k.expose().clone());
            let app = engine.app().clone();
            let org = engine.default_org().id.clone();
            let running = server::serve(engine, config, listener).map_err(start_error)?;
            Ok(Self {
                app,
                principal: Arc::new(Principal::in_process(org, actor)),
                http_addr: Some(running.addr),
                stopper: Mutex::new(Some(Stopper::Http(running))),
                admin_key,
            })
        } else {
            let engine = Engine::start(&config, AdminKey::Skip)
                .await
                .map_err(start_error)?;
            Ok(Self {
                app: engine.app().clone(),
                principal: Arc::new(Principal::in_process(
                    engine.default_org().id.clone(),
                    actor,
                )),
                http_addr: None,
                stopper: Mutex::new(Some(Stopper::Engine(Box::new(engine)))),
                admin_key: None,
            })
        }
    }
}

/// Every page of a list, one after another.
async fn all_pages<T, F, Fut>(mut read: F) -> Result<Vec<T>, Error>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: std::future::Future<Output = app::Result<Page<T>>>,
{
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = read(PageRequest {
            limit: MAX_LIMIT,
            after,
        })
        .await
        .map_err(operator_error)?;
        out.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(out),
        }
    }
}

fn to_json(view: impl serde::Serialize) -> Value {
    serde_json::to_value(view).unwrap_or(Value::Null)
}

#[async_trait]
impl Backend for Embedded {
    async fn create_destination(&self, body: Value) -> Result<Value, Error> {
        let input: DestinationInput = serde_json::from_value(body).map_err(|e| Error::Invalid {
            message: e.to_string(),
            details: Vec::new(),
        })?;
        let (d, secret) = self
            .app
            .create_destination(&self.principal, input)
            .await
            .map_err(operator_error)?;
        Ok(to_json(CreatedDestination::new(&d, secret.as_ref())))
    }

    async fn list_destinations(&self) -> Result<Vec<Value>, Error> {
        let all = all_pages(|page| self.app.destinations(&self.principal, page)).await?;
        Ok(all
            .iter()
            .map(|d| to_json(DestinationView::from(d)))
            .collect())
    }

    async fn get_destination(&self, id: &DestinationId) -> Result<Option<Value>, Error> {
        match self.app.destination(&self.principal, id).await {
            Ok(d) => Ok(Some(to_json(DestinationView::from(&d)))),
            Err(app::Error::NotFound(_)) => Ok(None),
            Err(e) => Err(operator_error(e)),
        }
    }

    async fn delete_destination(&self, id: &DestinationId) -> Result<(), Error> {
        self.app
            .delete_destination(&self.principal, id)
            .await
            .map_err(operator_error)
    }

    async fn dead_letters(&self) -> Result<Vec<Value>, Error> {
        let query = DeliveryQuery::default();
        let all = all_pages(|page| self.app.dead_letters(&self.principal, &query, page)).await?;
        Ok(all.iter().map(|d| to_json(DeliveryView::from(d))).collect())
    }

    async fn replay(&self, id: &EventId) -> Result<usize, Error> {
        self.app
            .replay_event(&self.principal, id, ReplayInput::default())
            .await
            .map(|requeued| requeued.len())
            .map_err(operator_error)
    }

    async fn replay_dead_letters(&self) -> Result<usize, Error> {
        self.app
            .replay_dead_letters(&self.principal, &DeliveryQuery::default())
            .await
            .map_err(operator_error)
    }

    async fn audit(&self, limit: usize) -> Result<Vec<Value>, Error> {
        let page = PageRequest {
            limit: u32::try_from(limit).unwrap_or(MAX_LIMIT).min(MAX_LIMIT),
            after: None,
        };
        let records = self
            .app
            .audit(&self.principal, &AuditQuery::default(), page)
            .await
            .map_err(operator_error)?;
        Ok(records
            .items
            .into_iter()
            .map(|r| to_json(AuditView::from(r)))
            .collect())
    }

    fn port(&self, destination: &DestinationId) -> Result<Arc<dyn IntegrationPort>, PortError> {
        if self.app.is_shutting_down() {
            return Err(PortError::Closed);
        }
        Ok(Arc::new(EmbeddedPort {
            app: self.app.clone(),
            principal: self.principal.clone(),
            destination: destination.clone(),
        }))
    }

    async fn shutdown(&self, grace: Duration) -> Result<(), Error> {
        let Some(stopper) = self.stopper.lock().await.take() else {
            return Ok(());
        };
        match stopper {
            Stopper::Engine(engine) => engine.stop(Some(grace)).await,
            Stopper::Http(running) => running
                .stop_within(grace)
                .await
                .map_err(|e| Error::Unavailable(format!("{e:#}")))?,
        }
        Ok(())
    }

    fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    fn generated_admin_key(&self) -> Option<String> {
        self.admin_key.clone()
    }
}

/// A port over the use cases of this process.
struct EmbeddedPort {
    app: App,
    principal: Arc<Principal>,
    destination: DestinationId,
}

#[async_trait]
impl IntegrationPort for EmbeddedPort {
    async fn send(&self, event: ExternalEvent) -> Result<IntegrationResult, PortError> {
        let (event_type, data, id, metadata) = event.into_parts();
        let input = DirectEventInput {
            event_type: Some(event_type),
            data,
            id,
            metadata: Some(Value::Object(metadata)),
        };
        let sent = self
            .app
            .send_to(&self.principal, &self.destination, input, None)
            .await
            .map_err(|e| self.port_error(e))?;
        let id = sent.accepted.event_id;
        if sent.accepted.duplicate
            && let Some(known) = self.status(&id).await?
        {
            return Ok(known);
        }
        Ok(IntegrationResult::pending(id, Some(sent.max_attempts)))
    }

    async fn status(&self, id: &EventId) -> Result<Option<IntegrationResult>, PortError> {
        let found = self
            .app
            .event_delivery(&self.principal, id, &self.destination)
            .await
            .map_err(|e| self.port_error(e))?;
        Ok(found.map(|d| IntegrationResult::from_view(&EventDeliveryView::from(&d))))
    }
}

impl EmbeddedPort {
    fn port_error(&self, error: app::Error) -> PortError {
        match error {
            app::Error::TooLarge { size, limit } => PortError::TooLarge { size, limit },
            app::Error::NotFound("destination") => {
                PortError::UnknownDestination(self.destination.clone())
            }
            app::Error::ShuttingDown => PortError::Closed,
            e @ (app::Error::Malformed(_) | app::Error::Invalid(_)) => {
                PortError::Invalid(e.to_string())
            }
            other => PortError::Unavailable(other.to_string()),
        }
    }
}

/// The operator functions' error for a use case's refusal.
fn operator_error(error: app::Error) -> Error {
    let message = error.to_string();
    match error {
        app::Error::Malformed(details) | app::Error::Invalid(details) => {
            Error::Invalid { message, details }
        }
        app::Error::InvalidJson(_) | app::Error::TooLarge { .. } => Error::Invalid {
            message,
            details: Vec::new(),
        },
        app::Error::NotFound(what) => Error::NotFound(what.to_owned()),
        app::Error::Conflict(_) => Error::Conflict(message),
        app::Error::ShuttingDown => Error::Closed,
        app::Error::Forbidden(_) | app::Error::Unauthorized | app::Error::Signature(_) => {
            Error::Forbidden(message)
        }
        app::Error::RateLimited { .. } | app::Error::Unavailable(_) | app::Error::Internal => {
            Error::Unavailable(message)
        }
    }
}
