//! Pure tests of the postgres kind (and the SQL config it shares with
//! mysql): validation, identifiers, the insert statement, classification.

use ferry_core::destination::Auth;
use ferry_core::secret::Secret;
use serde_json::{Value, json};

use super::PostgresConfig;
use crate::kind_config::KindConfig;
use crate::net_guard::NetworkPolicy;
use crate::sql::{self, Dialect};

fn fields(config: Value, auth: &Auth) -> Vec<String> {
    PostgresConfig::validate(&config, auth, &NetworkPolicy::allow_all())
        .unwrap_err()
        .into_iter()
        .map(|e| e.field)
        .collect()
}

#[test]
fn a_minimal_config_gets_its_defaults() {
    let normalized = PostgresConfig::validate(
        &json!({"url": "postgres://ferry@db/app", "table": "events"}),
        &Auth::None,
        &NetworkPolicy::allow_all(),
    )
    .unwrap();
    assert_eq!(
        normalized,
        json!({"url": "postgres://ferry@db/app", "table": "events",
               "columns": {"id": "id", "type": "type", "timestamp": "timestamp", "data": "data"},
               "timeout_ms": 10000, "tls": null})
    );
}

#[test]
fn identifiers_are_checked_strictly() {
    for table in [
        "events; DROP TABLE x",
        "ev\"ents",
        "a.b.c",
        "1events",
        "",
        "évents",
        &"x".repeat(64),
    ] {
        let config = json!({"url": "postgres://db/app", "table": table});
        assert_eq!(fields(config, &Auth::None), ["config.table"], "{table}");
    }
    for (columns, field) in [
        (json!({"id": "event id"}), "config.columns.id"),
        (json!({"id": null}), "config.columns.id"),
        (json!({"data": "x`y"}), "config.columns.data"),
        (json!({"type": "id"}), "config.columns.type"),
        (json!({"payload": "p"}), "config.columns.payload"),
        (json!({"data": 5}), "config.columns.data"),
        (json!(["id"]), "config.columns"),
    ] {
        let config = json!({"url": "postgres://db/app", "table": "t", "columns": columns});
        assert_eq!(fields(config, &Auth::None), [field], "{columns}");
    }
}

#[test]
fn urls_are_checked() {
    for url in [
        "mysql://db/app",
        "postgres://u:pw@db/app",
        "postgres://db",
        "postgres://db/app?sslrootcert=/etc/ca.pem",
        "postgres:///app?host=/var/run/postgresql",
    ] {
        let config = json!({"url": url, "table": "t"});
        assert_eq!(fields(config, &Auth::None), ["config.url"], "{url}");
    }
    let tls_without_ssl = json!({"url": "postgres://db/app", "table": "t", "tls": {}});
    assert_eq!(fields(tls_without_ssl, &Auth::None), ["config.tls"]);
    let tls = json!({"url": "postgres://db/app?sslmode=verify-full", "table": "t", "tls": {}});
    assert!(PostgresConfig::validate(&tls, &Auth::None, &NetworkPolicy::allow_all()).is_ok());
    let key = Auth::ApiKey {
        header: "x".into(),
        value: Secret::new("v".into()),
    };
    assert_eq!(
        fields(json!({"url": "postgres://db/app", "table": "t"}), &key),
        ["auth.type"]
    );
}

#[test]
fn names_are_quoted_in_the_statement() {
    let PostgresConfig(config) = PostgresConfig::from_stored(
        &json!({"url": "postgres://db/app", "table": "audit.Events", "columns": {"type": null}}),
        &Auth::None,
        &NetworkPolicy::allow_all(),
    )
    .unwrap();
    assert_eq!(
        config.table.quoted(Dialect::Postgres),
        "\"audit\".\"Events\""
    );
    assert_eq!(config.table.quoted(Dialect::Mysql), "`audit`.`Events`");
    let columns: Vec<_> = config.columns.iter().map(|(f, _)| *f).collect();
    assert_eq!(columns, ["id", "timestamp", "data"]);
}

#[test]
fn sql_states_are_classified() {
    for (state, permanent) in [
        ("28P01", true),
        ("28000", true),
        ("3D000", true),
        ("42P01", true),
        ("42S02", true),
        ("42703", true),
        ("42501", true),
        ("23502", true),
        ("22P02", true),
        ("08006", false),
        ("53300", false),
        ("57P01", false),
        ("40001", false),
        ("40P01", false),
    ] {
        assert_eq!(
            sql::classify_state(state, "m").is_permanent(),
            permanent,
            "{state}"
        );
    }
    assert!(
        sql::classify_state("28P01", "password authentication failed")
            .reason()
            .contains("authentication failed")
    );
}
