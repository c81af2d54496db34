//! Pure tests of the webhook kind: config validation and the classification
//! of answers. Delivery over real sockets is in `tests/webhook.rs`.

use std::time::{Duration, SystemTime};

use ferry_core::destination::Auth;
use ferry_core::ports::{AttemptError, Delivered, Outcome};
use ferry_core::secret::Secret;
use serde_json::{Value, json};

use super::{WebhookConfig, classify, parse_retry_after, with_references};
use crate::error_chain::describe_chain;
use crate::kind_config::KindConfig;
use crate::net_guard::NetworkPolicy;

fn fields(config: Value, auth: &Auth) -> Vec<String> {
    WebhookConfig::validate(&config, auth, &NetworkPolicy::allow_all())
        .unwrap_err()
        .into_iter()
        .map(|e| e.field)
        .collect()
}

fn api_key(header: &str, value: &str) -> Auth {
    Auth::ApiKey {
        header: header.into(),
        value: Secret::new(value.into()),
    }
}

#[test]
fn a_minimal_config_gets_its_defaults() {
    let normalized = WebhookConfig::validate(
        &json!({"url": "https://example.com/hook"}),
        &Auth::None,
        &NetworkPolicy::allow_all(),
    )
    .unwrap();
    assert_eq!(
        normalized,
        json!({"url": "https://example.com/hook", "headers": {}, "timeout_ms": 10000})
    );
    let full = json!({"url": "http://127.0.0.1:9/x?a=1", "headers": {"X-Team": "billing"}, "timeout_ms": 250});
    assert_eq!(
        WebhookConfig::validate(&full, &Auth::None, &NetworkPolicy::allow_all()).unwrap(),
        full
    );
}

#[test]
fn invalid_urls_name_the_url_field() {
    for url in [
        json!("not a url"),
        json!("ftp://example.com/"),
        json!("https://user:pw@example.com/"),
        json!("mailto:a@example.com"),
        json!(42),
        Value::Null,
    ] {
        assert_eq!(
            fields(json!({"url": url}), &Auth::None),
            ["config.url"],
            "{url}"
        );
    }
    assert_eq!(fields(json!({}), &Auth::None), ["config.url"]);
    let ftp = json!({"url": "ftp://x"});
    let errors =
        WebhookConfig::validate(&ftp, &Auth::None, &NetworkPolicy::allow_all()).unwrap_err();
    let message = &errors[0].message;
    assert!(message.contains("http"), "{message}");
}

#[test]
fn timeouts_must_be_between_1_ms_and_5_minutes() {
    for bad in [json!(0), json!(300_001), json!(-1), json!(1.5), json!("10")] {
        let config = json!({"url": "https://example.com", "timeout_ms": bad});
        assert_eq!(fields(config, &Auth::None), ["config.timeout_ms"], "{bad}");
    }
    let edge = json!({"url": "https://example.com", "timeout_ms": 300_000});
    assert!(WebhookConfig::validate(&edge, &Auth::None, &NetworkPolicy::allow_all()).is_ok());
}

#[test]
fn headers_are_checked_one_by_one_and_reserved_ones_refused() {
    let config = json!({"url": "https://example.com", "headers": {
        "X-Ok": "fine",
        "Bad Name": "x",
        "X-Newline": "a\r\nInjected: yes",
        "X-Number": 5,
        "Webhook-Signature": "v1,forged",
        "content-type": "text/plain",
        "Host": "elsewhere",
    }});
    let mut got = fields(config, &Auth::None);
    got.sort();
    assert_eq!(
        got,
        [
            "config.headers.Bad Name",
            "config.headers.Host",
            "config.headers.Webhook-Signature",
            "config.headers.X-Newline",
            "config.headers.X-Number",
            "config.headers.content-type",
        ]
    );
    assert_eq!(
        fields(
            json!({"url": "https://e.com", "headers": ["X-A"]}),
            &Auth::None
        ),
        ["config.headers"]
    );
    assert_eq!(
        fields(
            json!({"url": "https://e.com", "headers": {"X-A": "1", "x-a": "2"}}),
            &Auth::None
        ),
        ["config.headers.x-a"]
    );
}

#[test]
fn authorization_is_reserved_only_when_auth_sets_it() {
    let config = json!({"url": "https://example.com", "headers": {"Authorization": "Token abc"}});
    assert!(WebhookConfig::validate(&config, &Auth::None, &NetworkPolicy::allow_all()).is_ok());
    let bearer = Auth::Bearer {
        token: Secret::new("t0k".into()),
    };
    assert_eq!(fields(config, &bearer), ["config.headers.Authorization"]);
    let config = json!({"url": "https://example.com", "headers": {"X-Api-Key": "k"}});
    assert_eq!(
        fields(config, &api_key("x-api-key", "secret")),
        ["config.headers.X-Api-Key"]
    );
}

#[test]
fn auth_fields_are_named_and_never_echo_the_secret() {
    let url = json!({"url": "https://example.com"});
    assert_eq!(
        fields(url.clone(), &api_key("not a header", "v")),
        ["auth.header"]
    );
    assert_eq!(
        fields(url.clone(), &api_key("webhook-id", "v")),
        ["auth.header"]
    );
    assert_eq!(fields(url.clone(), &api_key("X-Key", "")), ["auth.value"]);
    assert!(
        WebhookConfig::validate(
            &url,
            &api_key("Authorization", "ApiKey abc"),
            &NetworkPolicy::allow_all()
        )
        .is_ok()
    );

    let leaky = Auth::Bearer {
        token: Secret::new("sup3r\nsecret".into()),
    };
    let errors = WebhookConfig::validate(&url, &leaky, &NetworkPolicy::allow_all()).unwrap_err();
    assert_eq!(errors[0].field, "auth.token");
    assert!(
        !errors[0].message.contains("sup3r"),
        "{}",
        errors[0].message
    );
    let empty = Auth::Bearer {
        token: Secret::new(String::new()),
    };
    assert_eq!(fields(url.clone(), &empty), ["auth.token"]);

    let colon = Auth::Basic {
        username: "a:b".into(),
        password: Secret::new("p".into()),
    };
    assert_eq!(fields(url, &colon), ["auth.username"]);
}

#[test]
fn unknown_fields_and_non_objects_are_refused() {
    assert_eq!(
        fields(
            json!({"url": "https://example.com", "method": "PUT"}),
            &Auth::None
        ),
        ["config.method"]
    );
    assert_eq!(
        fields(json!("https://example.com"), &Auth::None),
        ["config"]
    );
}

#[test]
fn every_error_is_reported_at_once() {
    let config = json!({"url": "nope", "timeout_ms": 0, "headers": {"Host": "x"}});
    let got = fields(config, &api_key("", "v"));
    assert_eq!(
        got,
        [
            "auth.header",
            "config.url",
            "config.timeout_ms",
            "config.headers.Host"
        ]
    );
}

fn stored(config: &Value) -> Result<super::WebhookConfig, String> {
    super::WebhookConfig::from_stored(config, &Auth::None, &NetworkPolicy::allow_all())
}

#[test]
fn stored_configs_are_read_with_defaults() {
    let config = stored(&json!({"url": "http://a.example"})).unwrap();
    assert_eq!(config.timeout_ms, 10_000);
    assert!(config.headers.is_empty());
    let err = stored(&json!({"url": 1})).unwrap_err();
    assert!(err.starts_with("config.url:"), "{err}");
}

fn retryable(outcome: &Outcome) -> Option<Option<Duration>> {
    match outcome {
        Err(AttemptError::Retryable { retry_after, .. }) => Some(*retry_after),
        _ => None,
    }
}

#[test]
fn success_is_any_2xx() {
    let now = SystemTime::now();
    for status in [200, 201, 202, 204, 299] {
        assert!(classify(status, None, now).is_ok(), "{status}");
    }
    assert_eq!(
        classify(200, None, now),
        Ok(Delivered {
            receipt: Some(ferry_core::attempt::Receipt::of([("status", json!(200))]))
        })
    );
}

#[test]
fn transient_statuses_are_retryable_and_others_permanent() {
    let now = SystemTime::now();
    for status in [408, 425, 429, 500, 502, 503, 504, 599] {
        assert!(
            retryable(&classify(status, None, now)).is_some(),
            "{status}"
        );
    }
    for status in [400, 401, 403, 404, 405, 409, 410, 413, 422, 451, 100] {
        assert!(
            matches!(
                classify(status, None, now),
                Err(AttemptError::Permanent { .. })
            ),
            "{status}"
        );
    }
    assert_eq!(
        classify(503, None, now),
        Err(AttemptError::Retryable {
            reason: "HTTP 503 Service Unavailable".into(),
            retry_after: None
        })
    );
    assert_eq!(
        classify(400, None, now),
        Err(AttemptError::Permanent {
            reason: "HTTP 400 Bad Request".into()
        })
    );
}

#[test]
fn redirects_are_permanent_and_say_why() {
    for status in [301, 302, 307, 308] {
        match classify(status, Some("5"), SystemTime::now()) {
            Err(AttemptError::Permanent { reason: error }) => {
                assert!(error.contains("redirects are not followed"), "{error}")
            }
            other => panic!("{status}: {other:?}"),
        }
    }
}

#[test]
fn retry_after_is_honoured_in_seconds_or_as_a_date() {
    let now = httpdate::parse_http_date("Wed, 21 Oct 2026 07:28:00 GMT").unwrap();
    assert_eq!(
        retryable(&classify(429, Some("7"), now)),
        Some(Some(Duration::from_secs(7)))
    );
    assert_eq!(
        retryable(&classify(503, Some("Wed, 21 Oct 2026 07:30:00 GMT"), now)),
        Some(Some(Duration::from_secs(120)))
    );
    // A date in the past means now; garbage means no advice.
    assert_eq!(
        parse_retry_after("Wed, 21 Oct 2026 07:00:00 GMT", now),
        Some(Duration::ZERO)
    );
    assert_eq!(parse_retry_after("soon", now), None);
    assert_eq!(parse_retry_after("-5", now), None);
    assert_eq!(
        parse_retry_after(" 30 ", now),
        Some(Duration::from_secs(30))
    );
    assert_eq!(
        parse_retry_after("99999999999999999999999", now),
        Some(Duration::from_secs(u64::MAX))
    );
    // The obsolete HTTP-date forms are accepted too.
    assert_eq!(
        parse_retry_after("Wednesday, 21-Oct-26 07:29:00 GMT", now),
        Some(Duration::from_secs(60))
    );
    // Only retryable answers carry the advice.
    assert_eq!(retryable(&classify(400, Some("7"), now)), None);
}

#[test]
fn error_chains_are_described_by_their_most_useful_cause() {
    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("error sending request for url (https://secret-token@example.com)")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
    let refused = Outer(std::io::ErrorKind::ConnectionRefused.into());
    assert_eq!(describe_chain(&refused), "connection refused");
    let other = Outer(std::io::Error::other(
        "invalid peer certificate: UnknownIssuer",
    ));
    assert_eq!(
        describe_chain(&other),
        "invalid peer certificate: UnknownIssuer"
    );
}

#[test]
fn auth_types_of_other_kinds_are_refused_by_name() {
    let sftp = Auth::Password {
        username: "u".into(),
        password: Secret::new("p".into()),
    };
    let errors = WebhookConfig::validate(
        &json!({"url": "https://example.com"}),
        &sftp,
        &NetworkPolicy::allow_all(),
    )
    .unwrap_err();
    assert_eq!(errors[0].field, "auth.type");
    assert!(
        errors[0].message.contains("`password`"),
        "{}",
        errors[0].message
    );
}

#[test]
fn the_receipt_keeps_the_receivers_request_id_and_location() {
    let now = SystemTime::now();
    let headers = std::collections::BTreeMap::from([
        ("x-request-id".to_owned(), "req-42".to_owned()),
        ("location".to_owned(), "/orders/o_42".to_owned()),
        ("server".to_owned(), "x".to_owned()),
    ]);
    let delivered = with_references(classify(201, None, now).unwrap(), &headers);
    assert_eq!(
        serde_json::to_value(delivered.receipt.unwrap()).unwrap(),
        json!({"status": 201, "request_id": "req-42", "location": "/orders/o_42"})
    );
}
