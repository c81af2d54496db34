//! Operator surfaces: destinations lifecycle, health, audit, metrics.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::{ADMIN_KEY, TestServer};

#[tokio::test]
async fn destinations_can_be_read_changed_tested_disabled_and_deleted_with_an_audit_trail() {
    let server = TestServer::start().await;
    let receiver = ferry_testkit::Receiver::start().await;
    let (dst, secret) = server
        .webhook(
            &receiver.url(),
            json!({"auth": {"type": "bearer", "token": "tok-secret-123"}}),
        )
        .await;
    let (_, v) = server.get(&format!("/v1/destinations/{dst}")).await;
    assert_eq!(v["auth"]["token"], "***");
    assert!(!v.to_string().contains("tok-secret-123") && !v.to_string().contains(&secret));
    let (status, v) = server
        .call(
            Method::PATCH,
            &format!("/v1/destinations/{dst}"),
            Some(ADMIN_KEY),
            Some(json!({"name": "renamed"})),
        )
        .await;
    assert_eq!(
        (status, v["name"].as_str()),
        (StatusCode::OK, Some("renamed"))
    );
    let (_, v) = server
        .post(&format!("/v1/destinations/{dst}/test"), json!({}))
        .await;
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(
        receiver.requests()[0].header("authorization"),
        Some("Bearer tok-secret-123")
    );
    let (_, v) = server
        .post(&format!("/v1/destinations/{dst}/disable"), json!({}))
        .await;
    assert_eq!(v["state"], "disabled");
    let (_, h) = server.get(&format!("/v1/destinations/{dst}/health")).await;
    assert_eq!(h["state"], "disabled");
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/v1/destinations/{dst}"),
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server.get(&format!("/v1/destinations/{dst}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, audit) = server
        .get(&format!("/v1/audit?entity_id={dst}&limit=100"))
        .await;
    let actions: Vec<_> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap().to_owned())
        .collect();
    for expected in [
        "destination.created",
        "destination.updated",
        "destination.disabled",
        "destination.deleted",
    ] {
        assert!(
            actions.contains(&expected.to_owned()),
            "{expected} missing from {actions:?}"
        );
    }
    assert!(!audit.to_string().contains("tok-secret-123"));
}

#[tokio::test]
async fn a_disabled_destination_keeps_its_deliveries_until_enabled() {
    let server = TestServer::start().await;
    let receiver = ferry_testkit::Receiver::start().await;
    let (dst, _) = server.webhook(&receiver.url(), json!({})).await;
    server
        .post(&format!("/v1/destinations/{dst}/disable"), json!({}))
        .await;
    let v = server
        .send(json!({"type": "t", "data": {}, "destinations": [dst]}))
        .await;
    let dlv = v["deliveries"][0]["id"].as_str().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(receiver.count(), 0);
    server
        .post(&format!("/v1/destinations/{dst}/enable"), json!({}))
        .await;
    server
        .wait_status(dlv, "delivered", std::time::Duration::from_secs(10))
        .await;
}

#[tokio::test]
async fn health_and_metrics_endpoints_answer() {
    let server = TestServer::start().await;
    let (status, _) = server.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, v) = server.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(
        (status, v["status"].as_str()),
        (StatusCode::OK, Some("ready"))
    );
    server.send(json!({"type": "m", "data": {}})).await;
    let text = server.metrics().await;
    for name in ["ferry_ingest_events_total", "ferry_ingest_latency_seconds"] {
        assert!(text.contains(name), "{name} missing from metrics");
    }
}

#[tokio::test]
async fn private_targets_are_refused_unless_allowed() {
    let guarded = TestServer::start_with(|c| c.allow_private_networks = false).await;
    for url in [
        "http://127.0.0.1:9/x",
        "http://[::1]/x",
        "http://10.0.0.1/x",
        "http://169.254.169.254/latest",
        "http://localhost:8080/",
    ] {
        let (status, v) = guarded
            .post(
                "/v1/destinations",
                json!({"name": "x", "kind": "webhook", "config": {"url": url}}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {v}");
        assert_eq!(v["details"][0]["field"], "config.url", "{v}");
    }
    let allowed = TestServer::start_with(|c| {
        c.allow_private_networks = false;
        c.allowed_networks = vec!["127.0.0.0/8".into()];
    })
    .await;
    let receiver = ferry_testkit::Receiver::start().await;
    allowed.webhook(&receiver.url(), json!({})).await;
    allowed.send(json!({"type": "t", "data": {}})).await;
    receiver
        .wait_for(1, std::time::Duration::from_secs(10))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::harness::test_config(&dir);
    config.allowed_networks = vec!["10.0.0.1/8".into()];
    let error = ferry_server::start(config)
        .await
        .err()
        .expect("a bad CIDR stops the start")
        .to_string();
    assert!(error.contains("allowed_networks"), "{error}");
}

/// Every object the API answers with carries `links`: its own API URL
/// (which answers it) and its console page, both from `public_url`.
#[tokio::test]
async fn every_object_links_to_itself_and_its_console_page() {
    let server = TestServer::start().await;
    let receiver = ferry_testkit::Receiver::start().await;
    let (dst, _) = server.webhook(&receiver.url(), json!({})).await;
    let accepted = server
        .send(json!({"type": "order.created", "data": {"links": 1}}))
        .await;
    let event = accepted["id"].as_str().unwrap().to_owned();
    let delivery = accepted["deliveries"][0]["id"].as_str().unwrap().to_owned();
    let (_, source) = server
        .post(
            "/v1/sources",
            json!({"name": "p", "verification": {"scheme": "standard-webhooks", "secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]}, "type_from": "/type"}),
        )
        .await;
    let (_, key) = server
        .post("/v1/api-keys", json!({"name": "ci", "scopes": ["read"]}))
        .await;
    let (_, orgs) = server.get("/v1/orgs").await;
    let org = orgs["data"][0]["id"].as_str().unwrap().to_owned();
    let source = source["id"].as_str().unwrap().to_owned();
    let key = key["id"].as_str().unwrap().to_owned();
    for (collection, id) in [
        ("destinations", dst.as_str()),
        ("events", event.as_str()),
        ("deliveries", delivery.as_str()),
        ("sources", source.as_str()),
        ("orgs", org.as_str()),
    ] {
        let (status, object) = server.get(&format!("/v1/{collection}/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{object}");
        let own = format!("{}/v1/{collection}/{id}", server.base);
        assert_eq!(object["links"]["self"], own.as_str(), "{object}");
        assert_eq!(
            object["links"]["ui"],
            format!("{}/ui/{collection}/{id}", server.base),
            "{object}"
        );
        // The self link answers the object itself.
        let (status, again) = server.get(own.strip_prefix(&server.base).unwrap()).await;
        assert_eq!((status, &again["id"]), (StatusCode::OK, &object["id"]));
    }
    // Exports and schedules keep their relative links and gain these.
    let (_, export) = server
        .post("/v1/exports", json!({"source": "events"}))
        .await;
    let id = export["id"].as_str().unwrap();
    assert_eq!(
        export["links"]["self"],
        format!("{}/v1/exports/{id}", server.base)
    );
    assert_eq!(
        export["links"]["ui"],
        format!("{}/ui/exports/{id}", server.base)
    );
    assert_eq!(
        export["links"]["download"],
        format!("/v1/exports/{id}/download")
    );
    let (_, schedule) = server
        .post(
            "/v1/export-schedules",
            json!({"name": "n", "cron": "0 3 * * *", "export": {"source": "audit"}}),
        )
        .await;
    let id = schedule["id"].as_str().unwrap();
    assert_eq!(
        schedule["links"]["self"],
        format!("/v1/export-schedules/{id}")
    );
    assert_eq!(
        schedule["links"]["ui"],
        format!("{}/ui/export-schedules/{id}", server.base)
    );
    // In lists too.
    let (_, list) = server.get("/v1/destinations").await;
    assert_eq!(
        list["data"][0]["links"]["self"],
        format!("{}/v1/destinations/{dst}", server.base)
    );
    let (_, keys) = server.get("/v1/api-keys").await;
    let listed = keys["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == key.as_str())
        .unwrap();
    assert_eq!(
        listed["links"]["ui"],
        format!("{}/ui/api-keys/{key}", server.base)
    );
    // Audit records keep the objects as they were, without links.
    let (_, audit) = server.get(&format!("/v1/audit?entity_id={dst}")).await;
    let created = &audit["data"][0];
    assert!(created["after"].is_object(), "{audit}");
    assert!(created["after"].get("links").is_none(), "{audit}");
}
