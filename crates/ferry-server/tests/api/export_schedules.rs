//! Export schedules through the whole server: runs start within seconds of
//! their cron time with their placeholders filled, retention removes older
//! outputs from the disk, a failing run is retried and then alerts the
//! organization's alert destinations, and bad schedules are refused by
//! name with nothing created.

use std::time::{Duration, Instant};

use chrono::{DateTime, Timelike, Utc};
use ferry_testkit::Receiver;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{ADMIN_KEY, TestServer};

pub(super) async fn create(server: &TestServer, body: Value) -> Value {
    let (status, s) = server.post("/v1/export-schedules", body).await;
    assert_eq!(status, StatusCode::CREATED, "{s}");
    s
}

pub(super) async fn patch(server: &TestServer, id: &str, body: Value) -> (StatusCode, Value) {
    server
        .call(
            Method::PATCH,
            &format!("/v1/export-schedules/{id}"),
            Some(ADMIN_KEY),
            Some(body),
        )
        .await
}

/// Every run of a schedule (newest first), through the cursor.
pub(super) async fn runs(server: &TestServer, id: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut path = format!("/v1/export-schedules/{id}/runs?limit=100");
    loop {
        let (status, page) = server.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        all.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                path = format!("/v1/export-schedules/{id}/runs?limit=100&cursor={cursor}");
            }
            None => return all,
        }
    }
}

/// Waits until `done` holds for the schedule's runs; returns them.
pub(super) async fn wait_runs(
    server: &TestServer,
    id: &str,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let all = runs(server, id).await;
        if done(&all) {
            return all;
        }
        assert!(Instant::now() < deadline, "{what}: {all:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(super) fn finished(runs: &[Value]) -> bool {
    runs.iter()
        .all(|r| !matches!(r["status"].as_str(), Some("queued" | "running")))
}

pub(super) fn time(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .unwrap_or_else(|| panic!("a time: {v}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_schedule_runs_on_time_and_keeps_only_its_newest_outputs() {
    let server = TestServer::start().await;
    server
        .send(json!({"type": "order.created", "data": {"n": 1}}))
        .await;
    let s = create(
        &server,
        json!({"name": "every two seconds", "cron": "*/2 * * * * *", "timezone": "Europe/Berlin",
               "export": {"source": "deliveries", "format": "csv", "compression": "gzip",
                          "target": {"file": "scheduled/deliveries-{date}-{time}-{id}.csv.gz"}},
               "retention": {"keep_last": 2}}),
    )
    .await;
    let id = s["id"].as_str().unwrap();
    assert_eq!(s["enabled"], true);
    assert_eq!(time(&s["next_run_at"]).second() % 2, 0, "{s}");
    assert_eq!(
        s["links"]["runs"],
        format!("/v1/export-schedules/{id}/runs")
    );

    let done = wait_runs(&server, id, "four runs succeed", |r| {
        r.iter().filter(|r| r["status"] == "succeeded").count() >= 4
    })
    .await;
    let (status, off) = patch(&server, id, json!({"enabled": false})).await;
    assert_eq!(status, StatusCode::OK, "{off}");
    assert_eq!(off["next_run_at"], Value::Null);
    let all = wait_runs(&server, id, "runs end", finished).await;
    assert!(all.len() >= done.len());

    let mut ticks: Vec<DateTime<Utc>> = all.iter().map(|r| time(&r["scheduled_for"])).collect();
    for run in &all {
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["schedule_id"], id);
        assert_eq!(run["attempt"], 1);
        let due = time(&run["scheduled_for"]);
        assert_eq!(due.second() % 2, 0, "{run}");
        let late = time(&run["started_at"]) - due;
        assert!(
            late < chrono::Duration::seconds(5),
            "started {late} late: {run}"
        );
        // The placeholders hold the tick in the schedule's zone.
        let local = due.with_timezone(&chrono_tz::Europe::Berlin);
        let name = format!(
            "deliveries-{}-{}-{}.csv.gz",
            local.format("%Y-%m-%d"),
            local.format("%H%M%S"),
            run["id"].as_str().unwrap()
        );
        assert!(
            run["target"]["file"].as_str().unwrap().ends_with(&name),
            "{run}"
        );
    }
    ticks.sort();
    ticks.dedup();
    assert_eq!(ticks.len(), all.len(), "one run per tick");

    // Retention: the newest two outputs are on disk, the older ones gone
    // and marked, and a removed one no longer downloads.
    let dir = server.dir.path().join("files/scheduled");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    on_disk.sort();
    let mut kept: Vec<String> = all[..2]
        .iter()
        .map(|r| r["result"]["location"].as_str().unwrap().to_owned())
        .collect();
    kept.sort();
    assert_eq!(on_disk, kept);
    for old in &all[2..] {
        assert!(old["output_removed_at"].is_string(), "{old}");
        let (status, v) = server
            .get(&format!(
                "/v1/exports/{}/download",
                old["id"].as_str().unwrap()
            ))
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{v}");
        assert!(v["message"].as_str().unwrap().contains("retention"), "{v}");
    }
    let (_, audit) = server
        .get(&format!(
            "/v1/audit?entity_id={}",
            all[2]["id"].as_str().unwrap()
        ))
        .await;
    let actions: Vec<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"export.output_removed"), "{actions:?}");

    // Disabled, it starts no more runs.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(runs(&server, id).await.len(), all.len());
}

/// A cron expression that fires once, `secs` seconds from now (and then
/// not for a year).
pub(super) fn once_in(secs: i64) -> String {
    let at = Utc::now() + chrono::Duration::seconds(secs);
    format!(
        "{} {} {} {} {} *",
        at.second(),
        at.minute(),
        at.hour(),
        at.format("%-d"),
        at.format("%-m")
    )
}

#[tokio::test]
async fn a_failing_run_is_retried_then_alerts_the_organization() {
    let server = TestServer::start_with(|c| {
        c.exports.schedule_retries = 1;
        c.exports.schedule_retry_s = 1;
    })
    .await;
    let alerts = Receiver::start().await;
    let (alert_dst, _) = server
        .webhook(
            &alerts.url(),
            json!({"filter": {"event_types": ["ferry.*"]}}),
        )
        .await;
    let (status, v) = server
        .patch_default_org(json!({"alert_destinations": [alert_dst]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // A file where the export's directory should be: every run fails.
    std::fs::create_dir_all(server.dir.path().join("files")).unwrap();
    std::fs::write(server.dir.path().join("files/blocked"), b"a file").unwrap();
    let s = create(
        &server,
        json!({"name": "doomed", "cron": once_in(2),
               "export": {"source": "audit", "target": {"file": "blocked/audit.csv"}}}),
    )
    .await;
    let id = s["id"].as_str().unwrap();

    alerts.wait_for(1, Duration::from_secs(60)).await.unwrap();
    let alert = alerts.requests()[0].json();
    assert_eq!(alert["type"], "ferry.export.failed", "{alert}");
    assert_eq!(alert["data"]["schedule_id"], id);
    assert_eq!(alert["data"]["name"], "doomed");
    assert_eq!(alert["data"]["attempts"], 2);
    let export = alert["data"]["export_id"].as_str().unwrap();
    assert_eq!(
        alert["data"]["links"]["self"],
        format!("{}/v1/exports/{export}", server.base)
    );
    assert!(
        alert["data"]["error"]
            .as_str()
            .unwrap()
            .contains("cannot create the export file"),
        "{alert}"
    );
    let all = runs(&server, id).await;
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_eq!(
        (all[0]["attempt"].clone(), all[1]["attempt"].clone()),
        (json!(2), json!(1))
    );
    assert_eq!(all[0]["scheduled_for"], all[1]["scheduled_for"]);
    assert!(all.iter().all(|r| r["status"] == "failed"), "{all:#?}");
    // The retry waited its backoff.
    let gap = time(&all[0]["created_at"]) - time(&all[1]["finished_at"]);
    assert!(gap >= chrono::Duration::milliseconds(900), "{gap}");
    let (_, s) = server.get(&format!("/v1/export-schedules/{id}")).await;
    assert_eq!(s["retry"], Value::Null, "{s}");
    // No second alert for the same tick.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(alerts.count(), 1);
}

#[tokio::test]
async fn bad_schedules_are_refused_by_name_and_change_nothing() {
    let server = TestServer::start().await;
    let good = json!({"name": "n", "cron": "0 3 * * *", "export": {"source": "audit"}});
    let cases = [
        (
            json!({"cron": "61 * * * *"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "cron",
        ),
        (
            json!({"timezone": "Mars/Base"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "timezone",
        ),
        (
            json!({"name": " "}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "name",
        ),
        (
            json!({"export": {"source": "orders"}}),
            StatusCode::BAD_REQUEST,
            "export.source",
        ),
        (
            json!({"export": {"source": "audit", "fields": ["nope"]}}),
            StatusCode::BAD_REQUEST,
            "export.fields[0]",
        ),
        (
            json!({"export": {"source": "audit", "target": {"file": "x/{week}.csv"}}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "export.target.file",
        ),
        (
            json!({"export": {"source": "audit", "target": {"file": "../up.csv"}}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "export.target.file",
        ),
        (
            json!({"retention": {"keep_last": 0}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "retention.keep_last",
        ),
    ];
    for (change, want, field) in cases {
        let mut body = good.clone();
        crate::harness::merge(&mut body, change.clone());
        let (status, v) = server.post("/v1/export-schedules", body).await;
        assert_eq!(status, want, "{change}: {v}");
        let fields: Vec<&str> = v["details"]
            .as_array()
            .unwrap_or_else(|| panic!("{v}"))
            .iter()
            .map(|d| d["field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&field), "{change}: {v}");
    }
    let (status, v) = server
        .post(
            "/v1/export-schedules",
            json!({"name": "n", "cron": "0 3 * * *", "export": {"source": "audit"}, "every": 2}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    let (_, list) = server.get("/v1/export-schedules").await;
    assert_eq!(list["data"], json!([]), "nothing was created");

    let s = create(&server, good.clone()).await;
    let id = s["id"].as_str().unwrap();
    let (status, v) = server.post("/v1/export-schedules", good.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");

    let (status, v) = patch(&server, id, json!({"cron": "every day"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (status, v) = patch(&server, id, json!({"colour": "red"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    let (_, unchanged) = server.get(&format!("/v1/export-schedules/{id}")).await;
    assert_eq!(unchanged["cron"], "0 3 * * *");
    assert_eq!(unchanged["next_run_at"], s["next_run_at"]);

    let (status, moved) = patch(
        &server,
        id,
        json!({"cron": "30 4 * * *", "timezone": "America/New_York", "name": "renamed"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    let next = time(&moved["next_run_at"]).with_timezone(&chrono_tz::America::New_York);
    assert_eq!((next.hour(), next.minute()), (4, 30), "{moved}");

    // A read key sees schedules but changes none.
    let (status, key) = server
        .post(
            "/v1/api-keys",
            json!({"name": "reader", "scopes": ["read"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let reader = key["key"].as_str().unwrap();
    let (status, _) = server
        .call(Method::GET, "/v1/export-schedules", Some(reader), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server
        .call(
            Method::POST,
            "/v1/export-schedules",
            Some(reader),
            Some(good.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/v1/export-schedules/{id}"),
            Some(reader),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/v1/export-schedules/{id}"),
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server.get(&format!("/v1/export-schedules/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server.get("/v1/export-schedules/sch_nope/runs").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, audit) = server.get(&format!("/v1/audit?entity_id={id}")).await;
    let mut actions: Vec<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    actions.sort();
    assert_eq!(
        actions,
        [
            "export_schedule.created",
            "export_schedule.deleted",
            "export_schedule.updated"
        ]
    );
}
