//! Email against aiosmtpd with AUTH required, the messages it saved read
//! back (parsed by Python's email package); the payload travels as the
//! attachment and the id in `Message-ID`.

use async_trait::async_trait;
use ferry_core::destination::{Auth, DestinationKind};
use ferry_core::secret::Secret;
use ferry_testkit::free_port;
use ferry_testkit::services::SmtpServer;
use serde_json::{Value, json};

use super::{Received, Target};

pub const USER: &str = "ferry";
pub const PASSWORD: &str = "smtp-secret";

pub struct Email {
    server: SmtpServer,
}

pub fn basic(password: &str) -> Auth {
    Auth::Basic {
        username: USER.into(),
        password: Secret::new(password.into()),
    }
}

/// The event id of a `Message-ID` `<evt_…@example.com>`.
pub fn event_id(message: &Value) -> String {
    let id = message["headers"]["message-id"]
        .as_str()
        .unwrap_or_default();
    id.trim_start_matches('<')
        .split('@')
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[async_trait]
impl Target for Email {
    const KIND: DestinationKind = DestinationKind::Email;
    const RECEIPT: &'static [&'static str] = &["reply"];
    /// Mail systems de-duplicate by `Message-ID`; the server keeps copies.
    const DEDUPLICATES: bool = false;
    const CARRIES_TRACE: bool = true;

    async fn provision() -> (Self, Value, Auth) {
        let server = SmtpServer::with_auth(USER, PASSWORD);
        let config = json!({
            "host": "127.0.0.1",
            "port": server.port(),
            "tls": "none",
            "from": "Ferry <ferry@example.com>",
            "to": ["ops@example.com"],
            "attach_payload": true,
        });
        (Self { server }, config, basic(PASSWORD))
    }

    async fn received(&mut self) -> Vec<Received> {
        self.server
            .messages()
            .into_iter()
            .map(|message| Received {
                id: event_id(&message),
                payload: serde_json::from_str(
                    message["attachments"][0]["content"]
                        .as_str()
                        .unwrap_or("null"),
                )
                .unwrap(),
                traceparent: message["headers"]["traceparent"]
                    .as_str()
                    .map(str::to_owned),
            })
            .collect()
    }

    fn wrong_credentials(&self, config: &Value, _auth: &Auth) -> Option<(Value, Auth)> {
        Some((config.clone(), basic("not-the-password")))
    }

    fn unreachable(&self, config: &Value) -> Value {
        let mut config = config.clone();
        config["port"] = json!(free_port());
        config
    }
}

compliance!(Email);
