//! Building the message of one event: the rendered subject and body, the
//! payload as a JSON attachment when asked, a `Message-ID` derived from the
//! event id (the same on every attempt, so mail systems can de-duplicate),
//! and the event metadata as `Ferry-*`/`Idempotency-Key` headers.

use lettre::Message;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};

use super::config::EmailConfig;
use ferry_core::delivery::Envelope;

/// The addresses of a destination, parsed once.
#[derive(Debug, Clone)]
pub struct Addresses {
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub bcc: Vec<Mailbox>,
}

impl Addresses {
    pub fn parse(config: &EmailConfig) -> Result<Self, String> {
        let parse = |field: &str, text: &str| {
            text.parse::<Mailbox>()
                .map_err(|e| format!("config.{field}: `{text}` is not an address ({e})"))
        };
        let list = |field: &str, texts: &[String]| {
            texts
                .iter()
                .map(|t| parse(field, t))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Self {
            from: parse("from", &config.from)?,
            to: list("to", &config.to)?,
            cc: list("cc", &config.cc)?,
            bcc: list("bcc", &config.bcc)?,
        })
    }
}

/// `<evt_…@domain-of-from>`: stable across attempts and replays.
pub fn message_id(envelope: &Envelope, from: &Mailbox) -> String {
    format!("<{}@{}>", envelope.event.id, from.email.domain())
}

/// The message for one event; an error only when the parts cannot make a
/// message (a permanent failure).
pub fn build(
    addresses: &Addresses,
    envelope: &Envelope,
    subject: String,
    body: String,
    attachment: Option<Vec<u8>>,
) -> Result<Message, String> {
    let mut builder = Message::builder()
        .from(addresses.from.clone())
        .subject(subject)
        .message_id(Some(message_id(envelope, &addresses.from)));
    for to in &addresses.to {
        builder = builder.to(to.clone());
    }
    for cc in &addresses.cc {
        builder = builder.cc(cc.clone());
    }
    for bcc in &addresses.bcc {
        builder = builder.bcc(bcc.clone());
    }
    for (name, value) in header_metadata(envelope) {
        let name = HeaderName::new_from_ascii(name.clone())
            .map_err(|e| format!("invalid header name {name}: {e}"))?;
        builder = builder.raw_header(HeaderValue::new(name, value));
    }
    let text = SinglePart::plain(body);
    let built = match attachment {
        None => builder.singlepart(text),
        Some(payload) => {
            let json = ContentType::parse("application/json").expect("a valid media type");
            let file = Attachment::new(format!("{}.json", envelope.event.id)).body(payload, json);
            builder.multipart(MultiPart::mixed().singlepart(text).singlepart(file))
        }
    };
    built.map_err(|e| format!("cannot build the message: {e}"))
}

/// The event metadata every kind carries, as mail headers
/// (`webhook-id` → `Webhook-Id`).
fn header_metadata(envelope: &Envelope) -> Vec<(String, String)> {
    crate::message::metadata(envelope)
        .into_iter()
        .map(|(name, value)| {
            let name = name
                .split('-')
                .map(|part| {
                    let mut chars = part.chars();
                    chars
                        .next()
                        .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                        .unwrap_or_default()
                })
                .collect::<Vec<_>>()
                .join("-");
            (name, value)
        })
        .collect()
}
