//! The amqp adapter (`validate`, `build`) and deliverer (`deliver`,
//! `check`), and the classification of AMQP errors.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ferry_core::attempt::Receipt;
use ferry_core::delivery::{Captured, Envelope};
use ferry_core::destination::{Auth, Destination, DestinationKind};
use ferry_core::ports::{AttemptError, AttemptReport, CheckReport, Deliverer};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::protocol::{AMQPErrorKind, AMQPHardError, AMQPSoftError};
use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::types::{AMQPValue, FieldTable};
use lapin::uri::{AMQPUri, AMQPUserInfo, SASLMechanism};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ErrorKind};
use serde_json::json;

use super::config::{AmqpConfig, MAX_SHORT_STRING};
use crate::client::{self, auth, report};
use crate::client_adapter::{ClientAdapter, ClientKind, Reach};
use crate::endpoint;
use crate::link::{Link, timed};
use crate::message::{Payload, metadata};
use crate::net_guard::NetworkPolicy;
use crate::tls;

/// The `amqp` kind.
pub struct Amqp;

/// The `amqp` kind's adapter.
pub type AmqpAdapter = ClientAdapter<Amqp>;

impl ClientKind for Amqp {
    const KIND: DestinationKind = DestinationKind::Amqp;
    type Config = AmqpConfig;

    fn build(
        config: AmqpConfig,
        destination: &Destination,
        reach: &Reach,
    ) -> Result<Arc<dyn Deliverer>, String> {
        let auth = &destination.secrets.auth;
        let mut uri =
            AMQPUri::from_str(config.url.as_str()).map_err(|e| format!("config.url: {e}"))?;
        if let Some((username, password)) = auth::user_and_password(auth) {
            uri.authority.userinfo = AMQPUserInfo {
                username: username.to_owned(),
                password: password.to_owned(),
            };
        } else if matches!(auth, Auth::ClientCertificate { .. }) {
            uri.query.auth_mechanism = Some(SASLMechanism::External);
        }
        let timeout = Duration::from_millis(config.timeout_ms);
        let tls = OwnedTLSConfig {
            identity: tls::identity(auth).map(|id| OwnedIdentity::PKCS8 {
                pem: id.certificate.into_bytes(),
                key: id.private_key.into_bytes(),
            }),
            cert_chain: config.tls.as_ref().and_then(|t| t.ca_certificate.clone()),
        };
        let mut headers = FieldTable::default();
        for (name, value) in &config.headers {
            headers.insert(
                name.as_str().into(),
                AMQPValue::LongString(value.as_str().into()),
            );
        }
        Ok(Arc::new(AmqpDeliverer {
            uri,
            tls,
            headers,
            connect_timeout: reach.connect_timeout.min(timeout),
            timeout,
            policy: Arc::clone(&reach.policy),
            config,
            link: Link::default(),
        }))
    }
}

/// An open connection and its channel in confirm mode. The connection is
/// kept with its channel: it closes when the last handle goes.
struct Session {
    _connection: Connection,
    channel: Channel,
}

/// One amqp destination, built: one connection with one confirm-mode
/// channel, shared by every delivery.
pub struct AmqpDeliverer {
    /// Holds the password (from `auth`); never shown.
    uri: AMQPUri,
    tls: OwnedTLSConfig,
    headers: FieldTable,
    connect_timeout: Duration,
    timeout: Duration,
    policy: Arc<NetworkPolicy>,
    config: AmqpConfig,
    link: Link<Arc<Session>>,
}

impl AmqpDeliverer {
    /// Connects, logs in and opens a channel in confirm mode.
    async fn connect(&self) -> Result<Arc<Session>, AttemptError> {
        endpoint::resolve(
            &self.policy,
            &self.uri.authority.host,
            self.uri.authority.port,
            self.connect_timeout,
        )
        .await?;
        timed(
            "connecting to the AMQP broker",
            self.connect_timeout + self.timeout,
            async {
                let runtime = lapin::runtime::default_runtime().map_err(|e| classify(&e))?;
                let connection = Connection::connect_uri_with_config(
                    self.uri.clone(),
                    ConnectionProperties::default(),
                    self.tls.clone(),
                    runtime,
                )
                .await
                .map_err(|e| classify(&e))?;
                let channel = connection
                    .create_channel()
                    .await
                    .map_err(|e| classify(&e))?;
                channel
                    .confirm_select(ConfirmSelectOptions::default())
                    .await
                    .map_err(|e| classify(&e))?;
                Ok(Arc::new(Session {
                    _connection: connection,
                    channel,
                }))
            },
        )
        .await
    }

    /// Publishes and waits for the broker's confirm.
    async fn publish(
        &self,
        channel: &Channel,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<Receipt, AttemptError> {
        let options = BasicPublishOptions {
            mandatory: self.config.mandatory,
            immediate: false,
        };
        let confirm = channel
            .basic_publish(
                self.config.exchange.as_str().into(),
                routing_key.into(),
                options,
                body,
                properties,
            )
            .await
            .map_err(|e| classify(&e))?;
        match confirm.await.map_err(|e| classify(&e))? {
            Confirmation::Ack(None) => Ok(self.receipt(routing_key, "ack")),
            Confirmation::Ack(Some(returned)) => Err(AttemptError::retryable(format!(
                "the broker returned the message as unroutable: no queue is bound to exchange `{}` for routing key `{routing_key}` ({} {})",
                self.exchange_name(),
                returned.reply_code,
                returned.reply_text
            ))),
            Confirmation::Nack(_) => Err(AttemptError::retryable(
                "the broker refused to take the message (publisher confirm: nack)",
            )),
            Confirmation::NotRequested => Ok(self.receipt(routing_key, "not requested")),
        }
    }

    /// Publishes on the shared channel (connecting first when there is
    /// none), dropping the connection when the failure shows it broken.
    async fn publish_once(
        &self,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<Receipt, AttemptError> {
        if routing_key.len() > MAX_SHORT_STRING {
            return Err(AttemptError::permanent(format!(
                "the routing key is {} bytes; AMQP allows {MAX_SHORT_STRING}",
                routing_key.len()
            )));
        }
        let session = self.link.get(|| self.connect()).await?;
        let published = timed(
            "the publish (waiting for the broker's confirm)",
            self.timeout,
            self.publish(&session.conn.channel, routing_key, body, properties),
        )
        .await;
        if let Err(failure) = &published {
            // The broker closes the channel on an error (an unknown
            // exchange too), and a timeout may hide a dead connection.
            if !session.conn.channel.status().connected() || !failure.is_permanent() {
                self.link.reset(&session).await;
            }
        }
        published
    }

    /// Where the broker took the message, and its publisher confirm.
    fn receipt(&self, routing_key: &str, confirm: &str) -> Receipt {
        Receipt::of([
            ("exchange", json!(self.exchange_name())),
            ("routing_key", json!(routing_key)),
            ("confirm", json!(confirm)),
        ])
    }

    fn exchange_name(&self) -> &str {
        if self.config.exchange.is_empty() {
            "(default)"
        } else {
            &self.config.exchange
        }
    }

    fn properties(&self, envelope: &Envelope) -> (BasicProperties, BTreeMap<String, String>) {
        let event = &envelope.event;
        let mut headers = self.headers.clone();
        let mut shown: BTreeMap<String, String> = self.config.headers.clone().into_iter().collect();
        for (name, value) in metadata(envelope) {
            headers.insert(name.into(), AMQPValue::LongString(value.as_str().into()));
            shown.insert(name.to_owned(), value);
        }
        shown.insert("message_id".into(), event.id.to_string());
        shown.insert("exchange".into(), self.exchange_name().to_owned());
        let properties = BasicProperties::default()
            .with_message_id(event.id.as_str().into())
            .with_content_type("application/json".into())
            .with_type(event.event_type.as_str().into())
            .with_timestamp(u64::try_from(event.created_at.timestamp()).unwrap_or(0))
            .with_app_id("ferry".into())
            .with_delivery_mode(if self.config.persistent { 2 } else { 1 })
            .with_headers(headers);
        (properties, shown)
    }
}

#[async_trait]
impl Deliverer for AmqpDeliverer {
    /// One publish with `message_id` = the event id, the metadata as
    /// headers, and the Standard Webhooks body; delivered on the broker's
    /// publisher confirm (ack).
    async fn deliver(&self, envelope: &Envelope) -> AttemptReport {
        let routing_key = self.config.routing_key.render(&envelope.event);
        let body = Payload::of(&envelope.event).to_bytes();
        let (properties, mut shown) = self.properties(envelope);
        shown.insert("routing_key".into(), routing_key.clone());
        let request = Captured {
            headers: shown,
            body: Captured::body_from_bytes(&body),
        };
        report::attempt(
            request,
            self.publish_once(&routing_key, &body, properties).await,
        )
    }

    /// Connects and logs in on a fresh connection, opens a confirm-mode
    /// channel and checks (passively) that the exchange exists.
    async fn check(&self) -> CheckReport {
        let started = Instant::now();
        let result = async {
            let session = self.connect().await?;
            if !self.config.exchange.is_empty() {
                let passive = ExchangeDeclareOptions {
                    passive: true,
                    ..ExchangeDeclareOptions::default()
                };
                timed("checking the exchange", self.timeout, async {
                    session
                        .channel
                        .exchange_declare(
                            self.config.exchange.as_str().into(),
                            lapin::ExchangeKind::Direct,
                            passive,
                            FieldTable::default(),
                        )
                        .await
                        .map_err(|e| classify(&e))
                })
                .await?;
            }
            Ok(format!(
                "connected, logged in and found exchange `{}` in {} ms",
                self.exchange_name(),
                started.elapsed().as_millis()
            ))
        }
        .await;
        report::check(result)
    }
}

/// Classifies an AMQP error: I/O failures, a closed connection or channel,
/// a missed heartbeat, a broker shutting down or out of resources are
/// retryable; refused access (login or permissions), an unknown exchange,
/// vhost or a message the broker rejects (too large, precondition) are
/// permanent, with the broker's own reason.
pub fn classify(error: &lapin::Error) -> AttemptError {
    if let Some(failure) = client::certificate_failure(error, "the AMQP broker") {
        return failure;
    }
    match error.kind() {
        ErrorKind::IOError(io) => AttemptError::retryable(match io.kind() {
            std::io::ErrorKind::ConnectionRefused => {
                "the AMQP broker refused the connection (is it running?)".to_owned()
            }
            _ => format!("connection to the AMQP broker failed: {io}"),
        }),
        ErrorKind::ProtocolError(amqp) => {
            let reason = amqp.get_message().as_str();
            match amqp.kind() {
                AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED) => {
                    AttemptError::permanent(format!(
                        "access refused by the broker (check `auth` and the user's permissions): {reason}"
                    ))
                }
                AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND) => {
                    AttemptError::permanent(format!("not found on the broker: {reason}"))
                }
                AMQPErrorKind::Soft(AMQPSoftError::CONTENTTOOLARGE) => AttemptError::permanent(
                    format!("the broker rejected the message as too large: {reason}"),
                ),
                AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED) => {
                    AttemptError::permanent(format!("the broker rejected the message: {reason}"))
                }
                AMQPErrorKind::Hard(AMQPHardError::NOTALLOWED | AMQPHardError::INVALIDPATH) => {
                    AttemptError::permanent(format!(
                        "access refused by the broker (virtual host): {reason}"
                    ))
                }
                AMQPErrorKind::Hard(
                    AMQPHardError::CONNECTIONFORCED
                    | AMQPHardError::RESOURCEERROR
                    | AMQPHardError::INTERNALERROR,
                )
                | AMQPErrorKind::Soft(
                    AMQPSoftError::RESOURCELOCKED
                    | AMQPSoftError::NOROUTE
                    | AMQPSoftError::NOCONSUMERS,
                ) => AttemptError::retryable(format!("the broker is unavailable: {reason}")),
                AMQPErrorKind::Hard(_) => {
                    AttemptError::permanent(format!("the broker closed the connection: {reason}"))
                }
            }
        }
        ErrorKind::InvalidProtocolVersion(_) => {
            AttemptError::permanent("the server does not speak AMQP 0-9-1".to_owned())
        }
        ErrorKind::AuthProviderError(reason) => {
            AttemptError::permanent(format!("authentication failed: {reason}"))
        }
        _ => AttemptError::retryable(format!("AMQP error: {error}")),
    }
}
