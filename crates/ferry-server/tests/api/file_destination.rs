//! A `file` destination through the whole server: created under the
//! server's file roots (default `<data_dir>/files`), tested, delivered to.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::TestServer;

#[tokio::test]
async fn a_file_destination_writes_under_the_servers_file_roots_only() {
    let server = TestServer::start().await;
    let root = server.dir.path().join("files");
    assert!(root.is_dir(), "the default file root is created at start");

    let (status, v) = server
        .post(
            "/v1/destinations",
            json!({"name": "escape", "kind": "file", "config": {"directory": "/etc"}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["details"][0]["field"], "config.directory");

    let directory = root.join("orders");
    std::fs::create_dir(&directory).unwrap();
    let (status, v) = server
        .post(
            "/v1/destinations",
            json!({"name": "archive", "kind": "file", "config": {"directory": directory},
                   "filter": {"event_types": ["order.*"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["config"]["file_name"], "{id}.json");
    let dst = v["id"].as_str().unwrap().to_owned();
    let (_, check) = server
        .post(&format!("/v1/destinations/{dst}/test"), json!({}))
        .await;
    assert_eq!(check["ok"], true, "{check}");

    let accepted = server
        .send(json!({"type": "order.created", "data": {"n": 1}}))
        .await;
    let delivery = accepted["deliveries"][0]["id"].as_str().unwrap();
    server
        .wait_status(delivery, "delivered", Duration::from_secs(20))
        .await;
    let id = accepted["id"].as_str().unwrap();
    let written: Value =
        serde_json::from_slice(&std::fs::read(directory.join(format!("{id}.json"))).unwrap())
            .unwrap();
    assert_eq!(written["id"], id);
    assert_eq!(written["data"], json!({"n": 1}));
}
