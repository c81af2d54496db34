//! The `s3` kind against moto's server: what is particular to objects
//! (attributes, multipart uploads, a missing bucket) and the credentials
//! of the standard provider chain's profile files.

use ferry_core::destination::{Auth, DestinationKind};
use ferry_core::ports::{AttemptError, DestinationAdapter};
use ferry_destinations::s3::{AwsEnvironment, S3Adapter};
use ferry_destinations::{CatalogOptions, NetworkPolicy};
use ferry_testkit::services::S3Server;
use serde_json::{Value, json};

use crate::compliance::s3::access_key;
use crate::compliance::{
    check_and_deliver, deliverer, envelope, expected_payload, sha256_hex, stored,
};

fn bucket() -> String {
    format!("ferry-{}", ferry_core::ids::unique_token())
}

#[tokio::test]
async fn a_missing_bucket_is_permanent_and_fails_the_check() {
    let server = S3Server::start();
    let config = json!({"endpoint": server.endpoint(), "bucket": "ferry-no-such-bucket"});
    let deliverer = deliverer(DestinationKind::S3, &config, &access_key());
    let report = deliverer.deliver(&envelope(1, 1)).await;
    match report.result {
        Err(AttemptError::Permanent { reason: error }) => assert!(
            error.starts_with("bucket ferry-no-such-bucket does not exist (HTTP 404)"),
            "{error}"
        ),
        other => panic!("expected a permanent failure, got {other:?}"),
    }
    let check = deliverer.check().await;
    assert!(!check.ok);
    assert!(
        check.message.contains("does not exist"),
        "{}",
        check.message
    );
}

#[tokio::test]
async fn an_object_over_16_mib_goes_up_in_parts_and_arrives_whole() {
    let server = S3Server::start();
    let bucket = bucket();
    server.create_bucket(&bucket);
    let config = json!({"endpoint": server.endpoint(), "bucket": bucket, "key": "{id}.json"});
    let deliverer = deliverer(DestinationKind::S3, &config, &access_key());
    let mut large = envelope(1, 1);
    let event = std::sync::Arc::make_mut(&mut large.event);
    event.data = json!({"blob": "x".repeat(17 * 1024 * 1024)});
    let report = deliverer.deliver(&large).await;
    assert!(report.result.is_ok(), "{:?}", report.result);

    let objects = server.objects(&bucket);
    assert_eq!(objects.len(), 1);
    let body = ferry_destinations::message::Payload::of(&large.event).to_bytes();
    assert_eq!(objects[0].size, body.len() as u64);
    assert_eq!(objects[0].sha256, sha256_hex(&body));
    // A multipart upload's ETag ends in `-<number of parts>`: 8 + 8 + 1 MiB.
    assert!(objects[0].etag.ends_with("-3"), "{}", objects[0].etag);
}

#[tokio::test]
async fn objects_carry_the_configured_attributes_and_the_event_metadata() {
    let server = S3Server::start();
    let bucket = bucket();
    server.create_bucket(&bucket);
    let config = json!({
        "endpoint": server.endpoint(),
        "bucket": bucket,
        "key": "{org}/{date}/{id}.json",
        "content_type": "application/vnd.ferry+json",
        "storage_class": "STANDARD_IA",
        "sse": "AES256",
    });
    let deliverer = deliverer(DestinationKind::S3, &config, &access_key());
    let sent = envelope(2, 3);
    let report = check_and_deliver(deliverer.as_ref(), &sent).await;

    let objects = server.objects(&bucket);
    assert_eq!(objects.len(), 1);
    let object = &objects[0];
    let event = &sent.event;
    assert_eq!(
        object.key,
        format!(
            "{}/{}/{}.json",
            event.org_id,
            event.created_at.format("%Y-%m-%d"),
            event.id
        )
    );
    assert_eq!(
        object.content_type.as_deref(),
        Some("application/vnd.ferry+json")
    );
    assert_eq!(object.storage_class.as_deref(), Some("STANDARD_IA"));
    assert_eq!(object.server_side_encryption.as_deref(), Some("AES256"));
    assert_eq!(object.metadata["webhook-id"], event.id.as_str());
    assert_eq!(object.metadata["idempotency-key"], event.id.as_str());
    assert_eq!(object.metadata["ferry-attempt"], "3");
    let body: serde_json::Value = serde_json::from_str(object.body.as_deref().unwrap()).unwrap();
    assert_eq!(body, expected_payload(&sent));
    let captured = report.request.unwrap();
    assert_eq!(captured.headers["key"], object.key);
    assert!(!format!("{captured:?}").contains("ferry-test-secret"));
}

#[tokio::test]
async fn nothing_listening_is_a_retryable_connection_refusal() {
    let endpoint = format!("http://127.0.0.1:{}", ferry_testkit::free_port());
    let config = json!({"endpoint": endpoint, "bucket": "ferry-any"});
    let deliverer = deliverer(DestinationKind::S3, &config, &access_key());
    match deliverer.deliver(&envelope(1, 1)).await.result {
        Err(AttemptError::Retryable { reason: error, .. }) => {
            assert_eq!(error, "connection refused")
        }
        other => panic!("expected a retryable failure, got {other:?}"),
    }
}

/// The kind with a provider chain that sees only `vars` and a home
/// directory.
fn chain_adapter(home: &std::path::Path, vars: &[(&str, &str)]) -> S3Adapter {
    let home = ("HOME", home.to_str().unwrap());
    let environment = AwsEnvironment::from_vars(vars.iter().copied().chain([home]));
    S3Adapter::with_environment(
        &CatalogOptions::default(),
        NetworkPolicy::allow_all(),
        environment,
    )
}

fn build(
    adapter: &S3Adapter,
    config: &Value,
) -> Result<std::sync::Arc<dyn ferry_core::ports::Deliverer>, String> {
    let config = adapter.validate(config, &Auth::None).unwrap();
    adapter.build(&stored(DestinationKind::S3, config, &Auth::None))
}

/// Why `build` refused the destination.
fn build_error(adapter: &S3Adapter, config: &Value) -> String {
    match build(adapter, config) {
        Ok(_) => panic!("the destination built"),
        Err(error) => error,
    }
}

#[tokio::test]
async fn without_auth_a_profile_file_alone_gives_the_credentials_and_region() {
    // The server takes only its IAM user's key: the one in `[archive]`.
    let server = S3Server::start_with_iam();
    let (id, secret) = server.access_key().unwrap();
    let bucket = bucket();
    server.create_bucket(&bucket);
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".aws")).unwrap();
    std::fs::write(
        home.path().join(".aws/credentials"),
        format!(
            "[default]\naws_access_key_id = AKIAUNKNOWN\naws_secret_access_key = unknown\n\
             [archive]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        home.path().join(".aws/config"),
        "[profile archive]\nregion = eu-west-1\n",
    )
    .unwrap();
    let config = json!({"endpoint": server.endpoint(), "bucket": bucket, "key": "{id}.json"});

    let archive = chain_adapter(home.path(), &[("AWS_PROFILE", "archive")]);
    let sent = envelope(1, 1);
    check_and_deliver(build(&archive, &config).unwrap().as_ref(), &sent).await;
    let objects = server.objects(&bucket);
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0].key, format!("{}.json", sent.event.id));

    // The default profile's key is refused: the chosen profile is the one
    // whose key was sent.
    let default = build(&chain_adapter(home.path(), &[]), &config).unwrap();
    match default.deliver(&envelope(2, 1)).await.result {
        Err(AttemptError::Permanent { reason: error }) => assert!(
            error.starts_with("access denied to bucket") && error.contains("InvalidAccessKeyId"),
            "{error}"
        ),
        other => panic!("expected a permanent failure, got {other:?}"),
    }
    assert_eq!(server.objects(&bucket).len(), 1);
}

#[tokio::test]
async fn a_missing_profile_or_a_malformed_file_fails_the_build_clearly() {
    let server = S3Server::start();
    let config = json!({"endpoint": server.endpoint(), "bucket": "ferry-any"});
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".aws")).unwrap();
    let credentials = home.path().join(".aws/credentials");
    std::fs::write(
        &credentials,
        "[default]\naws_access_key_id = AKIA\naws_secret_access_key = s\n",
    )
    .unwrap();
    let error = build_error(
        &chain_adapter(home.path(), &[("AWS_PROFILE", "prod")]),
        &config,
    );
    assert_eq!(
        error,
        format!(
            "AWS_PROFILE names the profile `prod`, which neither {} nor {} has",
            credentials.display(),
            home.path().join(".aws/config").display()
        )
    );
    std::fs::write(&credentials, "[default\naws_secret_access_key = s3cr3t\n").unwrap();
    let error = build_error(&chain_adapter(home.path(), &[]), &config);
    assert!(
        error.ends_with("is malformed: line 1: a section name lacks its `]`"),
        "{error}"
    );
    assert!(!error.contains("s3cr3t"));
}
