//! What the `postgres` and `mysql` kinds share: their config shape and its
//! validation, strict identifiers, and the classification of SQL errors by
//! SQLSTATE.
//!
//! Table and column names are identifiers, never values: each is checked
//! against `[A-Za-z_][A-Za-z0-9_]*` (at most 63 bytes, PostgreSQL's limit;
//! MySQL allows 64) and then quoted (`"name"`, `` `name` ``), so no text
//! from a config ever reaches SQL unchecked. Quoted names are
//! case-sensitive on PostgreSQL: write them as they were created.

use ferry_core::FieldError;
use ferry_core::destination::Auth;
use ferry_core::ports::AttemptError;
use serde_json::{Value, json};
use url::Url;

use crate::client;
use crate::client::auth::{self, UserName};
use crate::endpoint;
use crate::fields::{Fields, check_name};
use crate::net_guard::NetworkPolicy;
use crate::tls::{self, TlsConfig};

pub mod delivery;

/// Default limit of one insert (and of connecting).
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// Largest accepted `timeout_ms` (five minutes).
pub const MAX_TIMEOUT_MS: u64 = 300_000;
/// Most connections a destination's pool opens.
pub const POOL_SIZE: u32 = 4;
const MAX_IDENTIFIER: usize = 63;
const KNOWN: &[&str] = &["url", "table", "columns", "timeout_ms", "tls"];
/// The event fields a row can hold, in insert order.
pub const EVENT_FIELDS: [&str; 4] = ["id", "type", "timestamp", "data"];

/// The SQL dialect of a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Mysql,
}

impl Dialect {
    fn schemes(self) -> &'static [&'static str] {
        match self {
            Dialect::Postgres => &["postgres", "postgresql"],
            Dialect::Mysql => &["mysql", "mariadb"],
        }
    }

    /// The URL parameter asking for TLS, and the values that do.
    fn tls_parameter(self) -> (&'static str, &'static [&'static str]) {
        match self {
            Dialect::Postgres => (
                "sslmode",
                &["prefer", "require", "verify-ca", "verify-full"],
            ),
            Dialect::Mysql => (
                "ssl-mode",
                &["preferred", "required", "verify_ca", "verify_identity"],
            ),
        }
    }

    fn allowed_parameters(self) -> &'static [&'static str] {
        match self {
            Dialect::Postgres => &["sslmode", "application_name"],
            Dialect::Mysql => &["ssl-mode", "charset", "collation"],
        }
    }

    /// `name` quoted as an identifier (already checked by [`check_name`]).
    pub fn quote(self, name: &str) -> String {
        match self {
            Dialect::Postgres => format!("\"{name}\""),
            Dialect::Mysql => format!("`{name}`"),
        }
    }
}

/// A table, optionally in a schema (PostgreSQL) or database (MySQL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub schema: Option<String>,
    pub name: String,
}

impl Table {
    /// `schema.name` as written in the config.
    pub fn as_text(&self) -> String {
        match &self.schema {
            Some(schema) => format!("{schema}.{}", self.name),
            None => self.name.clone(),
        }
    }

    /// The quoted (qualified) name.
    pub fn quoted(&self, dialect: Dialect) -> String {
        match &self.schema {
            Some(schema) => format!("{}.{}", dialect.quote(schema), dialect.quote(&self.name)),
            None => dialect.quote(&self.name),
        }
    }
}

/// A postgres or mysql destination's config, validated.
#[derive(Debug, Clone)]
pub struct SqlConfig {
    pub url: Url,
    pub table: Table,
    /// The column of each of [`EVENT_FIELDS`] that is stored, in that
    /// order (`id` always is).
    pub columns: Vec<(&'static str, String)>,
    pub timeout_ms: u64,
    pub tls: Option<TlsConfig>,
}

impl SqlConfig {
    /// The config as stored, defaults filled in (an omitted field's column
    /// is `null`).
    pub fn to_json(&self) -> Value {
        let mut columns = serde_json::Map::new();
        for field in EVENT_FIELDS {
            let column = self.column(field).map(str::to_owned);
            columns.insert(field.to_owned(), json!(column));
        }
        json!({
            "url": self.url.as_str(),
            "table": self.table.as_text(),
            "columns": columns,
            "timeout_ms": self.timeout_ms,
            "tls": self.tls.as_ref().map(TlsConfig::to_json),
        })
    }

    /// The column storing an event field, when it is stored.
    pub fn column(&self, field: &str) -> Option<&str> {
        self.columns
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, c)| c.as_str())
    }
}

/// Reads a postgres or mysql config and its auth in `dialect`, without
/// I/O: the typed config or one error per invalid field (see
/// [`KindConfig::parse`](crate::kind_config::KindConfig::parse)).
pub fn parse(
    dialect: Dialect,
    config: &Value,
    auth: &Auth,
    policy: &NetworkPolicy,
) -> Result<SqlConfig, Vec<FieldError>> {
    let mut fields = Fields::new(config, KNOWN);
    fields.extend(check_auth(auth));
    let url = endpoint::read_url(&mut fields, |text| check_url(dialect, text, policy));
    let table = fields.required_str("table").and_then(|text| {
        let (schema, name) = match text.split_once('.') {
            Some((schema, name)) => (Some(schema.to_owned()), name.to_owned()),
            None => (None, text.clone()),
        };
        let problem = schema
            .iter()
            .chain([&name])
            .find_map(|part| check_name(part, MAX_IDENTIFIER, "").err());
        match problem {
            Some(message) => {
                fields.error(
                    "table",
                    format!("`{text}`: {message} (write `name` or `schema.name`)"),
                );
                None
            }
            None => Some(Table { schema, name }),
        }
    });
    let columns = read_columns(&mut fields);
    let timeout_ms = fields.u64_in("timeout_ms", 1, MAX_TIMEOUT_MS, DEFAULT_TIMEOUT_MS);
    let (parameter, values) = dialect.tls_parameter();
    let uses_tls = url.as_ref().map(|url| {
        url.query_pairs().any(|(name, value)| {
            name == parameter && values.contains(&value.to_lowercase().as_str())
        })
    });
    let hint = format!("set {parameter}={} in the URL", values[2]);
    let tls = tls::read_with_auth(&mut fields, auth, uses_tls, &hint);
    let config = (|| {
        Some(SqlConfig {
            url: url?,
            table: table?,
            columns: columns?,
            timeout_ms: timeout_ms?,
            tls: tls?,
        })
    })();
    fields.finish(config)
}

fn read_columns(fields: &mut Fields<'_>) -> Option<Vec<(&'static str, String)>> {
    let map = match fields.raw("columns").cloned() {
        None => serde_json::Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => {
            fields.error(
                "columns",
                "must be an object mapping id, type, timestamp and data to column names",
            );
            return None;
        }
    };
    let mut ok = true;
    for key in map.keys() {
        if !EVENT_FIELDS.contains(&key.as_str()) {
            fields.error(
                &format!("columns.{key}"),
                "unknown event field (expected id, type, timestamp, data)",
            );
            ok = false;
        }
    }
    let mut columns = Vec::new();
    for field in EVENT_FIELDS {
        let name = format!("columns.{field}");
        match map.get(field) {
            None => columns.push((field, field.to_owned())),
            Some(Value::Null) if field == "id" => {
                fields.error(&name, "is required: the event id is the row's unique key");
                ok = false;
            }
            Some(Value::Null) => {}
            Some(Value::String(column)) => match check_name(column, MAX_IDENTIFIER, "") {
                Ok(()) if columns.iter().any(|(_, c)| c == column) => {
                    fields.error(&name, format!("column `{column}` is already used"));
                    ok = false;
                }
                Ok(()) => columns.push((field, column.clone())),
                Err(message) => {
                    fields.error(&name, message);
                    ok = false;
                }
            },
            Some(_) => {
                fields.error(&name, "must be a column name or null (not stored)");
                ok = false;
            }
        }
    }
    ok.then_some(columns)
}

fn check_url(dialect: Dialect, text: &str, policy: &NetworkPolicy) -> Result<Url, String> {
    let schemes = dialect.schemes();
    let url = Url::parse(text).map_err(|e| format!("is not a valid URL ({e})"))?;
    if !schemes.contains(&url.scheme()) {
        return Err(format!("must be a {}:// URL", schemes[0]));
    }
    let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
        return Err("must name a host (Unix sockets are not supported)".to_owned());
    };
    if url.password().is_some() {
        return Err(
            "must not contain a password; use `auth` (type basic), where it is encrypted at rest"
                .to_owned(),
        );
    }
    let database = url.path().trim_start_matches('/');
    if database.is_empty() {
        return Err("must name a database (…/dbname)".to_owned());
    }
    if let Err(message) = check_name(database, 64, "-$") {
        return Err(format!("database name {message}"));
    }
    let allowed = dialect.allowed_parameters();
    if let Some((name, _)) = url
        .query_pairs()
        .find(|(name, _)| !allowed.contains(&name.as_ref()))
    {
        return Err(format!(
            "parameter `{name}` is not supported (allowed: {}; CA and client certificates go in `tls` and `auth`)",
            allowed.join(", ")
        ));
    }
    endpoint::check_host(policy, host)?;
    Ok(url)
}

fn check_auth(auth: &Auth) -> Vec<FieldError> {
    auth::check(
        auth,
        "database",
        UserName::Required("is required"),
        "none, basic or client_certificate",
    )
}

/// The user name and password `auth` logs in with, where it has them
/// (`basic`, or `client_certificate` with optional credentials).
pub fn login(auth: &Auth) -> (Option<&str>, Option<&str>) {
    match auth {
        Auth::Basic { username, password } => (Some(username), Some(password.expose())),
        Auth::ClientCertificate {
            username, password, ..
        } => (
            username.as_deref(),
            password.as_ref().map(|p| p.expose().as_str()),
        ),
        _ => (None, None),
    }
}

/// Classifies an SQL error: I/O failures, pool timeouts, connection and
/// resource errors, serialization failures, deadlocks and a server
/// shutting down are retryable; refused credentials, an unknown database,
/// table or column, missing privileges and a row the table rejects are
/// permanent, with the server's message.
pub fn classify(error: &sqlx::Error) -> AttemptError {
    if let Some(failure) = client::certificate_failure(error, "the database server") {
        return failure;
    }
    match error {
        sqlx::Error::Io(io) => AttemptError::retryable(match io.kind() {
            std::io::ErrorKind::ConnectionRefused => {
                "the database refused the connection (is the server running?)".to_owned()
            }
            _ => format!("connection to the database failed: {io}"),
        }),
        sqlx::Error::PoolTimedOut => {
            AttemptError::retryable("no database connection could be made in time")
        }
        sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed | sqlx::Error::Protocol(_) => {
            AttemptError::retryable(format!("database connection failed: {error}"))
        }
        sqlx::Error::Tls(reason) => {
            AttemptError::permanent(format!("TLS with the database failed: {reason}"))
        }
        sqlx::Error::Configuration(reason) => {
            AttemptError::permanent(format!("invalid database settings: {reason}"))
        }
        sqlx::Error::Database(db) => {
            let state = db.code().map(|c| c.into_owned()).unwrap_or_default();
            classify_state(&state, db.message())
        }
        other => AttemptError::retryable(format!("database error: {other}")),
    }
}

/// Classifies a server error by its SQLSTATE.
pub fn classify_state(state: &str, message: &str) -> AttemptError {
    let class = state.get(..2).unwrap_or_default();
    match (class, state) {
        ("28", _) => AttemptError::permanent(format!(
            "authentication failed: the database refused the login (check `auth`): {message}"
        )),
        (_, "42P01" | "42S02") => {
            AttemptError::permanent(format!("the table does not exist: {message}"))
        }
        (_, "42703" | "42S22") => {
            AttemptError::permanent(format!("a column does not exist: {message}"))
        }
        (_, "42501") => AttemptError::permanent(format!("permission denied: {message}")),
        (_, "42P10") => AttemptError::permanent(format!(
            "the id column needs a unique index or primary key for de-duplication: {message}"
        )),
        ("3D", _) => AttemptError::permanent(format!("the database does not exist: {message}")),
        ("22" | "23", _) => {
            AttemptError::permanent(format!("the table rejected the row: {message}"))
        }
        ("42" | "0A" | "44" | "2B", _) => {
            AttemptError::permanent(format!("the database refused the insert: {message}"))
        }
        _ => AttemptError::retryable(format!(
            "the database is unavailable: {message} (SQLSTATE {state})"
        )),
    }
}

/// Checks the columns a table has (as the catalog lists them) against the
/// config: an empty list means no such table (or none the user may see).
pub fn check_columns(config: &SqlConfig, found: &[String]) -> Result<(), AttemptError> {
    if found.is_empty() {
        return Err(AttemptError::permanent(format!(
            "table `{}` does not exist (or the user cannot see it)",
            config.table.as_text()
        )));
    }
    let missing: Vec<&str> = config
        .columns
        .iter()
        .map(|(_, column)| column.as_str())
        .filter(|column| !found.iter().any(|f| f == column))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(AttemptError::permanent(format!(
            "table `{}` has no column {} (it has {})",
            config.table.as_text(),
            missing
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", "),
            found.join(", ")
        )))
    }
}

/// The failure of a table whose id column is not unique: replays would
/// insert the event again.
pub fn missing_unique_id(config: &SqlConfig) -> AttemptError {
    AttemptError::permanent(format!(
        "column `{}` of table `{}` needs a primary key or unique index, so that a replayed event is not inserted twice",
        config.column("id").unwrap_or("id"),
        config.table.as_text()
    ))
}
