//! `ferry sources list|create|get|delete`: inbound sources (`/v1/sources`),
//! where partners post signed events. A source is made from flags or from a
//! full spec file; its secrets never come back.

use std::fmt::Write as _;

use ferry_client::table::{Table, key_values};
use ferry_client::usage;
use ferry_core::{DestinationId, SourceId};
use serde_json::{Map, Value, json};

use super::{Ctx, Output};
use crate::cli::args::{Paging, read_spec_file};
use crate::cli::render::{list_footer, list_items, text, time};

/// How partners sign their requests.
pub const SCHEMES: [&str; 4] = [
    "standard-webhooks",
    "hmac-sha256",
    "hmac-sha512",
    "timestamped-hmac",
];

/// Inbound sources: list, create, show, delete.
#[derive(Debug, Clone, clap::Args)]
pub struct SourcesArgs {
    #[command(subcommand)]
    pub command: SourcesCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum SourcesCommand {
    /// List sources (GET /v1/sources).
    List {
        #[command(flatten)]
        paging: Paging,
    },
    /// Create a source from flags, or from a spec file (POST /v1/sources).
    Create(Box<CreateArgs>),
    /// Show a source (GET /v1/sources/{id}).
    Get {
        /// The source (src_…).
        #[arg(value_name = "SRC")]
        id: SourceId,
    },
    /// Delete a source; its URL then refuses requests (DELETE /v1/sources/{id}).
    Delete {
        /// The source (src_…).
        #[arg(value_name = "SRC")]
        id: SourceId,
    },
}

/// `POST /v1/sources`.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(group(clap::ArgGroup::new("spec").required(true).args(["scheme", "from_file"])))]
pub struct CreateArgs {
    /// Source name.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// How requests are signed.
    #[arg(long, value_name = "SCHEME", value_parser = SCHEMES, requires = "secrets")]
    pub scheme: Option<String>,
    /// A signing secret (repeatable: any one verifies, for rotation).
    #[arg(long = "secret", value_name = "SECRET")]
    pub secrets: Vec<String>,
    /// The header holding the signature (the HMAC schemes).
    #[arg(long, value_name = "HEADER")]
    pub signature_header: Option<String>,
    /// How an HMAC signature is encoded: hex or base64 [server default: hex].
    #[arg(long, value_name = "ENCODING", value_parser = ["hex", "base64"])]
    pub encoding: Option<String>,
    /// Text before the signature in its header, e.g. sha256=.
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
    /// Largest accepted clock difference for the timestamped schemes [server default: 300].
    #[arg(long, value_name = "S")]
    pub tolerance_s: Option<u64>,
    /// Where the event id is: a JSON pointer or header:NAME.
    #[arg(long, value_name = "WHERE")]
    pub id_from: Option<String>,
    /// Where the event type is: a JSON pointer or header:NAME [server default: /type].
    #[arg(long, value_name = "WHERE")]
    pub type_from: Option<String>,
    /// A JSON pointer that must be present and not null (repeatable).
    #[arg(long, value_name = "POINTER")]
    pub required: Vec<String>,
    /// Deliver the source's events to this destination (repeatable)
    /// [default: the organization's routing].
    #[arg(long = "destination", value_name = "DST")]
    pub destinations: Vec<DestinationId>,
    /// The whole request body as JSON, from FILE or - (stdin); no other flag allowed.
    #[arg(
        long,
        value_name = "FILE|-",
        conflicts_with_all = [
            "name", "scheme", "secrets", "signature_header", "encoding", "prefix",
            "tolerance_s", "id_from", "type_from", "required", "destinations"
        ]
    )]
    pub from_file: Option<String>,
}

impl CreateArgs {
    /// The request body: the spec file, or a source built from the flags.
    pub fn body(&self) -> anyhow::Result<Value> {
        if let Some(file) = &self.from_file {
            return read_spec_file(file);
        }
        let Some(scheme) = &self.scheme else {
            return Err(usage("give --scheme and --secret, or --from-file"));
        };
        let mut verification = Map::new();
        verification.insert("scheme".into(), json!(scheme));
        verification.insert("secrets".into(), json!(self.secrets));
        let optional = [
            ("header", self.signature_header.as_ref().map(|h| json!(h))),
            ("encoding", self.encoding.as_ref().map(|e| json!(e))),
            ("prefix", self.prefix.as_ref().map(|p| json!(p))),
            ("tolerance_s", self.tolerance_s.map(|t| json!(t))),
        ];
        for (field, value) in optional {
            if let Some(value) = value {
                verification.insert(field.into(), value);
            }
        }
        let mut body = Map::new();
        if let Some(name) = &self.name {
            body.insert("name".into(), json!(name));
        }
        body.insert("verification".into(), Value::Object(verification));
        if let Some(id_from) = &self.id_from {
            body.insert("id_from".into(), json!(id_from));
        }
        if let Some(type_from) = &self.type_from {
            body.insert("type_from".into(), json!(type_from));
        }
        if !self.required.is_empty() {
            body.insert("required".into(), json!(self.required));
        }
        if !self.destinations.is_empty() {
            body.insert("destinations".into(), json!(self.destinations));
        }
        Ok(Value::Object(body))
    }
}

pub async fn run(ctx: &Ctx, args: SourcesArgs) -> anyhow::Result<Output> {
    match args.command {
        SourcesCommand::List { paging } => {
            let answer = ctx.api.get("/v1/sources", &paging.pairs()).await?;
            Ok(Output::render(ctx.json, &answer.body, render_list))
        }
        SourcesCommand::Create(create) => {
            let answer = ctx.api.post("/v1/sources", &create.body()?).await?;
            Ok(Output::render(ctx.json, &answer.body, |b| {
                let mut out = format!("Created source {}.\n\n", text(b, "/id"));
                out.push_str(&render_source(b));
                out
            }))
        }
        SourcesCommand::Get { id } => {
            let answer = ctx.api.get(&format!("/v1/sources/{id}"), &[]).await?;
            Ok(Output::render(ctx.json, &answer.body, render_source))
        }
        SourcesCommand::Delete { id } => {
            ctx.api.delete(&format!("/v1/sources/{id}")).await?;
            Ok(Output::deleted(ctx.json, format!("Deleted source {id}.\n")))
        }
    }
}

/// One source, one field a line; the URL is where partners post.
pub fn render_source(body: &Value) -> String {
    let mut out = key_values(&[
        ("source", text(body, "/id")),
        ("name", text(body, "/name")),
        ("url", text(body, "/url")),
        ("scheme", text(body, "/verification/scheme")),
        ("id from", text(body, "/id_from")),
        ("type from", text(body, "/type_from")),
        ("required", text(body, "/required")),
        ("destinations", text(body, "/destinations")),
        ("created", time(body, "/created_at")),
    ]);
    if text(body, "/destinations").is_empty() {
        let _ = writeln!(
            out,
            "\nEvents are routed as any other event of the organization."
        );
    }
    out
}

/// One row per source.
pub fn render_list(body: &Value) -> String {
    let (items, cursor) = list_items(body);
    if items.is_empty() && cursor.is_none() {
        return "No sources yet: create one with `ferry sources create`.\n".to_owned();
    }
    let mut t = Table::new(["id", "name", "url", "scheme", "destinations", "created"])
        .hide_empty_columns()
        .max_cell(60);
    for s in items {
        t.row([
            text(s, "/id"),
            text(s, "/name"),
            text(s, "/url"),
            text(s, "/verification/scheme"),
            text(s, "/destinations"),
            time(s, "/created_at"),
        ]);
    }
    let mut out = t.render();
    list_footer(&mut out, items.len(), ("source", "sources"), cursor);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_make_the_verification_and_the_extraction() {
        let args = CreateArgs {
            name: Some("courier".into()),
            scheme: Some("hmac-sha256".into()),
            secrets: vec!["s1".into()],
            signature_header: Some("X-Signature".into()),
            encoding: Some("base64".into()),
            id_from: Some("header:x-id".into()),
            required: vec!["/shipment/id".into()],
            destinations: vec![DestinationId::parse("dst_1").unwrap()],
            ..CreateArgs::default()
        };
        assert_eq!(
            args.body().unwrap(),
            json!({"name": "courier",
                   "verification": {"scheme": "hmac-sha256", "secrets": ["s1"],
                                    "header": "X-Signature", "encoding": "base64"},
                   "id_from": "header:x-id", "required": ["/shipment/id"],
                   "destinations": ["dst_1"]})
        );
        let minimal = CreateArgs {
            scheme: Some("standard-webhooks".into()),
            secrets: vec!["whsec_x".into()],
            ..CreateArgs::default()
        };
        assert_eq!(
            minimal.body().unwrap(),
            json!({"verification": {"scheme": "standard-webhooks", "secrets": ["whsec_x"]}})
        );
    }

    #[test]
    fn a_source_shows_where_partners_post() {
        let body = json!({"id": "src_1", "url": "/in/src_1", "name": "courier",
            "verification": {"scheme": "hmac-sha256", "secrets": ["***"]},
            "id_from": null, "type_from": "/type", "required": [], "destinations": ["dst_1"],
            "created_at": "2026-11-02T10:00:00Z"});
        let text = render_source(&body);
        assert!(text.contains("url           /in/src_1\n"), "{text}");
        assert!(text.contains("scheme        hmac-sha256\n"), "{text}");
        assert!(!text.contains("routed"), "{text}");
        let list = json!({"data": [body], "next_cursor": null});
        assert_eq!(
            render_list(&list),
            "ID     NAME     URL        SCHEME       DESTINATIONS  CREATED\n\
             src_1  courier  /in/src_1  hmac-sha256  dst_1         2026-11-02 10:00:00\n\
             1 source.\n"
        );
    }
}
