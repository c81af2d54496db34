//! Conformance cases for the `Queue` port: claiming, leasing due work
//! (order, exclusions, probes), completing attempts, losing a lease,
//! releasing, reclaiming, and the next due time.

use std::sync::Arc;

use ferry_core::audit::AuditFilter;
use ferry_core::delivery::DeliveryStatus;
use ferry_core::ids::DeliveryId;
use ferry_core::page::PageRequest;
use ferry_core::ports::Reclaim;

use crate::support::*;

pub async fn claim_takes_only_pending<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let org = org(&b).await;
    let dst = destination(&b, &org, "a").await;
    let e = new_event(&org, &[&dst, &dst]);
    ingest(&b, std::slice::from_ref(&e)).await;
    let ids: Vec<DeliveryId> = e.deliveries.iter().map(|d| d.id.clone()).collect();

    assert!(
        b.queue
            .claim(&[], &lease("w1", now()))
            .await
            .unwrap()
            .is_empty()
    );
    let mut asked = ids.clone();
    asked.push(DeliveryId::generate());
    assert_eq!(
        b.queue.claim(&asked, &lease("w1", now())).await.unwrap(),
        ids
    );
    assert!(
        b.queue
            .claim(&ids, &lease("w2", now()))
            .await
            .unwrap()
            .is_empty(),
        "already leased"
    );
    let d = delivery(&b, &org, &ids[0]).await;
    assert_eq!((d.status, d.attempt_count), (DeliveryStatus::Delivering, 0));
    // Leased deliveries are not due for anyone else.
    assert!(
        b.queue
            .lease_due(10, &lease("w2", now()), &[])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(b.queue.next_due_at(&[]).await.unwrap(), None);
}

pub async fn lease_due_takes_oldest_due_first<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let org = org(&b).await;
    let (d1, d2) = (
        destination(&b, &org, "a").await,
        destination(&b, &org, "b").await,
    );
    let t = now();
    let e1 = new_event_at(&org, "order.created", &[&d1, &d2], t - secs(3));
    let e2 = new_event_at(&org, "order.created", &[&d1], t - secs(2));
    let later = new_event_at(&org, "order.created", &[&d2], t + secs(60));
    // Inserted newest first: the order comes from the due time.
    ingest(&b, &[later.clone(), e2.clone(), e1.clone()]).await;

    assert_eq!(b.queue.next_due_at(&[]).await.unwrap(), Some(t - secs(3)));
    assert_eq!(
        b.queue
            .next_due_at(std::slice::from_ref(&d1))
            .await
            .unwrap(),
        Some(t - secs(3))
    );
    assert_eq!(
        b.queue
            .lease_due(0, &lease("w", t), &[])
            .await
            .unwrap()
            .len(),
        0
    );

    // Excluding d2: d1's deliveries, oldest first.
    let leased = b
        .queue
        .lease_due(10, &lease("w", t), std::slice::from_ref(&d2))
        .await
        .unwrap();
    assert_eq!(
        ids(&leased),
        [e1.deliveries[0].id.clone(), e2.deliveries[0].id.clone()]
    );
    for l in &leased {
        assert_eq!(l.delivery.status, DeliveryStatus::Delivering);
        assert_eq!(l.event.id, l.delivery.event_id);
    }
    assert_eq!(*leased[0].event, e1.event, "the event comes back whole");

    // What is left: e1→d2 due now, `later` in a minute.
    assert_eq!(b.queue.next_due_at(&[]).await.unwrap(), Some(t - secs(3)));
    assert_eq!(
        b.queue
            .next_due_at(std::slice::from_ref(&d2))
            .await
            .unwrap(),
        None
    );
    let leased = b.queue.lease_due(10, &lease("w", t), &[]).await.unwrap();
    assert_eq!(ids(&leased), [e1.deliveries[1].id.clone()]);
    assert_eq!(b.queue.next_due_at(&[]).await.unwrap(), Some(t + secs(60)));
    assert!(
        b.queue
            .lease_due(10, &lease("w", t), &[])
            .await
            .unwrap()
            .is_empty()
    );
    let leased = b
        .queue
        .lease_due(10, &lease("w", t + secs(61)), std::slice::from_ref(&d1))
        .await
        .unwrap();
    assert_eq!(ids(&leased), [later.deliveries[0].id.clone()]);
}

pub async fn lease_due_respects_limit_and_shares_events<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let org = org(&b).await;
    let (d1, d2, d3) = (
        destination(&b, &org, "a").await,
        destination(&b, &org, "b").await,
        destination(&b, &org, "c").await,
    );
    let t = now();
    let batch: Vec<_> = (0..5)
        .map(|i| new_event_at(&org, "order.created", &[&d1, &d2, &d3], t - secs(10 - i)))
        .collect();
    ingest(&b, &batch).await;

    let first = b
        .queue
        .lease_due(4, &lease("w", t), std::slice::from_ref(&d3))
        .await
        .unwrap();
    let expected: Vec<DeliveryId> = batch[..2]
        .iter()
        .flat_map(|e| [e.deliveries[0].id.clone(), e.deliveries[1].id.clone()])
        .collect();
    assert_eq!(ids(&first), expected);
    assert!(
        Arc::ptr_eq(&first[0].event, &first[1].event),
        "one event, one Arc"
    );
    assert!(!Arc::ptr_eq(&first[1].event, &first[2].event));

    let rest = b.queue.lease_due(100, &lease("w", t), &[]).await.unwrap();
    assert_eq!(rest.len(), 11);
    let dues: Vec<_> = rest.iter().map(|l| l.delivery.next_attempt_at).collect();
    assert!(dues.windows(2).all(|w| w[0] <= w[1]), "oldest due first");
}

pub async fn lease_destination_ignores_due_time<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let org = org(&b).await;
    let (d1, d2) = (
        destination(&b, &org, "a").await,
        destination(&b, &org, "b").await,
    );
    let t = now();
    let soon = new_event_at(&org, "order.created", &[&d1, &d2], t + secs(30));
    let later = new_event_at(&org, "order.created", &[&d1], t + secs(90));
    ingest(&b, &[later.clone(), soon.clone()]).await;

    let probe = b
        .queue
        .lease_destination(&d1, 1, &lease("probe", t))
        .await
        .unwrap();
    assert_eq!(ids(&probe), [soon.deliveries[0].id.clone()]);
    assert_eq!(probe[0].delivery.status, DeliveryStatus::Delivering);
    let rest = b
        .queue
        .lease_destination(&d1, 10, &lease("probe", t))
        .await
        .unwrap();
    assert_eq!(ids(&rest), [later.deliveries[0].id.clone()]);
    assert!(
        b.queue
            .lease_destination(&d1, 10, &lease("probe", t))
            .await
            .unwrap()
            .is_empty()
    );
    let d = delivery(&b, &org, &soon.deliveries[1].id).await;
    assert_eq!(
        d.status,
        DeliveryStatus::Pending,
        "other destinations untouched"
    );
}

pub async fn complete_records_attempts_and_moves_on<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let org = org(&b).await;
    let dst = destination(&b, &org, "a").await;
    let t = now();
    let batch: Vec<_> = (0..4)
        .map(|i| new_event_at(&org, "order.created", &[&dst], t - secs(10 - i)))
        .collect();
    ingest(&b, &batch).await;
    let leased = b.queue.lease_due(10, &lease("w", t), &[]).await.unwrap();
    assert_eq!(leased.len(), 4);

    let retry_at = t + secs(5);
    let ends = vec![
        completion(&leased[0], "w", DeliveryStatus::Delivered, None, false),
        completion(
            &leased[1],
            "w",
            DeliveryStatus::Retrying,
            Some(retry_at),
            true,
        ),
        completion(
            &leased[2],
            "w",
            DeliveryStatus::Retrying,
            Some(retry_at),
            false,
        ),
        completion(&leased[3], "w", DeliveryStatus::Dead, None, true),
    ];
    b.queue.complete(&ends).await.unwrap();

    let got = |i: usize| {
        let b = b.clone();
        let org = org.clone();
        let id = leased[i].delivery.id.clone();
        async move { b.store.get_delivery(&org, &id).await.unwrap().unwrap() }
    };
    let (d, attempts) = got(0).await;
    assert_eq!(
        (d.status, d.attempt_count, d.failures_counted),
        (DeliveryStatus::Delivered, 1, 0)
    );
    assert_eq!(attempts, [ends[0].attempt.clone()]);
    let (d, _) = got(1).await;
    assert_eq!(
        (d.status, d.attempt_count, d.failures_counted),
        (DeliveryStatus::Retrying, 1, 1)
    );
    assert_eq!(
        (d.next_attempt_at, d.last_error.as_deref()),
        (Some(retry_at), Some("HTTP 503"))
    );
    let (d, _) = got(2).await;
    assert_eq!(
        (d.status, d.failures_counted),
        (DeliveryStatus::Retrying, 0),
        "a probe spends no budget"
    );
    let (d, attempts) = got(3).await;
    assert_eq!(
        (d.status, d.attempt_count, d.failures_counted),
        (DeliveryStatus::Dead, 1, 1)
    );
    assert_eq!(attempts[0].status_code, Some(400));

    let log = b
        .store
        .list_audit(
            &org,
            &AuditFilter::default(),
            PageRequest {
                limit: 100,
                after: None,
            },
        )
        .await
        .unwrap()
        .items;
    for end in &ends {
        assert!(log.contains(&end.audit), "audit of {}", end.delivery_id);
    }

    // The retries come due again, and a second attempt is number 2.
    assert!(
        b.queue
            .lease_due(10, &lease("w", t), &[])
            .await
            .unwrap()
            .is_empty()
    );
    let again = b
        .queue
        .lease_due(10, &lease("w", retry_at), &[])
        .await
        .unwrap();
    assert_eq!(again.len(), 2);
    let second = completion(&again[0], "w", DeliveryStatus::Delivered, None, false);
    assert_eq!(second.attempt.number, 2);
    b.queue.complete(&[second]).await.unwrap();
    let (d, attempts) = b
        .store
        .get_delivery(&org, &again[0].delivery.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((d.status, d.attempt_count), (DeliveryStatus::Delivered, 2));
    assert_eq!(
        attempts.iter().map(|a| a.number).collect::<Vec<_>>(),
        [1, 2]
    );
    b.queue.complete(&[]).await.unwrap();
}

pub async fn a_lost_lease_records_but_does_not_move<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let org = org(&b).await;
    let dst = destination(&b, &org, "a").await;
    let e = new_event(&org, &[&dst]);
    ingest(&b, std::slice::from_ref(&e)).await;
    let id = e.deliveries[0].id.clone();

    let t = now();
    let by_a = b.queue.lease_due(1, &lease("a", t), &[]).await.unwrap();
    // Worker a is presumed dead; b takes over.
    assert_eq!(
        b.queue
            .reclaim(&Reclaim::ExpiredBefore(t + secs(31)))
            .await
            .unwrap(),
        1
    );
    let by_b = b
        .queue
        .lease_due(1, &lease("b", t + secs(31)), &[])
        .await
        .unwrap();
    assert_eq!(ids(&by_b), std::slice::from_ref(&id));

    let late = completion(&by_a[0], "a", DeliveryStatus::Dead, None, true);
    b.queue.complete(std::slice::from_ref(&late)).await.unwrap();
    let (d, attempts) = b.store.get_delivery(&org, &id).await.unwrap().unwrap();
    assert_eq!(
        (d.status, d.attempt_count, d.failures_counted),
        (DeliveryStatus::Delivering, 0, 0)
    );
    assert_eq!(attempts.len(), 1, "the attempt happened and is recorded");
    let log = b
        .store
        .list_audit(
            &org,
            &AuditFilter::default(),
            PageRequest {
                limit: 100,
                after: None,
            },
        )
        .await
        .unwrap()
        .items;
    assert!(!log.contains(&late.audit), "no state change, no audit");

    b.queue
        .complete(&[completion(
            &by_b[0],
            "b",
            DeliveryStatus::Delivered,
            None,
            false,
        )])
        .await
        .unwrap();
    let (d, attempts) = b.store.get_delivery(&org, &id).await.unwrap().unwrap();
    assert_eq!(
        (d.status, d.attempt_count, attempts.len()),
        (DeliveryStatus::Delivered, 1, 2)
    );
}

pub async fn release_gives_leases_back<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let org = org(&b).await;
    let dst = destination(&b, &org, "a").await;
    let e = new_event(&org, &[&dst, &dst]);
    ingest(&b, std::slice::from_ref(&e)).await;
    let ids: Vec<DeliveryId> = e.deliveries.iter().map(|d| d.id.clone()).collect();
    b.queue.claim(&ids, &lease("w", now())).await.unwrap();

    assert_eq!(b.queue.release(&ids, "someone else").await.unwrap(), 0);
    assert_eq!(b.queue.release(&[], "w").await.unwrap(), 0);
    assert_eq!(b.queue.release(&ids, "w").await.unwrap(), 2);
    assert_eq!(
        b.queue.release(&ids, "w").await.unwrap(),
        0,
        "no longer leased"
    );
    let d = delivery(&b, &org, &ids[0]).await;
    assert_eq!((d.status, d.attempt_count), (DeliveryStatus::Pending, 0));
    let again = b
        .queue
        .lease_due(10, &lease("w2", now()), &[])
        .await
        .unwrap();
    assert_eq!(again.len(), 2, "due now");
}

pub async fn reclaim_takes_back_expired_and_foreign_leases<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let org = org(&b).await;
    let dst = destination(&b, &org, "a").await;
    let t = now();
    let batch: Vec<_> = (0..3)
        .map(|i| new_event_at(&org, "order.created", &[&dst], t - secs(10 - i)))
        .collect();
    ingest(&b, &batch).await;
    let old = b.queue.lease_due(1, &lease("old", t), &[]).await.unwrap();
    let mine = b
        .queue
        .lease_due(1, &lease("me", t + secs(20)), &[])
        .await
        .unwrap();
    assert_eq!((old.len(), mine.len()), (1, 1));

    assert_eq!(
        b.queue
            .reclaim(&Reclaim::ExpiredBefore(t + secs(30)))
            .await
            .unwrap(),
        0,
        "expires at t+30"
    );
    assert_eq!(
        b.queue
            .reclaim(&Reclaim::ExpiredBefore(t + secs(31)))
            .await
            .unwrap(),
        1
    );
    let d = delivery(&b, &org, &old[0].delivery.id).await;
    assert_eq!((d.status, d.attempt_count), (DeliveryStatus::Pending, 0));
    assert!(d.next_attempt_at.unwrap() <= t + secs(31), "due");

    let other = b
        .queue
        .lease_due(1, &lease("other", t + secs(31)), &[])
        .await
        .unwrap();
    assert_eq!(other.len(), 1);
    assert_eq!(
        b.queue
            .reclaim(&Reclaim::NotOwnedBy("me".into()))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        delivery(&b, &org, &mine[0].delivery.id).await.status,
        DeliveryStatus::Delivering
    );
    assert_eq!(
        delivery(&b, &org, &other[0].delivery.id).await.status,
        DeliveryStatus::Pending
    );

    let counts = b.store.delivery_counts().await.unwrap();
    let count = |s| counts.iter().find(|(c, _)| *c == s).map(|(_, n)| *n);
    assert_eq!(count(DeliveryStatus::Pending), Some(2));
    assert_eq!(count(DeliveryStatus::Delivering), Some(1));
    assert_eq!(count(DeliveryStatus::Dead), Some(0));
}

pub async fn a_renewed_lease_outlives_its_first_expiry<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let org = org(&b).await;
    let dst = destination(&b, &org, "a").await;
    let t = now();
    ingest(
        &b,
        &[new_event_at(&org, "order.created", &[&dst], t - secs(1))],
    )
    .await;
    let leased = b.queue.lease_due(1, &lease("w", t), &[]).await.unwrap();
    let ids: Vec<DeliveryId> = leased.iter().map(|l| l.delivery.id.clone()).collect();
    assert_eq!(ids.len(), 1);
    // Only the owner renews; the renewal moves the expiry to t+60.
    assert_eq!(
        b.queue
            .extend_leases(&ids, &lease("intruder", t + secs(30)))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        b.queue
            .extend_leases(&ids, &lease("w", t + secs(30)))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        b.queue
            .reclaim(&Reclaim::ExpiredBefore(t + secs(45)))
            .await
            .unwrap(),
        0,
        "renewed"
    );
    assert_eq!(
        b.queue
            .reclaim(&Reclaim::ExpiredBefore(t + secs(61)))
            .await
            .unwrap(),
        1,
        "expired at last"
    );
    assert_eq!(
        b.queue
            .extend_leases(&ids, &lease("w", t + secs(61)))
            .await
            .unwrap(),
        0,
        "a lost lease stays lost"
    );
}
