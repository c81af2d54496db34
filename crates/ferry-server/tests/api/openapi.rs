//! The OpenAPI document: generated from the code, it names every route of
//! API.md with its schemas, and `/docs` serves its reference page with the
//! script embedded in the binary.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{ADMIN_KEY, TestServer};

/// Every operation of API.md's stable core.
const OPERATIONS: &[(&str, &str)] = &[
    ("post", "/v1/events"),
    ("post", "/v1/events/batch"),
    ("get", "/v1/events/{id}"),
    ("post", "/v1/events/{id}/replay"),
    ("get", "/v1/deliveries"),
    ("get", "/v1/deliveries/{id}"),
    ("post", "/v1/deliveries/{id}/retry"),
    ("get", "/v1/dlq"),
    ("post", "/v1/dlq/replay"),
    ("post", "/v1/destinations"),
    ("get", "/v1/destinations"),
    ("get", "/v1/destinations/{id}"),
    ("patch", "/v1/destinations/{id}"),
    ("delete", "/v1/destinations/{id}"),
    ("post", "/v1/destinations/{id}/test"),
    ("post", "/v1/destinations/{id}/rotate-secret"),
    ("post", "/v1/destinations/{id}/enable"),
    ("post", "/v1/destinations/{id}/disable"),
    ("get", "/v1/destinations/{id}/health"),
    ("post", "/v1/orgs"),
    ("get", "/v1/orgs"),
    ("get", "/v1/orgs/{id}"),
    ("patch", "/v1/orgs/{id}"),
    ("post", "/v1/api-keys"),
    ("get", "/v1/api-keys"),
    ("delete", "/v1/api-keys/{id}"),
    ("post", "/v1/sources"),
    ("get", "/v1/sources"),
    ("get", "/v1/sources/{id}"),
    ("delete", "/v1/sources/{id}"),
    ("post", "/in/{id}"),
    ("get", "/v1/audit"),
    ("post", "/v1/admin/rotate-master-key"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
];

async fn document(server: &TestServer, path: &str) -> Value {
    let response = server
        .http
        .get(format!("{}{path}", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_document_names_every_route_with_its_schemas_and_errors() {
    let server = TestServer::start().await;
    let doc = document(&server, "/openapi.json").await;
    assert_eq!(doc, document(&server, "/v1/openapi.json").await);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let mut ids = std::collections::HashSet::<String>::new();
    for (method, path) in OPERATIONS {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is not in the document");
        assert!(op["summary"].is_string(), "{method} {path} has no summary");
        let id = op["operationId"].as_str().unwrap();
        assert!(ids.insert(id.to_owned()), "operationId {id} twice");
        let responses = op["responses"].as_object().unwrap();
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{method} {path} documents no success"
        );
        if path.starts_with("/v1/") {
            assert_eq!(
                op["security"][0]["bearer"],
                serde_json::json!([]),
                "{method} {path}"
            );
            for status in ["401", "403", "404", "503"] {
                assert!(
                    responses.contains_key(status),
                    "{method} {path} does not document {status}"
                );
            }
        }
    }
    let documented: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    assert_eq!(
        documented,
        OPERATIONS.len(),
        "an operation is missing from the list above"
    );

    let schemas = &doc["components"]["schemas"];
    for name in [
        "Accepted",
        "DeliveryDetail",
        "DestinationView",
        "ErrorBody",
        "SourceView",
    ] {
        assert!(schemas[name].is_object(), "no schema {name}");
    }
    let status = &schemas["DeliveryStatus"]["enum"];
    assert_eq!(
        status,
        &serde_json::json!([
            "pending",
            "delivering",
            "retrying",
            "delivered",
            "failed",
            "dead"
        ])
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

#[tokio::test]
async fn docs_is_a_reference_page_with_an_embedded_script() {
    let server = TestServer::start().await;
    let page = server
        .http
        .get(format!("{}/docs", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"spec-url="/openapi.json""#), "{html}");
    assert!(
        !html.contains("https://"),
        "the page fetches from elsewhere: {html}"
    );
    let script = server
        .http
        .get(format!("{}/docs/redoc.standalone.js", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert!(script.bytes().await.unwrap().len() > 500_000);
}

/// The reference page renders the document in a real browser (headless
/// Chromium, with no network but the server's): the operations' summaries
/// and paths are on the page Redoc built.
#[tokio::test]
async fn docs_renders_every_operation_in_a_browser() {
    let server = TestServer::start().await;
    let profile = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(ferry_testkit::services::chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", profile.path().display()),
            "--virtual-time-budget=10000",
            "--dump-dom",
            &format!("{}/docs", server.base),
        ])
        .output()
        .await
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for text in [
        "Send an event",
        "Replay an event",
        "Create a destination",
        "A partner's signed event",
        "/v1/destinations/{id}/rotate-secret",
        "Send up to 1,000 events",
    ] {
        assert!(dom.contains(text), "the rendered page lacks {text:?}");
    }
}

/// Schemathesis generates requests from the document (examples, boundary
/// values, fuzzing, and chains along its links) against a live server: no
/// answer may be a 5xx, and each must match the status codes, content type
/// and schema the document gives.
#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_answer_off_the_document() {
    let server = TestServer::start().await;
    let receiver = ferry_testkit::Receiver::start().await;
    // A destination for every event, so events have deliveries to follow.
    server.webhook(&receiver.url(), json!({})).await;
    let output = tokio::process::Command::new(ferry_testkit::services::schemathesis())
        .current_dir(server.dir.path())
        .args([
            "run",
            &format!("{}/openapi.json", server.base),
            "--header",
            &format!("Authorization: Bearer {ADMIN_KEY}"),
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--max-examples",
            "25",
            "--seed",
            "1",
            "--generation-database",
            "none",
            "--no-color",
        ])
        .output()
        .await
        .expect("schemathesis runs");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains("Tested: 36"), "{report}");
}
