//! The PostgreSQL fixture and the checks that only make sense on
//! PostgreSQL: several processes (pools) sharing one schema, secrets sealed
//! in the server's rows, connection failures.
//!
//! Each fixture owns a schema of its own (`ferry_t_<random>`) in the
//! database named by `FERRY_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), dropped when the fixture is.
//! A server that cannot be reached fails the test, never skips it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use ferry_core::StoreError;
use ferry_core::crypto::Cipher;
use ferry_core::delivery::DeliveryStatus;
use ferry_core::event::InsertOutcome;
use ferry_core::ids::DeliveryId;
use ferry_core::ports::{Queue, Store};
use ferry_store::{PgOptions, PgStore};
use sqlx::Connection;

use crate::support::{self, Backend, Fixture};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

fn base_url() -> String {
    std::env::var("FERRY_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// A schema of its own in the test database.
pub struct PgFixture {
    url: String,
    schema: String,
    pub key: [u8; 32],
}

impl PgFixture {
    pub fn new() -> Self {
        let id = DeliveryId::generate();
        let suffix = id.as_str().trim_start_matches("dlv_");
        Self {
            url: base_url(),
            schema: format!("ferry_t_{suffix}"),
            key: Cipher::generate_key(),
        }
    }

    fn options(&self) -> PgOptions {
        PgOptions {
            max_connections: 4,
            schema: Some(self.schema.clone()),
            ..PgOptions::default()
        }
    }

    pub async fn open_pg(&self) -> PgStore {
        self.open_with_key(&self.key).await
    }

    async fn open_with_key(&self, key: &[u8; 32]) -> PgStore {
        self.open_with_cipher(Cipher::new(key).unwrap()).await
    }

    pub async fn open_with_cipher(&self, cipher: Cipher) -> PgStore {
        PgStore::connect_with(&self.url, cipher, &self.options())
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL is needed for these tests and is not usable at {} ({e}). \
                     Start it with `pg_ctlcluster --skip-systemctl-redirect \
                     $(ls /etc/postgresql) main start`, or point FERRY_TEST_DATABASE_URL \
                     at another server.",
                    self.url
                )
            })
    }
}

impl Fixture for PgFixture {
    async fn open(&self) -> Backend {
        let cipher = Cipher::new(&self.key).unwrap();
        let store = self.open_with_cipher(cipher.clone()).await;
        Backend::new(store.clone(), Arc::new(store), cipher)
    }

    async fn refuse_audit(&self, action: &str) {
        let mut admin = sqlx::PgConnection::connect(&self.url).await.unwrap();
        let schema = &self.schema;
        let sql = format!(
            "CREATE FUNCTION \"{schema}\".refuse_audit() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'refused'; END $$; \
             CREATE TRIGGER refuse_audit BEFORE INSERT ON \"{schema}\".audit FOR EACH ROW \
             WHEN (NEW.action = '{action}') EXECUTE FUNCTION \"{schema}\".refuse_audit()"
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
            .unwrap();
        admin.close().await.unwrap();
    }
}

impl Drop for PgFixture {
    /// Drops the schema (best effort, a few tries) on a thread of its own:
    /// `Drop` cannot await, and the test's runtime may be the current thread.
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let sql =
                    format!("SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
                let mut last = String::new();
                for _ in 0..3 {
                    let result = async {
                        let mut conn = sqlx::PgConnection::connect(&url).await?;
                        // The test's own connections may still be open (this
                        // thread blocks the runtime that would close them):
                        // end those that hold locks in the schema.
                        sqlx::query(
                            "SELECT pg_terminate_backend(l.pid) FROM pg_locks l \
                             JOIN pg_class c ON c.oid = l.relation \
                             JOIN pg_namespace n ON n.oid = c.relnamespace \
                             WHERE n.nspname = $1 AND l.pid <> pg_backend_pid()",
                        )
                        .bind(&schema)
                        .execute(&mut conn)
                        .await?;
                        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
                            .execute(&mut conn)
                            .await?;
                        conn.close().await
                    }
                    .await;
                    match result {
                        Ok(()) => return Ok(()),
                        Err(e) => last = e.to_string(),
                    }
                }
                Err(last)
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop test schema {}: {e}", self.schema),
            Err(_) => eprintln!("could not drop test schema {}", self.schema),
        }
    }
}

/// Two stores on one schema are two Ferry processes: workers of both lease
/// concurrently until nothing is due, and no delivery is leased twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_processes_never_lease_the_same_delivery() {
    let fixture = PgFixture::new();
    let one = fixture.open().await;
    let two = fixture.open().await;
    let org = support::org(&one).await;
    let (d1, d2) = (
        support::destination(&one, &org, "a").await,
        support::destination(&two, &org, "b").await,
    );
    let mut all: HashSet<DeliveryId> = HashSet::new();
    for _ in 0..6 {
        let batch: Vec<_> = (0..100)
            .map(|_| support::new_event(&org, &[&d1, &d2]))
            .collect();
        all.extend(
            batch
                .iter()
                .flat_map(|e| e.deliveries.iter().map(|d| d.id.clone())),
        );
        support::ingest(&one, &batch).await;
    }
    assert_eq!(all.len(), 1200);

    // Two workers per process, each leasing small batches and completing
    // them, until nothing is left.
    let workers: Vec<_> = [&one, &one, &two, &two]
        .into_iter()
        .enumerate()
        .map(|(i, b)| {
            let b = b.clone();
            tokio::spawn(async move {
                let owner = format!("worker-{i}");
                let mut leased = Vec::new();
                loop {
                    let batch = b
                        .queue
                        .lease_due(7, &support::lease(&owner, support::now()), &[])
                        .await
                        .unwrap();
                    if batch.is_empty() {
                        break leased;
                    }
                    let ends: Vec<_> = batch
                        .iter()
                        .map(|l| {
                            support::completion(l, &owner, DeliveryStatus::Delivered, None, false)
                        })
                        .collect();
                    b.queue.complete(&ends).await.unwrap();
                    leased.extend(support::ids(&batch));
                }
            })
        })
        .collect();
    let mut seen: HashSet<DeliveryId> = HashSet::new();
    let mut per_worker = Vec::new();
    for worker in workers {
        let leased = worker.await.unwrap();
        per_worker.push(leased.len());
        for id in leased {
            assert!(seen.insert(id.clone()), "{id} leased twice");
        }
    }
    assert_eq!(seen, all, "every delivery leased once");
    assert!(
        per_worker.iter().filter(|n| **n > 0).count() >= 2,
        "{per_worker:?}"
    );
    let counts = one.store.delivery_counts().await.unwrap();
    assert!(
        counts.contains(&(DeliveryStatus::Delivered, 1200)),
        "{counts:?}"
    );
    assert!(counts.contains(&(DeliveryStatus::Pending, 0)), "{counts:?}");
}

/// Concurrent claims of the same deliveries (the in-memory hand-over after
/// ingest, raced by two processes): each delivery goes to one claimer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_concurrent_claims_take_each_delivery_once() {
    let fixture = PgFixture::new();
    let one = fixture.open().await;
    let two = fixture.open().await;
    let org = support::org(&one).await;
    let dst = support::destination(&one, &org, "a").await;
    let batch: Vec<_> = (0..200)
        .map(|_| support::new_event(&org, &[&dst]))
        .collect();
    support::ingest(&one, &batch).await;
    let mut ids: Vec<DeliveryId> = batch.iter().map(|e| e.deliveries[0].id.clone()).collect();
    let reversed: Vec<DeliveryId> = ids.iter().rev().cloned().collect();

    let claims: Vec<_> = [(&one, ids.clone()), (&two, reversed)]
        .into_iter()
        .enumerate()
        .map(|(i, (b, ids))| {
            let queue = b.queue.clone();
            tokio::spawn(async move {
                let mut claimed = Vec::new();
                for chunk in ids.chunks(10) {
                    let lease = support::lease(&format!("c{i}"), support::now());
                    claimed.extend(queue.claim(chunk, &lease).await.unwrap());
                }
                claimed
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for c in claims {
        claimed.extend(c.await.unwrap());
    }
    claimed.sort();
    ids.sort();
    assert_eq!(claimed, ids, "each delivery claimed exactly once");
}

/// The same events sent to two ingest processes at once: each is stored
/// once, one process reports it inserted and the other a duplicate with the
/// same deliveries.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_concurrent_ingest_of_the_same_events_stores_them_once() {
    let fixture = PgFixture::new();
    let one = fixture.open().await;
    let two = fixture.open().await;
    let org = support::org(&one).await;
    let dst = support::destination(&one, &org, "a").await;
    let events: Vec<_> = (0..300)
        .map(|_| support::new_event(&org, &[&dst]))
        .collect();
    // The second process gets its own delivery ids, as a second ingest
    // process would route the event afresh.
    // It also sees them in the opposite order.
    let mut again: Vec<_> = events.iter().rev().cloned().collect();
    for e in &mut again {
        e.deliveries = vec![ferry_core::delivery::Delivery::new(&e.event, dst.clone())];
    }
    let inserts: Vec<_> = [(&one, events.clone()), (&two, again)]
        .into_iter()
        .map(|(b, batch)| {
            let store = b.store.clone();
            tokio::spawn(async move {
                // One group commit each, so that both transactions hold
                // some of the ids while waiting for the others.
                store.insert_events(&batch).await.unwrap()
            })
        })
        .collect();
    let mut results = Vec::new();
    for insert in inserts {
        results.push(insert.await.unwrap());
    }
    results[1].reverse();
    for (i, e) in events.iter().enumerate() {
        let (a, b) = (&results[0][i], &results[1][i]);
        let stored = one
            .store
            .get_event(&org, &e.event.id)
            .await
            .unwrap()
            .unwrap()
            .1;
        assert_eq!(stored.len(), 1, "one set of deliveries");
        match (a, b) {
            (InsertOutcome::Inserted, InsertOutcome::Duplicate(d))
            | (InsertOutcome::Duplicate(d), InsertOutcome::Inserted) => assert_eq!(d, &stored),
            other => panic!("event {i}: {other:?}"),
        }
    }
    let counts = one.store.delivery_counts().await.unwrap();
    assert!(
        counts.contains(&(DeliveryStatus::Pending, 300)),
        "{counts:?}"
    );
}

/// What reaches PostgreSQL's rows for a destination: never its secrets.
#[tokio::test]
async fn postgres_keeps_destination_secrets_sealed() {
    let fixture = PgFixture::new();
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

    let mut conn = sqlx::PgConnection::connect(&fixture.url).await.unwrap();
    let sql = format!(
        "SELECT concat_ws('|', d::text, encode(secrets, 'escape')) FROM \"{}\".destinations d",
        fixture.schema
    );
    let row: String = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(row.contains("https://receiver.test/hook"), "reads the row");
    for secret in [token, signing.as_str(), "whsec_"] {
        assert!(!row.contains(secret), "secret in plaintext in the row");
    }
}

#[tokio::test]
async fn postgres_with_the_wrong_master_key_reports_corruption() {
    let fixture = PgFixture::new();
    let b = fixture.open().await;
    let org = support::org(&b).await;
    let dst = support::destination(&b, &org, "a").await;
    let store = fixture.open_with_key(&Cipher::generate_key()).await;
    let err = store.get_destination(&org, &dst).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    assert!(!err.to_string().contains("token-for-tests"));
    assert!(store.get_org(&org).await.unwrap().is_some());
}

#[tokio::test]
async fn postgres_that_cannot_be_reached_is_unavailable() {
    let options = PgOptions {
        acquire_timeout: Duration::from_secs(2),
        ..PgOptions::default()
    };
    let cipher = Cipher::new(&Cipher::generate_key()).unwrap();
    let err = PgStore::connect_with("postgres://postgres:pw@127.0.0.1:1/test", cipher, &options)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(!err.to_string().contains("pw@"), "no password in {err}");
}

#[tokio::test]
async fn postgres_closed_store_is_unavailable() {
    let fixture = PgFixture::new();
    let store = fixture.open_pg().await;
    store.close().await;
    assert!(matches!(
        store.ping().await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        store.next_due_at(&[]).await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        store.probe_write().await,
        Err(StoreError::Unavailable(_))
    ));
}

/// A COMMIT that fails (here a deferred trigger refusing the write at
/// commit time, as a full disk or a serialization failure would) leaves no
/// connection inside a transaction: on a pool of one connection, which
/// every write reuses, the writes after it commit. (A dropped connection is
/// replaced by the pool; the process tests crash PostgreSQL under load.)
#[tokio::test]
async fn postgres_a_failed_commit_leaves_no_connection_stuck() {
    let fixture = PgFixture::new();
    let options = PgOptions {
        max_connections: 1,
        ..fixture.options()
    };
    let store = PgStore::connect_with(&fixture.url, Cipher::new(&fixture.key).unwrap(), &options)
        .await
        .unwrap();
    let mut admin = sqlx::PgConnection::connect(&fixture.url).await.unwrap();
    let schema = &fixture.schema;
    let refuse = format!(
        "CREATE FUNCTION \"{schema}\".refuse() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'refused at commit'; END $$; \
         CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT OR UPDATE \
         ON \"{schema}\".write_probe DEFERRABLE INITIALLY DEFERRED \
         FOR EACH ROW EXECUTE FUNCTION \"{schema}\".refuse()"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(refuse))
        .execute(&mut admin)
        .await
        .unwrap();
    for _ in 0..3 {
        let error = store.probe_write().await.unwrap_err();
        assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
        assert!(
            !error.to_string().contains("refused"),
            "driver text: {error}"
        );
    }
    let allow = format!("DROP TRIGGER refuse_at_commit ON \"{schema}\".write_probe");
    sqlx::raw_sql(sqlx::AssertSqlSafe(allow))
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();
    store.probe_write().await.unwrap();
    let b = Backend::new(
        store.clone(),
        Arc::new(store.clone()),
        Cipher::new(&fixture.key).unwrap(),
    );
    let org = support::org(&b).await;
    let dst = support::destination(&b, &org, "a").await;
    support::ingest(&b, &[support::new_event(&org, &[&dst])]).await;
    store.close().await;
}
