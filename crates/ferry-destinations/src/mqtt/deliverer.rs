//! The mqtt adapter (`validate`, `build`) and deliverer (`deliver`,
//! `check`): one MQTT 5 connection per destination whose event loop runs in
//! a task of its own and hands each publish its broker acknowledgement.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ferry_core::attempt::Receipt;
use ferry_core::delivery::{Captured, Envelope};
use ferry_core::destination::{Auth, Destination, DestinationKind};
use ferry_core::ports::{AttemptError, AttemptReport, CheckReport, Deliverer};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{
    ConnectReturnCode, Packet, PubAckReason, PubRecReason, PublishProperties,
};
use rumqttc::v5::{AsyncClient, ConnectionError, Event, EventLoop, MqttOptions};
use rumqttc::{Outgoing, TlsConfiguration, Transport};
use serde_json::json;
use tokio::sync::oneshot;

use super::config::{MqttConfig, check_topic};
use crate::client::{self, auth, report};
use crate::client_adapter::{ClientAdapter, ClientKind, Reach};
use crate::endpoint;
use crate::link::{Link, timed};
use crate::message::{Payload, metadata};
use crate::net_guard::NetworkPolicy;
use crate::tls;

/// Requests queued to the event loop before `publish` waits.
const REQUEST_CAPACITY: usize = 64;
const KEEP_ALIVE: Duration = Duration::from_secs(30);

/// The `mqtt` kind.
pub struct Mqtt;

/// The `mqtt` kind's adapter.
pub type MqttAdapter = ClientAdapter<Mqtt>;

impl ClientKind for Mqtt {
    const KIND: DestinationKind = DestinationKind::Mqtt;
    type Config = MqttConfig;

    fn build(
        config: MqttConfig,
        destination: &Destination,
        reach: &Reach,
    ) -> Result<Arc<dyn Deliverer>, String> {
        let auth = destination.secrets.auth.clone();
        let transport = if config.url.scheme() == "mqtts" {
            let ca = config.tls.as_ref().and_then(|t| t.ca_certificate.clone());
            let tls = tls::rustls_config(ca.as_deref(), tls::identity(&auth))?;
            Some(Transport::tls_with_config(TlsConfiguration::Rustls(
                Arc::new(tls),
            )))
        } else {
            None
        };
        let timeout = Duration::from_millis(config.timeout_ms);
        Ok(Arc::new(MqttDeliverer {
            auth,
            transport,
            connect_timeout: reach.connect_timeout.min(timeout),
            timeout,
            policy: Arc::clone(&reach.policy),
            config,
            link: Link::default(),
        }))
    }
}

type AckSender = oneshot::Sender<Result<String, AttemptError>>;

/// Publishes waiting for their packet id (in request order) and for their
/// acknowledgement (by packet id).
#[derive(Default)]
struct Acks {
    unassigned: VecDeque<AckSender>,
    waiting: HashMap<u16, AckSender>,
    /// Set when the connection ended: every later publish fails with it.
    closed: Option<AttemptError>,
}

impl Acks {
    fn resolve(&mut self, pkid: u16, result: Result<String, AttemptError>) {
        if let Some(sender) = self.waiting.remove(&pkid) {
            // The publisher may have given up (timeout): nothing to tell.
            let _ = sender.send(result);
        }
    }

    fn close(&mut self, failure: AttemptError) {
        for sender in self
            .unassigned
            .drain(..)
            .chain(self.waiting.drain().map(|(_, s)| s))
        {
            let _ = sender.send(Err(failure.clone()));
        }
        self.closed = Some(failure);
    }
}

/// A live connection: the client, the acknowledgements its event loop
/// hands out, and that loop's task (stopped when the session is dropped).
struct Session {
    client: AsyncClient,
    acks: Arc<Mutex<Acks>>,
    /// Keeps "queue the ack slot, then send the request" in one order.
    order: tokio::sync::Mutex<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Runs the event loop: assigns packet ids to waiting publishes, resolves
/// PUBACK / PUBREC / PUBCOMP, and fails everything waiting when the
/// connection ends (the next delivery connects again).
async fn drive(mut events: EventLoop, acks: Arc<Mutex<Acks>>, qos: QoS) {
    loop {
        let event = events.poll().await;
        let mut acks = match acks.lock() {
            Ok(acks) => acks,
            Err(poisoned) => poisoned.into_inner(),
        };
        match event {
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                if let Some(sender) = acks.unassigned.pop_front() {
                    acks.waiting.insert(pkid, sender);
                }
            }
            Ok(Event::Incoming(Packet::PubAck(ack))) => {
                let result = match puback_failure(&ack.reason) {
                    Some(failure) => Err(failure),
                    None => Ok("PUBACK".to_owned()),
                };
                acks.resolve(ack.pkid, result);
            }
            Ok(Event::Incoming(Packet::PubRec(rec))) => {
                if let Some(failure) = pubrec_failure(&rec.reason) {
                    acks.resolve(rec.pkid, Err(failure));
                }
            }
            Ok(Event::Incoming(Packet::PubComp(comp))) if qos == QoS::ExactlyOnce => {
                acks.resolve(comp.pkid, Ok("PUBCOMP".to_owned()));
            }
            Ok(_) => {}
            Err(error) => {
                acks.close(classify(&error).context("connection to the MQTT broker lost"));
                return;
            }
        }
    }
}

/// One mqtt destination, built.
pub struct MqttDeliverer {
    /// Holds the credentials; never shown.
    auth: Auth,
    transport: Option<Transport>,
    connect_timeout: Duration,
    timeout: Duration,
    policy: Arc<NetworkPolicy>,
    config: MqttConfig,
    link: Link<Arc<Session>>,
}

/// A client id no other connection uses: `ferry-<pid>-<n>-<nanos>`.
fn fresh_client_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("ferry-{}-{n}-{nanos}", std::process::id())
}

impl MqttDeliverer {
    fn qos(&self) -> QoS {
        if self.config.qos == 2 {
            QoS::ExactlyOnce
        } else {
            QoS::AtLeastOnce
        }
    }

    /// Connects and waits for the broker's CONNACK, then hands the event
    /// loop to a task of its own.
    async fn connect(&self, client_id: String) -> Result<Arc<Session>, AttemptError> {
        let host = self.config.url.host_str().unwrap_or_default().to_owned();
        let tls = self.config.url.scheme() == "mqtts";
        let port = self
            .config
            .url
            .port()
            .unwrap_or(if tls { 8883 } else { 1883 });
        endpoint::resolve(&self.policy, &host, port, self.connect_timeout).await?;
        let mut options = MqttOptions::new(client_id, endpoint::bare_host(&host), port);
        options
            .set_keep_alive(KEEP_ALIVE)
            .set_clean_start(true)
            .set_connection_timeout(self.connect_timeout.as_secs().max(1));
        if let Some((username, password)) = auth::user_and_password(&self.auth) {
            options.set_credentials(username, password);
        }
        if let Some(transport) = &self.transport {
            options.set_transport(transport.clone());
        }
        let (client, mut events) = AsyncClient::new(options, REQUEST_CAPACITY);
        timed(
            "connecting to the MQTT broker",
            self.connect_timeout + self.timeout,
            async {
                loop {
                    match events.poll().await {
                        Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                        Ok(_) => {}
                        Err(error) => return Err(classify(&error)),
                    }
                }
            },
        )
        .await?;
        let acks = Arc::new(Mutex::new(Acks::default()));
        let task = tokio::spawn(drive(events, Arc::clone(&acks), self.qos()));
        Ok(Arc::new(Session {
            client,
            acks,
            order: tokio::sync::Mutex::new(()),
            task,
        }))
    }

    /// Publishes on the shared connection (connecting first when there is
    /// none), dropping the connection when the failure shows it broken.
    async fn publish_once(
        &self,
        topic: String,
        body: Vec<u8>,
        properties: PublishProperties,
    ) -> Result<String, AttemptError> {
        if let Err(message) = check_topic(&topic) {
            return Err(AttemptError::permanent(format!(
                "the rendered topic `{topic}` {message}"
            )));
        }
        let client_id = self
            .config
            .client_id
            .clone()
            .unwrap_or_else(fresh_client_id);
        let session = self.link.get(|| self.connect(client_id)).await?;
        let what = if self.config.qos == 2 {
            "the publish (waiting for PUBCOMP)"
        } else {
            "the publish (waiting for PUBACK)"
        };
        let published = timed(
            what,
            self.timeout,
            self.publish(&session.conn, topic, body, properties),
        )
        .await;
        if let Err(failure) = &published {
            let closed = session
                .conn
                .acks
                .lock()
                .map(|a| a.closed.is_some())
                .unwrap_or(true);
            if closed || !failure.is_permanent() {
                self.link.reset(&session).await;
            }
        }
        published
    }

    /// Publishes and waits for PUBACK (QoS 1) or PUBCOMP (QoS 2).
    async fn publish(
        &self,
        session: &Session,
        topic: String,
        body: Vec<u8>,
        properties: PublishProperties,
    ) -> Result<String, AttemptError> {
        let (sender, receiver) = oneshot::channel();
        {
            let _order = session.order.lock().await;
            {
                let mut acks = session
                    .acks
                    .lock()
                    .map_err(|_| AttemptError::retryable("MQTT session state lost"))?;
                if let Some(failure) = &acks.closed {
                    return Err(failure.clone());
                }
                acks.unassigned.push_back(sender);
            }
            let sent = session
                .client
                .publish_with_properties(topic, self.qos(), self.config.retain, body, properties)
                .await;
            if let Err(error) = sent {
                if let Ok(mut acks) = session.acks.lock() {
                    acks.unassigned.pop_back();
                }
                return Err(AttemptError::permanent(format!(
                    "the publish was refused by the client: {error}"
                )));
            }
        }
        receiver
            .await
            .map_err(|_| AttemptError::retryable("connection to the MQTT broker lost"))?
    }
}

#[async_trait]
impl Deliverer for MqttDeliverer {
    /// One MQTT 5 publish (QoS 1 or 2) of the Standard Webhooks body (its
    /// `id` is the event id) with the metadata as user properties;
    /// delivered on PUBACK / PUBCOMP.
    async fn deliver(&self, envelope: &Envelope) -> AttemptReport {
        let topic = self.config.topic.render(&envelope.event);
        let body = Payload::of(&envelope.event).to_bytes();
        let user_properties: Vec<(String, String)> = metadata(envelope)
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect();
        let mut shown: BTreeMap<String, String> = user_properties.iter().cloned().collect();
        shown.insert("topic".into(), topic.clone());
        shown.insert("qos".into(), self.config.qos.to_string());
        let request = Captured {
            headers: shown,
            body: Captured::body_from_bytes(&body),
        };
        let properties = PublishProperties {
            payload_format_indicator: Some(1),
            content_type: Some("application/json".into()),
            user_properties,
            ..PublishProperties::default()
        };
        let receipt = |ack: String| {
            Receipt::of([
                ("topic", json!(topic)),
                ("qos", json!(self.qos() as u8)),
                ("ack", json!(ack)),
            ])
        };
        let published = self.publish_once(topic.clone(), body, properties).await;
        report::attempt(request, published.map(receipt))
    }

    /// Connects and authenticates on a fresh connection (with a client id
    /// of its own, so as not to take the delivering connection's session
    /// over), then disconnects.
    async fn check(&self) -> CheckReport {
        let started = Instant::now();
        let session = self.connect(fresh_client_id()).await;
        if let Ok(session) = &session {
            let _ = session.client.disconnect().await;
        }
        report::check(session.map(|_| {
            format!(
                "connected and authenticated in {} ms",
                started.elapsed().as_millis()
            )
        }))
    }
}

/// Classifies a connection error: refused credentials, a banned or invalid
/// client id and TLS failures are permanent; I/O errors, timeouts and a
/// busy or unavailable broker are retryable.
pub fn classify(error: &ConnectionError) -> AttemptError {
    if let Some(failure) = client::certificate_failure(error, "the MQTT broker") {
        return failure;
    }
    match error {
        ConnectionError::ConnectionRefused(code) => match code {
            ConnectReturnCode::BadUserNamePassword
            | ConnectReturnCode::NotAuthorized
            | ConnectReturnCode::BadAuthenticationMethod
            | ConnectReturnCode::Banned => AttemptError::permanent(format!(
                "authentication failed: the MQTT broker refused the connection ({code:?}; check `auth`)"
            )),
            ConnectReturnCode::ServerUnavailable
            | ConnectReturnCode::ServerBusy
            | ConnectReturnCode::ConnectionRateExceeded
            | ConnectReturnCode::QuotaExceeded
            | ConnectReturnCode::UseAnotherServer
            | ConnectReturnCode::ServerMoved => {
                AttemptError::retryable(format!("the MQTT broker is unavailable ({code:?})"))
            }
            other => AttemptError::permanent(format!(
                "the MQTT broker refused the connection ({other:?})"
            )),
        },
        ConnectionError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            AttemptError::retryable("the MQTT broker refused the connection (is it running?)")
        }
        ConnectionError::Tls(tls) => {
            AttemptError::permanent(format!("TLS with the MQTT broker failed: {tls}"))
        }
        other => AttemptError::retryable(format!("MQTT connection failed: {other}")),
    }
}

/// The failure a PUBACK reports, if any.
fn puback_failure(reason: &PubAckReason) -> Option<AttemptError> {
    match reason {
        PubAckReason::Success | PubAckReason::NoMatchingSubscribers => None,
        PubAckReason::QuotaExceeded
        | PubAckReason::UnspecifiedError
        | PubAckReason::PacketIdentifierInUse => Some(AttemptError::retryable(format!(
            "the MQTT broker did not take the message ({reason:?})"
        ))),
        other => Some(AttemptError::permanent(format!(
            "the MQTT broker rejected the message ({other:?})"
        ))),
    }
}

/// The failure a PUBREC reports, if any.
fn pubrec_failure(reason: &PubRecReason) -> Option<AttemptError> {
    match reason {
        PubRecReason::Success | PubRecReason::NoMatchingSubscribers => None,
        PubRecReason::QuotaExceeded
        | PubRecReason::UnspecifiedError
        | PubRecReason::PacketIdentifierInUse => Some(AttemptError::retryable(format!(
            "the MQTT broker did not take the message ({reason:?})"
        ))),
        other => Some(AttemptError::permanent(format!(
            "the MQTT broker rejected the message ({other:?})"
        ))),
    }
}
