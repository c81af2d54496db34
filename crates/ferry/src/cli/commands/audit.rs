//! `ferry audit`: the append-only audit log (`GET /v1/audit`), filtered by
//! entity, action and time, newest first.

use ferry_client::table::Table;
use serde_json::Value;

use super::{Ctx, Output};
use crate::cli::args::{Paging, parse_time};
use crate::cli::render::{list_footer, list_items, text, time};

/// List audit records: who did what, to which entity, when.
#[derive(Debug, Clone, clap::Args)]
pub struct AuditArgs {
    /// Only records about this entity (dst_…, src_…, key_…, org_…, evt_…, dlv_…).
    #[arg(long, value_name = "ID")]
    pub entity_id: Option<String>,
    /// Only this action, e.g. created, deleted, replayed.
    #[arg(long, value_name = "ACTION")]
    pub action: Option<String>,
    /// At or after (RFC 3339, or an age like 15m, 2h, 7d).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub since: Option<String>,
    /// Before (RFC 3339, or an age like 15m, 2h, 7d).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub until: Option<String>,
    #[command(flatten)]
    pub paging: Paging,
}

impl AuditArgs {
    /// The query string, with the API's names.
    pub fn query(&self) -> Vec<(&'static str, String)> {
        let filters = [
            ("entity_id", &self.entity_id),
            ("action", &self.action),
            ("since", &self.since),
            ("until", &self.until),
        ];
        let mut query: Vec<(&'static str, String)> = filters
            .into_iter()
            .filter_map(|(name, value)| value.clone().map(|v| (name, v)))
            .collect();
        query.extend(self.paging.pairs());
        query
    }
}

pub async fn run(ctx: &Ctx, args: AuditArgs) -> anyhow::Result<Output> {
    let answer = ctx.api.get("/v1/audit", &args.query()).await?;
    Ok(Output::render(ctx.json, &answer.body, render_list))
}

/// One row per record: when, who, what, to which entity.
pub fn render_list(body: &Value) -> String {
    let (items, cursor) = list_items(body);
    if items.is_empty() && cursor.is_none() {
        return "No audit records match.\n".to_owned();
    }
    let mut t = Table::new(["at", "actor", "action", "entity", "id", "org"]).max_cell(60);
    for r in items {
        t.row([
            time(r, "/at"),
            text(r, "/actor"),
            text(r, "/action"),
            text(r, "/entity_type"),
            text(r, "/entity_id"),
            text(r, "/org_id"),
        ]);
    }
    let mut out = t.render();
    list_footer(&mut out, items.len(), ("record", "records"), cursor);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_query_uses_the_api_names() {
        let args = AuditArgs {
            entity_id: Some("dst_1".into()),
            action: None,
            since: Some("2026-11-01T00:00:00Z".into()),
            until: None,
            paging: Paging {
                limit: Some(10),
                cursor: None,
            },
        };
        assert_eq!(
            args.query(),
            [
                ("entity_id", "dst_1".to_owned()),
                ("since", "2026-11-01T00:00:00Z".to_owned()),
                ("limit", "10".to_owned()),
            ]
        );
    }

    #[test]
    fn records_render_as_rows() {
        let body = json!({"data": [{"id": "aud_1", "org_id": "org_1", "actor": "key_1",
            "at": "2026-11-02T10:00:00Z", "entity_type": "destination", "entity_id": "dst_1",
            "action": "created", "before": null, "after": {}}], "next_cursor": "c2"});
        assert_eq!(
            render_list(&body),
            "AT                   ACTOR  ACTION   ENTITY       ID     ORG\n\
             2026-11-02 10:00:00  key_1  created  destination  dst_1  org_1\n\
             1 record.\nMore: add --cursor c2\n"
        );
        assert_eq!(
            render_list(&json!({"data": [], "next_cursor": null})),
            "No audit records match.\n"
        );
    }
}
