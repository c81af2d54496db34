//! Configuration export and import through the whole server: a setup
//! exported with sealed secrets and imported into a fresh Ferry exports
//! the same document and delivers with the same signing secret; importing
//! again changes nothing; without secrets, what needs them is created
//! disabled or skipped; a dry run changes nothing; a bad document changes
//! nothing at all.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{ADMIN_KEY, TestServer};

const PASSPHRASE: &str = "correct horse battery staple";
const BEARER: &str = "tok_Sup3rSecretBearerValue";
const SOURCE_SECRET: &str = "whsec_c291cmNlIHNlY3JldCBmb3IgdGhlIHBhcnRuZXI=";

/// Servers that share a file root, as hosts restoring one another's
/// configuration would (a `file` destination names its directory).
async fn server(root: &tempfile::TempDir) -> TestServer {
    let root = root.path().to_path_buf();
    TestServer::start_with(move |c| c.file_roots = vec![root]).await
}

async fn export(server: &TestServer, passphrase: Option<&str>, format: &str) -> String {
    let mut req = server
        .http
        .get(format!("{}/v1/config/export?format={format}", server.base))
        .bearer_auth(ADMIN_KEY);
    if let Some(p) = passphrase {
        req = req.header("ferry-passphrase", p);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.text().await.unwrap()
}

async fn import(
    server: &TestServer,
    doc: &str,
    query: &str,
    passphrase: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = server
        .http
        .post(format!("{}/v1/config/import?{query}", server.base))
        .bearer_auth(ADMIN_KEY)
        .body(doc.to_owned());
    if let Some(p) = passphrase {
        req = req.header("ferry-passphrase", p);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// A setup with secrets in every place they can be: a webhook with a bearer
/// token and a signing secret, a file destination, a signed source, an
/// export schedule, a second organization with its alert destination.
async fn setup(server: &TestServer, root: &tempfile::TempDir, hook_url: &str) -> String {
    let (hook, signing) = server
        .webhook(
            hook_url,
            json!({"auth": {"type": "bearer", "token": BEARER},
                   "retry": {"max_retries": 3, "initial_backoff_ms": 100, "max_backoff_ms": 1000},
                   "alerts": {"disable_after": {"consecutive_failures": 500}}}),
        )
        .await;
    let (status, v) = server
        .post(
            "/v1/destinations",
            json!({"name": "archive", "kind": "file", "config": {"directory": root.path().join("archive").display().to_string()},
                   "filter": {"event_types": ["never.*"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let archive = v["id"].as_str().unwrap().to_owned();
    let (status, v) = server
        .post(
            "/v1/sources",
            json!({"name": "partner", "verification": {"scheme": "standard-webhooks", "secrets": [SOURCE_SECRET]},
                   "destinations": [hook]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (status, v) = server
        .post(
            "/v1/export-schedules",
            json!({"name": "nightly", "cron": "0 2 * * *", "timezone": "Europe/Berlin",
                   "export": {"source": "deliveries", "compression": "gzip", "filter": {"status": "dead"},
                              "target": {"destination_id": archive, "path": "dead-{date}.csv.gz"}},
                   "retention": {"keep_last": 7}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (status, acme) = server.post("/v1/orgs", json!({"name": "acme"})).await;
    assert_eq!(status, StatusCode::CREATED, "{acme}");
    let acme_id = acme["id"].as_str().unwrap();
    let (status, key) = server
        .post(
            "/v1/api-keys",
            json!({"name": "acme", "scopes": ["manage", "read"], "org_id": acme_id}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let (status, d) = server
        .call(
            Method::POST,
            "/v1/destinations",
            key["key"].as_str(),
            Some(json!({"name": "acme alerts", "kind": "webhook", "config": {"url": hook_url}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{d}");
    let (status, v) = server
        .call(
            Method::PATCH,
            &format!("/v1/orgs/{acme_id}"),
            Some(ADMIN_KEY),
            Some(json!({"alert_destinations": [d["id"]], "alerts": {"debounce_s": 600}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    signing
}

#[tokio::test]
async fn a_setup_moves_to_a_fresh_ferry_whole_and_imports_once() {
    let receiver = ferry_testkit::Receiver::start().await;
    let root = tempfile::tempdir().unwrap();
    let first = server(&root).await;
    let signing = setup(&first, &root, &receiver.url()).await;

    let plain = export(&first, None, "json").await;
    let sealed = export(&first, Some(PASSPHRASE), "yaml").await;
    for doc in [&plain, &sealed] {
        for secret in [BEARER, SOURCE_SECRET, signing.as_str()] {
            assert!(!doc.contains(secret), "a secret leaked:\n{doc}");
        }
    }
    let doc: Value = serde_json::from_str(&plain).unwrap();
    assert_eq!(doc["ferry_config"], 1);
    assert_eq!(doc["orgs"][0]["default"], true);
    assert!(doc["orgs"][0].get("id").is_none(), "{doc}");
    assert_eq!(doc["orgs"][0]["destinations"][0]["auth"]["token"], "***");
    assert_eq!(
        doc["orgs"][0]["destinations"][0]["alerts"],
        json!({"disable_after": {"consecutive_failures": 500}})
    );
    assert_eq!(
        doc["orgs"][1]["alerts"],
        json!({"debounce_s": 600}),
        "{doc}"
    );
    assert!(sealed.contains("argon2id"), "{sealed}");

    // Into a fresh Ferry, secrets and all.
    let second = server(&root).await;
    let (status, wrong) = import(&second, &sealed, "", Some("not the passphrase at all")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{wrong}");
    assert_eq!(wrong["details"][0]["field"], "passphrase", "{wrong}");
    let (status, report) = import(&second, &sealed, "", Some(PASSPHRASE)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["applied"], true, "{report}");
    assert_eq!(report["summary"]["created"], 6, "{report}");
    assert_eq!(report["summary"]["skipped"], 0, "{report}");
    assert_eq!(
        export(&second, None, "json").await,
        plain,
        "the same document"
    );

    // The imported webhook signs with the original secret and sends the
    // original token.
    let hook = doc["orgs"][0]["destinations"][0]["id"].as_str().unwrap();
    second
        .send(json!({"type": "order.created", "data": {"n": 1}, "destinations": [hook]}))
        .await;
    receiver
        .wait_for(1, std::time::Duration::from_secs(20))
        .await
        .unwrap();
    let req = &receiver.requests()[0];
    standardwebhooks::Webhook::new(&signing)
        .unwrap()
        .verify(&req.body, &req.header_map())
        .expect("signed with the original secret");
    assert_eq!(
        req.header("authorization"),
        Some(format!("Bearer {BEARER}").as_str())
    );

    // Again: nothing changes.
    let (status, again) = import(&second, &sealed, "", Some(PASSPHRASE)).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["applied"], false, "{again}");
    assert_eq!(again["changes"], json!([]), "{again}");
    assert_eq!(again["summary"]["unchanged"], 7, "{again}");

    // A changed schedule is written over the revision the import read.
    let mut moved = doc.clone();
    moved["orgs"][0]["export_schedules"][0]["cron"] = json!("30 3 * * *");
    let (status, report) = import(&second, &moved.to_string(), "", None).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        report["changes"][0]["entity"], "export_schedule",
        "{report}"
    );
    assert_eq!(report["changes"][0]["fields"], json!(["cron"]), "{report}");
    let sch = doc["orgs"][0]["export_schedules"][0]["id"]
        .as_str()
        .unwrap();
    let (_, stored) = second.get(&format!("/v1/export-schedules/{sch}")).await;
    assert_eq!(stored["cron"], "30 3 * * *", "{stored}");
    let (status, back) = import(&second, &sealed, "", Some(PASSPHRASE)).await;
    assert_eq!(status, StatusCode::OK, "{back}");
    assert_eq!(export(&second, None, "json").await, plain, "back as it was");

    // A dry run of a changed document shows the change and makes none.
    let mut changed = doc.clone();
    changed["orgs"][0]["destinations"][0]["name"] = json!("renamed hook");
    changed["orgs"][0]["export_schedules"] = json!([]);
    let text = changed.to_string();
    let (status, plan) = import(&second, &text, "dry_run=true&prune=true", None).await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    assert_eq!(
        (plan["dry_run"].clone(), plan["applied"].clone()),
        (json!(true), json!(false))
    );
    let actions: Vec<(String, String)> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["action"].as_str().unwrap().into(),
                c["entity"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("change".into(), "destination".into()),
            ("remove".into(), "export_schedule".into())
        ],
        "{plan}"
    );
    assert_eq!(plan["changes"][0]["fields"], json!(["name"]), "{plan}");
    assert_eq!(
        export(&second, None, "json").await,
        plain,
        "a dry run changes nothing"
    );
    let (status, applied) = import(&second, &text, "prune=true", None).await;
    assert_eq!(status, StatusCode::OK, "{applied}");
    let (_, list) = second.get("/v1/export-schedules").await;
    assert_eq!(list["data"], json!([]));
    let (_, audit) = second.get("/v1/audit?action=config.imported").await;
    assert_eq!(audit["data"].as_array().unwrap().len(), 4, "{audit}");
}

#[tokio::test]
async fn without_secrets_what_needs_them_waits_and_bad_documents_change_nothing() {
    let receiver = ferry_testkit::Receiver::start().await;
    let root = tempfile::tempdir().unwrap();
    let first = server(&root).await;
    setup(&first, &root, &receiver.url()).await;
    let plain = export(&first, None, "yaml").await;

    let fresh = server(&root).await;
    let (status, report) = import(&fresh, &plain, "", None).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["summary"]["skipped"], 1, "the source: {report}");
    let disabled: Vec<&Value> = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["note"]
                .as_str()
                .is_some_and(|n| n.contains("created disabled"))
        })
        .collect();
    assert_eq!(disabled.len(), 2, "both webhooks: {report}");
    let (_, list) = fresh.get("/v1/destinations").await;
    let states: Vec<(String, bool)> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap().into(),
                d["enabled"].as_bool().unwrap(),
            )
        })
        .collect();
    assert!(states.contains(&("webhook".into(), false)), "{states:?}");
    assert!(states.contains(&("file".into(), true)), "{states:?}");

    // One bad destination in the middle: nothing of the document is made.
    let other = server(&root).await;
    let mut doc: Value = serde_saphyr::from_str(&plain).unwrap();
    doc["orgs"][0]["destinations"][1]["config"] = json!({"directory": "relative/not/allowed"});
    let (status, v) = import(&other, &doc.to_string(), "", None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["details"][0]["field"]
            .as_str()
            .unwrap()
            .starts_with("orgs[0].destinations[1]."),
        "{v}"
    );
    let (_, list) = other.get("/v1/destinations").await;
    assert_eq!(list["data"], json!([]), "nothing was created");
    let (_, orgs) = other.get("/v1/orgs").await;
    assert_eq!(orgs["data"].as_array().unwrap().len(), 1);

    let (status, v) = import(
        &other,
        "ferry_config: 1\norgs: [{name: x, colour: red}]",
        "",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    let (status, v) = import(&other, "{\"ferry_config\": 9, \"orgs\": []}", "", None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (status, key) = other
        .post(
            "/v1/api-keys",
            json!({"name": "m", "scopes": ["manage", "read"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = other
        .call(Method::GET, "/v1/config/export", key["key"].as_str(), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, v) = import(&other, &plain, "", Some("short")).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "an unsealed document needs no passphrase: {v}"
    );
}

#[tokio::test]
async fn the_config_source_exports_the_document_to_a_target() {
    let receiver = ferry_testkit::Receiver::start().await;
    let root = tempfile::tempdir().unwrap();
    let server = server(&root).await;
    setup(&server, &root, &receiver.url()).await;
    let answered = export(&server, None, "yaml").await;

    let job = super::exports::export(
        &server,
        json!({"source": "config", "format": "yaml", "compression": "gzip",
               "target": {"file": "backups/ferry.yaml.gz"}}),
    )
    .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["result"]["rows"], 1, "{job}");
    let location = job["result"]["location"].as_str().unwrap();
    let written = super::exports::decompress(&std::fs::read(location).unwrap(), "gzip");
    assert_eq!(
        written, answered,
        "the same document as GET /v1/config/export"
    );
    assert!(!written.contains(BEARER));
    let (status, report) = import(&server, &written, "dry_run=true", None).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        report["changes"],
        json!([]),
        "it imports as it is: {report}"
    );

    for (body, field) in [
        (json!({"source": "config"}), "format"),
        (json!({"source": "config", "format": "csv"}), "format"),
        (
            json!({"source": "config", "format": "json", "fields": ["id"]}),
            "fields",
        ),
        (
            json!({"source": "config", "format": "json", "filter": {"since": "2026-01-01T00:00:00Z"}}),
            "filter.since",
        ),
    ] {
        let (status, v) = server.post("/v1/exports", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert_eq!(v["details"][0]["field"], field, "{body}: {v}");
    }
    let (status, key) = server
        .post(
            "/v1/api-keys",
            json!({"name": "m", "scopes": ["manage", "read"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = server
        .call(
            Method::POST,
            "/v1/exports",
            key["key"].as_str(),
            Some(json!({"source": "config", "format": "json"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the configuration spans organizations"
    );
}
