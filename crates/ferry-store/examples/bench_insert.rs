//! A manual timing check of the SQLite store's hot paths, with printed
//! figures (never a timed assertion):
//!
//! 1. ingest's group commit: `insert_events` of 1000 events × 1 delivery
//!    per transaction;
//! 2. the dispatcher's loop, `lease_due` + `complete` in batches, draining
//!    those deliveries while a paused destination's older backlog (half as
//!    many deliveries, all due first) is excluded — the case the per-
//!    destination leasing path exists for.
//!
//! `cargo run --release -p ferry-store --example bench_insert [batches] [dir]`
//! (the database goes to a temporary directory unless `dir` is given; every
//! commit is fsync'd, so the disk under `dir` matters).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ferry_core::audit::{AuditRecord, SYSTEM_ACTOR};
use ferry_core::crypto::Cipher;
use ferry_core::delivery::{Attempt, AttemptOutcome, Captured, Delivery};
use ferry_core::destination::{
    Auth, DEFAULT_MAX_IN_FLIGHT, Destination, DestinationKind, DestinationSecrets, Filter, Health,
};
use ferry_core::event::{Event, NewEvent};
use ferry_core::ids::{DeliveryId, DestinationId, EventId, OrgId};
use ferry_core::org::Org;
use ferry_core::ports::{Completion, Lease, Queue, Settled, Store};
use ferry_core::retry::RetryPolicy;
use ferry_store::SqliteStore;
use serde_json::json;

const BATCH: usize = 1000;
/// As many as the dispatcher leases at a time.
const LEASE: u32 = 256;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let batches: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(20);
    let tmp = tempfile::tempdir()?;
    let dir = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_owned());
    let path = dir.join("bench.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let store = SqliteStore::open(&path, Cipher::new(&Cipher::generate_key())?).await?;

    let org = Org {
        alert_destinations: Vec::new(),
        alerts: Default::default(),
        id: OrgId::generate(),
        name: "bench".into(),
        created_at: Utc::now(),
    };
    store.create_org(&org).await?;
    let live = destination(&store, &org.id, "live").await?;
    let paused = destination(&store, &org.id, "paused").await?;

    // 1. Ingest: one transaction per batch of BATCH events.
    let mut times = Vec::with_capacity(batches);
    for _ in 0..batches {
        let batch: Vec<NewEvent> = (0..BATCH)
            .map(|_| new_event(&org.id, &live, Utc::now()))
            .collect();
        let started = Instant::now();
        store.insert_events(&batch).await?;
        times.push(started.elapsed());
    }
    report("insert_events", &times, BATCH);

    // The paused destination's backlog, due an hour before everything else.
    let hour_ago = Utc::now() - chrono::Duration::hours(1);
    for _ in 0..batches.div_ceil(2) {
        let batch: Vec<NewEvent> = (0..BATCH)
            .map(|_| new_event(&org.id, &paused, hour_ago))
            .collect();
        store.insert_events(&batch).await?;
    }

    // 2. Dispatch: lease LEASE due deliveries, complete them as delivered.
    let exclude = [paused];
    let (mut leasing, mut completing, mut both) = (Vec::new(), Vec::new(), Vec::new());
    let mut done = 0;
    loop {
        let started = Instant::now();
        let now = Utc::now();
        let lease = Lease {
            owner: "bench".into(),
            now,
            until: now + chrono::Duration::seconds(30),
        };
        let leased = store.lease_due(LEASE, &lease, &exclude).await?;
        if leased.is_empty() {
            break;
        }
        leasing.push(started.elapsed());
        let ends: Vec<Completion> = leased.iter().map(|l| completion(&l.delivery)).collect();
        let completed = Instant::now();
        store.complete(&ends).await?;
        completing.push(completed.elapsed());
        both.push(started.elapsed());
        done += leased.len();
    }
    report("lease_due (excluding a backlog)", &leasing, LEASE as usize);
    report("complete", &completing, LEASE as usize);
    report("lease_due + complete", &both, LEASE as usize);
    println!(
        "delivered {done} of {}; the paused backlog stayed put",
        batches * BATCH
    );
    println!("counts: {:?}", store.delivery_counts().await?);
    println!(
        "database file: {} MiB",
        std::fs::metadata(&path)?.len() / 1024 / 1024
    );
    store.close().await;
    Ok(())
}

fn report(what: &str, times: &[Duration], per_batch: usize) {
    let mut sorted = times.to_vec();
    sorted.sort();
    let total: Duration = times.iter().sum();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{what}: {} batches of {per_batch}: median {:.1} ms, min {:.1} ms, max {:.1} ms; \
         {:.0} rows/s",
        times.len(),
        ms(sorted[sorted.len() / 2]),
        ms(sorted[0]),
        ms(sorted[sorted.len() - 1]),
        (times.len() * per_batch) as f64 / total.as_secs_f64(),
    );
}

async fn destination(
    store: &SqliteStore,
    org: &OrgId,
    name: &str,
) -> anyhow::Result<DestinationId> {
    let now = Utc::now();
    let d = Destination {
        id: DestinationId::generate(),
        org_id: org.clone(),
        name: name.into(),
        kind: DestinationKind::Webhook,
        config: json!({"url": "http://127.0.0.1:9/hook"}),
        filter: Filter::default(),
        retry: RetryPolicy::default(),
        is_default: true,
        enabled: true,
        max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        alerts: Default::default(),
        secrets: DestinationSecrets {
            auth: Auth::None,
            ..DestinationSecrets::default()
        },
        health: Health::default(),
        created_at: now,
        updated_at: now,
    };
    let audit = AuditRecord::new(
        org.clone(),
        "bench",
        "destination",
        d.id.as_str(),
        "created",
    );
    store.insert_destination(&d, &audit).await?;
    Ok(d.id)
}

fn new_event(org: &OrgId, dst: &DestinationId, at: DateTime<Utc>) -> NewEvent {
    let key = DeliveryId::generate().to_string();
    let event = Event {
        id: EventId::from_caller_key(org, &key),
        org_id: org.clone(),
        event_type: "order.created".into(),
        data: json!({"order_id": key, "customer": {"id": 1234, "email": "someone@example.com"},
                     "items": [{"sku": "A-1", "qty": 2, "price": 9.99}], "total": 19.98}),
        metadata: json!({}),
        idempotency_key: Some(key),
        created_at: at,
        trace: None,
    };
    let deliveries = vec![Delivery::new(&event, dst.clone())];
    NewEvent { event, deliveries }
}

fn completion(d: &Delivery) -> Completion {
    let audit = AuditRecord::new(
        d.org_id.clone(),
        SYSTEM_ACTOR,
        "delivery",
        d.id.as_str(),
        "delivered",
    );
    Completion {
        delivery_id: d.id.clone(),
        org_id: d.org_id.clone(),
        destination_id: d.destination_id.clone(),
        owner: "bench".into(),
        accepted_at: d.created_at,
        attempt: Attempt {
            delivery_id: d.id.clone(),
            number: d.attempt_count + 1,
            started_at: Utc::now(),
            duration_ms: 3,
            outcome: AttemptOutcome::Delivered,
            status_code: Some(200),
            error: None,
            // What a broker destination records: the message's metadata
            // and body, and the broker's receipt.
            request: Some(Captured {
                headers: [
                    ("key", "ferry-loadtest-stream"),
                    ("webhook-id", "evt_01kbx2y3z4a5b6c7d8e9f0g1h2"),
                    ("webhook-timestamp", "1764860000"),
                    ("ferry-delivery-id", "dlv_01kbx2y3z4a5b6c7d8e9f0g1h2"),
                    ("ferry-attempt", "1"),
                    ("type", "order.created"),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
                body: "x".repeat(400),
            }),
            response: Some(Captured {
                body: "1764860000123-0".into(),
                ..Captured::default()
            }),
            receipt: Some(ferry_core::attempt::Receipt::of([(
                "entry_id",
                serde_json::json!("1764860000123-0"),
            )])),
        },
        settled: Settled::Delivered,
        audit,
    }
}
