//! NATS JetStream against the local server (2.9, anonymous access): a
//! stream of the test's own capturing `<prefix>.>`, read back message by
//! message.

use async_nats::jetstream::{self, stream};
use async_trait::async_trait;
use ferry_core::destination::{Auth, DestinationKind};
use ferry_testkit::free_port;
use serde_json::{Value, json};

use super::{Received, Target, unique_name};

pub const SERVER: &str = "nats://127.0.0.1:4222";

/// A JetStream context of the test's own.
pub async fn context() -> jetstream::Context {
    let client = async_nats::connect(SERVER)
        .await
        .expect("the local NATS server at 127.0.0.1:4222");
    jetstream::new(client)
}

/// Creates a stream named `name` capturing `<prefix>.>`, deleted when the
/// test's messages are older than a minute.
pub async fn create_stream(
    context: &jetstream::Context,
    name: &str,
    prefix: &str,
) -> stream::Stream {
    context
        .create_stream(stream::Config {
            name: name.to_owned(),
            subjects: vec![format!("{prefix}.>")],
            max_age: std::time::Duration::from_secs(60),
            ..Default::default()
        })
        .await
        .unwrap()
}

pub struct NatsStream {
    pub stream: stream::Stream,
}

#[async_trait]
impl Target for NatsStream {
    const KIND: DestinationKind = DestinationKind::Nats;
    const RECEIPT: &'static [&'static str] = &["stream", "sequence", "duplicate"];
    const DEDUPLICATES: bool = true;
    const CARRIES_TRACE: bool = true;

    async fn provision() -> (Self, Value, Auth) {
        let name = unique_name("FERRY_TEST");
        let prefix = unique_name("ferry_test");
        let stream = create_stream(&context().await, &name, &prefix).await;
        let config =
            json!({"servers": [SERVER], "subject": format!("{prefix}.{{type}}"), "stream": name});
        (Self { stream }, config, Auth::None)
    }

    async fn received(&mut self) -> Vec<Received> {
        let state = self.stream.info().await.unwrap().state.clone();
        let mut received = Vec::new();
        for sequence in state.first_sequence..=state.last_sequence {
            if state.messages == 0 {
                break;
            }
            let message = self.stream.get_raw_message(sequence).await.unwrap();
            let id = message.headers.get("Nats-Msg-Id").unwrap().to_string();
            assert_eq!(message.headers.get("webhook-id").unwrap().as_str(), id);
            received.push(Received {
                id,
                payload: serde_json::from_slice(&message.payload).unwrap(),
                traceparent: message.headers.get("traceparent").map(|v| v.to_string()),
            });
        }
        received
    }

    /// The local server allows anonymous access and so accepts any
    /// credentials: there is nothing it would refuse.
    fn wrong_credentials(&self, _config: &Value, _auth: &Auth) -> Option<(Value, Auth)> {
        None
    }

    fn unreachable(&self, config: &Value) -> Value {
        let mut config = config.clone();
        config["servers"] = json!([format!("nats://127.0.0.1:{}", free_port())]);
        config
    }
}

compliance!(NatsStream);
