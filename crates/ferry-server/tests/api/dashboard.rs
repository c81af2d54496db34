//! The Grafana dashboard shipped in `examples/grafana` is built on metrics
//! that exist: every `ferry_*` name its queries use is in `/metrics` once a
//! server has delivered an event and run an export.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use ferry_testkit::Receiver;
use serde_json::{Value, json};

use crate::exports::export;
use crate::harness::TestServer;

const DASHBOARD: &str = include_str!("../../../../examples/grafana/ferry-dashboard.json");

/// The metric names the dashboard's queries read (histogram series by their
/// family name).
fn dashboard_metrics() -> BTreeSet<String> {
    let dashboard: Value = serde_json::from_str(DASHBOARD).expect("the dashboard is JSON");
    assert_eq!(dashboard["uid"], "ferry-overview");
    let name = regex::Regex::new(r"ferry_[a-z_]+").unwrap();
    let mut names = BTreeSet::new();
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 10);
    for panel in panels {
        let targets = panel["targets"]
            .as_array()
            .expect("every panel has queries");
        assert!(!targets.is_empty(), "{}", panel["title"]);
        for target in targets {
            let expr = target["expr"].as_str().expect("a PromQL expression");
            for found in name.find_iter(expr) {
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| found.as_str().strip_suffix(s))
                    .unwrap_or(found.as_str());
                names.insert(family.to_owned());
            }
        }
    }
    names
}

#[tokio::test]
async fn every_metric_the_grafana_dashboard_names_is_served() {
    let wanted = dashboard_metrics();
    for must in [
        "ferry_deliveries_total",
        "ferry_delivery_latency_seconds",
        "ferry_queue_lag_seconds",
        "ferry_queue_depth",
        "ferry_destinations",
        "ferry_alerts_total",
        "ferry_exports_total",
    ] {
        assert!(wanted.contains(must), "the dashboard shows no {must}");
    }

    let server = TestServer::start().await;
    let receiver = Receiver::start().await;
    server.webhook(&receiver.url(), json!({})).await;
    let accepted = server
        .send(json!({"type": "order.created", "data": {"n": 1}}))
        .await;
    let delivery = accepted["deliveries"][0]["id"].as_str().unwrap();
    server
        .wait_status(delivery, "delivered", Duration::from_secs(20))
        .await;
    let job = export(&server, json!({"source": "events"})).await;
    assert_eq!(job["status"], "succeeded", "{job}");

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = server.metrics().await;
        let served: BTreeSet<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(['{', ' ']).next())
            .map(|n| {
                ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| n.strip_suffix(s))
                    .unwrap_or(n)
            })
            .collect();
        let missing: Vec<&String> = wanted
            .iter()
            .filter(|n| !served.contains(n.as_str()))
            .collect();
        if missing.is_empty() {
            // The per-destination-kind series the success-rate panel divides.
            assert!(
                text.contains(r#"ferry_deliveries_total{kind="webhook",outcome="delivered"} "#),
                "{text}"
            );
            assert!(
                text.contains(r#"ferry_destinations{kind="webhook",state="healthy"} 1"#),
                "{text}"
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the dashboard reads metrics /metrics does not serve: {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn per_destination_series_are_opt_in() {
    let server = TestServer::start_with(|c| c.metrics.per_destination = true).await;
    let receiver = Receiver::start().await;
    let (dst, _) = server.webhook(&receiver.url(), json!({})).await;
    let accepted = server
        .send(json!({"type": "order.created", "data": {"n": 2}}))
        .await;
    let delivery = accepted["deliveries"][0]["id"].as_str().unwrap();
    server
        .wait_status(delivery, "delivered", Duration::from_secs(20))
        .await;
    let text = server.metrics().await;
    for series in [
        format!(
            r#"ferry_deliveries_total{{kind="webhook",destination="{dst}",outcome="delivered"}} 1"#
        ),
        format!(r#"ferry_delivery_latency_seconds_count{{kind="webhook",destination="{dst}"}} 1"#),
        format!(r#"ferry_attempt_duration_seconds_count{{kind="webhook",destination="{dst}"}} 1"#),
    ] {
        assert!(text.contains(&series), "no {series} in\n{text}");
    }
}
