//! One file per client command group. Each command calls the API and returns
//! its [`Output`]: the text for stdout (a table, or the raw JSON with `--json`)
//! and whether it succeeded.

pub mod admin;
pub mod alert_flags;
pub mod api_keys;
pub mod audit;
pub mod config;
pub mod deliveries;
pub mod destinations;
pub mod events;
pub mod export;
pub mod orgs;
pub mod replay;
pub mod send;
pub mod sources;
pub mod status;

use ferry_client::ApiClient;
use serde_json::Value;

use super::render::pretty;

/// What a command prints on stdout, and whether it succeeded (exit 0 or 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub text: String,
    pub ok: bool,
}

impl Output {
    pub fn ok(text: String) -> Self {
        Self { text, ok: true }
    }

    /// `body` as pretty JSON, or the human rendering of it.
    pub fn render(json: bool, body: &Value, human: impl FnOnce(&Value) -> String) -> Self {
        Self::ok(if json { pretty(body) } else { human(body) })
    }

    /// After an answer with no body (`204`): `text` for people, nothing for
    /// scripts (the exit code tells).
    pub fn deleted(json: bool, text: String) -> Self {
        Self::ok(if json { String::new() } else { text })
    }
}

/// What every command gets: the client and the output mode.
pub struct Ctx {
    pub api: ApiClient,
    /// Print raw JSON instead of tables.
    pub json: bool,
}
