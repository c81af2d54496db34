//! The broker and database kinds over TLS, each against a private server of
//! its kind that speaks only TLS to Ferry, with certificates generated for
//! the test (`ferry_testkit::tls`). A kind takes part by implementing
//! [`TlsTarget`] and invoking [`tls_suite!`], which generates:
//!
//! - `delivers_trusting_the_configured_ca`: with `tls.ca_certificate` set
//!   to the CA that signed the server's certificate, the connection test
//!   passes and an event is delivered and read back.
//! - `an_untrusted_server_certificate_is_permanent`: with another CA, the
//!   attempt fails permanently and says it is a certificate problem; the
//!   connection test fails too; nothing arrives.
//! - `a_required_client_certificate`: a server that requires client
//!   certificates refuses a destination without one, permanently and
//!   saying so (RabbitMQ closes the connection so soon after its refusal
//!   that the client may see only a reset); with `auth` of type
//!   `client_certificate` the event is delivered.

use std::time::Instant;

use async_trait::async_trait;
use ferry_core::destination::{Auth, DestinationKind};
use ferry_core::ports::AttemptError;
use ferry_core::secret::Secret;
use ferry_testkit::tls::{ClientCertificates, TestCertificates};
use serde_json::{Value, json};

use crate::compliance::{Received, WAIT, deliverer, envelope, expected_payload};

/// Generates the suite's tests for a [`TlsTarget`].
macro_rules! tls_suite {
    ($target:ty) => {
        #[tokio::test]
        async fn delivers_trusting_the_configured_ca() {
            crate::tls::delivers_trusting_the_configured_ca::<$target>().await;
        }

        #[tokio::test]
        async fn an_untrusted_server_certificate_is_permanent() {
            crate::tls::an_untrusted_server_certificate_is_permanent::<$target>().await;
        }

        #[tokio::test]
        async fn a_required_client_certificate() {
            crate::tls::a_required_client_certificate::<$target>().await;
        }
    };
}

#[cfg(feature = "amqp")]
mod amqp;
#[cfg(feature = "mqtt")]
mod mqtt;
#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "nats")]
mod nats;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;

/// A private TLS server of a kind with a resource of the test's own on it.
#[async_trait]
pub trait TlsTarget: Send + Sync + Sized {
    const KIND: DestinationKind;
    /// Whether the server closes the connection so soon after refusing a
    /// client without a certificate that the client may see only a reset
    /// (a retryable network failure) instead of the refusal.
    const REFUSAL_MAY_BE_A_RESET: bool = false;

    /// Starts the server with the set's server certificate, asking clients
    /// for a certificate or not, and returns the config of a destination
    /// that reaches it over TLS (without `tls`). Where the kind logs users
    /// in, a server that requires client certificates is reached as the
    /// certificate's user.
    async fn start(certificates: &TestCertificates, clients: ClientCertificates) -> (Self, Value);

    /// Everything that arrived so far.
    async fn received(&mut self) -> Vec<Received>;

    /// The destination's auth with the set's client certificate (and
    /// nothing else: the certificate is the login, or none is needed).
    fn client_certificate(certificates: &TestCertificates) -> Auth {
        Auth::ClientCertificate {
            certificate: certificates.client_certificate(),
            private_key: Secret::new(certificates.client_key()),
            username: None,
            password: None,
        }
    }
}

/// `config` trusting `ca` (PEM).
fn trusting(config: &Value, ca: &str) -> Value {
    let mut config = config.clone();
    config["tls"] = json!({"ca_certificate": ca});
    config
}

/// Delivers one event with `auth`, expects it delivered and read back.
async fn deliver_and_read_back<T: TlsTarget>(target: &mut T, config: &Value, auth: &Auth) {
    let deliverer = deliverer(T::KIND, config, auth);
    let check = deliverer.check().await;
    assert!(
        check.ok,
        "{}: connection test failed: {}",
        T::KIND,
        check.message
    );
    let event = envelope(0, 1);
    let report = deliverer.deliver(&event).await;
    assert!(
        report.result.is_ok(),
        "{}: expected delivered, got {:?}",
        T::KIND,
        report.result
    );
    let deadline = Instant::now() + WAIT;
    let received = loop {
        let received = target.received().await;
        if !received.is_empty() || Instant::now() > deadline {
            break received;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(received.len(), 1, "{}: {received:?}", T::KIND);
    assert_eq!(received[0].id, event.event.id.as_str(), "{}", T::KIND);
    assert_eq!(received[0].payload, expected_payload(&event), "{}", T::KIND);
}

/// Delivers one event, expects a permanent failure whose message (and the
/// connection test's) names `words`' first match.
async fn expect_permanent<T: TlsTarget>(config: &Value, auth: &Auth, words: &[&str]) -> String {
    let deliverer = deliverer(T::KIND, config, auth);
    let report = deliverer.deliver(&envelope(0, 1)).await;
    let Err(AttemptError::Permanent { reason: error }) = &report.result else {
        panic!(
            "{}: expected a permanent failure, got {:?}",
            T::KIND,
            report.result
        );
    };
    let says = |message: &str| {
        let lower = message.to_lowercase();
        words.iter().any(|word| lower.contains(word))
    };
    assert!(
        says(error),
        "{}: the error does not say what is wrong: {error}",
        T::KIND
    );
    let check = deliverer.check().await;
    assert!(!check.ok, "{}: the connection test passed", T::KIND);
    assert!(says(&check.message), "{}: {}", T::KIND, check.message);
    error.clone()
}

pub async fn delivers_trusting_the_configured_ca<T: TlsTarget>() {
    let certificates = TestCertificates::generate();
    let (mut target, config) = T::start(&certificates, ClientCertificates::NotAsked).await;
    let config = trusting(&config, &certificates.ca());
    deliver_and_read_back(&mut target, &config, &Auth::None).await;
}

pub async fn an_untrusted_server_certificate_is_permanent<T: TlsTarget>() {
    let certificates = TestCertificates::generate();
    let (mut target, config) = T::start(&certificates, ClientCertificates::NotAsked).await;
    let config = trusting(&config, &certificates.other_ca());
    let error = expect_permanent::<T>(&config, &Auth::None, &["certificate"]).await;
    assert!(error.contains("not trusted"), "{}: {error}", T::KIND);
    assert!(target.received().await.is_empty(), "{}", T::KIND);
}

pub async fn a_required_client_certificate<T: TlsTarget>() {
    let certificates = TestCertificates::generate();
    let (mut target, config) = T::start(&certificates, ClientCertificates::Required).await;
    let config = trusting(&config, &certificates.ca());
    if T::REFUSAL_MAY_BE_A_RESET {
        let deliverer = deliverer(T::KIND, &config, &Auth::None);
        match deliverer.deliver(&envelope(0, 1)).await.result {
            Err(AttemptError::Permanent { reason: error }) => {
                assert!(error.contains("client certificate"), "{}: {error}", T::KIND);
            }
            Err(AttemptError::Retryable { reason: error, .. }) => {
                assert!(error.contains("reset"), "{}: {error}", T::KIND);
            }
            other => panic!("{}: expected a failure, got {other:?}", T::KIND),
        }
        assert!(!deliverer.check().await.ok, "{}", T::KIND);
    } else {
        expect_permanent::<T>(&config, &Auth::None, &["client certificate"]).await;
    }
    assert!(target.received().await.is_empty(), "{}", T::KIND);
    let auth = T::client_certificate(&certificates);
    deliver_and_read_back(&mut target, &config, &auth).await;
}
