use ferry_core::destination::Auth;
use ferry_core::ports::AttemptError;
use ferry_core::secret::Secret;
use serde_json::{Value, json};

use super::classify;
use super::*;
use crate::kind_config::KindConfig;
use crate::net_guard::NetworkPolicy;

const FINGERPRINT: &str = "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s";

fn password() -> Auth {
    Auth::Password {
        username: "ferry".into(),
        password: Secret::new("pw-secret".into()),
    }
}

fn fields(config: Value, auth: &Auth) -> Vec<(String, String)> {
    SftpConfig::validate(&config, auth, &NetworkPolicy::allow_all())
        .unwrap_err()
        .into_iter()
        .map(|e| (e.field, e.message))
        .collect()
}

#[test]
fn defaults_are_filled_in() {
    let config = SftpConfig::validate(
        &json!({"host": "files.example.com", "directory": "/in/", "host_key_fingerprint": FINGERPRINT}),
        &password(),
        &NetworkPolicy::default(),
    )
    .unwrap();
    assert_eq!(
        config,
        json!({
            "host": "files.example.com",
            "port": 22,
            "directory": "/in",
            "file_name": "{id}.json",
            "host_key_fingerprint": FINGERPRINT,
            "trust_on_first_use": false,
            "timeout_ms": 30000,
        })
    );
}

#[test]
fn a_host_key_is_pinned_or_trusted_on_first_use() {
    let found = fields(
        json!({"host": "h.example", "directory": "/in"}),
        &password(),
    );
    assert_eq!(found[0].0, "config.host_key_fingerprint");
    assert!(found[0].1.contains("trust_on_first_use"), "{found:?}");
    let found = fields(
        json!({"host": "h.example", "directory": "/in", "host_key_fingerprint": "MD5:aa:bb"}),
        &password(),
    );
    assert!(found[0].1.contains("SHA256:<base64>"), "{found:?}");
    assert!(
        SftpConfig::validate(
            &json!({"host": "h.example", "directory": "/in", "trust_on_first_use": true}),
            &password(),
            &NetworkPolicy::allow_all()
        )
        .is_ok()
    );
}

#[test]
fn every_bad_field_is_named() {
    let found = fields(
        json!({
            "host": "bad host",
            "port": 0,
            "directory": "in/../x",
            "file_name": "static.json",
            "trust_on_first_use": "yes",
            "mode": 644,
        }),
        &password(),
    );
    let names: Vec<_> = found.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        names,
        [
            "config.mode",
            "config.host",
            "config.port",
            "config.directory",
            "config.file_name",
            "config.trust_on_first_use",
        ],
        "{found:?}"
    );
}

#[test]
fn auth_is_a_password_or_a_readable_private_key() {
    let config = json!({"host": "h.example", "directory": "/in", "trust_on_first_use": true});
    let found = fields(config.clone(), &Auth::None);
    assert_eq!(found[0].0, "auth.type");
    assert!(found[0].1.contains("password or private_key"));
    let garbage = Auth::PrivateKey {
        username: "ferry".into(),
        private_key: Secret::new("-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-key\n".into()),
        passphrase: None,
    };
    let found = fields(config, &garbage);
    assert_eq!(found[0].0, "auth.private_key");
    assert!(!found[0].1.contains("not-a-key"), "{found:?}");
}

#[test]
fn the_guard_refuses_private_hosts_at_creation() {
    for host in ["127.0.0.1", "10.1.2.3", "localhost", "[::1]"] {
        let errors = SftpConfig::validate(
            &json!({"host": host, "directory": "/in", "trust_on_first_use": true}),
            &password(),
            &NetworkPolicy::default(),
        )
        .unwrap_err();
        assert_eq!(errors[0].field, "config.host", "{host}");
        assert!(
            errors[0].message.contains("private networks are refused"),
            "{host}: {errors:?}"
        );
    }
}

#[test]
fn failures_say_what_a_retry_can_fix() {
    let error = classify::host_key(Some(FINGERPRINT), true);
    assert!(
        matches!(error, AttemptError::Permanent { ref reason } if reason.contains("does not match the pinned"))
    );
    let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
    assert_eq!(
        classify::io("could not connect", &refused),
        AttemptError::Retryable {
            reason: "could not connect: connection refused".into(),
            retry_after: None
        }
    );
}
