//! The email adapter (`validate`, `build`) and deliverer: one message per
//! event over a pooled SMTP transport (lettre), reached through the SSRF
//! guard; and the classification of SMTP's answers.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ferry_core::attempt::Receipt;
use ferry_core::delivery::{Captured, Envelope};
use ferry_core::destination::{Auth, Destination, DestinationKind};
use ferry_core::ports::{AttemptError, Delivered};
use ferry_core::ports::{AttemptReport, CheckReport, Deliverer};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde_json::json;

use super::config::{EmailConfig, TlsMode};
use super::mail::{self, Addresses};
use super::render::Templates;
use crate::client_adapter::{ClientAdapter, ClientKind, Reach};
use crate::error_chain::describe_chain;
use crate::message::Payload;
use crate::net_guard::NetworkPolicy;

/// SMTP connections kept per destination.
const POOL_SIZE: u32 = 4;

type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// The `email` kind.
pub struct Email;

/// The `email` kind's adapter.
pub type EmailAdapter = ClientAdapter<Email>;

impl ClientKind for Email {
    const KIND: DestinationKind = DestinationKind::Email;
    type Config = EmailConfig;

    fn build(
        config: EmailConfig,
        destination: &Destination,
        reach: &Reach,
    ) -> Result<Arc<dyn Deliverer>, String> {
        let auth = &destination.secrets.auth;
        let templates = Templates::new(&config.subject, &config.body)
            .map_err(|errors| crate::fields::join_errors(&errors))?;
        let credentials = match auth {
            Auth::Basic { username, password } => Some((
                Credentials::new(username.clone(), password.expose().clone()),
                vec![Mechanism::Plain, Mechanism::Login],
            )),
            Auth::Xoauth2 { username, token } => Some((
                Credentials::new(username.clone(), token.expose().clone()),
                vec![Mechanism::Xoauth2],
            )),
            _ => None,
        };
        let timeout = Duration::from_millis(config.timeout_ms);
        Ok(Arc::new(EmailDeliverer {
            addresses: Addresses::parse(&config)?,
            host: config.host,
            port: config.port,
            tls: config.tls,
            credentials,
            templates,
            attach_payload: config.attach_payload,
            timeout,
            connect_timeout: reach.connect_timeout.min(timeout),
            policy: Arc::clone(&reach.policy),
            transport: tokio::sync::Mutex::new(None),
        }))
    }
}

/// Mails events to fixed recipients through one SMTP server.
pub struct EmailDeliverer {
    host: String,
    port: u16,
    tls: TlsMode,
    credentials: Option<(Credentials, Vec<Mechanism>)>,
    addresses: Addresses,
    templates: Templates,
    attach_payload: bool,
    timeout: Duration,
    connect_timeout: Duration,
    policy: Arc<NetworkPolicy>,
    /// The pooled transport and the address it connects to: re-made only
    /// when the host's allowed address changes.
    transport: tokio::sync::Mutex<Option<(IpAddr, Transport)>>,
}

impl EmailDeliverer {
    /// The transport to the host's first address the SSRF guard allows.
    /// lettre connects to that address (so DNS cannot be rebound between
    /// the check and the connection) and verifies TLS against the name.
    async fn transport(&self) -> Result<Transport, AttemptError> {
        let ip = self.resolve().await?;
        if self.tls == TlsMode::None && !ip.is_loopback() {
            return Err(AttemptError::permanent(format!(
                "{} resolves to {ip}, not a loopback address: tls `none` is for a local relay only",
                self.host
            )));
        }
        let mut cached = self.transport.lock().await;
        if let Some((known, transport)) = cached.as_ref()
            && *known == ip
        {
            return Ok(transport.clone());
        }
        let mut builder = Transport::builder_dangerous(ip.to_string())
            .port(self.port)
            .timeout(Some(self.timeout))
            .pool_config(PoolConfig::new().max_size(POOL_SIZE));
        let name = self
            .host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        builder = match self.tls {
            TlsMode::None => builder.tls(Tls::None),
            TlsMode::Implicit | TlsMode::Starttls => {
                let parameters = TlsParameters::new(name)
                    .map_err(|e| AttemptError::permanent(format!("cannot set up TLS: {e}")))?;
                if self.tls == TlsMode::Implicit {
                    builder.tls(Tls::Wrapper(parameters))
                } else {
                    builder.tls(Tls::Required(parameters))
                }
            }
        };
        if let Some((credentials, mechanisms)) = &self.credentials {
            builder = builder
                .credentials(credentials.clone())
                .authentication(mechanisms.clone());
        }
        let transport = builder.build();
        *cached = Some((ip, transport.clone()));
        Ok(transport)
    }

    async fn resolve(&self) -> Result<IpAddr, AttemptError> {
        let bare = self.host.trim_start_matches('[').trim_end_matches(']');
        let found: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, self.port)],
            Err(_) => {
                let lookup = tokio::net::lookup_host((bare, self.port));
                match tokio::time::timeout(self.connect_timeout, lookup).await {
                    Ok(Ok(found)) => found.collect(),
                    Ok(Err(e)) => {
                        return Err(AttemptError::retryable(format!(
                            "DNS lookup of {bare} failed: {e}"
                        )));
                    }
                    Err(_) => {
                        return Err(AttemptError::retryable(format!(
                            "DNS lookup of {bare} timed out"
                        )));
                    }
                }
            }
        };
        let allowed = self
            .policy
            .filter_resolved(bare, found)
            .map_err(|refused| AttemptError::permanent(refused.to_string()))?;
        allowed
            .first()
            .map(SocketAddr::ip)
            .ok_or_else(|| AttemptError::retryable(format!("{bare} has no address")))
    }
}

#[async_trait]
impl Deliverer for EmailDeliverer {
    /// Sends one message: the rendered subject and body, the payload
    /// attached as `<id>.json` when `attach_payload` is set, `Message-ID`
    /// `<event id@sender's domain>` on every attempt.
    async fn deliver(&self, envelope: &Envelope) -> AttemptReport {
        let message_id = mail::message_id(envelope, &self.addresses.from);
        let mut headers = BTreeMap::from([
            ("from".to_owned(), self.addresses.from.to_string()),
            ("message-id".to_owned(), message_id),
        ]);
        for (name, list) in [
            ("to", &self.addresses.to),
            ("cc", &self.addresses.cc),
            ("bcc", &self.addresses.bcc),
        ] {
            if !list.is_empty() {
                let joined: Vec<_> = list.iter().map(ToString::to_string).collect();
                headers.insert(name.to_owned(), joined.join(", "));
            }
        }
        let (subject, body) = match self.templates.render(&envelope.event) {
            Ok(rendered) => rendered,
            Err(error) => {
                return AttemptReport {
                    result: Err(AttemptError::permanent(error)),
                    status_code: None,
                    request: Some(Captured {
                        headers,
                        body: String::new(),
                    }),
                    response: None,
                };
            }
        };
        headers.insert("subject".to_owned(), subject.clone());
        let request = Captured {
            headers,
            body: Captured::body_from_bytes(body.as_bytes()),
        };
        let attachment = self
            .attach_payload
            .then(|| Payload::of(&envelope.event).to_bytes());
        let sent = async {
            let message = mail::build(&self.addresses, envelope, subject, body, attachment)
                .map_err(AttemptError::permanent)?;
            let transport = self.transport().await?;
            match tokio::time::timeout(self.timeout, transport.send(message)).await {
                Ok(Ok(response)) => Ok(response),
                Ok(Err(error)) => Err(classify(&error)),
                Err(_) => Err(AttemptError::retryable(format!(
                    "timed out after {} ms",
                    self.timeout.as_millis()
                ))),
            }
        };
        match sent.await {
            Ok(response) => {
                let code = response.code().to_string();
                let text = response.message().collect::<Vec<_>>().join("\n");
                AttemptReport {
                    result: Ok(Delivered {
                        receipt: Some(Receipt::of([
                            ("reply", json!(format!("{code} {text}"))),
                            ("queue_id", json!(queue_id(&text))),
                        ])),
                    }),
                    status_code: None,
                    request: Some(request),
                    response: Some(Captured {
                        headers: BTreeMap::from([("code".to_owned(), code)]),
                        body: Captured::body_from_bytes(text.as_bytes()),
                    }),
                }
            }
            Err(error) => AttemptReport {
                result: Err(error),
                status_code: None,
                request: Some(request),
                response: None,
            },
        }
    }

    /// Connects, says EHLO, upgrades to TLS as configured and
    /// authenticates; sends no mail.
    async fn check(&self) -> CheckReport {
        let started = Instant::now();
        let tested = async {
            let transport = self.transport().await?;
            match tokio::time::timeout(self.timeout, transport.test_connection()).await {
                Ok(Ok(true)) => Ok(()),
                Ok(Ok(false)) => Err(AttemptError::retryable("the server closed the connection")),
                Ok(Err(error)) => Err(classify(&error)),
                Err(_) => Err(AttemptError::retryable(format!(
                    "timed out after {} ms",
                    self.timeout.as_millis()
                ))),
            }
        };
        match tested.await {
            Ok(()) => CheckReport {
                ok: true,
                message: format!(
                    "connected to {}:{}{} in {} ms",
                    self.host,
                    self.port,
                    if self.credentials.is_some() {
                        " and authenticated"
                    } else {
                        ""
                    },
                    started.elapsed().as_millis()
                ),
            },
            Err(error) => CheckReport {
                ok: false,
                message: error.into_reason(),
            },
        }
    }
}

/// Classifies an SMTP failure: refused credentials (530, 534, 535, or an
/// XOAUTH2 error challenge) and other 5xx answers (a rejected mailbox or
/// message) and client-side problems (no common auth mechanism) are
/// permanent; 4xx answers,
/// timeouts, TLS and connection failures are retryable.
pub fn classify(error: &lettre::transport::smtp::Error) -> AttemptError {
    let code = error.status().map(|code| code.to_string());
    let detail = describe_chain(error);
    if error.is_permanent() {
        return match code.as_deref() {
            Some("530" | "534" | "535") => AttemptError::permanent(format!(
                "authentication failed: the server refused the credentials ({detail})"
            )),
            _ => AttemptError::permanent(format!("the server rejected the message: {detail}")),
        };
    }
    if error.is_client() {
        // Servers refuse an XOAUTH2 token with an error challenge (334) that
        // lettre does not answer.
        if detail.contains("does not expect a challenge") {
            return AttemptError::permanent(
                "authentication failed: the server refused the XOAUTH2 token (it answered with an error challenge): check the user name and that the token is current",
            );
        }
        return AttemptError::permanent(format!("cannot talk to the server: {detail}"));
    }
    if error.is_transient() {
        return AttemptError::retryable(format!("the server deferred the message: {detail}"));
    }
    if error.is_timeout() {
        return AttemptError::retryable("timed out");
    }
    AttemptError::retryable(detail)
}

/// The server's queue id from its reply (`… queued as 4F2k9`), if it
/// gives one.
fn queue_id(reply: &str) -> Option<&str> {
    let (_, rest) = reply.split_once("queued as ")?;
    let id = rest
        .split(|c: char| c.is_whitespace() || c == ')' || c == ';')
        .next()?
        .trim_end_matches(['.', ',']);
    (!id.is_empty()).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::queue_id;

    #[test]
    fn the_queue_id_is_read_from_the_reply_when_there_is_one() {
        assert_eq!(queue_id("2.0.0 Ok: queued as 4F2k9Zq1"), Some("4F2k9Zq1"));
        assert_eq!(queue_id("OK id=1 (queued as ABC123)"), Some("ABC123"));
        assert_eq!(queue_id("OK"), None);
        assert_eq!(queue_id("queued as "), None);
    }
}
