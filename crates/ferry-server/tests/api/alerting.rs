//! Alerts and automatic disabling: a destination failing under a flood of
//! deliveries announces it once per debounce window, is disabled at its
//! threshold (as `system`, audited, its deliveries kept waiting), and
//! announces its recovery once an operator enables it and it delivers;
//! exhausted deliveries arrive as one alert with a count; an alert
//! destination that fails raises nothing; the settings are validated.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ferry_testkit::{Behavior, Receiver};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backlog::send_backlog;
use crate::harness::{ADMIN_KEY, TestServer};

const WAIT: Duration = Duration::from_secs(120);
const FLOOD: usize = 10_000;

/// The deliveries of `dst` by status, counted page by page.
async fn statuses(server: &TestServer, dst: &str) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/deliveries?destination_id={dst}&limit=1000");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, v) = server.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        for d in v["data"].as_array().unwrap() {
            *counts
                .entry(d["status"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return counts,
        }
    }
}

/// The alerts a receiver got, as (type, data).
fn alerts(receiver: &Receiver) -> Vec<(String, Value)> {
    receiver
        .requests()
        .iter()
        .map(|r| r.json())
        .map(|v| {
            (
                v["type"].as_str().unwrap_or_default().to_owned(),
                v["data"].clone(),
            )
        })
        .collect()
}

fn of_type<'a>(alerts: &'a [(String, Value)], kind: &str) -> Vec<&'a Value> {
    alerts
        .iter()
        .filter(|(t, _)| t == kind)
        .map(|(_, d)| d)
        .collect()
}

async fn wait_for_alert(receiver: &Receiver, kind: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(data) = of_type(&alerts(receiver), kind).first() {
            return (*data).clone();
        }
        assert!(
            Instant::now() < deadline,
            "no {kind} alert: {:?}",
            alerts(receiver)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Makes `alert_dsts` the organization's alert destinations, with `alerts`
/// as its alert settings.
async fn set_org_alerts(server: &TestServer, alert_dsts: &[&str], alerts: Value) -> Value {
    let (status, v) = server
        .patch_default_org(json!({"alert_destinations": alert_dsts, "alerts": alerts}))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v
}

/// A receiver that gets the organization's alerts (through a webhook
/// destination that gets nothing else), and the organization with `alerts`
/// as its alert settings.
async fn alert_channel(server: &TestServer, alerts: Value) -> (Receiver, Value) {
    let receiver = Receiver::start().await;
    let (dst, _) = server
        .webhook(&receiver.url(), json!({"filter": {"event_types": []}}))
        .await;
    let org = set_org_alerts(server, &[&dst], alerts).await;
    (receiver, org)
}

#[tokio::test]
async fn a_flood_of_failing_deliveries_alerts_once_disables_at_the_threshold_and_recovers() {
    // The breaker is out of the way: every delivery is attempted.
    let server = TestServer::start_with(|c| c.dispatch.breaker_threshold = 1_000_000).await;
    let failing = Receiver::start().await;
    failing.set_behavior(Behavior::Status(500));
    let (alert_receiver, org) = alert_channel(
        &server,
        json!({"alert_after": {"consecutive_failures": 5}, "debounce_s": 3600}),
    )
    .await;
    assert_eq!(org["alerts"]["alert_after"]["consecutive_failures"], 5);
    // Two attempts each: 20,000 failures in all, disabled at 15,000.
    let (dst, _) = server
        .webhook(
            &failing.url(),
            json!({"filter": {"event_types": []}, "max_in_flight": 64,
                "retry": {"max_retries": 1, "initial_backoff_ms": 10, "max_backoff_ms": 10},
                "alerts": {"disable_after": {"consecutive_failures": 15_000}}}),
        )
        .await;
    send_backlog(&server, &dst, "flood", FLOOD).await;

    let disabled = wait_for_alert(&alert_receiver, "ferry.destination.disabled").await;
    assert_eq!(disabled["destination_id"], dst.as_str());
    assert!(
        disabled["failed_in_a_row"].as_u64().unwrap() >= 15_000,
        "{disabled}"
    );
    assert!(disabled["last_error"].as_str().unwrap().contains("500"));
    assert_eq!(
        disabled["links"]["self"],
        format!("{}/v1/destinations/{dst}", server.base)
    );
    let (_, d) = server.get(&format!("/v1/destinations/{dst}")).await;
    assert_eq!(
        (d["enabled"].as_bool(), d["state"].as_str()),
        (Some(false), Some("disabled"))
    );
    // Disabled, not dropped: what is left waits, unattempted.
    let attempts = failing.count();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(
        failing.count() <= attempts + 64,
        "attempts went on after the disable"
    );
    let before = statuses(&server, &dst).await;
    let dead = before.get("dead").copied().unwrap_or(0);
    let waiting = FLOOD - dead;
    assert!(waiting > 0 && dead > 0, "{before:?}");
    assert_eq!(before.get("delivered"), None, "{before:?}");

    // The dead deliveries so far: one alert carrying a count.
    let exhausted = wait_for_alert(&alert_receiver, "ferry.delivery.exhausted").await;
    assert!(exhausted["count"].as_u64().unwrap() >= 1, "{exhausted}");

    failing.set_behavior(Behavior::Ok);
    let (status, v) = server
        .post(&format!("/v1/destinations/{dst}/enable"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let recovered = wait_for_alert(&alert_receiver, "ferry.destination.recovered").await;
    assert_eq!(recovered["destination_id"], dst.as_str());
    // Re-enabling drains what waited.
    let deadline = Instant::now() + WAIT;
    loop {
        let now = statuses(&server, &dst).await;
        if now.get("delivered") == Some(&waiting) {
            assert_eq!(now.get("dead"), Some(&dead));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the waiting deliveries did not drain: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let got = alerts(&alert_receiver);
    assert_eq!(
        of_type(&got, "ferry.destination.failing").len(),
        1,
        "{got:?}"
    );
    assert_eq!(of_type(&got, "ferry.destination.disabled").len(), 1);
    assert_eq!(of_type(&got, "ferry.destination.recovered").len(), 1);
    assert_eq!(of_type(&got, "ferry.delivery.exhausted").len(), 1);
    let failing_alert = of_type(&got, "ferry.destination.failing")[0];
    assert_eq!(failing_alert["failed_in_a_row"], 5);

    // The audit trail: disabled by Ferry itself, enabled by the operator.
    let (_, audit) = server.get(&format!("/v1/audit?entity_id={dst}")).await;
    let steps: Vec<(String, String)> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap().to_owned(),
                r["actor"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let disabled_by = steps.iter().find(|(a, _)| a == "destination.disabled");
    assert_eq!(
        disabled_by.map(|(_, actor)| actor.as_str()),
        Some("system"),
        "{steps:?}"
    );
    let enabled_by = steps.iter().find(|(a, _)| a == "destination.enabled");
    assert!(
        enabled_by.is_some_and(|(_, actor)| actor.starts_with("key_")),
        "{steps:?}"
    );
}

#[tokio::test]
async fn an_alert_destination_that_fails_raises_nothing() {
    let server = TestServer::start().await;
    let (broken, working, failing) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    broken.set_behavior(Behavior::Status(500));
    failing.set_behavior(Behavior::Status(500));
    let retry = json!({"max_retries": 0, "initial_backoff_ms": 10, "max_backoff_ms": 10});
    let none = json!({"event_types": []});
    let (broken_dst, _) = server
        .webhook(&broken.url(), json!({"filter": none, "retry": retry}))
        .await;
    let (working_dst, _) = server
        .webhook(&working.url(), json!({"filter": none}))
        .await;
    let (dst, _) = server
        .webhook(&failing.url(), json!({"filter": none, "retry": retry}))
        .await;
    set_org_alerts(
        &server,
        &[&broken_dst, &working_dst],
        json!({"alert_after": {"consecutive_failures": 2}}),
    )
    .await;
    // The broken alert destination fails its own deliveries too, past the
    // threshold, and they go dead.
    for i in 0..5 {
        server
            .send(json!({"type": "t", "data": {"i": i}, "destinations": [dst, broken_dst]}))
            .await;
    }
    let failing_alert = wait_for_alert(&working, "ferry.destination.failing").await;
    assert_eq!(failing_alert["destination_id"], dst.as_str());
    wait_for_alert(&working, "ferry.delivery.exhausted").await;
    // The broken one got (and failed) the alerts as well as the events.
    let deadline = Instant::now() + WAIT;
    while broken.count() < 7 {
        assert!(
            Instant::now() < deadline,
            "the broken destination got {}",
            broken.count()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Past the next exhausted report's tick: nothing about the broken one.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let got = alerts(&working);
    assert!(
        got.iter()
            .all(|(_, data)| data["destination_id"] == dst.as_str()),
        "an alert destination raised alerts about itself: {got:?}"
    );
}

#[tokio::test]
async fn alert_settings_are_validated_field_by_field_and_shown() {
    let server = TestServer::start().await;
    let receiver = Receiver::start().await;
    let (status, v) = server
        .post(
            "/v1/destinations",
            json!({"name": "hook", "kind": "webhook", "config": {"url": receiver.url()},
                "alerts": {"alert_after": {"failure_rate": {"percent": 150, "min_attempts": 0, "window_s": 60}},
                    "debounce_s": 0}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let fields: Vec<&str> = v["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "alerts.alert_after.failure_rate.percent",
            "alerts.alert_after.failure_rate.min_attempts",
            "alerts.debounce_s"
        ],
        "{v}"
    );
    let (status, v) = server
        .post(
            "/v1/destinations",
            json!({"name": "hook", "kind": "webhook", "config": {"url": receiver.url()},
                "alerts": {"disable_after": {"after_s": 5}}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v.to_string().contains("after_s"), "{v}");

    let (dst, _) = server
        .webhook(&receiver.url(), json!({"alerts": {"disable_after": {}}}))
        .await;
    let (_, d) = server.get(&format!("/v1/destinations/{dst}")).await;
    assert_eq!(d["alerts"], json!({"disable_after": {}}));
    // `{}` clears the overrides.
    let (status, d) = server
        .call(
            Method::PATCH,
            &format!("/v1/destinations/{dst}"),
            Some(ADMIN_KEY),
            Some(json!({"alerts": {}})),
        )
        .await;
    assert_eq!((status, &d["alerts"]), (StatusCode::OK, &json!({})), "{d}");

    let (status, v) = server
        .patch_default_org(json!({"alerts": {"disable_after": {"consecutive_failures": 0}}}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(
        v["details"][0]["field"],
        "alerts.disable_after.consecutive_failures"
    );
    let (_, orgs) = server.get("/v1/orgs").await;
    assert_eq!(
        orgs["data"][0]["alerts"],
        json!({}),
        "a refused change changed nothing"
    );
}

#[tokio::test]
async fn a_slow_destination_and_a_lagging_queue_raise_a_warning_once() {
    let server = TestServer::start_with(|c| c.dispatch.lagging_after_s = 1).await;
    let slow = Receiver::start().await;
    slow.set_behavior(Behavior::Delay(Duration::from_millis(400)));
    let (alert_receiver, _) = alert_channel(&server, json!({})).await;
    // One attempt at a time, each slower than the threshold: the rest
    // wait their turn, so the queue lags too.
    let (dst, _) = server
        .webhook(
            &slow.url(),
            json!({"filter": {"event_types": []}, "max_in_flight": 1,
                "alerts": {"slow_after_ms": 100}}),
        )
        .await;
    for i in 0..30 {
        server
            .send(json!({"type": "t", "data": {"i": i}, "destinations": [dst]}))
            .await;
    }
    let slow_alert = wait_for_alert(&alert_receiver, "ferry.destination.slow").await;
    assert_eq!(slow_alert["destination_id"], dst.as_str());
    assert_eq!(slow_alert["threshold_ms"], 100);
    assert!(
        slow_alert["p99_ms"].as_u64().unwrap() >= 400,
        "{slow_alert}"
    );
    let lagging = wait_for_alert(&alert_receiver, "ferry.queue.lagging").await;
    assert!(lagging["lag_s"].as_f64().unwrap() > 1.0, "{lagging}");
    assert_eq!(lagging["threshold_s"], 1);
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("ferry_warnings{type=\"destination_slow\"} 1"),
        "{metrics}"
    );
    slow.wait_for(30, WAIT).await.unwrap();
    // Still slow and lagging over several checks: announced once each.
    let got = alerts(&alert_receiver);
    assert_eq!(of_type(&got, "ferry.destination.slow").len(), 1, "{got:?}");
    assert_eq!(of_type(&got, "ferry.queue.lagging").len(), 1, "{got:?}");
}
