//! What only the Redis Streams queue must survive: Redis losing its data
//! (`FLUSHALL` of this deployment's keys), its consumer group deleted, a
//! consumer that crashed with entries read, and a destination that cannot
//! take deliveries while its entries come by. PostgreSQL is the truth each
//! time: every waiting delivery is leased again, none twice.

use std::collections::HashSet;
use std::time::Duration;

use ferry_core::delivery::DeliveryStatus;
use ferry_core::destination::Health;
use ferry_core::ids::DeliveryId;
use ferry_core::ports::{Queue, Reclaim};
use ferry_store::RedisQueue;

use crate::redis_fixture::RedisFixture;
use crate::support::*;

/// Leases everything due at `at` for `owner`, in as many calls as needed.
async fn lease_all(
    queue: &RedisQueue,
    owner: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Vec<DeliveryId> {
    let mut all = Vec::new();
    loop {
        let leased = queue.lease_due(100, &lease(owner, at), &[]).await.unwrap();
        if leased.is_empty() {
            return all;
        }
        all.extend(ids(&leased));
    }
}

fn distinct(ids: &[DeliveryId]) -> HashSet<DeliveryId> {
    let set: HashSet<_> = ids.iter().cloned().collect();
    assert_eq!(set.len(), ids.len(), "a delivery was leased twice: {ids:?}");
    set
}

async fn delete_keys(fixture: &RedisFixture) {
    let mut redis = fixture.redis().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:*", fixture.prefix))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(
        !keys.is_empty(),
        "the queue keeps its keys under its prefix"
    );
    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut redis)
        .await
        .unwrap();
}

#[tokio::test]
async fn losing_every_redis_key_loses_no_delivery() {
    let fixture = RedisFixture::new();
    let b = fixture.open().await;
    let queue = fixture.open_queue().await;
    let org = org(&b).await;
    let dst = destination(&b, &org, "a").await;
    let batch: Vec<_> = (0..10).map(|_| new_event(&org, &[&dst])).collect();
    ingest(&b, &batch).await;
    let t = now();
    queue.reclaim(&Reclaim::ExpiredBefore(t)).await.unwrap();

    // Three leased; one of them fails and waits an hour for its retry.
    let first = queue.lease_due(3, &lease("w", t), &[]).await.unwrap();
    assert_eq!(first.len(), 3);
    let retry_at = t + secs(3600);
    let backoff = completion(
        &first[0],
        "w",
        DeliveryStatus::Retrying,
        Some(retry_at),
        true,
    );
    queue.complete(&[backoff]).await.unwrap();

    delete_keys(&fixture).await;
    assert!(
        lease_all(&queue, "w", t).await.is_empty(),
        "nothing to read once Redis lost its data"
    );
    // The next reconciliation (every lease reclaim) restores the queue.
    queue.reclaim(&Reclaim::ExpiredBefore(t)).await.unwrap();
    let restored = lease_all(&queue, "w", t + secs(1)).await;
    let expected: HashSet<_> = batch[3..]
        .iter()
        .map(|e| e.deliveries[0].id.clone())
        .collect();
    assert_eq!(distinct(&restored), expected);
    let retried = lease_all(&queue, "w", retry_at + secs(1)).await;
    assert_eq!(
        retried,
        [first[0].delivery.id.clone()],
        "the delayed retry too"
    );
}

#[tokio::test]
async fn a_deleted_consumer_group_is_created_again_and_nothing_is_lost() {
    let fixture = RedisFixture::new();
    let b = fixture.open().await;
    let queue = fixture.open_queue().await;
    let org = org(&b).await;
    let dst = destination(&b, &org, "a").await;
    let batch: Vec<_> = (0..5).map(|_| new_event(&org, &[&dst])).collect();
    ingest(&b, &batch).await;
    let t = now();
    queue.reclaim(&Reclaim::ExpiredBefore(t)).await.unwrap();

    // A worker reads two entries and dies; then the group is deleted.
    let crashed = queue.lease_due(2, &lease("crashed", t), &[]).await.unwrap();
    assert_eq!(crashed.len(), 2);
    let mut redis = fixture.redis().await;
    let _: () = redis::cmd("XGROUP")
        .arg("DESTROY")
        .arg(RedisQueue::stream_key(&fixture.prefix))
        .arg(RedisQueue::GROUP)
        .query_async(&mut redis)
        .await
        .unwrap();

    let rest = queue.lease_due(100, &lease("w", t), &[]).await.unwrap();
    assert_eq!(rest.len(), 3, "the unread entries are read again");
    let done: Vec<_> = rest
        .iter()
        .map(|l| completion(l, "w", DeliveryStatus::Delivered, None, false))
        .collect();
    queue.complete(&done).await.unwrap();
    // The crashed worker's leases expire; their deliveries come back.
    let later = t + secs(31);
    queue.reclaim(&Reclaim::ExpiredBefore(later)).await.unwrap();
    let recovered = lease_all(&queue, "w", later).await;
    let mut all = ids(&rest);
    all.extend(recovered);
    let expected: HashSet<_> = batch.iter().map(|e| e.deliveries[0].id.clone()).collect();
    assert_eq!(distinct(&all), expected);
}

#[tokio::test]
async fn a_crashed_consumers_entries_are_taken_over_once_idle() {
    let fixture = RedisFixture::with_options(Duration::from_millis(300), Duration::from_secs(10));
    let b = fixture.open().await;
    let queue = fixture.open_queue().await;
    let org = org(&b).await;
    let dst = destination(&b, &org, "a").await;
    let batch: Vec<_> = (0..3).map(|_| new_event(&org, &[&dst])).collect();
    ingest(&b, &batch).await;

    let t = now();
    let mut short = lease("crashed", t);
    short.until = t + chrono::Duration::milliseconds(100);
    assert_eq!(queue.lease_due(10, &short, &[]).await.unwrap().len(), 3);
    assert!(
        queue
            .lease_due(10, &lease("w", t), &[])
            .await
            .unwrap()
            .is_empty()
    );

    tokio::time::sleep(Duration::from_millis(400)).await;
    let taken = queue.lease_due(10, &lease("w", now()), &[]).await.unwrap();
    let expected: HashSet<_> = batch.iter().map(|e| e.deliveries[0].id.clone()).collect();
    assert_eq!(
        distinct(&ids(&taken)),
        expected,
        "taken over without a reclaim"
    );
}

#[tokio::test]
async fn a_paused_destinations_entries_come_back_when_it_resumes() {
    let fixture = RedisFixture::with_options(Duration::from_secs(330), Duration::ZERO);
    let b = fixture.open().await;
    let queue = fixture.open_queue().await;
    let org = org(&b).await;
    let (paused, busy) = (
        destination(&b, &org, "paused").await,
        destination(&b, &org, "busy").await,
    );
    queue.reclaim(&Reclaim::ExpiredBefore(now())).await.unwrap();
    let paused_health = Health {
        next_probe_at: Some(now() + secs(60)),
        consecutive_failures: 10,
        ..Health::default()
    };
    b.store
        .save_health(&[(paused.clone(), paused_health)])
        .await
        .unwrap();
    let for_paused: Vec<_> = (0..3).map(|_| new_event(&org, &[&paused])).collect();
    let for_busy: Vec<_> = (0..2).map(|_| new_event(&org, &[&busy])).collect();
    ingest(&b, &for_paused).await;
    ingest(&b, &for_busy).await;

    // Both excluded: the paused one's entries are dropped, the busy
    // (saturated) one's go back to the stream.
    let t = now();
    let excluded = [paused.clone(), busy.clone()];
    assert!(
        queue
            .lease_due(10, &lease("w", t), &excluded)
            .await
            .unwrap()
            .is_empty()
    );
    let busy_ids = lease_all(&queue, "w", t).await;
    let expected: HashSet<_> = for_busy
        .iter()
        .map(|e| e.deliveries[0].id.clone())
        .collect();
    assert_eq!(distinct(&busy_ids), expected);

    // Resumed: the next reconciliation gives its deliveries to the queue.
    b.store
        .save_health(&[(paused.clone(), Health::default())])
        .await
        .unwrap();
    queue.reclaim(&Reclaim::ExpiredBefore(now())).await.unwrap();
    let resumed = lease_all(&queue, "w", now()).await;
    let expected: HashSet<_> = for_paused
        .iter()
        .map(|e| e.deliveries[0].id.clone())
        .collect();
    assert_eq!(distinct(&resumed), expected);
}

#[tokio::test]
async fn an_entry_added_after_the_lease_time_was_taken_is_leased() {
    let fixture = RedisFixture::new();
    let b = fixture.open().await;
    let queue = fixture.open_queue().await;
    let org = org(&b).await;
    let dst = destination(&b, &org, "a").await;
    // A worker takes the time, then reads: an event committed in between
    // is due although it is younger than the lease's start.
    let taken = now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let batch = [new_event(&org, &[&dst])];
    ingest(&b, &batch).await;
    let leased = queue.lease_due(10, &lease("w", taken), &[]).await.unwrap();
    assert_eq!(ids(&leased), vec![batch[0].deliveries[0].id.clone()]);
}

#[tokio::test]
async fn an_entry_read_before_its_delivery_is_due_waits_for_it() {
    let fixture = RedisFixture::new();
    let b = fixture.open().await;
    let queue = fixture.open_queue().await;
    let org = org(&b).await;
    let dst = destination(&b, &org, "a").await;
    // Added to the stream by a host whose clock runs two seconds ahead.
    let t = now();
    let event = new_event_at(&org, "order.created", &[&dst], t + secs(2));
    let outcomes = b
        .store
        .insert_events(std::slice::from_ref(&event))
        .await
        .unwrap();
    assert!(matches!(
        outcomes[..],
        [ferry_core::event::InsertOutcome::Inserted]
    ));
    let delivery = &event.deliveries[0];
    let mut redis = fixture.redis().await;
    let _: String = redis::cmd("XADD")
        .arg(RedisQueue::stream_key(&fixture.prefix))
        .arg("*")
        .arg("d")
        .arg(delivery.id.as_str())
        .arg("t")
        .arg(dst.as_str())
        .query_async(&mut redis)
        .await
        .unwrap();

    assert!(lease_all(&queue, "w", t).await.is_empty(), "not due yet");
    assert_eq!(
        lease_all(&queue, "w", t + secs(3)).await,
        vec![delivery.id.clone()],
        "the early entry was dropped and its delivery stranded"
    );
}

#[tokio::test]
async fn a_deleted_destination_leaves_no_retry_or_dead_letter_in_redis() {
    let fixture = RedisFixture::new();
    let b = fixture.open().await;
    let queue = fixture.open_queue().await;
    let org = org(&b).await;
    let dst = destination(&b, &org, "gone").await;
    let batch: Vec<_> = (0..2).map(|_| new_event(&org, &[&dst])).collect();
    ingest(&b, &batch).await;
    let t = now();
    queue.reclaim(&Reclaim::ExpiredBefore(t)).await.unwrap();
    let leased = queue.lease_due(2, &lease("w", t), &[]).await.unwrap();
    assert_eq!(leased.len(), 2);

    // Deleted while both attempts are in flight; both then fail.
    let record = audit(&org, dst.as_str(), "destination.deleted");
    assert!(
        b.store
            .delete_destination(&org, &dst, &record)
            .await
            .unwrap()
    );
    let retry_at = Some(t + secs(60));
    queue
        .complete(&[
            completion(&leased[0], "w", DeliveryStatus::Retrying, retry_at, true),
            completion(&leased[1], "w", DeliveryStatus::Dead, None, true),
        ])
        .await
        .unwrap();
    for l in &leased {
        let d = delivery(&b, &org, &l.delivery.id).await;
        assert_eq!(d.status, DeliveryStatus::Failed);
    }
    // Neither waits for a retry nor sits in the dead-letter stream.
    let mut redis = fixture.redis().await;
    let delayed: u64 = redis::cmd("ZCARD")
        .arg(format!("{}:delayed", fixture.prefix))
        .query_async(&mut redis)
        .await
        .unwrap();
    let dead: u64 = redis::cmd("XLEN")
        .arg(format!("{}:dead", fixture.prefix))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!((delayed, dead), (0, 0));
    assert!(lease_all(&queue, "w", t + secs(3600)).await.is_empty());
}
