//! A client of a Ferry server with a local spool.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ferry_core::{DestinationId, EventId};
use serde_json::Value;

use crate::error::Error;
use crate::facade::Backend;
use crate::port::{IntegrationPort, PortError};

pub(crate) struct Remote;

impl Remote {
    pub(crate) async fn open(_url: &str, _api_key: &str, _spool: &Path) -> Result<Self, Error> {
        Err(Error::Start("the remote client is not built yet".into()))
    }
}

#[async_trait]
impl Backend for Remote {
    async fn create_destination(&self, _body: Value) -> Result<Value, Error> {
        Err(Error::Closed)
    }
    async fn list_destinations(&self) -> Result<Vec<Value>, Error> {
        Err(Error::Closed)
    }
    async fn get_destination(&self, _id: &DestinationId) -> Result<Option<Value>, Error> {
        Err(Error::Closed)
    }
    async fn delete_destination(&self, _id: &DestinationId) -> Result<(), Error> {
        Err(Error::Closed)
    }
    async fn dead_letters(&self) -> Result<Vec<Value>, Error> {
        Err(Error::Closed)
    }
    async fn replay(&self, _id: &EventId) -> Result<usize, Error> {
        Err(Error::Closed)
    }
    async fn replay_dead_letters(&self) -> Result<usize, Error> {
        Err(Error::Closed)
    }
    async fn audit(&self, _limit: usize) -> Result<Vec<Value>, Error> {
        Err(Error::Closed)
    }
    fn port(&self, _destination: &DestinationId) -> Result<Arc<dyn IntegrationPort>, PortError> {
        Err(PortError::Closed)
    }
    async fn shutdown(&self, _grace: Duration) -> Result<(), Error> {
        Ok(())
    }
}
