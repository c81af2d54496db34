//! `ferry api-keys list|create|delete`: API keys (`/v1/api-keys`). The key
//! itself is in the answer to `create` only, and shown with a warning.

use std::fmt::Write as _;

use ferry_client::table::Table;
use ferry_core::{ApiKeyId, OrgId};
use serde_json::{Value, json};

use super::{Ctx, Output};
use crate::cli::args::Paging;
use crate::cli::render::{list_footer, list_items, text, time};

/// What a key may do.
pub const SCOPES: [&str; 4] = ["read", "ingest", "manage", "admin"];

/// API keys: list, create, delete.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiKeysArgs {
    #[command(subcommand)]
    pub command: ApiKeysCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum ApiKeysCommand {
    /// List API keys, by prefix (GET /v1/api-keys).
    List {
        /// Another organization's keys (admin keys only) [default: the
        /// caller's].
        #[arg(long, value_name = "ORG")]
        org: Option<OrgId>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Create an API key; the key is shown only this once (POST /v1/api-keys).
    Create(CreateArgs),
    /// Revoke an API key; an admin key revokes any organization's (DELETE
    /// /v1/api-keys/{id}).
    Delete {
        /// The key (key_…).
        #[arg(value_name = "KEY_ID")]
        id: ApiKeyId,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct CreateArgs {
    /// What the key is for.
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// A scope the key has (repeatable).
    #[arg(long = "scope", value_name = "SCOPE", required = true, value_parser = SCOPES)]
    pub scopes: Vec<String>,
    /// The key's organization (admin keys only) [default: the caller's].
    #[arg(long, value_name = "ORG")]
    pub org: Option<OrgId>,
}

impl CreateArgs {
    pub fn body(&self) -> Value {
        let mut body = json!({ "name": self.name, "scopes": self.scopes });
        if let Some(org) = &self.org {
            body["org_id"] = json!(org);
        }
        body
    }
}

pub async fn run(ctx: &Ctx, args: ApiKeysArgs) -> anyhow::Result<Output> {
    match args.command {
        ApiKeysCommand::List { org, paging } => {
            let mut query = paging.pairs();
            if let Some(org) = org {
                query.push(("org_id", org.to_string()));
            }
            let answer = ctx.api.get("/v1/api-keys", &query).await?;
            Ok(Output::render(ctx.json, &answer.body, render_list))
        }
        ApiKeysCommand::Create(create) => {
            let answer = ctx.api.post("/v1/api-keys", &create.body()).await?;
            Ok(Output::render(ctx.json, &answer.body, render_created))
        }
        ApiKeysCommand::Delete { id } => {
            ctx.api.delete(&format!("/v1/api-keys/{id}")).await?;
            Ok(Output::deleted(
                ctx.json,
                format!("Revoked API key {id}.\n"),
            ))
        }
    }
}

/// The new key's id and scopes, then the key with the warning that it is shown once.
pub fn render_created(body: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Created API key {} ({:?}, scopes {}, organization {}).",
        text(body, "/id"),
        text(body, "/name"),
        text(body, "/scopes"),
        text(body, "/org_id"),
    );
    let _ = writeln!(out, "\nAPI key: {}", text(body, "/key"));
    out.push_str("It is shown only this once: store it now. Ferry keeps only its hash.\n");
    out
}

/// One row per key: id, name, prefix, scopes, organization, created, last used.
pub fn render_list(body: &Value) -> String {
    let (items, cursor) = list_items(body);
    let mut t = Table::new([
        "id",
        "name",
        "prefix",
        "scopes",
        "org",
        "created",
        "last used",
    ])
    .max_cell(60);
    for k in items {
        t.row([
            text(k, "/id"),
            text(k, "/name"),
            text(k, "/prefix"),
            text(k, "/scopes"),
            text(k, "/org_id"),
            time(k, "/created_at"),
            time(k, "/last_used_at"),
        ]);
    }
    let mut out = t.render();
    list_footer(&mut out, items.len(), ("API key", "API keys"), cursor);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_org_is_sent_only_when_given() {
        let mut args = CreateArgs {
            name: "ci".into(),
            scopes: vec!["ingest".into(), "read".into()],
            org: None,
        };
        assert_eq!(
            args.body(),
            json!({"name": "ci", "scopes": ["ingest", "read"]})
        );
        args.org = Some(OrgId::parse("org_1").unwrap());
        assert_eq!(args.body()["org_id"], "org_1");
    }

    #[test]
    fn the_key_is_shown_with_a_warning() {
        let body = json!({"id": "key_1", "name": "ci", "scopes": ["read"], "org_id": "org_1",
                          "key": "fk_secret"});
        let text = render_created(&body);
        assert!(
            text.starts_with(
                "Created API key key_1 (\"ci\", scopes read, organization org_1).\n\nAPI key: fk_secret\nIt is shown only this once"
            ),
            "{text}"
        );
    }

    #[test]
    fn lists_show_prefixes() {
        let body = json!({"data": [{"id": "key_1", "name": "ci", "prefix": "fk_ab12",
            "scopes": ["read", "ingest"], "org_id": "org_1",
            "created_at": "2026-11-02T10:00:00Z", "last_used_at": null}], "next_cursor": null});
        assert_eq!(
            render_list(&body),
            "ID     NAME  PREFIX   SCOPES       ORG    CREATED              LAST USED\n\
             key_1  ci    fk_ab12  read,ingest  org_1  2026-11-02 10:00:00  -\n\
             1 API key.\n"
        );
    }
}
