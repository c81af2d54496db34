//! `ferry orgs list|create|get|update`: organizations (`/v1/orgs`, admin
//! scope).

use ferry_client::table::{Table, key_values};
use ferry_core::{DestinationId, OrgId};
use serde_json::{Map, Value, json};

use super::alert_flags::{self, AlertFlags};
use super::{Ctx, Output};
use crate::cli::args::Paging;
use crate::cli::render::{list_footer, list_items, text, time};

/// Organizations (admin scope).
#[derive(Debug, Clone, clap::Args)]
pub struct OrgsArgs {
    #[command(subcommand)]
    pub command: OrgsCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum OrgsCommand {
    /// List organizations (GET /v1/orgs).
    List {
        #[command(flatten)]
        paging: Paging,
    },
    /// Create an organization (POST /v1/orgs).
    Create {
        /// Its name.
        #[arg(long, value_name = "NAME")]
        name: String,
    },
    /// Show an organization (GET /v1/orgs/{id}).
    Get {
        /// The organization (org_…).
        #[arg(value_name = "ORG")]
        id: OrgId,
    },
    /// Rename an organization, set where its alerts go and when its
    /// destinations count as failing or are disabled (PATCH /v1/orgs/{id}).
    Update(UpdateArgs),
}

#[derive(Debug, Clone, clap::Args)]
#[command(group(
    clap::ArgGroup::new("change")
        .required(true)
        .multiple(true)
        .args(["name", "alert_destinations", "no_alert_destinations"])
        .args(alert_flags::FLAG_IDS)
))]
pub struct UpdateArgs {
    /// The organization (org_…).
    #[arg(value_name = "ORG")]
    pub id: OrgId,
    /// New name.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Send the organization's alerts to this destination (repeatable;
    /// replaces the list).
    #[arg(long = "alert-destination", value_name = "DST")]
    pub alert_destinations: Vec<DestinationId>,
    /// Send the organization's alerts nowhere.
    #[arg(long, conflicts_with = "alert_destinations")]
    pub no_alert_destinations: bool,
    #[command(flatten)]
    pub alerts: AlertFlags,
}

impl UpdateArgs {
    /// The PATCH body: only the fields given; alert flags apply over the
    /// organization's `current` alert settings.
    pub fn body(&self, current: &Value) -> anyhow::Result<Value> {
        let mut body = Map::new();
        if let Some(alerts) = self.alerts.apply(current)? {
            body.insert("alerts".into(), alerts);
        }
        if let Some(name) = &self.name {
            body.insert("name".into(), json!(name));
        }
        if !self.alert_destinations.is_empty() || self.no_alert_destinations {
            body.insert("alert_destinations".into(), json!(self.alert_destinations));
        }
        Ok(Value::Object(body))
    }
}

pub async fn run(ctx: &Ctx, args: OrgsArgs) -> anyhow::Result<Output> {
    match args.command {
        OrgsCommand::List { paging } => {
            let answer = ctx.api.get("/v1/orgs", &paging.pairs()).await?;
            Ok(Output::render(ctx.json, &answer.body, render_list))
        }
        OrgsCommand::Create { name } => {
            let answer = ctx.api.post("/v1/orgs", &json!({ "name": name })).await?;
            Ok(Output::render(ctx.json, &answer.body, |b| {
                format!(
                    "Created organization {} ({:?}).\n",
                    text(b, "/id"),
                    text(b, "/name")
                )
            }))
        }
        OrgsCommand::Get { id } => {
            let answer = ctx.api.get(&format!("/v1/orgs/{id}"), &[]).await?;
            Ok(Output::render(ctx.json, &answer.body, render_org))
        }
        OrgsCommand::Update(update) => {
            let path = format!("/v1/orgs/{}", update.id);
            let current = if update.alerts.given() {
                ctx.api.get(&path, &[]).await?.body["alerts"].clone()
            } else {
                Value::Null
            };
            let answer = ctx.api.patch(&path, &update.body(&current)?).await?;
            Ok(Output::render(ctx.json, &answer.body, render_org))
        }
    }
}

/// One organization, one field a line.
pub fn render_org(body: &Value) -> String {
    key_values(&[
        ("org", text(body, "/id")),
        ("name", text(body, "/name")),
        ("alerts to", text(body, "/alert_destinations")),
        ("alert settings", alert_flags::describe(&body["alerts"])),
        ("created", time(body, "/created_at")),
    ])
}

/// One row per organization.
pub fn render_list(body: &Value) -> String {
    let (items, cursor) = list_items(body);
    let mut t = Table::new(["id", "name", "alerts to", "created"]).max_cell(60);
    for o in items {
        t.row([
            text(o, "/id"),
            text(o, "/name"),
            text(o, "/alert_destinations"),
            time(o, "/created_at"),
        ]);
    }
    let mut out = t.render();
    list_footer(
        &mut out,
        items.len(),
        ("organization", "organizations"),
        cursor,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(args: &[&str]) -> UpdateArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            update: UpdateArgs,
        }
        let argv = std::iter::once("orgs").chain(args.iter().copied());
        Cli::try_parse_from(argv).unwrap().update
    }

    #[test]
    fn an_update_sends_only_what_was_given() {
        assert_eq!(
            update(&["org_1", "--name", "acme"])
                .body(&Value::Null)
                .unwrap(),
            json!({"name": "acme"})
        );
        assert_eq!(
            update(&["org_1", "--alert-destination", "dst_1"])
                .body(&Value::Null)
                .unwrap(),
            json!({"alert_destinations": ["dst_1"]})
        );
        assert_eq!(
            update(&["org_1", "--no-alert-destinations"])
                .body(&Value::Null)
                .unwrap(),
            json!({"alert_destinations": []})
        );
        let current = json!({"alert_after": {"consecutive_failures": 3}});
        assert_eq!(
            update(&["org_1", "--disable-after", "2d", "--alert-debounce", "30m"])
                .body(&current)
                .unwrap(),
            json!({"alerts": {"alert_after": {"consecutive_failures": 3},
                "disable_after": {"failing_for_s": 172800}, "debounce_s": 1800}})
        );
    }

    #[test]
    fn orgs_render_as_fields_and_rows() {
        let org = json!({"id": "org_1", "name": "acme", "alert_destinations": ["dst_1"],
                         "created_at": "2026-11-02T10:00:00Z"});
        assert_eq!(
            render_org(&org),
            "org             org_1\nname            acme\nalerts to       dst_1\n\
             alert settings  defaults\ncreated         2026-11-02 10:00:00\n"
        );
        let list = json!({"data": [org], "next_cursor": null});
        assert_eq!(
            render_list(&list),
            "ID     NAME  ALERTS TO  CREATED\n\
             org_1  acme  dst_1      2026-11-02 10:00:00\n\
             1 organization.\n"
        );
    }
}
