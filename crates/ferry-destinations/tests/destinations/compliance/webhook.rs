//! Webhooks against the recording receiver, which checks a bearer token.

use async_trait::async_trait;
use ferry_core::destination::{Auth, DestinationKind};
use ferry_core::secret::Secret;
use ferry_testkit::{Behavior, Receiver, free_port};
use serde_json::{Value, json};

use super::{Received, Target};

const TOKEN: &str = "compliance-token";

pub struct Webhook {
    receiver: Receiver,
}

#[async_trait]
impl Target for Webhook {
    const KIND: DestinationKind = DestinationKind::Webhook;
    const RECEIPT: &'static [&'static str] = &["status"];
    const DEDUPLICATES: bool = false;
    const CARRIES_TRACE: bool = true;

    async fn provision() -> (Self, Value, Auth) {
        let receiver = Receiver::start().await;
        receiver.set_behavior(Behavior::RequireAuthorization(format!("Bearer {TOKEN}")));
        let config = json!({"url": receiver.url()});
        let auth = Auth::Bearer {
            token: Secret::new(TOKEN.into()),
        };
        (Self { receiver }, config, auth)
    }

    async fn received(&mut self) -> Vec<Received> {
        self.receiver
            .requests()
            .into_iter()
            .filter(|r| r.status_sent == 200 && r.json()["type"] != "ferry.test")
            .map(|r| Received {
                id: r.header("webhook-id").unwrap_or_default().to_owned(),
                payload: r.json(),
                traceparent: r.header("traceparent").map(str::to_owned),
            })
            .collect()
    }

    fn wrong_credentials(&self, config: &Value, _auth: &Auth) -> Option<(Value, Auth)> {
        let wrong = Auth::Bearer {
            token: Secret::new("not-the-token".into()),
        };
        Some((config.clone(), wrong))
    }

    fn unreachable(&self, _config: &Value) -> Value {
        json!({"url": format!("http://127.0.0.1:{}/hook", free_port())})
    }
}

compliance!(Webhook);
