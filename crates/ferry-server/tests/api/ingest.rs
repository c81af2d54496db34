//! Ingest: idempotency, routing, batch, and every bad input answered with
//! its error while storing nothing.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::{ADMIN_KEY, TestServer};

#[tokio::test]
async fn a_known_id_is_a_duplicate_and_enqueues_nothing() {
    let server = TestServer::start().await;
    let receiver = ferry_testkit::Receiver::start().await;
    server.webhook(&receiver.url(), json!({})).await;
    let first = server
        .send(json!({"type": "t", "data": {"a": 1}, "id": "k-1"}))
        .await;
    let (status, again) = server
        .post(
            "/v1/events",
            json!({"type": "t", "data": {"a": 2}, "id": "k-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["deliveries"][0]["id"], first["deliveries"][0]["id"]);
    // The header wins over the body id; content-derived ids de-duplicate too.
    let resp = server
        .http
        .post(format!("{}/v1/events", server.base))
        .bearer_auth(ADMIN_KEY)
        .header("Idempotency-Key", "k-1")
        .json(&json!({"type": "t", "data": {}, "id": "other"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let a = server
        .send(json!({"type": "c", "data": {"x": 1, "y": 2}}))
        .await;
    let (status, b) = server
        .post("/v1/events", json!({"type": "c", "data": {"y": 2, "x": 1}}))
        .await;
    assert_eq!(
        (status, &b["id"], b["duplicate"].as_bool()),
        (StatusCode::OK, &a["id"], Some(true))
    );
    receiver
        .wait_for(2, std::time::Duration::from_secs(10))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(receiver.count(), 2, "duplicates must not be delivered");
}

#[tokio::test]
async fn routing_uses_listed_destinations_then_filters_then_defaults() {
    let server = TestServer::start().await;
    let (orders, _) = server
        .webhook(
            "http://127.0.0.1:9/a",
            json!({"filter": {"event_types": ["order.*"]}}),
        )
        .await;
    let (fallback, _) = server
        .webhook(
            "http://127.0.0.1:9/b",
            json!({"filter": {"event_types": []}, "default": true}),
        )
        .await;
    let v = server.send(json!({"type": "order.paid", "data": {}})).await;
    assert_eq!(v["deliveries"][0]["destination_id"], orders.as_str());
    let v = server
        .send(json!({"type": "user.created", "data": {}}))
        .await;
    assert_eq!(v["deliveries"][0]["destination_id"], fallback.as_str());
    let v = server
        .send(json!({"type": "order.paid", "data": {"z": 1}, "destinations": [fallback]}))
        .await;
    assert_eq!(v["deliveries"].as_array().unwrap().len(), 1);
    assert_eq!(v["deliveries"][0]["destination_id"], fallback.as_str());
    let (status, v) = server
        .post(
            "/v1/events",
            json!({"type": "x", "data": {}, "destinations": ["dst_nope"]}),
        )
        .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed"))
    );
    assert_eq!(v["details"][0]["field"], "destinations[0]");
}

#[tokio::test]
async fn bad_input_gets_its_error_and_stores_nothing() {
    let server = TestServer::start_with(|c| c.max_payload_bytes = 4096).await;
    let url = format!("{}/v1/events", server.base);
    let raw = |body: &'static str| {
        server
            .http
            .post(&url)
            .bearer_auth(ADMIN_KEY)
            .header("content-type", "application/json")
            .body(body)
    };
    let r = raw("{not json").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_json"
    );
    let (status, v) = server.post("/v1/events", json!({"data": {}})).await;
    assert_eq!(
        (
            status,
            v["error"].as_str(),
            v["details"][0]["field"].as_str()
        ),
        (
            StatusCode::BAD_REQUEST,
            Some("invalid_request"),
            Some("type")
        )
    );
    let (status, v) = server.post("/v1/events", json!({"type": 5})).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    let (status, v) = server
        .post("/v1/events", json!({"type": "t", "data": "x".repeat(5000)}))
        .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
    );
    let (status, v) = server
        .call(Method::POST, "/v1/events", None, Some(json!({"type": "t"})))
        .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    let (status, _) = server
        .call(
            Method::POST,
            "/v1/events",
            Some("fk_wrong"),
            Some(json!({"type": "t"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, v) = server.get("/v1/events/evt_doesnotexist").await;
    assert_eq!(
        (status, v["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (status, v) = server.post("/v1/destinations", json!({"name": "x", "kind": "webhook", "config": {"url": "ftp://x"}, "retry": {"multiplier": 0}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let fields: Vec<_> = v["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        fields.contains(&"config.url".to_owned())
            && fields.contains(&"retry.multiplier".to_owned()),
        "{fields:?}"
    );
    let (_, events) = server.get("/v1/deliveries").await;
    assert!(events["data"].as_array().unwrap().is_empty());
    let (_, dsts) = server.get("/v1/destinations").await;
    assert!(dsts["data"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn scopes_limit_what_a_key_can_do() {
    let server = TestServer::start().await;
    let (status, k) = server
        .post("/v1/api-keys", json!({"name": "ci", "scopes": ["ingest"]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{k}");
    let ingest = k["key"].as_str().unwrap().to_owned();
    let (status, _) = server
        .call(
            Method::POST,
            "/v1/events",
            Some(&ingest),
            Some(json!({"type": "t"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, v) = server
        .call(Method::GET, "/v1/deliveries", Some(&ingest), None)
        .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let (status, _) = server
        .call(
            Method::POST,
            "/v1/destinations",
            Some(&ingest),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, keys) = server.get("/v1/api-keys").await;
    assert!(
        keys["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("key").is_none())
    );
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/v1/api-keys/{}", k["id"].as_str().unwrap()),
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server
        .call(
            Method::POST,
            "/v1/events",
            Some(&ingest),
            Some(json!({"type": "t2"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_batch_answers_each_item() {
    let server = TestServer::start().await;
    let body =
        json!({"events": [{"type": "a", "data": {}}, {"data": {}}, {"type": "a", "data": {}}]});
    let (status, v) = server.post("/v1/events/batch", body).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let r = v["results"].as_array().unwrap();
    assert_eq!(
        (
            r[0]["status"].as_u64(),
            r[1]["status"].as_u64(),
            r[2]["status"].as_u64()
        ),
        (Some(202), Some(400), Some(200))
    );
    assert_eq!(r[2]["duplicate"], true);
}

#[tokio::test]
async fn lists_paginate_with_cursors() {
    let server = TestServer::start().await;
    let (dst, _) = server
        .webhook("http://127.0.0.1:9/x", json!({"enabled": false}))
        .await;
    for i in 0..5 {
        server
            .send(json!({"type": "p", "data": {"i": i}, "destinations": [dst]}))
            .await;
    }
    let mut seen = Vec::new();
    let mut path = "/v1/deliveries?limit=2".to_owned();
    loop {
        let (_, v) = server.get(&path).await;
        seen.extend(
            v["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["id"].as_str().unwrap().to_owned()),
        );
        match v["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/deliveries?limit=2&cursor={c}"),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (5, 5));
    let (status, _) = server.get("/v1/deliveries?cursor=garbage").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn another_organizations_ids_are_not_found() {
    let server = TestServer::start().await;
    let (status, org) = server.post("/v1/orgs", json!({"name": "other"})).await;
    assert_eq!(status, StatusCode::CREATED, "{org}");
    let (status, renamed) = server
        .call(
            Method::PATCH,
            &format!("/v1/orgs/{}", org["id"].as_str().unwrap()),
            Some(ADMIN_KEY),
            Some(json!({"name": "partner"})),
        )
        .await;
    assert_eq!(
        (status, renamed["name"].as_str()),
        (StatusCode::OK, Some("partner"))
    );
    let (status, k) = server
        .post(
            "/v1/api-keys",
            json!({"name": "b", "scopes": ["manage", "ingest"], "org_id": org["id"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{k}");
    let other = k["key"].as_str().unwrap().to_owned();
    let (dst, _) = server.webhook("http://127.0.0.1:9/a", json!({})).await;
    let mine = server
        .send(json!({"type": "t", "data": {"org": "a"}}))
        .await;
    let (evt, dlv) = (
        mine["id"].as_str().unwrap(),
        mine["deliveries"][0]["id"].as_str().unwrap(),
    );
    for path in [
        format!("/v1/events/{evt}"),
        format!("/v1/deliveries/{dlv}"),
        format!("/v1/destinations/{dst}"),
    ] {
        let (status, v) = server.call(Method::GET, &path, Some(&other), None).await;
        assert_eq!(
            (status, v["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found")),
            "{path}"
        );
    }
    let (status, _) = server
        .call(
            Method::POST,
            &format!("/v1/deliveries/{dlv}/retry"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server
        .call(
            Method::POST,
            &format!("/v1/events/{evt}/replay"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The owner's audit log tells who tried what (written off the request path).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, audit) = server
            .get("/v1/audit?action=security.cross_org_denied&limit=100")
            .await;
        let records = audit["data"].as_array().unwrap();
        if records.len() >= 5 {
            let on_event = records
                .iter()
                .find(|r| r["entity_id"] == evt)
                .expect("the event probe is recorded");
            assert_eq!(on_event["actor"], k["id"]);
            assert!(
                records
                    .iter()
                    .any(|r| r["after"]["path"] == format!("/v1/events/{evt}")),
                "{audit}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "missing security.cross_org_denied records: {audit}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The same caller id in another organization is another event.
    let (status, theirs) = server
        .call(
            Method::POST,
            "/v1/events",
            Some(&other),
            Some(json!({"type": "t", "data": {"org": "a"}})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_ne!(theirs["id"], mine["id"]);
    assert!(
        theirs["deliveries"].as_array().unwrap().is_empty(),
        "routing must not reach another org's destinations"
    );
}

#[tokio::test]
async fn a_key_past_its_rate_limit_gets_429_with_retry_after() {
    let server = TestServer::start_with(|c| {
        c.ingest.rate_limit_per_s = 1;
        c.ingest.rate_limit_burst = 5;
    })
    .await;
    for i in 0..5 {
        server.send(json!({"type": "t", "data": {"i": i}})).await;
    }
    let resp = server
        .http
        .post(format!("{}/v1/events", server.base))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"type": "t", "data": {"i": 5}, "id": "over-the-limit"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["error"],
        "rate_limited"
    );
    let (status, _) = server
        .get(&format!(
            "/v1/events/{}",
            ferry_core::EventId::from_caller_key(&org_of(&server).await, "over-the-limit")
        ))
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a refused event is not stored"
    );
}

async fn org_of(server: &TestServer) -> ferry_core::OrgId {
    let (_, orgs) = server.get("/v1/orgs").await;
    ferry_core::OrgId::parse(orgs["data"][0]["id"].as_str().unwrap()).unwrap()
}
