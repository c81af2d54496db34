use ferry_core::destination::Auth;
use ferry_core::ports::AttemptError;
use ferry_core::secret::Secret;
use serde_json::{Value, json};

use super::*;
use crate::kind_config::KindConfig;
use crate::net_guard::NetworkPolicy;

fn keys() -> Auth {
    Auth::AccessKey {
        access_key_id: "AKIAEXAMPLE".into(),
        secret_access_key: Secret::new("s3cr3t".into()),
        session_token: None,
    }
}

fn errors(config: Value, auth: &Auth) -> Vec<(String, String)> {
    S3Config::validate(&config, auth, &NetworkPolicy::allow_all())
        .unwrap_err()
        .into_iter()
        .map(|e| (e.field, e.message))
        .collect()
}

#[test]
fn defaults_are_filled_in() {
    let config = S3Config::validate(
        &json!({"bucket": "acme-events"}),
        &Auth::None,
        &NetworkPolicy::default(),
    )
    .unwrap();
    // Without auth the provider chain gives the region.
    assert_eq!(
        config,
        json!({
            "bucket": "acme-events",
            "key": DEFAULT_KEY,
            "content_type": "application/json",
            "timeout_ms": 30000,
        })
    );
    let config = S3Config::validate(
        &json!({"bucket": "b12", "endpoint": "http://127.0.0.1:9000/", "sse": "aws:kms:key-1", "storage_class": "STANDARD_IA"}),
        &keys(),
        &NetworkPolicy::allow_all(),
    )
    .unwrap();
    assert_eq!(config["endpoint"], "http://127.0.0.1:9000");
    assert_eq!(
        config["region"], DEFAULT_REGION,
        "an access key's default region"
    );
    assert_eq!(config["sse"], "aws:kms:key-1");
}

#[test]
fn every_bad_field_is_named() {
    let found = errors(
        json!({
            "bucket": "Bad_Bucket",
            "endpoint": "ftp://store",
            "key": "fixed.json",
            "region": "eu west",
            "sse": "rot13",
            "storage_class": "cold",
            "content_type": "json",
            "timeout_ms": 0,
            "acl": "public-read",
        }),
        &keys(),
    );
    let fields: Vec<_> = found.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        [
            "config.acl",
            "config.endpoint",
            "config.region",
            "config.bucket",
            "config.key",
            "config.content_type",
            "config.storage_class",
            "config.sse",
            "config.timeout_ms",
        ],
        "{found:?}"
    );
    assert!(found[4].1.contains("must contain {id}"), "{found:?}");
    let missing = errors(json!({}), &keys());
    assert_eq!(
        missing,
        [("config.bucket".to_owned(), "is required".to_owned())]
    );
    for (key, needle) in [
        ("{id}//x", "not a valid key"),
        ("../{id}", "not a valid key"),
    ] {
        let found = errors(json!({"bucket": "abc", "key": key}), &keys());
        assert!(found[0].1.contains(needle), "{key}: {found:?}");
    }
}

#[test]
fn auth_is_access_key_or_none_and_secrets_stay_out_of_errors() {
    let wrong = Auth::Bearer {
        token: Secret::new("tok-secret".into()),
    };
    let found = errors(json!({"bucket": "abc"}), &wrong);
    assert_eq!(found[0].0, "auth.type");
    assert!(found[0].1.contains("access_key"));
    let empty = Auth::AccessKey {
        access_key_id: String::new(),
        secret_access_key: Secret::new(String::new()),
        session_token: None,
    };
    let fields: Vec<_> = errors(json!({"bucket": "abc"}), &empty)
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    assert_eq!(fields, ["auth.access_key_id", "auth.secret_access_key"]);
}

#[test]
fn the_guard_refuses_private_endpoints_at_creation() {
    let policy = NetworkPolicy::default();
    for endpoint in [
        "http://127.0.0.1:9000",
        "http://localhost:9000",
        "http://169.254.169.254",
    ] {
        let found = S3Config::validate(
            &json!({"bucket": "abc", "endpoint": endpoint}),
            &keys(),
            &policy,
        )
        .unwrap_err();
        assert_eq!(found[0].field, "config.endpoint");
        assert!(
            found[0].message.contains("private networks are refused"),
            "{endpoint}: {found:?}"
        );
    }
}

fn generic(text: &str) -> object_store::Error {
    object_store::Error::Generic {
        store: "S3",
        source: text.into(),
    }
}

#[test]
fn errors_are_classified_by_what_a_retry_can_fix() {
    let not_found = object_store::Error::NotFound {
        path: "k".into(),
        source: "Server returned non-2xx status code: 404 Not Found: <Error><Code>NoSuchBucket</Code></Error>".into(),
    };
    assert_eq!(
        classify(&not_found, "acme"),
        AttemptError::permanent("bucket acme does not exist (HTTP 404) (NoSuchBucket)")
    );
    let denied = object_store::Error::PermissionDenied {
        path: "k".into(),
        source: "<Code>InvalidAccessKeyId</Code>".into(),
    };
    assert!(
        matches!(classify(&denied, "acme"), AttemptError::Permanent { reason } if reason.starts_with("access denied to bucket acme") && reason.ends_with("(InvalidAccessKeyId)"))
    );
    for (text, retryable) in [
        (
            "Server returned non-2xx status code: 503 Service Unavailable: <Code>SlowDown</Code>",
            true,
        ),
        (
            "Server returned non-2xx status code: 500 Internal Server Error: ",
            true,
        ),
        (
            "Server returned non-2xx status code: 429 Too Many Requests: ",
            true,
        ),
        (
            "Server returned non-2xx status code: 400 Bad Request: <Code>InvalidStorageClass</Code>",
            false,
        ),
        ("something unexpected", true),
    ] {
        let error = classify(&generic(text), "acme");
        assert_eq!(!error.is_permanent(), retryable, "{text}: {error:?}");
    }
    match classify(
        &generic(
            "Server returned non-2xx status code: 400 Bad Request: <Code>InvalidStorageClass</Code>",
        ),
        "acme",
    ) {
        AttemptError::Permanent { reason } => assert_eq!(
            reason,
            "S3 refused the object (HTTP 400) (InvalidStorageClass)"
        ),
        other => panic!("{other:?}"),
    }
}
