//! What is particular to the postgres kind: mapped columns in a schema,
//! and a table that does not fit named by the check and the delivery.

use ferry_core::destination::{Auth, DestinationKind};
use ferry_core::ports::AttemptError;
use serde_json::{Value, json};

use crate::compliance::postgres::{URL, create_table, pool};
use crate::compliance::{deliverer, envelope, unique_name};

#[tokio::test]
async fn mapped_columns_in_a_schema_store_only_what_they_name() {
    let pool = pool().await;
    let schema = unique_name("ferry_test_schema");
    let ddl = format!(
        "CREATE SCHEMA {schema}; CREATE TABLE {schema}.log \
         (event_id text PRIMARY KEY, payload jsonb NOT NULL, noted_at timestamptz DEFAULT now())"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
        .execute(&pool)
        .await
        .unwrap();
    let config = json!({"url": URL, "table": format!("{schema}.log"),
                        "columns": {"id": "event_id", "data": "payload", "type": null, "timestamp": null}});
    let dest = deliverer(DestinationKind::Postgres, &config, &Auth::None);
    let check = dest.check().await;
    assert!(check.ok, "{}", check.message);
    let event = envelope(7, 1);
    let report = dest.deliver(&event).await;
    assert!(report.result.is_ok(), "{report:?}");
    let select = format!("SELECT event_id, payload FROM {schema}.log");
    let (id, payload): (String, sqlx::types::Json<Value>) =
        sqlx::query_as(sqlx::AssertSqlSafe(select))
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(id, event.event.id.as_str());
    assert_eq!(payload.0, event.event.data);
}

#[tokio::test]
async fn a_missing_table_or_column_is_permanent_and_named() {
    let pool = pool().await;
    let missing = unique_name("ferry_test_missing");
    let config = json!({"url": URL, "table": missing});
    let dest = deliverer(DestinationKind::Postgres, &config, &Auth::None);
    let check = dest.check().await;
    assert!(
        !check.ok && check.message.contains("does not exist"),
        "{}",
        check.message
    );
    let report = dest.deliver(&envelope(1, 1)).await;
    let Err(AttemptError::Permanent { reason: error }) = &report.result else {
        panic!("{report:?}")
    };
    assert!(
        error.contains("table does not exist") && error.contains(&missing),
        "{error}"
    );

    let table = unique_name("ferry_test");
    create_table(&pool, &table).await;
    let config = json!({"url": URL, "table": table, "columns": {"data": "body"}});
    let dest = deliverer(DestinationKind::Postgres, &config, &Auth::None);
    let check = dest.check().await;
    assert!(
        !check.ok && check.message.contains("no column `body`"),
        "{}",
        check.message
    );
    let report = dest.deliver(&envelope(1, 1)).await;
    let Err(AttemptError::Permanent { reason: error }) = &report.result else {
        panic!("{report:?}")
    };
    assert!(
        error.contains("column") && error.contains("body"),
        "{error}"
    );
}

#[tokio::test]
async fn an_id_column_without_a_unique_index_is_refused() {
    let pool = pool().await;
    let table = unique_name("ferry_test_dupes");
    let ddl =
        format!("CREATE TABLE {table} (id text, type text, timestamp timestamptz, data jsonb)");
    sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
        .execute(&pool)
        .await
        .unwrap();
    let config = json!({"url": URL, "table": table});
    let dest = deliverer(DestinationKind::Postgres, &config, &Auth::None);
    let check = dest.check().await;
    assert!(
        !check.ok && check.message.contains("unique index"),
        "{}",
        check.message
    );
    let report = dest.deliver(&envelope(1, 1)).await;
    let Err(AttemptError::Permanent { reason: error }) = &report.result else {
        panic!("{report:?}")
    };
    assert!(error.contains("unique index"), "{error}");
}
