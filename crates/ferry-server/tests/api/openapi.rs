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
    ("post", "/v1/destinations/{id}/events"),
    ("get", "/v1/destinations/{id}/events/{event_id}"),
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
    ("post", "/v1/exports"),
    ("get", "/v1/exports"),
    ("get", "/v1/exports/{id}"),
    ("post", "/v1/exports/{id}/cancel"),
    ("get", "/v1/exports/{id}/download"),
    ("post", "/v1/export-schedules"),
    ("get", "/v1/export-schedules"),
    ("get", "/v1/export-schedules/{id}"),
    ("patch", "/v1/export-schedules/{id}"),
    ("delete", "/v1/export-schedules/{id}"),
    ("get", "/v1/export-schedules/{id}/runs"),
    ("get", "/v1/config/export"),
    ("post", "/v1/config/import"),
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

/// Every JSON body an operation takes or answers — the request body, each
/// `2xx` answer and each error — has an example, and every example in the
/// document is valid against the schema it sits on.
///
/// The rule for "has an example", which is also how Redoc builds its
/// samples: the media type's `example` or `examples`; else the schema's own
/// (`examples`, `example`, `const`, `enum`, `default`); else one composed
/// from its parts: a `$ref`'s target, every member of an `allOf`, the first
/// non-null member of a `oneOf`/`anyOf`, each item of an `array`, and
/// *every* property of an `object` (a property with nothing shows as
/// `null` or `"string"` on the page). A free-form value (`{}`) or a bare
/// `string` has none.
#[tokio::test]
async fn every_body_has_an_example_that_matches_its_schema() {
    let server = TestServer::start().await;
    let doc = document(&server, "/openapi.json").await;
    let mut missing = Vec::new();
    let mut invalid = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let name = format!("{} {method} {path}", op["operationId"].as_str().unwrap());
            let mut bodies: Vec<(String, &Value)> = op["requestBody"]["content"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(media, content)| (format!("request body ({media})"), content))
                .collect();
            for (status, response) in op["responses"].as_object().unwrap() {
                for (media, content) in response["content"].as_object().into_iter().flatten() {
                    bodies.push((format!("{status} answer ({media})"), content));
                }
            }
            for (what, content) in bodies {
                let schema = &content["schema"];
                let mut examples = media_examples(content);
                if examples.is_empty() {
                    match compose(&doc, schema) {
                        Some(example) => examples.push(example),
                        None => {
                            if json_media(&what) {
                                missing.push(format!("{name}: {what} has no example"));
                            }
                            continue;
                        }
                    }
                }
                for example in examples {
                    let mut errors = Vec::new();
                    validate(&doc, schema, &example, "", &mut errors);
                    for error in errors {
                        invalid.push(format!("{name}: {what}: {error}"));
                    }
                }
            }
        }
    }
    // The examples the schemas carry themselves, wherever they are used.
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        schema_examples(
            &doc,
            schema,
            &format!("#/components/schemas/{name}"),
            &mut invalid,
        );
    }
    assert!(
        missing.is_empty() && invalid.is_empty(),
        "without an example:\n{}\n\nexamples off their schema:\n{}",
        missing.join("\n"),
        invalid.join("\n")
    );
}

fn json_media(what: &str) -> bool {
    what.contains("application/json")
}

/// The examples a media type gives itself.
fn media_examples(content: &Value) -> Vec<Value> {
    let mut found: Vec<Value> = content.get("example").cloned().into_iter().collect();
    for example in content["examples"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
    {
        found.extend(example.get("value").cloned());
    }
    found
}

/// The schema a local `$ref` names.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let target = doc
                .pointer(reference.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("{reference} names no schema"));
            resolve(doc, target)
        }
        None => schema,
    }
}

/// A schema's example by the rule of
/// `every_body_has_an_example_that_matches_its_schema`.
fn compose(doc: &Value, schema: &Value) -> Option<Value> {
    let schema = resolve(doc, schema);
    if let Some(first) = schema["examples"].as_array().and_then(|e| e.first()) {
        return Some(first.clone());
    }
    for key in ["example", "const", "default"] {
        if let Some(value) = schema.get(key) {
            return Some(value.clone());
        }
    }
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return Some(first.clone());
    }
    if let Some(members) = schema["allOf"].as_array() {
        let mut merged = serde_json::Map::new();
        for member in members {
            match compose(doc, member)? {
                Value::Object(part) => merged.extend(part),
                _ => return None,
            }
        }
        return Some(Value::Object(merged));
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(members) = schema[key].as_array() {
            let member = members.iter().find(|m| m["type"] != "null")?;
            return compose(doc, member);
        }
    }
    if let Some(properties) = schema["properties"].as_object() {
        let mut object = serde_json::Map::new();
        for (name, property) in properties {
            object.insert(name.clone(), compose(doc, property)?);
        }
        return Some(Value::Object(object));
    }
    if schema["items"].is_object() {
        return Some(Value::Array(vec![compose(doc, &schema["items"])?]));
    }
    None
}

/// Checks the `examples`/`example` of a schema and of every schema inside
/// it against the schema they sit on.
fn schema_examples(doc: &Value, schema: &Value, at: &str, invalid: &mut Vec<String>) {
    let Some(object) = schema.as_object() else {
        return;
    };
    let mut examples: Vec<&Value> = object.get("example").into_iter().collect();
    examples.extend(
        object
            .get("examples")
            .and_then(Value::as_array)
            .into_iter()
            .flatten(),
    );
    for example in examples {
        let mut errors = Vec::new();
        validate(doc, schema, example, "", &mut errors);
        invalid.extend(errors.into_iter().map(|e| format!("{at}: {e}")));
    }
    for (key, value) in object {
        match key.as_str() {
            "properties" => {
                for (name, property) in value.as_object().into_iter().flatten() {
                    schema_examples(doc, property, &format!("{at}/properties/{name}"), invalid);
                }
            }
            "items" | "additionalProperties" => {
                schema_examples(doc, value, &format!("{at}/{key}"), invalid)
            }
            "allOf" | "oneOf" | "anyOf" => {
                for (i, member) in value.as_array().into_iter().flatten().enumerate() {
                    schema_examples(doc, member, &format!("{at}/{key}/{i}"), invalid);
                }
            }
            _ => {}
        }
    }
}

/// A small JSON Schema (2020-12) check, for the keywords this document
/// uses: `$ref`, `allOf`/`oneOf`/`anyOf`, `type`, `enum`, `const`,
/// `properties`, `required`, `additionalProperties`, `items`, `pattern`,
/// `minimum`/`maximum` and `format: date-time`. An unknown keyword fails,
/// so that a new one is not silently let through.
fn validate(doc: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let Some(keywords) = schema.as_object() else {
        return errors.push(format!("{at}: the schema is not an object: {schema}"));
    };
    let here = if at.is_empty() { "/" } else { at };
    let mut fail = |why: String| errors.push(format!("{here}: {why} (value {value})"));
    let mut nested = Vec::new();
    for (key, rule) in keywords {
        match key.as_str() {
            "$ref" => validate(doc, resolve(doc, schema), value, at, &mut nested),
            "allOf" => {
                for member in rule.as_array().unwrap() {
                    validate(doc, member, value, at, &mut nested);
                }
            }
            "oneOf" | "anyOf" => {
                let matching = rule
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|member| {
                        let mut member_errors = Vec::new();
                        validate(doc, member, value, at, &mut member_errors);
                        member_errors.is_empty()
                    })
                    .count();
                if matching == 0 || (key == "oneOf" && matching > 1) {
                    fail(format!("{matching} members of {key} match"));
                }
            }
            "type" => {
                let types: Vec<&str> = match rule {
                    Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
                    other => other.as_str().into_iter().collect(),
                };
                if !types.iter().any(|t| has_type(value, t)) {
                    fail(format!("not of type {rule}"));
                }
            }
            "enum" => {
                if !rule.as_array().unwrap().contains(value) {
                    fail(format!("not one of {rule}"));
                }
            }
            "const" => {
                if rule != value {
                    fail(format!("not {rule}"));
                }
            }
            "required" => {
                if let Some(object) = value.as_object() {
                    for name in rule.as_array().unwrap().iter().filter_map(Value::as_str) {
                        if !object.contains_key(name) {
                            fail(format!("lacks the required `{name}`"));
                        }
                    }
                }
            }
            "properties" => {
                if let Some(object) = value.as_object() {
                    for (name, property) in rule.as_object().unwrap() {
                        if let Some(field) = object.get(name) {
                            validate(doc, property, field, &format!("{at}/{name}"), &mut nested);
                        }
                    }
                }
            }
            "additionalProperties" => {
                let known = keywords.get("properties").and_then(Value::as_object);
                for (name, field) in value.as_object().into_iter().flatten() {
                    if known.is_some_and(|k| k.contains_key(name)) {
                        continue;
                    }
                    match rule {
                        Value::Bool(false) => fail(format!("`{name}` is not a known field")),
                        Value::Bool(true) => {}
                        _ => validate(doc, rule, field, &format!("{at}/{name}"), &mut nested),
                    }
                }
            }
            "items" => {
                for (i, item) in value.as_array().into_iter().flatten().enumerate() {
                    validate(doc, rule, item, &format!("{at}/{i}"), &mut nested);
                }
            }
            "pattern" => {
                if let Some(text) = value.as_str() {
                    let pattern = regex::Regex::new(rule.as_str().unwrap()).unwrap();
                    if !pattern.is_match(text) {
                        fail(format!("does not match {rule}"));
                    }
                }
            }
            "minimum" | "maximum" => {
                if let (Some(n), Some(bound)) = (value.as_f64(), rule.as_f64())
                    && ((key == "minimum" && n < bound) || (key == "maximum" && n > bound))
                {
                    fail(format!("out of {key} {rule}"));
                }
            }
            "format" => {
                if let (Some("date-time"), Some(text)) = (rule.as_str(), value.as_str())
                    && chrono::DateTime::parse_from_rfc3339(text).is_err()
                {
                    fail("not an RFC 3339 timestamp".to_owned());
                }
            }
            // Annotations, and `propertyNames` whose only use here is
            // `{"type": "string"}` (which every JSON key is).
            "description" | "title" | "examples" | "example" | "default" | "deprecated"
            | "propertyNames" => {}
            other => fail(format!("the check does not know the keyword `{other}`")),
        }
    }
    errors.extend(nested);
}

fn has_type(value: &Value, name: &str) -> bool {
    match name {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        _ => false,
    }
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
        "Start an export",
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
    assert!(report.contains("Tested: 51"), "{report}");
}
