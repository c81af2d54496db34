//! Webhook delivery over real sockets, against the recording receiver of
//! `ferry-testkit`; signatures are checked with the independent
//! `standardwebhooks` crate.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use ferry_core::delivery::{Envelope, MAX_CAPTURED_BODY};
use ferry_core::destination::{
    Auth, DEFAULT_MAX_IN_FLIGHT, Destination, DestinationKind, DestinationSecrets, Signing,
    SigningKey,
};
use ferry_core::event::Event;
use ferry_core::ports::{AttemptError, AttemptReport, Delivered, Deliverer};
use ferry_core::secret::Secret;
use ferry_core::signing::SigningSecret;
use ferry_core::{DeliveryId, DestinationId, EventId, OrgId};
use ferry_destinations::{Catalog, CatalogOptions};
use ferry_testkit::{Behavior, Receiver, free_port};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

fn catalog() -> Catalog {
    Catalog::new(CatalogOptions {
        allow_private_networks: true,
        ..CatalogOptions::default()
    })
}

fn destination(config: Value, auth: Auth, signing: Vec<SigningKey>) -> Destination {
    let now = Utc::now();
    Destination {
        id: DestinationId::generate(),
        org_id: OrgId::generate(),
        name: "test hook".into(),
        kind: DestinationKind::Webhook,
        config,
        filter: Default::default(),
        retry: Default::default(),
        is_default: false,
        enabled: true,
        max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        alerts: Default::default(),
        secrets: DestinationSecrets {
            auth,
            signing: Signing { secrets: signing },
        },
        health: Default::default(),
        created_at: now,
        updated_at: now,
    }
}

fn current(secret: &SigningSecret) -> SigningKey {
    SigningKey {
        secret: secret.clone(),
        expires_at: None,
    }
}

/// A deliverer to `url` with one signing secret, validated like the API does.
fn deliverer_with(url: &str, extra: Value, auth: Auth) -> Arc<dyn Deliverer> {
    let mut config = json!({ "url": url });
    if let (Value::Object(config), Value::Object(extra)) = (&mut config, extra) {
        config.extend(extra);
    }
    let catalog = catalog();
    let config = catalog
        .validate(DestinationKind::Webhook, &config, &auth)
        .unwrap();
    let secret = SigningSecret::generate();
    catalog
        .build(&destination(config, auth, vec![current(&secret)]))
        .unwrap()
}

fn deliverer(url: &str) -> Arc<dyn Deliverer> {
    deliverer_with(url, json!({}), Auth::None)
}

fn envelope(attempt: u32) -> Envelope {
    let event = Event {
        id: EventId::generate(),
        org_id: OrgId::generate(),
        event_type: "order.created".into(),
        data: json!({"order": 42, "items": ["a", "b"], "note": "ünïcode"}),
        metadata: json!({}),
        idempotency_key: None,
        created_at: Utc::now(),
        trace: None,
    };
    Envelope {
        delivery_id: DeliveryId::generate(),
        event: Arc::new(event),
        attempt,
        trace: None,
    }
}

fn retryable_error(report: &AttemptReport) -> (&str, Option<Duration>) {
    match &report.result {
        Err(AttemptError::Retryable {
            reason: error,
            retry_after,
        }) => (error, *retry_after),
        other => panic!("expected a retryable outcome, got {other:?}"),
    }
}

#[tokio::test]
async fn a_delivery_arrives_in_the_standard_webhooks_format_signed_by_every_active_secret() {
    let receiver = Receiver::start().await;
    let current_secret = SigningSecret::generate();
    let rotated_out = SigningSecret::generate();
    let expired = SigningSecret::generate();
    let config = catalog()
        .validate(
            DestinationKind::Webhook,
            &json!({"url": receiver.url(), "headers": {"X-Team": "billing"}}),
            &Auth::None,
        )
        .unwrap();
    let dest = destination(
        config,
        Auth::None,
        vec![
            current(&current_secret),
            SigningKey {
                secret: rotated_out.clone(),
                expires_at: Some(Utc::now() + chrono::Duration::hours(1)),
            },
            SigningKey {
                secret: expired.clone(),
                expires_at: Some(Utc::now() - chrono::Duration::hours(1)),
            },
        ],
    );
    let deliverer = catalog().build(&dest).unwrap();
    let first = envelope(1);

    let report = deliverer.deliver(&first).await;
    assert_eq!(
        report.result,
        Ok(Delivered {
            receipt: Some(ferry_core::attempt::Receipt::of([("status", json!(200))]))
        })
    );
    assert_eq!(report.status_code, Some(200));
    let retry = Envelope {
        attempt: 2,
        ..first.clone()
    };
    assert!(deliverer.deliver(&retry).await.result.is_ok());

    let got = receiver.requests();
    assert_eq!(got.len(), 2);
    let event = &first.event;
    for (request, attempt) in got.iter().zip(["1", "2"]) {
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/hook");
        assert_eq!(
            request.json(),
            json!({
                "id": event.id.as_str(),
                "type": "order.created",
                "timestamp": serde_json::to_value(event.created_at).unwrap(),
                "data": event.data,
            })
        );
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(request.header("webhook-id"), Some(event.id.as_str()));
        assert_eq!(request.header("idempotency-key"), Some(event.id.as_str()));
        assert_eq!(
            request.header("ferry-delivery-id"),
            Some(first.delivery_id.as_str())
        );
        assert_eq!(request.header("ferry-attempt"), Some(attempt));
        assert_eq!(request.header("x-team"), Some("billing"));
        assert!(request.header("user-agent").unwrap().starts_with("ferry/"));
        let timestamp: i64 = request
            .header("webhook-timestamp")
            .unwrap()
            .parse()
            .unwrap();
        assert!((Utc::now().timestamp() - timestamp).abs() < 60);

        let signatures = request.header("webhook-signature").unwrap();
        assert_eq!(signatures.split(' ').count(), 2, "{signatures}");
        for secret in [&current_secret, &rotated_out] {
            let verifier = standardwebhooks::Webhook::new(secret.expose()).unwrap();
            verifier
                .verify(&request.body, &request.header_map())
                .unwrap();
        }
        let verifier = standardwebhooks::Webhook::new(expired.expose()).unwrap();
        assert!(
            verifier
                .verify(&request.body, &request.header_map())
                .is_err()
        );
    }
    assert_eq!(receiver.distinct_ids().len(), 1);

    // The attempt record shows exactly what was sent and what came back.
    let sent = report.request.unwrap();
    assert_eq!(sent.body.as_bytes(), &got[0].body[..]);
    assert_eq!(sent.headers["webhook-id"], event.id.as_str());
    assert_eq!(
        sent.headers["webhook-signature"],
        got[0].header("webhook-signature").unwrap()
    );
    assert_eq!(sent.headers["x-team"], "billing");
    let answer = report.response.unwrap();
    assert_eq!(answer.body, r#"{"ok":true}"#);
    assert_eq!(answer.headers["content-type"], "application/json");
}

#[tokio::test]
async fn server_errors_are_retryable_with_the_status() {
    let receiver = Receiver::start().await;
    receiver.set_behavior(Behavior::Status(503));
    let report = deliverer(&receiver.url()).deliver(&envelope(1)).await;
    assert_eq!(
        retryable_error(&report),
        ("HTTP 503 Service Unavailable", None)
    );
    assert_eq!(report.status_code, Some(503));
    assert!(report.response.is_some());
}

#[tokio::test]
async fn too_many_requests_honours_retry_after() {
    let receiver = Receiver::start().await;
    receiver.set_behavior(Behavior::RetryAfter {
        status: 429,
        seconds: 7,
        times: 1,
    });
    let deliverer = deliverer(&receiver.url());
    let report = deliverer.deliver(&envelope(1)).await;
    assert_eq!(report.status_code, Some(429));
    assert_eq!(retryable_error(&report).1, Some(Duration::from_secs(7)));
    assert!(deliverer.deliver(&envelope(2)).await.result.is_ok());
}

#[tokio::test]
async fn client_errors_and_redirects_are_permanent() {
    let receiver = Receiver::start().await;
    let deliverer = deliverer(&receiver.url());
    receiver.set_behavior(Behavior::Status(400));
    let report = deliverer.deliver(&envelope(1)).await;
    assert_eq!(
        report.result,
        Err(AttemptError::Permanent {
            reason: "HTTP 400 Bad Request".into()
        })
    );
    assert_eq!(report.status_code, Some(400));

    receiver.set_behavior(Behavior::Status(308));
    let report = deliverer.deliver(&envelope(1)).await;
    match report.result {
        Err(AttemptError::Permanent { reason: error }) => {
            assert!(error.contains("redirects are not followed"))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(receiver.count(), 2);
}

#[tokio::test]
async fn a_hanging_receiver_times_out_as_retryable() {
    let receiver = Receiver::start().await;
    receiver.set_behavior(Behavior::Hang);
    let deliverer = deliverer_with(&receiver.url(), json!({"timeout_ms": 200}), Auth::None);
    let report = deliverer.deliver(&envelope(1)).await;
    assert_eq!(retryable_error(&report), ("timed out after 200 ms", None));
    assert_eq!(report.status_code, None);
    assert!(report.request.is_some());
    assert!(report.response.is_none());
    assert_eq!(receiver.count(), 1);
}

#[tokio::test]
async fn a_closed_port_is_a_retryable_connection_refusal() {
    let url = format!("http://127.0.0.1:{}/hook", free_port());
    let report = deliverer(&url).deliver(&envelope(1)).await;
    assert_eq!(retryable_error(&report), ("connection refused", None));
    assert_eq!(report.status_code, None);
}

#[tokio::test]
async fn large_answers_are_captured_up_to_64_kib_and_never_read_whole() {
    let receiver = Receiver::start().await;
    receiver.set_behavior(Behavior::LargeBody(10 * 1024 * 1024));
    let deliverer = deliverer(&receiver.url());
    let report = deliverer.deliver(&envelope(1)).await;
    assert!(report.result.is_ok());
    assert_eq!(report.response.unwrap().body.len(), MAX_CAPTURED_BODY);

    // An endless body: reading it whole would never end (the deadline is a
    // guard against hanging, not a performance assertion).
    receiver.set_behavior(Behavior::LargeBody(usize::MAX));
    let report = tokio::time::timeout(Duration::from_secs(30), deliverer.deliver(&envelope(1)))
        .await
        .expect("the answer is read only up to the capture limit");
    assert!(report.result.is_ok());
    assert_eq!(report.response.unwrap().body.len(), MAX_CAPTURED_BODY);
}

#[tokio::test]
async fn auth_headers_arrive_and_are_redacted_in_the_attempt_record() {
    let receiver = Receiver::start().await;
    let cases = [
        (
            Auth::Bearer {
                token: Secret::new("tok-123".into()),
            },
            "authorization",
            "Bearer tok-123".to_owned(),
        ),
        (
            Auth::Basic {
                username: "ann".into(),
                password: Secret::new("pa:ss".into()),
            },
            "authorization",
            "Basic YW5uOnBhOnNz".to_owned(),
        ),
        (
            Auth::ApiKey {
                header: "X-Api-Key".into(),
                value: Secret::new("key-456".into()),
            },
            "x-api-key",
            "key-456".to_owned(),
        ),
    ];
    for (auth, header, expected) in cases {
        receiver.clear();
        let deliverer = deliverer_with(&receiver.url(), json!({}), auth);
        let report = deliverer.deliver(&envelope(1)).await;
        assert!(report.result.is_ok());
        assert_eq!(
            receiver.requests()[0].header(header),
            Some(expected.as_str())
        );
        let captured = report.request.unwrap();
        assert_eq!(captured.headers[header], "***");
        let shown = format!("{captured:?}");
        for secret in ["tok-123", "YW5uOnBhOnNz", "key-456"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}

#[tokio::test]
async fn check_sends_a_signed_test_event_and_needs_a_2xx() {
    let receiver = Receiver::start().await;
    let secret = SigningSecret::generate();
    let config = json!({"url": receiver.url(), "headers": {}, "timeout_ms": 5000});
    let deliverer = catalog()
        .build(&destination(config, Auth::None, vec![current(&secret)]))
        .unwrap();

    let report = deliverer.check().await;
    assert!(report.ok, "{}", report.message);
    assert!(
        report.message.starts_with("HTTP 200 OK in "),
        "{}",
        report.message
    );
    let ping = &receiver.requests()[0];
    assert_eq!(ping.json()["type"], "ferry.test");
    assert_eq!(ping.json()["data"], json!({}));
    let verifier = standardwebhooks::Webhook::new(secret.expose()).unwrap();
    verifier.verify(&ping.body, &ping.header_map()).unwrap();

    receiver.set_behavior(Behavior::Status(401));
    let report = deliverer.check().await;
    assert!(!report.ok);
    assert!(
        report.message.starts_with("HTTP 401 Unauthorized"),
        "{}",
        report.message
    );
}

#[tokio::test]
async fn check_fails_with_the_reason_when_nothing_listens() {
    let url = format!("http://127.0.0.1:{}/hook", free_port());
    let report = deliverer(&url).check().await;
    assert!(!report.ok);
    assert_eq!(report.message, "connection refused");
}

#[tokio::test]
async fn concurrent_deliveries_share_the_pooled_client() {
    let receiver = Receiver::start().await;
    receiver.set_behavior(Behavior::Delay(Duration::from_millis(20)));
    let deliverer = deliverer(&receiver.url());
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let deliverer = deliverer.clone();
            tokio::spawn(async move { deliverer.deliver(&envelope(1)).await.result })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap().is_ok());
    }
    receiver.wait_for_distinct(200, WAIT).await.unwrap();
}

#[test]
fn the_catalog_refuses_what_it_cannot_build() {
    let catalog = catalog();
    let kinds = catalog.kinds();
    assert!(kinds.contains(&DestinationKind::Webhook), "{kinds:?}");
    assert!(kinds.is_sorted_by_key(|k| k.as_str()), "{kinds:?}");
    assert!(catalog.adapter(DestinationKind::Webhook).is_some());
    let bad = destination(json!({"url": "ftp://example.com"}), Auth::None, vec![]);
    let error = catalog.build(&bad).err().unwrap();
    assert!(error.starts_with("config.url:"), "{error}");
    let errors = catalog
        .validate(DestinationKind::Webhook, &json!({}), &Auth::None)
        .unwrap_err();
    assert_eq!(errors[0].field, "config.url");
}

#[tokio::test]
async fn a_tls_failure_is_retryable_with_a_readable_reason() {
    let receiver = Receiver::start().await;
    let url = format!("https://{}/hook", receiver.addr());
    let report = deliverer(&url).deliver(&envelope(1)).await;
    let (error, _) = retryable_error(&report);
    assert!(error.starts_with("could not connect: "), "{error}");
    assert!(!error.contains("127.0.0.1"), "{error}");
}

#[tokio::test]
async fn a_connection_closed_without_an_answer_is_retryable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    let report = deliverer(&url).deliver(&envelope(1)).await;
    let (error, _) = retryable_error(&report);
    assert!(error.contains("connection"), "{error}");
}

// The SSRF guard (`allow_private_networks: false`, the default).

const HOW_TO_ALLOW: &str =
    "private networks are refused (set FERRY_ALLOW_PRIVATE_NETWORKS=true or allow a CIDR)";

fn guarded(allowed_cidrs: &[&str]) -> Catalog {
    Catalog::try_new(CatalogOptions {
        allowed_cidrs: allowed_cidrs.iter().map(|c| c.to_string()).collect(),
        ..CatalogOptions::default()
    })
    .unwrap()
}

/// The `config.url` error of creating a webhook to `url`.
fn url_error(catalog: &Catalog, url: &str) -> String {
    let errors = catalog
        .validate(
            DestinationKind::Webhook,
            &json!({ "url": url }),
            &Auth::None,
        )
        .unwrap_err();
    assert_eq!(errors.len(), 1, "{url}: {errors:?}");
    assert_eq!(errors[0].field, "config.url", "{url}");
    errors[0].message.clone()
}

/// A stored destination built without the creation check: what a name
/// that was public when created and now resolves elsewhere (DNS rebinding),
/// or a destination created under another policy, looks like.
fn stored(catalog: &Catalog, url: &str) -> Arc<dyn Deliverer> {
    let config = json!({"url": url, "headers": {}, "timeout_ms": 5000});
    catalog
        .build(&destination(config, Auth::None, vec![]))
        .unwrap()
}

fn permanent_error(report: &AttemptReport) -> &str {
    match &report.result {
        Err(AttemptError::Permanent { reason: error }) => error,
        other => panic!("expected a permanent outcome, got {other:?}"),
    }
}

#[test]
fn the_guard_refuses_private_targets_at_creation_with_a_clear_error() {
    let catalog = guarded(&[]);
    let cases = [
        ("http://127.0.0.1", "127.0.0.1 is a loopback address"),
        ("http://[::1]/hook", "::1 is a loopback address"),
        ("http://10.0.0.1", "10.0.0.1 is a private address"),
        (
            "http://169.254.169.254/latest/meta-data/",
            "169.254.169.254 is a link-local address (the cloud metadata service)",
        ),
        ("http://localhost:1234", "localhost is a loopback name"),
        ("http://LOCALHOST.:1234", "localhost. is a loopback name"),
        ("https://api.localhost/", "api.localhost is a loopback name"),
        (
            "http://[::ffff:127.0.0.1]",
            "::ffff:127.0.0.1 embeds 127.0.0.1, which is a loopback address",
        ),
        ("http://2130706433/", "127.0.0.1 is a loopback address"),
        (
            "http://192.168.1.10:8080/",
            "192.168.1.10 is a private address",
        ),
        ("http://[fd00::1]/", "fd00::1 is a unique-local address"),
        ("http://[fe80::1]/", "fe80::1 is a link-local address"),
        (
            "http://100.64.0.1/",
            "100.64.0.1 is a carrier-grade NAT (shared) address",
        ),
        ("http://0.0.0.0:80/", "0.0.0.0 is the unspecified address"),
    ];
    for (url, reason) in cases {
        assert_eq!(
            url_error(&catalog, url),
            format!("{reason}; {HOW_TO_ALLOW}"),
            "{url}"
        );
    }
    // Other names are checked when they are looked up, at connect time.
    for url in [
        "https://example.com/hook",
        "http://8.8.8.8/",
        "http://hooks.internal/",
    ] {
        assert!(
            catalog
                .validate(
                    DestinationKind::Webhook,
                    &json!({ "url": url }),
                    &Auth::None
                )
                .is_ok(),
            "{url}"
        );
    }
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_at_delivery_as_permanent() {
    let receiver = Receiver::start().await;
    let catalog = guarded(&[]);
    let url = format!("http://localhost:{}/hook", receiver.addr().port());
    let deliverer = stored(&catalog, &url);

    let report = deliverer.deliver(&envelope(1)).await;
    let error = permanent_error(&report);
    assert!(
        error.starts_with("localhost resolves only to private addresses (")
            && error.contains("127.0.0.1")
            && error.ends_with(&format!("): refused; {HOW_TO_ALLOW}")),
        "{error}"
    );
    assert_eq!(report.status_code, None);

    let check = deliverer.check().await;
    assert!(!check.ok);
    assert_eq!(check.message, error);
    assert_eq!(receiver.count(), 0);
}

#[tokio::test]
async fn a_refused_ip_literal_is_refused_at_delivery_as_permanent() {
    // reqwest connects to IP literals without a lookup: the deliverer
    // checks them itself.
    let receiver = Receiver::start().await;
    let catalog = guarded(&[]);
    let deliverer = stored(&catalog, &receiver.url());
    let report = deliverer.deliver(&envelope(1)).await;
    assert_eq!(
        permanent_error(&report),
        format!("127.0.0.1 is a loopback address; {HOW_TO_ALLOW}")
    );
    assert!(report.request.is_none(), "nothing was sent");
    let check = deliverer.check().await;
    assert!(!check.ok);
    assert!(
        check.message.starts_with("127.0.0.1 is a loopback address"),
        "{}",
        check.message
    );

    let mapped = format!("http://[::ffff:127.0.0.1]:{}/hook", receiver.addr().port());
    let report = stored(&catalog, &mapped).deliver(&envelope(1)).await;
    assert!(permanent_error(&report).contains("embeds 127.0.0.1"));
    assert_eq!(receiver.count(), 0);
}

#[tokio::test]
async fn an_allowed_cidr_reaches_a_loopback_receiver() {
    let receiver = Receiver::start().await;
    let catalog = guarded(&["127.0.0.0/8"]);
    let by_name = format!("http://localhost:{}/hook", receiver.addr().port());
    for url in [receiver.url(), by_name] {
        let config = catalog
            .validate(
                DestinationKind::Webhook,
                &json!({ "url": url }),
                &Auth::None,
            )
            .unwrap();
        let deliverer = catalog
            .build(&destination(config, Auth::None, vec![]))
            .unwrap();
        let report = deliverer.deliver(&envelope(1)).await;
        assert!(report.result.is_ok(), "{url}: {report:?}");
        assert!(deliverer.check().await.ok, "{url}");
    }
    assert_eq!(receiver.count(), 4);
    // Only the allowed network: IPv6 loopback and the rest stay refused.
    assert!(url_error(&catalog, "http://[::1]/").starts_with("::1 is a loopback address"));
    assert!(url_error(&catalog, "http://10.0.0.1/").starts_with("10.0.0.1 is a private"));
}

#[test]
fn allowing_private_networks_allows_every_target() {
    let catalog = catalog();
    for url in [
        "http://127.0.0.1",
        "http://[::1]",
        "http://10.0.0.1",
        "http://169.254.169.254",
        "http://localhost:1234",
        "http://[::ffff:127.0.0.1]",
    ] {
        assert!(
            catalog
                .validate(
                    DestinationKind::Webhook,
                    &json!({ "url": url }),
                    &Auth::None
                )
                .is_ok(),
            "{url}"
        );
    }
}

#[test]
fn invalid_allowed_cidrs_are_refused_and_new_fails_closed() {
    let options = CatalogOptions {
        allow_private_networks: true,
        allowed_cidrs: vec!["10.0.0.0/8".into(), "nope".into(), "10.1.2.3/8".into()],
        ..CatalogOptions::default()
    };
    let error = Catalog::try_new(options.clone()).unwrap_err();
    assert!(
        error.starts_with("allowed CIDRs: `nope` is not a CIDR"),
        "{error}"
    );
    assert!(error.contains("did you mean 10.0.0.0/8?"), "{error}");
    assert_eq!(
        ferry_destinations::parse_cidrs(&options.allowed_cidrs).unwrap_err(),
        error
    );
    // `new` never panics: it logs and refuses every private address.
    let catalog = Catalog::new(options);
    assert!(url_error(&catalog, "http://127.0.0.1/").starts_with("127.0.0.1 is a loopback"));
    assert!(url_error(&catalog, "http://10.0.0.1/").starts_with("10.0.0.1 is a private"));
}
