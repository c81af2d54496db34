//! mqtt: topics of the run's own under `ferry-loadtest/<name>/`, with a
//! subscriber that counts the distinct `webhook-id`s it receives. It
//! subscribes at QoS 0: at QoS 1 the broker holds back all but a few
//! unacknowledged messages per subscriber and, past its queue limit
//! (Mosquitto's `max_queued_messages`, 1000 by default), drops the rest,
//! which a subscriber on a busy machine soon reaches.
//! The publisher, like the kind, publishes at QoS 1 over MQTT 5 with the
//! metadata as user properties on one connection, and waits for each
//! message's PUBACK.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, bail};
use reqwest::Url;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, PubAckReason, PublishProperties};
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use rumqttc::{Outgoing, Transport};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::Message;
use crate::server::random_hex;

/// Requests queued to the event loop before `publish` waits (as the kind).
const REQUEST_CAPACITY: usize = 64;
const KEEP_ALIVE: Duration = Duration::from_secs(30);
/// How long connecting and subscribing may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Options for a new connection to the broker of `url`, with a fresh client id.
fn options(url: &Url, role: &str) -> MqttOptions {
    let tls = url.scheme() == "mqtts";
    let port = url.port().unwrap_or(if tls { 8883 } else { 1883 });
    let host = url
        .host_str()
        .unwrap_or("")
        .trim_start_matches('[')
        .trim_end_matches(']');
    let id = format!("ferry-loadtest-{role}-{}", random_hex(6));
    let mut options = MqttOptions::new(id, host, port);
    options.set_keep_alive(KEEP_ALIVE).set_clean_start(true);
    if !url.username().is_empty() {
        options.set_credentials(url.username(), url.password().unwrap_or(""));
    }
    if tls {
        options.set_transport(Transport::tls_with_default_config());
    }
    options
}

/// Polls `events` until the broker's CONNACK (and, with `suback`, SUBACK).
async fn handshake(events: &mut EventLoop, suback: bool) -> anyhow::Result<()> {
    let wait = async {
        let mut connected = false;
        loop {
            match events
                .poll()
                .await
                .context("cannot connect to the MQTT broker")?
            {
                Event::Incoming(Packet::ConnAck(_)) if !suback => return Ok(()),
                Event::Incoming(Packet::ConnAck(_)) => connected = true,
                Event::Incoming(Packet::SubAck(_)) if connected => return Ok(()),
                _ => {}
            }
        }
    };
    tokio::time::timeout(SETUP_TIMEOUT, wait)
        .await
        .context("the MQTT broker did not answer in time")?
}

pub struct Fixture {
    prefix: String,
    client: AsyncClient,
    seen: Arc<Mutex<HashSet<String>>>,
    task: JoinHandle<()>,
}

impl Fixture {
    pub async fn create(url: &Url, name: &str) -> anyhow::Result<Self> {
        let prefix = format!("ferry-loadtest/{name}");
        let (client, mut events) = AsyncClient::new(options(url, "sub"), REQUEST_CAPACITY);
        client
            .subscribe(format!("{prefix}/#"), QoS::AtMostOnce)
            .await
            .context("cannot subscribe")?;
        handshake(&mut events, true).await?;
        let seen = Arc::new(Mutex::new(HashSet::new()));
        let task = tokio::spawn(count_received(events, Arc::clone(&seen)));
        Ok(Self {
            prefix,
            client,
            seen,
            task,
        })
    }

    pub fn config(&self, url: &str) -> Value {
        json!({"url": url, "topic": format!("{}/{{type}}", self.prefix), "qos": 1})
    }

    pub fn count(&self) -> u64 {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len() as u64
    }

    pub async fn publisher(&self, url: &Url) -> anyhow::Result<Publisher> {
        let (client, mut events) = AsyncClient::new(options(url, "pub"), REQUEST_CAPACITY);
        handshake(&mut events, false).await?;
        let acks = Arc::new(Mutex::new(Acks::default()));
        let task = tokio::spawn(resolve_acks(events, Arc::clone(&acks)));
        Ok(Publisher {
            client,
            acks,
            order: tokio::sync::Mutex::new(()),
            task,
            prefix: self.prefix.clone(),
        })
    }

    pub async fn remove(self) -> anyhow::Result<()> {
        let _ = self.client.disconnect().await;
        self.task.abort();
        Ok(())
    }
}

/// The subscriber's event loop: remembers each message's `webhook-id`.
async fn count_received(mut events: EventLoop, seen: Arc<Mutex<HashSet<String>>>) {
    while let Ok(event) = events.poll().await {
        if let Event::Incoming(Packet::Publish(publish)) = event {
            let id = publish.properties.and_then(|p| {
                p.user_properties
                    .into_iter()
                    .find(|(name, _)| name == "webhook-id")
                    .map(|(_, id)| id)
            });
            if let Some(id) = id {
                seen.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(id);
            }
        }
    }
}

type AckSender = oneshot::Sender<Result<(), String>>;

/// Publishes waiting for their packet id (in request order), then for
/// their PUBACK (by packet id).
#[derive(Default)]
struct Acks {
    unassigned: VecDeque<AckSender>,
    waiting: HashMap<u16, AckSender>,
}

async fn resolve_acks(mut events: EventLoop, acks: Arc<Mutex<Acks>>) {
    loop {
        let event = events.poll().await;
        let mut acks = acks.lock().unwrap_or_else(PoisonError::into_inner);
        match event {
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                if let Some(sender) = acks.unassigned.pop_front() {
                    acks.waiting.insert(pkid, sender);
                }
            }
            Ok(Event::Incoming(Packet::PubAck(ack))) => {
                if let Some(sender) = acks.waiting.remove(&ack.pkid) {
                    let _ = sender.send(match ack.reason {
                        PubAckReason::Success | PubAckReason::NoMatchingSubscribers => Ok(()),
                        other => Err(format!("the broker refused the message ({other:?})")),
                    });
                }
            }
            Ok(_) => {}
            Err(error) => {
                let failure = format!("connection to the MQTT broker lost: {error}");
                let waiting: Vec<AckSender> = acks.waiting.drain().map(|(_, s)| s).collect();
                for sender in acks.unassigned.drain(..).chain(waiting) {
                    let _ = sender.send(Err(failure.clone()));
                }
                return;
            }
        }
    }
}

pub struct Publisher {
    client: AsyncClient,
    acks: Arc<Mutex<Acks>>,
    /// Keeps "queue the ack slot, then send the request" in one order.
    order: tokio::sync::Mutex<()>,
    task: JoinHandle<()>,
    prefix: String,
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Publisher {
    pub async fn publish(&self, message: &Message) -> anyhow::Result<()> {
        let topic = format!("{}/{}", self.prefix, message.event.event_type);
        let properties = PublishProperties {
            payload_format_indicator: Some(1),
            content_type: Some("application/json".into()),
            user_properties: message
                .metadata
                .iter()
                .map(|(name, value)| ((*name).to_owned(), value.clone()))
                .collect(),
            ..PublishProperties::default()
        };
        let (sender, receiver) = oneshot::channel();
        {
            let _order = self.order.lock().await;
            self.acks
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .unassigned
                .push_back(sender);
            let sent = self
                .client
                .publish_with_properties(
                    topic,
                    QoS::AtLeastOnce,
                    false,
                    message.body.clone(),
                    properties,
                )
                .await;
            if let Err(error) = sent {
                self.acks
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .unassigned
                    .pop_back();
                bail!("the MQTT client refused the publish: {error}");
            }
        }
        match receiver.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => bail!(error),
            Err(_) => bail!("connection to the MQTT broker lost"),
        }
    }
}
