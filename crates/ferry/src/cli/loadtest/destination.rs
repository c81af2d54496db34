//! The run's destination on the server: created for `load.*` with the
//! kind's config and, on a server the tool did not start, removed at the
//! end once every delivery of it is recorded.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Value, json};

use super::LoadtestArgs;
use crate::cli::client::ApiClient;

/// Deletes the destination, which stops routing `load.*` to it, once no
/// delivery of it is recorded as being attempted: the delivery counters the
/// tool waits for run ahead of the records, which are written in batches,
/// and deleting earlier would fail deliveries that were made. Returns what
/// went wrong, as warnings.
pub async fn remove(api: &ApiClient, destination_id: &str) -> Vec<String> {
    let mut warnings = Vec::new();
    if !settled(api, destination_id).await {
        warnings.push(format!(
            "deliveries of destination {destination_id} were still being recorded; deleting it fails them"
        ));
    }
    if let Err(e) = api
        .delete(&format!("/v1/destinations/{destination_id}"))
        .await
    {
        warnings.push(format!(
            "could not delete destination {destination_id}: {e}"
        ));
    }
    warnings
}

/// Waits (up to ten seconds) until no delivery of the destination is
/// recorded as being attempted; false if some still are.
async fn settled(api: &ApiClient, destination_id: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    let query = [
        ("destination_id", destination_id.to_owned()),
        ("status", "delivering".to_owned()),
        ("limit", "1".to_owned()),
    ];
    while Instant::now() < deadline {
        let listed = api.get("/v1/deliveries", &query).await;
        let attempting = listed.map_or(true, |r| {
            r.body
                .get("data")
                .and_then(Value::as_array)
                .is_none_or(|d| !d.is_empty())
        });
        if !attempting {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// `POST /v1/destinations`: `kind` with `config` and `auth` for `load.*`,
/// default retries.
pub async fn create_destination(
    api: &ApiClient,
    args: &LoadtestArgs,
    kind: &str,
    config: Value,
    auth: Value,
) -> anyhow::Result<String> {
    let body = json!({
        "name": format!("ferry loadtest {kind}"),
        "kind": kind,
        "config": config,
        "auth": auth,
        "filter": { "event_types": ["load.*"] },
        "max_in_flight": args.max_in_flight,
    });
    let created = api
        .post("/v1/destinations", &body)
        .await
        .context("cannot create the load test destination")?;
    created
        .body
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .context("the destination answer has no id")
}
