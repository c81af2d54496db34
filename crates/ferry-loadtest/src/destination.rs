//! The run's destination on the server: created for `load.*` with the
//! kind's config and, on a server the tool did not start, removed at the
//! end.

use anyhow::Context as _;
use ferry_client::ApiClient;
use serde_json::{Value, json};

use super::LoadtestArgs;

/// Deletes the destination, which stops routing `load.*` to it. An
/// attempt whose record is still being written when it goes is recorded
/// as the attempt ended (a delivery that was made stays `delivered`).
pub async fn remove(api: &ApiClient, destination_id: &str) -> anyhow::Result<()> {
    api.delete(&format!("/v1/destinations/{destination_id}"))
        .await
        .with_context(|| format!("could not delete destination {destination_id}"))?;
    Ok(())
}

/// `POST /v1/destinations`: `kind` with `config` and `auth` for `load.*`,
/// default retries, and the server's default `max_in_flight` unless
/// `--max-in-flight` names one.
pub async fn create_destination(
    api: &ApiClient,
    args: &LoadtestArgs,
    kind: &str,
    config: Value,
    auth: Value,
) -> anyhow::Result<String> {
    let mut body = json!({
        "name": format!("ferry loadtest {kind}"),
        "kind": kind,
        "config": config,
        "auth": auth,
        "filter": { "event_types": ["load.*"] },
    });
    if let Some(n) = args.max_in_flight {
        body["max_in_flight"] = json!(n);
    }
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
