//! `ferry destinations create|list|test|alerts`: a webhook destination from
//! flags or a full spec file (`POST /v1/destinations`, showing the signing
//! secret once), the list (`GET /v1/destinations`), a real connection test
//! (`POST /v1/destinations/{id}/test`, exit 1 when it fails), and its
//! overrides of the organization's alert settings (`PATCH …/{id}`).

use std::fmt::Write as _;

use ferry_client::table::Table;
use ferry_client::usage;
use ferry_core::DestinationId;
use serde_json::{Map, Value, json};

use super::alert_flags::{self, AlertFlags};
use super::{Ctx, Output};
use crate::cli::args::{Paging, parse_header, read_spec_file};
use crate::cli::render::{list_footer, list_items, text, text_any};

/// Retry policy the API documents as its default, sent whole when any retry flag is given.
const DEFAULT_RETRY: (u32, u64, f64, u64) = (5, 1000, 2.0, 3_600_000);

/// Destinations: create, list, test, alert settings.
#[derive(Debug, Clone, clap::Args)]
pub struct DestinationsArgs {
    #[command(subcommand)]
    pub command: DestinationsCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum DestinationsCommand {
    /// Create a webhook destination from flags, or any destination from a spec file.
    Create(CreateArgs),
    /// List destinations (GET /v1/destinations).
    List {
        #[command(flatten)]
        paging: Paging,
    },
    /// Connect and authenticate for real; exit code 1 when it fails.
    Test {
        /// The destination (dst_…).
        #[arg(value_name = "DST")]
        id: DestinationId,
    },
    /// Show or override the organization's alert settings for one
    /// destination: when it counts as failing, when it is disabled.
    Alerts {
        /// The destination (dst_…).
        #[arg(value_name = "DST")]
        id: DestinationId,
        #[command(flatten)]
        flags: AlertFlags,
    },
}

/// `POST /v1/destinations`. The signing secret in the answer is shown only once.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(group(clap::ArgGroup::new("spec").required(true).args(["name", "from_file"])))]
pub struct CreateArgs {
    /// Destination name.
    #[arg(long, value_name = "NAME", requires = "webhook_url")]
    pub name: Option<String>,
    /// Where the webhooks are POSTed (`--url` is the Ferry server's URL).
    #[arg(long, value_name = "URL", requires = "name")]
    pub webhook_url: Option<String>,
    /// Route events whose type matches this glob, e.g. order.* (repeatable).
    #[arg(long = "event-type", value_name = "GLOB")]
    pub event_types: Vec<String>,
    /// Receive events no filter matched.
    #[arg(long)]
    pub default: bool,
    /// Retries before the dead-letter queue [server default: 5].
    #[arg(long, value_name = "N")]
    pub max_retries: Option<u32>,
    /// First retry delay [server default: 1000].
    #[arg(long, value_name = "MS")]
    pub initial_backoff_ms: Option<u64>,
    /// Per-attempt timeout [server default: 10000].
    #[arg(long, value_name = "MS")]
    pub timeout_ms: Option<u64>,
    /// Send `Authorization: Bearer <TOKEN>`.
    #[arg(long, value_name = "TOKEN")]
    pub bearer_token: Option<String>,
    /// Extra request header NAME=VALUE (repeatable).
    #[arg(long = "header", value_name = "NAME=VALUE", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    /// The whole request body as JSON, from FILE or - (stdin); no other flag allowed.
    #[arg(
        long,
        value_name = "FILE|-",
        conflicts_with_all = [
            "name", "webhook_url", "event_types", "default", "max_retries",
            "initial_backoff_ms", "timeout_ms", "bearer_token", "headers"
        ]
    )]
    pub from_file: Option<String>,
}

impl CreateArgs {
    /// The request body: the spec file, or a webhook destination built from the flags.
    pub fn body(&self) -> anyhow::Result<Value> {
        if let Some(file) = &self.from_file {
            return read_spec_file(file);
        }
        let (Some(name), Some(url)) = (&self.name, &self.webhook_url) else {
            return Err(usage("give --name and --webhook-url, or --from-file"));
        };
        let mut config = Map::new();
        config.insert("url".into(), json!(url));
        if !self.headers.is_empty() {
            let headers: Map<String, Value> = self
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            config.insert("headers".into(), Value::Object(headers));
        }
        if let Some(t) = self.timeout_ms {
            config.insert("timeout_ms".into(), json!(t));
        }
        let mut body = json!({ "name": name, "kind": "webhook", "config": config });
        if let Some(token) = &self.bearer_token {
            body["auth"] = json!({ "type": "bearer", "token": token });
        }
        if !self.event_types.is_empty() {
            body["filter"] = json!({ "event_types": self.event_types });
        }
        if self.max_retries.is_some() || self.initial_backoff_ms.is_some() {
            let (retries, backoff, multiplier, max_backoff) = DEFAULT_RETRY;
            body["retry"] = json!({
                "max_retries": self.max_retries.unwrap_or(retries),
                "initial_backoff_ms": self.initial_backoff_ms.unwrap_or(backoff),
                "multiplier": multiplier,
                "max_backoff_ms": max_backoff,
            });
        }
        if self.default {
            body["default"] = json!(true);
        }
        Ok(body)
    }
}

pub async fn run(ctx: &Ctx, args: DestinationsArgs) -> anyhow::Result<Output> {
    match args.command {
        DestinationsCommand::Create(create) => {
            let answer = ctx.api.post("/v1/destinations", &create.body()?).await?;
            Ok(Output::render(ctx.json, &answer.body, render_created))
        }
        DestinationsCommand::List { paging } => {
            let answer = ctx.api.get("/v1/destinations", &paging.pairs()).await?;
            Ok(Output::render(ctx.json, &answer.body, render_list))
        }
        DestinationsCommand::Test { id } => {
            let answer = ctx
                .api
                .post(&format!("/v1/destinations/{id}/test"), &json!({}))
                .await?;
            let ok = answer
                .body
                .get("ok")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let mut output = Output::render(ctx.json, &answer.body, |b| render_test(&id, b));
            output.ok = ok;
            Ok(output)
        }
        DestinationsCommand::Alerts { id, flags } => {
            let path = format!("/v1/destinations/{id}");
            let mut answer = ctx.api.get(&path, &[]).await?;
            if let Some(alerts) = flags.apply(&answer.body["alerts"])? {
                answer = ctx.api.patch(&path, &json!({ "alerts": alerts })).await?;
            }
            Ok(Output::render(ctx.json, &answer.body, |b| {
                format!(
                    "{}: {}\n",
                    text(b, "/id"),
                    alert_flags::describe(&b["alerts"])
                        .replace("defaults", "the organization's settings")
                )
            }))
        }
    }
}

/// The new id, and the signing secret with the warning that it is shown once.
pub fn render_created(body: &Value) -> String {
    let d = body
        .get("destination")
        .filter(|d| d.is_object())
        .unwrap_or(body);
    let mut out = String::new();
    let target = text_any(d, &["/config/url", "/url"]);
    let _ = write!(
        out,
        "Created destination {} ({:?}, {}",
        text(d, "/id"),
        text(d, "/name"),
        text(d, "/kind")
    );
    if !target.is_empty() {
        let _ = write!(out, " → {target}");
    }
    out.push_str(").\n");
    let secret = text_any(body, &["/signing_secret", "/destination/signing_secret"]);
    if !secret.is_empty() {
        let _ = writeln!(out, "\nSigning secret: {secret}");
        out.push_str(
            "It is shown only this once: store it now. Receivers verify the \
             webhook-signature header with it.\n",
        );
    }
    out
}

/// One row per destination: id, name, kind, target, filter, default, state.
pub fn render_list(body: &Value) -> String {
    let (items, cursor) = list_items(body);
    if items.is_empty() && cursor.is_none() {
        return "No destinations yet: create one with `ferry destinations create`.\n".to_owned();
    }
    let mut t = Table::new([
        "id",
        "name",
        "kind",
        "target",
        "event types",
        "default",
        "state",
    ])
    .hide_empty_columns()
    .max_cell(60);
    for d in items {
        let mut state = text_any(d, &["/state", "/health/state", "/status"]);
        if state.is_empty() {
            state = match d.get("enabled").and_then(Value::as_bool) {
                Some(true) => "enabled".to_owned(),
                Some(false) => "disabled".to_owned(),
                None => String::new(),
            };
        }
        let default = match d.get("default").and_then(Value::as_bool) {
            Some(true) => "yes".to_owned(),
            _ => String::new(),
        };
        t.row([
            text(d, "/id"),
            text(d, "/name"),
            text(d, "/kind"),
            text_any(d, &["/config/url", "/url"]),
            text(d, "/filter/event_types"),
            default,
            state,
        ]);
    }
    let mut out = t.render();
    list_footer(
        &mut out,
        items.len(),
        ("destination", "destinations"),
        cursor,
    );
    out
}

/// `ok: <message>` or `failed: <message>`.
pub fn render_test(id: &DestinationId, body: &Value) -> String {
    let ok = body.get("ok").and_then(Value::as_bool).unwrap_or(false);
    let message = text(body, "/message");
    let verdict = if ok { "ok" } else { "failed" };
    if message.is_empty() {
        format!("{id}: {verdict}\n")
    } else {
        format!("{id}: {verdict}: {message}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags() -> CreateArgs {
        CreateArgs {
            name: Some("billing hook".into()),
            webhook_url: Some("https://example.com/hook".into()),
            ..CreateArgs::default()
        }
    }

    #[test]
    fn minimal_flags_make_a_minimal_webhook() {
        assert_eq!(
            flags().body().unwrap(),
            json!({"name": "billing hook", "kind": "webhook",
                   "config": {"url": "https://example.com/hook"}})
        );
    }

    #[test]
    fn every_flag_lands_in_its_field() {
        let args = CreateArgs {
            event_types: vec!["order.*".into(), "invoice.paid".into()],
            default: true,
            max_retries: Some(3),
            timeout_ms: Some(2000),
            bearer_token: Some("t0k".into()),
            headers: vec![("X-Team".into(), "billing".into())],
            ..flags()
        };
        assert_eq!(
            args.body().unwrap(),
            json!({
                "name": "billing hook", "kind": "webhook",
                "config": {"url": "https://example.com/hook", "headers": {"X-Team": "billing"},
                           "timeout_ms": 2000},
                "auth": {"type": "bearer", "token": "t0k"},
                "filter": {"event_types": ["order.*", "invoice.paid"]},
                "retry": {"max_retries": 3, "initial_backoff_ms": 1000, "multiplier": 2.0,
                          "max_backoff_ms": 3600000},
                "default": true
            })
        );
    }

    #[test]
    fn a_spec_file_is_sent_as_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spec.json");
        std::fs::write(&path, r#"{"name": "q", "kind": "amqp", "config": {}}"#).unwrap();
        let args = CreateArgs {
            from_file: Some(path.display().to_string()),
            ..CreateArgs::default()
        };
        assert_eq!(
            args.body().unwrap(),
            json!({"name": "q", "kind": "amqp", "config": {}})
        );
        std::fs::write(&path, "[]").unwrap();
        assert!(args.body().is_err());
    }

    #[test]
    fn the_secret_is_shown_with_a_warning() {
        let body = json!({"id": "dst_1", "name": "hook", "kind": "webhook",
                          "config": {"url": "https://x/h"}, "signing_secret": "whsec_abc"});
        let text = render_created(&body);
        assert!(
            text.starts_with("Created destination dst_1 (\"hook\", webhook → https://x/h).\n"),
            "{text}"
        );
        assert!(
            text.contains("Signing secret: whsec_abc\nIt is shown only this once"),
            "{text}"
        );
    }

    #[test]
    fn list_and_test_render() {
        let body = json!({"data": [{"id": "dst_1", "name": "hook", "kind": "webhook",
            "config": {"url": "https://x/h"}, "filter": {"event_types": ["a.*", "b"]},
            "default": false, "enabled": true}], "next_cursor": null});
        assert_eq!(
            render_list(&body),
            "ID     NAME  KIND     TARGET       EVENT TYPES  STATE\n\
             dst_1  hook  webhook  https://x/h  a.*,b        enabled\n\
             1 destination.\n"
        );
        let id = DestinationId::parse("dst_1").unwrap();
        assert_eq!(
            render_test(&id, &json!({"ok": false, "message": "connection refused"})),
            "dst_1: failed: connection refused\n"
        );
        assert_eq!(render_test(&id, &json!({"ok": true})), "dst_1: ok\n");
    }
}
