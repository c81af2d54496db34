//! The nats adapter (`validate`, `build`) and deliverer (`deliver`,
//! `check`), and the classification of NATS errors.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::{Client, ConnectErrorKind, ConnectOptions, HeaderMap};
use async_trait::async_trait;
use ferry_core::attempt::Receipt;
use ferry_core::delivery::{Captured, Envelope};
use ferry_core::destination::{Auth, Destination, DestinationKind};
use ferry_core::ports::{AttemptError, AttemptReport, CheckReport, Deliverer};
use serde_json::json;

use super::config::{NatsConfig, check_subject};
use crate::client::{self, auth, report};
use crate::client_adapter::{ClientAdapter, ClientKind, Reach};
use crate::endpoint;
use crate::link::{Link, timed};
use crate::message::{Payload, metadata};
use crate::net_guard::NetworkPolicy;
use crate::tls;

/// The JetStream de-duplication header.
const MSG_ID: &str = "Nats-Msg-Id";

/// The `nats` kind.
pub struct Nats;

/// The `nats` kind's adapter.
pub type NatsAdapter = ClientAdapter<Nats>;

impl ClientKind for Nats {
    const KIND: DestinationKind = DestinationKind::Nats;
    type Config = NatsConfig;

    fn build(
        config: NatsConfig,
        destination: &Destination,
        reach: &Reach,
    ) -> Result<Arc<dyn Deliverer>, String> {
        let auth = destination.secrets.auth.clone();
        let ca = config.tls.as_ref().and_then(|t| t.ca_certificate.clone());
        let identity = tls::identity(&auth);
        let tls = if ca.is_some() || identity.is_some() {
            Some(tls::rustls_config(ca.as_deref(), identity)?)
        } else {
            None
        };
        let timeout = Duration::from_millis(config.timeout_ms);
        Ok(Arc::new(NatsDeliverer {
            auth,
            tls,
            connect_timeout: reach.connect_timeout.min(timeout),
            timeout,
            policy: Arc::clone(&reach.policy),
            config,
            link: Link::default(),
        }))
    }
}

/// One nats destination, built: one client (its own connection, which
/// async-nats re-establishes in the background after a drop), shared by
/// every delivery.
pub struct NatsDeliverer {
    /// Holds the credentials; never shown.
    auth: Auth,
    tls: Option<rustls::ClientConfig>,
    connect_timeout: Duration,
    timeout: Duration,
    policy: Arc<NetworkPolicy>,
    config: NatsConfig,
    link: Link<Client>,
}

impl NatsDeliverer {
    /// Connects and authenticates (the SSRF guard checks every server
    /// first).
    async fn connect(&self) -> Result<Client, AttemptError> {
        for server in &self.config.servers {
            let host = server.host_str().unwrap_or_default();
            let port = server.port().unwrap_or(4222);
            endpoint::resolve(&self.policy, host, port, self.connect_timeout).await?;
        }
        let mut options = ConnectOptions::new()
            .connection_timeout(self.connect_timeout)
            .request_timeout(Some(self.timeout))
            .name("ferry");
        if let Auth::Bearer { token } = &self.auth {
            options = options.token(token.expose().clone());
        } else if let Some((username, password)) = auth::user_and_password(&self.auth) {
            options = options.user_and_password(username.to_owned(), password.to_owned());
        }
        if self.config.uses_tls() {
            options = options.require_tls(true);
        }
        if let Some(tls) = &self.tls {
            options = options.tls_client_config(tls.clone());
        }
        let servers: Vec<String> = self.config.servers.iter().map(|s| s.to_string()).collect();
        let servers: Vec<async_nats::ServerAddr> =
            servers.iter().filter_map(|s| s.parse().ok()).collect();
        timed(
            "connecting to NATS",
            self.connect_timeout + self.timeout,
            async {
                options.connect(servers.as_slice()).await.map_err(|e| {
                    client::certificate_failure(&e, "the NATS server")
                        .unwrap_or_else(|| classify_connect(e.kind(), &e.to_string()))
                })
            },
        )
        .await
    }

    /// Publishes with the shared client (connecting first when there is
    /// none).
    async fn publish_once(
        &self,
        subject: String,
        headers: HeaderMap,
        body: Vec<u8>,
    ) -> Result<Receipt, AttemptError> {
        if let Err(message) = check_subject(&subject) {
            return Err(AttemptError::permanent(format!(
                "the rendered subject `{subject}` {message}"
            )));
        }
        let client = self.link.get(|| self.connect()).await?;
        let what = if self.config.stream.is_some() {
            "the publish (waiting for the JetStream ack)"
        } else {
            "the publish"
        };
        timed(
            what,
            self.timeout,
            self.publish(&client.conn, subject, headers, body),
        )
        .await
    }

    async fn publish(
        &self,
        client: &Client,
        subject: String,
        headers: HeaderMap,
        body: Vec<u8>,
    ) -> Result<Receipt, AttemptError> {
        match &self.config.stream {
            Some(stream) => {
                let jetstream = async_nats::jetstream::new(client.clone());
                let ack = jetstream
                    .publish_with_headers(subject.clone(), headers, body.into())
                    .await
                    .map_err(|e| classify_publish(&e, &subject))?
                    .await
                    .map_err(|e| classify_publish(&e, &subject))?;
                if &ack.stream != stream {
                    return Err(AttemptError::permanent(format!(
                        "subject `{subject}` is captured by stream `{}`, not the configured `{stream}`",
                        ack.stream
                    )));
                }
                // A duplicate (same message id) was not stored again.
                Ok(Receipt::of([
                    ("stream", json!(ack.stream)),
                    ("sequence", json!(ack.sequence)),
                    ("duplicate", json!(ack.duplicate)),
                ]))
            }
            None => {
                let subject_name = subject.clone();
                client
                    .publish_with_headers(subject, headers, body.into())
                    .await
                    .map_err(|e| AttemptError::retryable(format!("NATS publish failed: {e}")))?;
                client
                    .flush()
                    .await
                    .map_err(|e| AttemptError::retryable(format!("NATS publish failed: {e}")))?;
                // Core NATS acknowledges nothing.
                Ok(Receipt::of([("subject", json!(subject_name))]))
            }
        }
    }
}

#[async_trait]
impl Deliverer for NatsDeliverer {
    /// One publish with `Nats-Msg-Id` = the event id (JetStream drops a
    /// second message with the same id within the stream's duplicate
    /// window) and the metadata headers; with a stream, delivered on its
    /// publish ack.
    async fn deliver(&self, envelope: &Envelope) -> AttemptReport {
        let subject = self.config.subject.render(&envelope.event);
        let body = Payload::of(&envelope.event).to_bytes();
        let mut headers = HeaderMap::new();
        let mut shown = BTreeMap::from([
            ("subject".to_owned(), subject.clone()),
            (MSG_ID.to_owned(), envelope.event.id.to_string()),
        ]);
        headers.insert(MSG_ID, envelope.event.id.as_str());
        for (name, value) in metadata(envelope) {
            headers.insert(name, value.as_str());
            shown.insert(name.to_owned(), value);
        }
        let request = Captured {
            headers: shown,
            body: Captured::body_from_bytes(&body),
        };
        report::attempt(request, self.publish_once(subject, headers, body).await)
    }

    /// Connects and authenticates with a fresh client; with a stream,
    /// checks that it exists.
    async fn check(&self) -> CheckReport {
        let started = Instant::now();
        let result = async {
            let client = self.connect().await?;
            if let Some(stream) = &self.config.stream {
                let jetstream = async_nats::jetstream::new(client);
                timed("looking the stream up", self.timeout, async {
                    jetstream.get_stream(stream).await.map(drop).map_err(|e| {
                        AttemptError::permanent(format!(
                            "JetStream stream `{stream}` is not available: {e}"
                        ))
                    })
                })
                .await?;
            }
            Ok::<_, AttemptError>(())
        }
        .await;
        report::check(result.map(|()| {
            let elapsed_ms = started.elapsed().as_millis();
            match &self.config.stream {
                Some(stream) => format!("connected and found stream `{stream}` in {elapsed_ms} ms"),
                None => format!("connected in {elapsed_ms} ms"),
            }
        }))
    }
}

/// Classifies a failed connection: refused credentials and TLS failures
/// are permanent; everything else (refused, timed out, DNS) is retryable.
pub fn classify_connect(kind: ConnectErrorKind, detail: &str) -> AttemptError {
    match kind {
        ConnectErrorKind::Authentication | ConnectErrorKind::AuthorizationViolation => {
            AttemptError::permanent(format!(
                "authentication failed: the NATS server refused the credentials (check `auth`): {detail}"
            ))
        }
        ConnectErrorKind::Tls => {
            AttemptError::permanent(format!("TLS with the NATS server failed: {detail}"))
        }
        ConnectErrorKind::ServerParse => {
            AttemptError::permanent(format!("invalid NATS server list: {detail}"))
        }
        _ => AttemptError::retryable(format!("could not connect to NATS: {detail}")),
    }
}

/// Classifies a failed JetStream publish: no stream capturing the subject
/// and a message over the server's size limit are permanent; timeouts and
/// broken connections are retryable.
fn classify_publish(error: &PublishError, subject: &str) -> AttemptError {
    match error.kind() {
        PublishErrorKind::StreamNotFound => {
            AttemptError::permanent(format!("no JetStream stream captures subject `{subject}`"))
        }
        PublishErrorKind::MaxPayloadExceeded => AttemptError::permanent(format!(
            "the NATS server rejected the message as too large: {error}"
        )),
        PublishErrorKind::TimedOut => {
            AttemptError::retryable("JetStream did not acknowledge in time")
        }
        _ => AttemptError::retryable(format!("JetStream publish failed: {error}")),
    }
}
