//! A manual timing check of the SQLite store's hot paths, with printed
//! figures (never a timed assertion): ingest's group commit
//! (`insert_events` of 1000 events × 1 delivery per transaction), then the
//! dispatcher's loop (`lease_due` + `complete` in batches) draining them.
//!
//! `cargo run --release -p ferry-store --example bench_insert [batches] [dir]`
//! (the database goes to a temporary directory unless `dir` is given; use a
//! directory on the disk you care about, since every commit is fsync'd).

use std::time::{Duration, Instant};

use chrono::Utc;
use ferry_core::audit::{AuditRecord, SYSTEM_ACTOR};
use ferry_core::crypto::Cipher;
use ferry_core::delivery::{Attempt, AttemptOutcome, Captured, Delivery, DeliveryStatus};
use ferry_core::destination::{
    Auth, DEFAULT_MAX_IN_FLIGHT, Destination, DestinationKind, DestinationSecrets, Filter, Health,
};
use ferry_core::event::{Event, NewEvent};
use ferry_core::ids::{DestinationId, EventId, OrgId};
use ferry_core::org::Org;
use ferry_core::ports::{Completion, Lease, Queue, Store};
use ferry_core::retry::RetryPolicy;
use ferry_store::SqliteStore;
use serde_json::json;

const BATCH: usize = 1000;
const LEASE: u32 = 500;

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
    let _ = std::fs::remove_file(&path);
    let store = SqliteStore::open(&path, Cipher::new(&Cipher::generate_key())?).await?;

    let org = Org {
        id: OrgId::generate(),
        name: "bench".into(),
        created_at: Utc::now(),
    };
    store.create_org(&org).await?;
    let dst = destination(&org.id);
    store
        .insert_destination(
            &dst,
            &AuditRecord::new(
                org.id.clone(),
                "bench",
                "destination",
                dst.id.as_str(),
                "destination.created",
            ),
        )
        .await?;

    // Ingest: one transaction per batch of BATCH events.
    let mut times = Vec::with_capacity(batches);
    for _ in 0..batches {
        let batch: Vec<NewEvent> = (0..BATCH).map(|_| new_event(&org.id, &dst.id)).collect();
        let started = Instant::now();
        store.insert_events(&batch).await?;
        times.push(started.elapsed());
    }
    report("insert_events", &times, BATCH);

    // Dispatch: lease LEASE due deliveries, complete them as delivered.
    let (mut times, mut lease_times, mut complete_times) = (Vec::new(), Vec::new(), Vec::new());
    let mut done = 0;
    loop {
        let started = Instant::now();
        let now = Utc::now();
        let lease = Lease {
            owner: "bench".into(),
            now,
            until: now + chrono::Duration::seconds(30),
        };
        let leased = store.lease_due(LEASE, &lease, &[]).await?;
        if leased.is_empty() {
            break;
        }
        lease_times.push(started.elapsed());
        let ends: Vec<Completion> = leased.iter().map(|l| completion(&l.delivery)).collect();
        let completing = Instant::now();
        store.complete(&ends).await?;
        complete_times.push(completing.elapsed());
        times.push(started.elapsed());
        done += leased.len();
    }
    report("lease_due", &lease_times, LEASE as usize);
    report("complete", &complete_times, LEASE as usize);
    report("lease_due + complete", &times, LEASE as usize);
    println!("delivered {done} of {}", batches * BATCH);
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
        "{what}: {} batches of {per_batch}: median {:.1} ms, min {:.1} ms, max {:.1} ms; {:.0} rows/s",
        times.len(),
        ms(sorted[sorted.len() / 2]),
        ms(sorted[0]),
        ms(sorted[sorted.len() - 1]),
        (times.len() * per_batch) as f64 / total.as_secs_f64(),
    );
}

fn destination(org: &OrgId) -> Destination {
    let now = Utc::now();
    Destination {
        id: DestinationId::generate(),
        org_id: org.clone(),
        name: "bench".into(),
        kind: DestinationKind::Webhook,
        config: json!({"url": "http://127.0.0.1:9/hook"}),
        filter: Filter::default(),
        retry: RetryPolicy::default(),
        is_default: true,
        enabled: true,
        max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        secrets: DestinationSecrets {
            auth: Auth::None,
            ..DestinationSecrets::default()
        },
        health: Health::default(),
        created_at: now,
        updated_at: now,
    }
}

fn new_event(org: &OrgId, dst: &DestinationId) -> NewEvent {
    let key = ferry_core::ids::DeliveryId::generate().to_string();
    let event = Event {
        id: EventId::from_caller_key(org, &key),
        org_id: org.clone(),
        event_type: "order.created".into(),
        data: json!({"order_id": key, "customer": {"id": 1234, "email": "someone@example.com"},
                     "items": [{"sku": "A-1", "qty": 2, "price": 9.99}], "total": 19.98}),
        metadata: json!({}),
        idempotency_key: Some(key),
        created_at: Utc::now(),
    };
    let deliveries = vec![Delivery::new(&event, dst.clone())];
    NewEvent { event, deliveries }
}

fn completion(d: &Delivery) -> Completion {
    Completion {
        delivery_id: d.id.clone(),
        owner: "bench".into(),
        attempt: Attempt {
            delivery_id: d.id.clone(),
            number: d.attempt_count + 1,
            started_at: Utc::now(),
            duration_ms: 3,
            outcome: AttemptOutcome::Delivered,
            status_code: Some(200),
            error: None,
            request: Some(Captured {
                body: "{}".into(),
                ..Captured::default()
            }),
            response: Some(Captured {
                body: "ok".into(),
                ..Captured::default()
            }),
        },
        status: DeliveryStatus::Delivered,
        next_attempt_at: None,
        counted: false,
        last_error: None,
        audit: AuditRecord::new(
            d.org_id.clone(),
            SYSTEM_ACTOR,
            "delivery",
            d.id.as_str(),
            "delivery.delivered",
        ),
    }
}
