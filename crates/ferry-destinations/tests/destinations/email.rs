//! The `email` kind against aiosmtpd: templates, the attachment, copies,
//! refused mailboxes, missing template fields and XOAUTH2.

use ferry_core::destination::{Auth, DestinationKind};
use ferry_core::ports::AttemptError;
use ferry_core::secret::Secret;
use ferry_testkit::services::SmtpServer;
use serde_json::{Value, json};

use crate::compliance::email::event_id;
use crate::compliance::{check_and_deliver, deliverer, envelope, expected_payload};

fn config(server: &SmtpServer, extra: Value) -> Value {
    let mut config = json!({
        "host": "127.0.0.1",
        "port": server.port(),
        "tls": "none",
        "from": "Ferry <ferry@example.com>",
        "to": ["ops@example.com"],
    });
    for (key, value) in extra.as_object().unwrap() {
        config[key] = value.clone();
    }
    config
}

fn order() -> ferry_core::delivery::Envelope {
    let mut envelope = envelope(1, 1);
    let event = std::sync::Arc::make_mut(&mut envelope.event);
    event.event_type = "order.paid".into();
    event.data = json!({"order_id": "A-17", "total": 42.5, "customer": {"name": "Zoë"}});
    envelope
}

#[tokio::test]
async fn templates_render_event_fields_and_the_attachment_parses_back() {
    let server = SmtpServer::start();
    let config = config(
        &server,
        json!({
            "cc": ["finance@example.com"],
            "bcc": ["audit@example.com"],
            "subject": "[{{ type }}] order {{ data.order_id }}",
            "body": "Order {{ data.order_id }} for {{ data.customer.name }}: {{ data.total }} EUR.\n",
            "attach_payload": true,
        }),
    );
    let deliverer = deliverer(DestinationKind::Email, &config, &Auth::None);
    let sent = order();
    let report = check_and_deliver(deliverer.as_ref(), &sent).await;

    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    assert_eq!(message["headers"]["subject"], "[order.paid] order A-17");
    // Mail text travels with CRLF line ends.
    let text = message["text"].as_str().unwrap().replace("\r\n", "\n");
    assert_eq!(text, "Order A-17 for Zoë: 42.5 EUR.\n");
    assert_eq!(event_id(message), sent.event.id.as_str());
    assert_eq!(message["headers"]["webhook-id"], sent.event.id.as_str());
    assert_eq!(
        message["headers"]["idempotency-key"],
        sent.event.id.as_str()
    );
    assert_eq!(message["headers"]["cc"], "finance@example.com");
    assert!(
        message["headers"].get("bcc").is_none(),
        "Bcc is not shown to recipients"
    );
    assert_eq!(
        message["rcpt_tos"],
        json!([
            "ops@example.com",
            "finance@example.com",
            "audit@example.com"
        ])
    );
    let attachment = &message["attachments"][0];
    assert_eq!(attachment["filename"], format!("{}.json", sent.event.id));
    assert_eq!(attachment["content_type"], "application/json");
    let payload: Value = serde_json::from_str(attachment["content"].as_str().unwrap()).unwrap();
    assert_eq!(payload, expected_payload(&sent));
    let captured = report.request.unwrap();
    assert_eq!(captured.headers["subject"], "[order.paid] order A-17");
    assert_eq!(report.response.unwrap().headers["code"], "250");
}

#[tokio::test]
async fn a_field_the_event_lacks_fails_permanently_naming_the_template() {
    let server = SmtpServer::start();
    let config = config(
        &server,
        json!({"subject": "order {{ data.missing_field }}"}),
    );
    let deliverer = deliverer(DestinationKind::Email, &config, &Auth::None);
    match deliverer.deliver(&order()).await.result {
        Err(AttemptError::Permanent { reason: error }) => {
            assert!(
                error.starts_with("config.subject: undefined value"),
                "{error}"
            );
        }
        other => panic!("expected a permanent failure, got {other:?}"),
    }
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn a_rejected_mailbox_is_permanent() {
    let server = SmtpServer::start();
    let config = config(&server, json!({"to": ["nobody@example.com"]}));
    let deliverer = deliverer(DestinationKind::Email, &config, &Auth::None);
    match deliverer.deliver(&order()).await.result {
        Err(AttemptError::Permanent { reason: error }) => {
            assert!(
                error.starts_with("the server rejected the message: "),
                "{error}"
            );
            assert!(error.contains("mailbox unavailable"), "{error}");
        }
        other => panic!("expected a permanent failure, got {other:?}"),
    }
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn the_default_templates_name_the_event_and_show_its_data() {
    let server = SmtpServer::start();
    let deliverer = deliverer(
        DestinationKind::Email,
        &config(&server, json!({})),
        &Auth::None,
    );
    let sent = order();
    let report = deliverer.deliver(&sent).await;
    assert!(report.result.is_ok(), "{:?}", report.result);
    let message = &server.messages()[0];
    assert_eq!(
        message["headers"]["subject"],
        format!("order.paid {}", sent.event.id)
    );
    let text = message["text"].as_str().unwrap();
    assert!(text.contains("\"order_id\": \"A-17\""), "{text}");
    assert!(message["attachments"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn nothing_listening_is_retryable_and_names_the_connection_problem() {
    let config = json!({
        "host": "127.0.0.1",
        "port": ferry_testkit::free_port(),
        "tls": "none",
        "from": "ferry@example.com",
        "to": ["ops@example.com"],
    });
    let deliverer = deliverer(DestinationKind::Email, &config, &Auth::None);
    match deliverer.deliver(&order()).await.result {
        Err(AttemptError::Retryable { reason: error, .. }) => {
            assert!(error.contains("onnection refused"), "{error}")
        }
        other => panic!("expected a retryable failure, got {other:?}"),
    }
}

const OAUTH_USER: &str = "ferry@example.com";
const OAUTH_TOKEN: &str = "ya29.ferry-test-token";

fn xoauth2(username: &str, token: &str) -> Auth {
    Auth::Xoauth2 {
        username: username.into(),
        token: Secret::new(token.into()),
    }
}

#[tokio::test]
async fn xoauth2_with_the_right_token_authenticates_and_delivers() {
    // The server offers only XOAUTH2 and checks the user and the token.
    let server = SmtpServer::with_xoauth2(OAUTH_USER, OAUTH_TOKEN);
    let auth = xoauth2(OAUTH_USER, OAUTH_TOKEN);
    let deliverer = deliverer(DestinationKind::Email, &config(&server, json!({})), &auth);
    let check = deliverer.check().await;
    assert!(
        check.message.contains("and authenticated"),
        "{}",
        check.message
    );
    let sent = order();
    check_and_deliver(deliverer.as_ref(), &sent).await;
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(event_id(&messages[0]), sent.event.id.as_str());
}

#[tokio::test]
async fn xoauth2_with_a_wrong_token_or_user_is_permanent_and_fails_the_check() {
    let server = SmtpServer::with_xoauth2(OAUTH_USER, OAUTH_TOKEN);
    for auth in [
        xoauth2(OAUTH_USER, "ya29.expired-token"),
        xoauth2("someone-else@example.com", OAUTH_TOKEN),
    ] {
        let deliverer = deliverer(DestinationKind::Email, &config(&server, json!({})), &auth);
        match deliverer.deliver(&order()).await.result {
            Err(AttemptError::Permanent { reason: error }) => {
                assert!(
                    error
                        .starts_with("authentication failed: the server refused the XOAUTH2 token"),
                    "{error}"
                );
                assert!(!error.contains("expired-token"), "{error}");
            }
            other => panic!("expected a permanent failure, got {other:?}"),
        }
        let check = deliverer.check().await;
        assert!(!check.ok);
        assert!(
            check.message.starts_with("authentication failed"),
            "{}",
            check.message
        );
    }
    assert!(server.messages().is_empty());
}
