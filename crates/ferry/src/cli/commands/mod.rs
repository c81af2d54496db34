//! One file per client command group. Each command calls the API and returns
//! its [`Output`]: the text for stdout (a table, or the raw JSON with `--json`)
//! and whether it succeeded.

pub mod admin;
pub mod deliveries;
pub mod destinations;
pub mod replay;
pub mod send;
pub mod status;

use serde_json::Value;

use super::client::ApiClient;
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
}

/// What every command gets: the client and the output mode.
pub struct Ctx {
    pub api: ApiClient,
    /// Print raw JSON instead of tables.
    pub json: bool,
}
