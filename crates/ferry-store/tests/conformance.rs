//! The conformance suite of the `Store` and `Queue` ports. Every case is a
//! generic function over a `Fixture` (where a backend lives) and talks to
//! the backend only through `Arc<dyn Store>` / `Arc<dyn Queue>`;
//! `conformance!` turns the cases into one test each for a backend. A new
//! backend adds a fixture and one `conformance!` line. Checks that only make
//! sense for one backend follow: SQLite's (file bytes) at the end of this
//! file, PostgreSQL's (several processes on one schema) in `postgres.rs`
//! with its fixture. PostgreSQL with the Redis Streams queue runs the same
//! cases (`redis.rs`), and its own checks (lost Redis data) in
//! `redis_queue.rs`.

#[path = "conformance/config.rs"]
mod config;
#[path = "conformance/exports.rs"]
mod exports;
#[path = "conformance/metrics.rs"]
mod metrics;
#[path = "conformance/operator.rs"]
mod operator;
#[path = "conformance/postgres.rs"]
mod pg;
#[path = "conformance/queue.rs"]
mod queue;
#[path = "conformance/redis.rs"]
mod redis_fixture;
#[path = "conformance/redis_queue.rs"]
mod redis_queue;
#[path = "conformance/replay.rs"]
mod replay;
#[path = "conformance/schedules.rs"]
mod schedules;
#[path = "conformance/sources.rs"]
mod sources;
#[path = "conformance/state.rs"]
mod state;
#[path = "conformance/support.rs"]
mod support;

use std::path::PathBuf;
use std::sync::Arc;

use ferry_core::StoreError;
use ferry_core::crypto::Cipher;
use ferry_core::ports::Store;
use ferry_store::SqliteStore;
use support::{Backend, Fixture};

macro_rules! conformance {
    ($backend:ident, $fixture:expr) => {
        mod $backend {
            use super::*;
            conformance!(@cases $fixture;
                state::insert_events_reports_duplicates,
                state::large_batches_commit_whole,
                state::organizations_are_isolated,
                state::lists_page_newest_first,
                state::api_keys,
                state::the_write_probe_commits_and_changes_nothing_else,
                state::destinations_round_trip,
                operator::requeue_moves_terminal_deliveries_back,
                operator::deleting_a_destination_fails_its_deliveries,
                operator::filters_select_what_they_name,
                operator::committed_data_survives_reopening,
                replay::replaying_an_unknown_event_finds_nothing,
                replay::replay_requeues_settled_and_adds_listed_destinations,
                replay::replay_without_a_list_requeues_every_settled_delivery,
                replay::a_failed_replay_writes_nothing,
                replay::deliveries_join_an_existing_event,
                sources::organizations_update_with_an_audit_record,
                sources::sources_round_trip_within_their_org,
                sources::every_id_names_its_owner,
                sources::resealing_moves_every_secret_to_the_new_key,
                sources::conflicts_are_reported_in_ferrys_words,
                exports::export_jobs_move_only_forward,
                exports::record_pages_walk_in_order_within_their_filters,
                exports::incremental_windows_select_what_changed,
                schedules::schedules_round_trip_within_their_org,
                schedules::a_revision_is_written_by_one_writer,
                schedules::a_run_has_one_job,
                schedules::due_schedules_are_the_enabled_ones_in_due_order,
                schedules::runs_busy_and_kept_outputs_come_from_the_history,
                schedules::deleting_a_schedule_keeps_its_runs,
                config::an_import_applies_every_change_with_its_audit,
                config::a_failed_import_changes_nothing,
                config::an_updated_destination_keeps_its_health,
                config::an_updated_schedule_is_written_over_the_revision_read,
                config::a_replaced_source_is_the_given_one,
                config::deleting_a_destination_in_an_import_fails_its_deliveries,
                metrics::rollups_add_up_and_merge_into_coarser_buckets,
                metrics::compaction_folds_old_buckets_once_and_applies_retention,
                queue::claim_takes_only_pending,
                queue::lease_due_takes_oldest_due_first,
                queue::lease_due_respects_limit_and_shares_events,
                queue::lease_destination_ignores_due_time,
                queue::complete_records_attempts_and_moves_on,
                queue::a_lost_lease_records_but_does_not_move,
                queue::release_gives_leases_back,
                queue::reclaim_takes_back_expired_and_foreign_leases,
                queue::a_renewed_lease_outlives_its_first_expiry,
            );
        }
    };
    (@cases $fixture:expr; $($module:ident :: $case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let fixture = $fixture;
                super::$module::$case(&fixture).await;
            }
        )*
    };
}

/// A SQLite database file in its own temporary directory.
struct SqliteFixture {
    dir: tempfile::TempDir,
    key: [u8; 32],
}

impl SqliteFixture {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            key: Cipher::generate_key(),
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("ferry.db")
    }

    async fn open_sqlite(&self) -> SqliteStore {
        SqliteStore::open(&self.path(), Cipher::new(&self.key).unwrap())
            .await
            .unwrap()
    }
}

impl Fixture for SqliteFixture {
    async fn open(&self) -> Backend {
        let cipher = Cipher::new(&self.key).unwrap();
        let store = SqliteStore::open(&self.path(), cipher.clone())
            .await
            .unwrap();
        Backend::new(store.clone(), Arc::new(store), cipher)
    }

    async fn refuse_audit(&self, action: &str) {
        use sqlx::Connection;
        let url = format!("sqlite://{}", self.path().display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let sql = format!(
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit WHEN NEW.action = '{action}' \
             BEGIN SELECT RAISE(ABORT, 'refused'); END"
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    }
}

conformance!(sqlite, SqliteFixture::new());
conformance!(postgres, pg::PgFixture::new());
conformance!(postgres_redis, redis_fixture::RedisFixture::new());

/// The bytes SQLite keeps on disk for the database: the file and its WAL.
fn bytes_on_disk(fixture: &SqliteFixture) -> Vec<u8> {
    let mut bytes = std::fs::read(fixture.path()).unwrap();
    if let Ok(wal) = std::fs::read(fixture.dir.path().join("ferry.db-wal")) {
        bytes.extend(wal);
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn sqlite_keeps_destination_secrets_sealed() {
    let fixture = SqliteFixture::new();
    let b = fixture.open().await;
    let org = support::org(&b).await;
    let token = "plaintext-bearer-token-0123456789";
    let d = support::destination_value(&org, "sealed", token);
    let signing = d.secrets.signing.secrets[0].secret.expose().to_owned();
    b.store
        .insert_destination(&d, &support::audit(&org, "d", "x"))
        .await
        .unwrap();

    let stored = b.store.get_destination(&org, &d.id).await.unwrap().unwrap();
    assert_eq!(stored.secrets, d.secrets, "readable through the store");
    let on_disk = bytes_on_disk(&fixture);
    assert!(
        contains(&on_disk, "https://receiver.test/hook"),
        "the check reads the right bytes"
    );
    assert!(
        !contains(&on_disk, token),
        "bearer token in plaintext on disk"
    );
    assert!(
        !contains(&on_disk, &signing),
        "signing secret in plaintext on disk"
    );
    assert!(
        !contains(&on_disk, "whsec_"),
        "signing secret prefix on disk"
    );
}

#[tokio::test]
async fn sqlite_with_the_wrong_master_key_reports_corruption() {
    let fixture = SqliteFixture::new();
    let (org, dst) = {
        let b = fixture.open().await;
        let org = support::org(&b).await;
        (org.clone(), support::destination(&b, &org, "a").await)
    };
    let wrong = Cipher::new(&Cipher::generate_key()).unwrap();
    let store = SqliteStore::open(&fixture.path(), wrong).await.unwrap();
    let err = store.get_destination(&org, &dst).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    assert!(!err.to_string().contains("token-for-tests"));
    assert!(
        store.get_org(&org).await.unwrap().is_some(),
        "the rest stays readable"
    );
}

#[tokio::test]
async fn sqlite_that_cannot_open_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-dir").join("ferry.db");
    let err = SqliteStore::open(&path, Cipher::new(&Cipher::generate_key()).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn sqlite_closed_store_is_unavailable() {
    let fixture = SqliteFixture::new();
    let store = fixture.open_sqlite().await;
    store.close().await;
    assert!(matches!(
        store.ping().await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        store.probe_write().await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        store
            .append_audit(&[support::audit(
                &ferry_core::ids::OrgId::generate(),
                "e",
                "a"
            )])
            .await,
        Err(StoreError::Unavailable(_))
    ));
}

#[tokio::test]
async fn sqlite_concurrent_writers_do_not_collide() {
    let fixture = SqliteFixture::new();
    let b = fixture.open().await;
    let org = support::org(&b).await;
    let dst = support::destination(&b, &org, "a").await;
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let b = b.clone();
            let (org, dst) = (org.clone(), dst.clone());
            tokio::spawn(async move {
                let batch: Vec<_> = (0..50).map(|_| support::new_event(&org, &[&dst])).collect();
                support::ingest(&b, &batch).await;
                let leased = b
                    .queue
                    .lease_due(20, &support::lease("w", support::now()), &[])
                    .await
                    .unwrap();
                let ends: Vec<_> = leased
                    .iter()
                    .map(|l| {
                        support::completion(
                            l,
                            "w",
                            ferry_core::delivery::DeliveryStatus::Delivered,
                            None,
                            false,
                        )
                    })
                    .collect();
                b.queue.complete(&ends).await.unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let counts = b.store.delivery_counts().await.unwrap();
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    assert_eq!(total, 800);
    assert!(
        counts.contains(&(ferry_core::delivery::DeliveryStatus::Delivered, 320)),
        "{counts:?}"
    );
}
