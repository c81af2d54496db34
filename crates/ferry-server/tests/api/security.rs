//! The tenant-isolation and scope matrices: every endpoint that takes an id
//! answers 404 to another organization's key (and the owner's audit log
//! records the attempt); every scope can do exactly what it should.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::TestServer;

/// A second organization with a key of the given scopes.
async fn other_org_key(server: &TestServer, scopes: &[&str]) -> (String, String) {
    let (_, org) = server
        .post(
            "/v1/orgs",
            json!({"name": format!("other-{}", scopes.join("-"))}),
        )
        .await;
    let (status, k) = server
        .post(
            "/v1/api-keys",
            json!({"name": "k", "scopes": scopes, "org_id": org["id"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{k}");
    (
        k["key"].as_str().unwrap().to_owned(),
        k["id"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn every_endpoint_with_an_id_hides_other_organizations_objects() {
    let server = TestServer::start().await;
    let (dst, _) = server
        .webhook("http://127.0.0.1:9/x", json!({"enabled": false}))
        .await;
    let sent = server
        .send(json!({"type": "t", "data": {"m": 1}, "destinations": [dst]}))
        .await;
    let (evt, dlv) = (
        sent["id"].as_str().unwrap().to_owned(),
        sent["deliveries"][0]["id"].as_str().unwrap().to_owned(),
    );
    let (_, src) = server.post("/v1/sources", json!({"name": "s", "verification": {"scheme": "hmac-sha256", "header": "x-sig", "secrets": ["k"]}})).await;
    let src = src["id"].as_str().unwrap().to_owned();
    let (_, key) = server
        .post(
            "/v1/api-keys",
            json!({"name": "victim", "scopes": ["read"]}),
        )
        .await;
    let key = key["id"].as_str().unwrap().to_owned();
    let (_, orgs) = server.get("/v1/orgs").await;
    let org = orgs["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "default")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (attacker, attacker_id) = other_org_key(&server, &["manage", "ingest", "read"]).await;
    let cases: Vec<(Method, String, &str)> = vec![
        (Method::GET, format!("/v1/events/{evt}"), &evt),
        (Method::POST, format!("/v1/events/{evt}/replay"), &evt),
        (Method::GET, format!("/v1/deliveries/{dlv}"), &dlv),
        (Method::POST, format!("/v1/deliveries/{dlv}/retry"), &dlv),
        (Method::GET, format!("/v1/destinations/{dst}"), &dst),
        (Method::PATCH, format!("/v1/destinations/{dst}"), &dst),
        (Method::DELETE, format!("/v1/destinations/{dst}"), &dst),
        (Method::POST, format!("/v1/destinations/{dst}/test"), &dst),
        (
            Method::POST,
            format!("/v1/destinations/{dst}/rotate-secret"),
            &dst,
        ),
        (Method::POST, format!("/v1/destinations/{dst}/enable"), &dst),
        (
            Method::POST,
            format!("/v1/destinations/{dst}/disable"),
            &dst,
        ),
        (Method::GET, format!("/v1/destinations/{dst}/health"), &dst),
        (Method::GET, format!("/v1/sources/{src}"), &src),
        (Method::DELETE, format!("/v1/sources/{src}"), &src),
        (Method::DELETE, format!("/v1/api-keys/{key}"), &key),
        (Method::GET, format!("/v1/orgs/{org}"), &org),
    ];
    for (method, path, _) in &cases {
        let body = match *method {
            Method::PATCH => Some(json!({"name": "stolen"})),
            Method::POST => Some(json!({})),
            _ => None,
        };
        let (status, v) = server
            .call(method.clone(), path, Some(&attacker), body)
            .await;
        assert_eq!(
            (status, v["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found")),
            "{method} {path}: {v}"
        );
    }
    // Nothing changed, and the owner's audit log names the key and each path.
    let (_, d) = server.get(&format!("/v1/destinations/{dst}")).await;
    assert_eq!(
        (d["name"].as_str(), d["enabled"].as_bool()),
        (Some("hook"), Some(false))
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, audit) = server
            .get("/v1/audit?action=security.cross_org_denied&limit=1000")
            .await;
        let records = audit["data"].as_array().unwrap();
        let missing: Vec<&String> = cases
            .iter()
            .map(|(_, path, _)| path)
            .filter(|path| {
                !records.iter().any(|r| {
                    r["after"]["path"] == path.as_str() && r["actor"] == attacker_id.as_str()
                })
            })
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no security.cross_org_denied record for {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn each_scope_can_do_exactly_what_it_should() {
    let server = TestServer::start().await;
    let (dst, _) = server
        .webhook("http://127.0.0.1:9/x", json!({"enabled": false}))
        .await;
    let sent = server
        .send(json!({"type": "t", "data": {"s": 1}, "destinations": [dst]}))
        .await;
    let evt = sent["id"].as_str().unwrap().to_owned();
    // (method, path, body, scopes allowed besides admin)
    let ops: Vec<(Method, String, Option<Value>, &[&str])> = vec![
        (
            Method::POST,
            "/v1/events".into(),
            Some(json!({"type": "scoped", "data": {}})),
            &["ingest"],
        ),
        (
            Method::GET,
            format!("/v1/events/{evt}"),
            None,
            &["read", "manage"],
        ),
        (
            Method::GET,
            "/v1/deliveries".into(),
            None,
            &["read", "manage"],
        ),
        (Method::GET, "/v1/dlq".into(), None, &["read", "manage"]),
        (
            Method::POST,
            format!("/v1/destinations/{dst}/events"),
            Some(json!({"type": "scoped", "data": {}})),
            &["ingest"],
        ),
        (
            Method::GET,
            format!("/v1/destinations/{dst}/events/{evt}"),
            None,
            &["read", "manage"],
        ),
        (
            Method::GET,
            "/v1/destinations".into(),
            None,
            &["read", "manage"],
        ),
        (Method::GET, "/v1/audit".into(), None, &["read", "manage"]),
        (
            Method::POST,
            "/v1/destinations".into(),
            Some(json!({"name": "n", "kind": "webhook", "config": {"url": "http://127.0.0.1:9/"}})),
            &["manage"],
        ),
        (
            Method::POST,
            format!("/v1/events/{evt}/replay"),
            Some(json!({})),
            &["manage"],
        ),
        (
            Method::POST,
            "/v1/dlq/replay".into(),
            Some(json!({})),
            &["manage"],
        ),
        (
            Method::POST,
            format!("/v1/destinations/{dst}/disable"),
            Some(json!({})),
            &["manage"],
        ),
        (Method::GET, "/v1/api-keys".into(), None, &["manage"]),
        (
            Method::POST,
            "/v1/sources".into(),
            Some(
                json!({"name": "s", "verification": {"scheme": "hmac-sha256", "header": "x", "secrets": ["k"]}}),
            ),
            &["manage"],
        ),
        (Method::GET, "/v1/orgs".into(), None, &[]),
        (
            Method::POST,
            "/v1/orgs".into(),
            Some(json!({"name": "o"})),
            &[],
        ),
        (
            Method::POST,
            "/v1/admin/rotate-master-key".into(),
            Some(json!({})),
            &[],
        ),
    ];
    for scope in ["read", "ingest", "manage"] {
        let (_, k) = server
            .post("/v1/api-keys", json!({"name": scope, "scopes": [scope]}))
            .await;
        let key = k["key"].as_str().unwrap().to_owned();
        for (method, path, body, allowed) in &ops {
            let (status, v) = server
                .call(method.clone(), path, Some(&key), body.clone())
                .await;
            if allowed.contains(&scope) {
                assert!(
                    status.is_success(),
                    "{scope} must be allowed {method} {path}: {status} {v}"
                );
            } else {
                assert_eq!(
                    (status, v["error"].as_str()),
                    (StatusCode::FORBIDDEN, Some("forbidden")),
                    "{scope}: {method} {path}"
                );
            }
        }
    }
    // Keys cannot grant more than they have.
    let (_, k) = server
        .post("/v1/api-keys", json!({"name": "m", "scopes": ["manage"]}))
        .await;
    let manage = k["key"].as_str().unwrap().to_owned();
    let (status, _) = server
        .call(
            Method::POST,
            "/v1/api-keys",
            Some(&manage),
            Some(json!({"name": "x", "scopes": ["admin"]})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_admin_key_lists_and_revokes_the_keys_of_any_organization() {
    let server = TestServer::start().await;
    let (other_key, other_key_id) = other_org_key(&server, &["manage"]).await;
    let (_, orgs) = server.get("/v1/orgs").await;
    let org_named = |name: &str| {
        orgs["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == name)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (other_org, default_org) = (org_named("other-manage"), org_named("default"));

    // An admin key names the organization; the caller's own is the default.
    let (status, keys) = server
        .get(&format!("/v1/api-keys?org_id={other_org}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{keys}");
    let ids: Vec<&str> = keys["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [other_key_id.as_str()]);
    let (_, own) = server.get("/v1/api-keys").await;
    assert!(
        own["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["id"] != other_key_id.as_str())
    );
    let (status, v) = server.get("/v1/api-keys?org_id=org_nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");

    // Another organization is the admin scope's: a manage key names only
    // its own.
    let list = |org: &str| format!("/v1/api-keys?org_id={org}");
    let (status, v) = server
        .call(Method::GET, &list(&default_org), Some(&other_key), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    let (status, v) = server
        .call(Method::GET, &list(&other_org), Some(&other_key), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");

    // The admin revokes it: it authenticates nothing from then on.
    let (status, v) = server
        .call(
            Method::DELETE,
            &format!("/v1/api-keys/{other_key_id}"),
            Some(crate::harness::ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{v}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) = server
            .call(Method::GET, "/v1/api-keys", Some(&other_key), None)
            .await;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(Instant::now() < deadline, "the revoked key still works");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/v1/api-keys/{other_key_id}"),
            Some(crate::harness::ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
