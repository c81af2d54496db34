//! The `sftp` kind against OpenSSH's sshd: atomic uploads, key auth, host
//! key pinning and a missing directory.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ferry_core::destination::{Auth, DestinationKind};
use ferry_core::ports::{AttemptError, Outcome};
use ferry_core::secret::Secret;
use ferry_testkit::services::{SFTP_PASSWORD, SFTP_USER, SftpServer};
use serde_json::{Value, json};

use crate::compliance::sftp::{events_in, password};
use crate::compliance::{deliverer, envelope, expected_payload};

fn config(server: &SftpServer, dir: &std::path::Path) -> Value {
    json!({
        "host": "127.0.0.1",
        "port": server.port(),
        "directory": dir,
        "host_key_fingerprint": server.host_key_fingerprint(),
    })
}

fn permanent(outcome: Outcome) -> String {
    match outcome {
        Err(AttemptError::Permanent { reason: error }) => error,
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_reader_never_observes_a_partial_file() {
    let server = SftpServer::start();
    let dir = server.directory();
    let deliverer = deliverer(
        DestinationKind::Sftp,
        &config(&server, dir.path()),
        &password(SFTP_PASSWORD),
    );
    // Bodies of 2 MiB take many SFTP writes each: a reader polling the
    // directory meanwhile would catch a partial file if one were visible.
    let envelopes: Vec<_> = (0..8)
        .map(|n| {
            let mut envelope = envelope(n, 1);
            Arc::make_mut(&mut envelope.event).data = json!({"n": n, "blob": "y".repeat(2 << 20)});
            envelope
        })
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (done, path) = (Arc::clone(&done), dir.path().to_owned());
        std::thread::spawn(move || {
            let mut reads = 0usize;
            // One last pass after the uploads ended, however busy the
            // machine kept this thread meanwhile.
            loop {
                let finished = done.load(Ordering::SeqCst);
                for (name, bytes) in events_in(&path) {
                    let parsed: Result<Value, _> = serde_json::from_slice(&bytes);
                    assert!(
                        parsed.is_ok(),
                        "{name} was visible before it was complete ({} bytes)",
                        bytes.len()
                    );
                    reads += 1;
                }
                if finished {
                    break;
                }
            }
            reads
        })
    };
    let tasks: Vec<_> = envelopes
        .iter()
        .cloned()
        .map(|envelope| {
            let deliverer = deliverer.clone();
            tokio::spawn(async move { deliverer.deliver(&envelope).await.result })
        })
        .collect();
    for task in tasks {
        let outcome = task.await.unwrap();
        assert!(outcome.is_ok(), "{outcome:?}");
    }
    done.store(true, Ordering::SeqCst);
    let reads = reader.join().expect("the reader saw only whole files");
    assert!(reads > 0, "the reader never saw a file");
    let files = events_in(dir.path());
    assert_eq!(files.len(), envelopes.len());
    for envelope in &envelopes {
        let (_, bytes) = files
            .iter()
            .find(|(name, _)| *name == format!("{}.json", envelope.event.id))
            .expect("every event has its file");
        assert_eq!(
            serde_json::from_slice::<Value>(bytes).unwrap(),
            expected_payload(envelope)
        );
    }
    // No temporary file is left behind.
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        envelopes.len()
    );
}

#[tokio::test]
async fn a_private_key_logs_in_and_templates_make_subdirectories() {
    let server = SftpServer::start();
    let dir = server.directory();
    let auth = Auth::PrivateKey {
        username: SFTP_USER.into(),
        private_key: Secret::new(server.private_key()),
        passphrase: None,
    };
    let mut config = config(&server, dir.path());
    config["file_name"] = json!("{date}/{type}/{id}.json");
    let deliverer = deliverer(DestinationKind::Sftp, &config, &auth);
    let check = deliverer.check().await;
    assert!(check.ok, "{}", check.message);
    assert!(
        check.message.contains(server.host_key_fingerprint()),
        "{}",
        check.message
    );

    let event = envelope(1, 1);
    let report = deliverer.deliver(&event).await;
    assert!(report.result.is_ok(), "{:?}", report.result);
    let sub = dir
        .path()
        .join(event.event.created_at.format("%Y-%m-%d").to_string())
        .join(&event.event.event_type);
    let written = std::fs::read(sub.join(format!("{}.json", event.event.id))).unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&written).unwrap(),
        expected_payload(&event)
    );
    assert!(!format!("{:?}", report.request).contains("OPENSSH PRIVATE KEY"));
}

#[tokio::test]
async fn an_unknown_host_key_is_refused_unless_trusted_on_first_use() {
    let server = SftpServer::start();
    let dir = server.directory();
    let mut pinned = config(&server, dir.path());
    pinned["host_key_fingerprint"] = json!("SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    let refused = deliverer(DestinationKind::Sftp, &pinned, &password(SFTP_PASSWORD));
    let error = permanent(refused.deliver(&envelope(1, 1)).await.result);
    assert!(
        error.starts_with(&format!(
            "the server's host key {} does not match the pinned host_key_fingerprint",
            server.host_key_fingerprint()
        )),
        "{error}"
    );
    assert!(!refused.check().await.ok);

    let mut tofu = config(&server, dir.path());
    tofu.as_object_mut().unwrap().remove("host_key_fingerprint");
    tofu["trust_on_first_use"] = json!(true);
    let trusting = deliverer(DestinationKind::Sftp, &tofu, &password(SFTP_PASSWORD));
    let check = trusting.check().await;
    assert!(check.ok, "{}", check.message);
    assert!(
        check.message.contains(server.host_key_fingerprint()),
        "{}",
        check.message
    );
    let outcome = trusting.deliver(&envelope(2, 1)).await.result;
    assert!(outcome.is_ok(), "{outcome:?}");
    assert_eq!(events_in(dir.path()).len(), 1);
}

#[tokio::test]
async fn a_missing_directory_is_permanent_and_fails_the_check() {
    let server = SftpServer::start();
    let dir = server.directory();
    let missing = dir.path().join("missing");
    let deliverer = deliverer(
        DestinationKind::Sftp,
        &config(&server, &missing),
        &password(SFTP_PASSWORD),
    );
    let error = permanent(deliverer.deliver(&envelope(1, 1)).await.result);
    assert_eq!(
        error,
        format!(
            "directory {} does not exist on the server",
            missing.display()
        )
    );
    let check = deliverer.check().await;
    assert!(!check.ok);
    assert!(
        check.message.contains("no such file or directory"),
        "{}",
        check.message
    );
}

#[tokio::test]
async fn nothing_listening_is_a_retryable_connection_refusal() {
    let config = json!({
        "host": "127.0.0.1",
        "port": ferry_testkit::free_port(),
        "directory": "/tmp",
        "trust_on_first_use": true,
    });
    let deliverer = deliverer(DestinationKind::Sftp, &config, &password(SFTP_PASSWORD));
    match deliverer.deliver(&envelope(1, 1)).await.result {
        Err(AttemptError::Retryable { reason: error, .. }) => {
            assert_eq!(error, "could not connect: connection refused");
        }
        other => panic!("expected a retryable failure, got {other:?}"),
    }
    // Within the reconnect backoff the same failure comes back at once.
    let check = deliverer.check().await;
    assert_eq!(check.message, "could not connect: connection refused");
}
