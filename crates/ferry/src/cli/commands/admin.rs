//! `ferry admin …`: operator actions on the server itself.

use serde_json::{Value, json};

use super::{Ctx, Output};

/// Operator actions (admin scope).
#[derive(Debug, Clone, clap::Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum AdminCommand {
    /// Re-seal every secret at rest under a new master key, without downtime.
    RotateMasterKey {
        /// The new key (64 hex characters), when the key comes from
        /// FERRY_MASTER_KEY; otherwise Ferry makes one and writes its key file.
        #[arg(long, value_name = "HEX")]
        new_key: Option<String>,
    },
}

pub async fn run(ctx: &Ctx, args: AdminArgs) -> anyhow::Result<Output> {
    match args.command {
        AdminCommand::RotateMasterKey { new_key } => {
            let body = match new_key {
                Some(key) => json!({"new_key": key}),
                None => json!({}),
            };
            let answer = ctx.api.post("/v1/admin/rotate-master-key", &body).await?;
            Ok(Output::render(ctx.json, &answer.body, render_rotation))
        }
    }
}

fn render_rotation(body: &Value) -> String {
    let n = body["resealed"].as_u64().unwrap_or(0);
    match body["key_file"].as_str() {
        Some(file) => format!("Re-sealed {n} secrets under a new master key, now in {file}.\n"),
        None => format!(
            "Re-sealed {n} secrets under the new master key. Set FERRY_MASTER_KEY to it before the next start.\n"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rotation_says_where_the_key_is() {
        let text = render_rotation(&json!({"resealed": 3, "key_file": "/d/master.key"}));
        assert!(text.contains("3 secrets") && text.contains("/d/master.key"));
        assert!(
            render_rotation(&json!({"resealed": 1, "key_file": null})).contains("FERRY_MASTER_KEY")
        );
    }
}
