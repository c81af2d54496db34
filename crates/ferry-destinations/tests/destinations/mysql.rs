//! What is particular to the mysql kind: a value the column refuses is a
//! permanent failure (not a silently altered row), and the check names a
//! missing unique index.

use ferry_core::destination::{Auth, DestinationKind};
use ferry_core::ports::AttemptError;
use serde_json::json;

use crate::compliance::mysql::{URL, pool};
use crate::compliance::{deliverer, envelope, unique_name};

#[tokio::test]
async fn a_value_the_column_refuses_is_permanent() {
    let pool = pool().await;
    let table = unique_name("ferry_test_narrow");
    let ddl = format!(
        "CREATE TABLE {table} (id VARCHAR(64) PRIMARY KEY, type VARCHAR(3) NOT NULL, \
         timestamp DATETIME(6) NOT NULL, data JSON NOT NULL)"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
        .execute(&pool)
        .await
        .unwrap();
    let dest = deliverer(
        DestinationKind::Mysql,
        &json!({"url": URL, "table": table}),
        &Auth::None,
    );
    assert!(dest.check().await.ok);
    let report = dest.deliver(&envelope(1, 1)).await;
    let Err(AttemptError::Permanent { reason: error }) = &report.result else {
        panic!("{report:?}")
    };
    assert!(
        error.contains("rejected the row") && error.contains("type"),
        "{error}"
    );
}

#[tokio::test]
async fn an_id_column_without_a_unique_index_is_named_by_the_check() {
    let pool = pool().await;
    let table = unique_name("ferry_test_dupes");
    let ddl = format!(
        "CREATE TABLE {table} (id VARCHAR(64), type TEXT, timestamp DATETIME(6), data JSON)"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
        .execute(&pool)
        .await
        .unwrap();
    let dest = deliverer(
        DestinationKind::Mysql,
        &json!({"url": URL, "table": table}),
        &Auth::None,
    );
    let check = dest.check().await;
    assert!(
        !check.ok && check.message.contains("unique index"),
        "{}",
        check.message
    );
    let missing = deliverer(
        DestinationKind::Mysql,
        &json!({"url": URL, "table": unique_name("ferry_test_missing")}),
        &Auth::None,
    );
    let report = missing.deliver(&envelope(1, 1)).await;
    let Err(AttemptError::Permanent { reason: error }) = &report.result else {
        panic!("{report:?}")
    };
    assert!(error.contains("table does not exist"), "{error}");
}
