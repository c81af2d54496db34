//! Conformance cases for an event replay (`Store::replay_event`): one
//! transaction that requeues what is settled, creates deliveries to listed
//! destinations that never had one, and audits both; the queue is given
//! what it returns.

use ferry_core::audit::{AuditFilter, AuditRecord};
use ferry_core::delivery::DeliveryStatus;
use ferry_core::ids::{EventId, OrgId};
use serde_json::json;

use crate::support::*;

async fn audit_of(b: &Backend, org: &OrgId, action: &str) -> Vec<AuditRecord> {
    let filter = AuditFilter {
        action: Some(action.into()),
        ..AuditFilter::default()
    };
    b.store
        .list_audit(org, &filter, page(50))
        .await
        .unwrap()
        .items
}

pub async fn replaying_an_unknown_event_finds_nothing<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let (org, other) = (org(&b).await, org(&b).await);
    let dst = destination(&b, &org, "a").await;
    let event = new_event(&org, &[&dst]);
    ingest(&b, std::slice::from_ref(&event)).await;

    let unknown = EventId::generate();
    assert!(replay(&b, &org, &unknown, None).await.unwrap().is_none());
    // Another organization's event is unknown to this one.
    assert!(
        replay(&b, &other, &event.event.id, None)
            .await
            .unwrap()
            .is_none()
    );
    assert!(audit_of(&b, &other, "event.replayed").await.is_empty());
    assert!(audit_of(&b, &org, "event.replayed").await.is_empty());
}

pub async fn replay_requeues_settled_and_adds_listed_destinations<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let org = org(&b).await;
    let (a, c, fresh) = (
        destination(&b, &org, "a").await,
        destination(&b, &org, "c").await,
        destination(&b, &org, "fresh").await,
    );
    let t = now();
    let event = new_event_at(&org, "order.paid", &[&a, &c], t - secs(5));
    ingest(&b, std::slice::from_ref(&event)).await;
    let leased = b.queue.lease_due(10, &lease("w", t), &[]).await.unwrap();
    assert_eq!(leased.len(), 2);
    let ends: Vec<_> = leased
        .iter()
        .map(|l| completion(l, "w", DeliveryStatus::Dead, None, true))
        .collect();
    b.queue.complete(&ends).await.unwrap();

    // Only `a` of the settled ones, and `fresh`, which never had one.
    let listed = [a.clone(), fresh.clone()];
    let waiting = replay(&b, &org, &event.event.id, Some(&listed))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(waiting.len(), 2, "{waiting:?}");
    let to_a = waiting.iter().find(|d| d.destination_id == a).unwrap();
    assert_eq!(
        to_a.id, event.deliveries[0].id,
        "the same delivery, requeued"
    );
    let to_fresh = waiting.iter().find(|d| d.destination_id == fresh).unwrap();
    assert_eq!(to_fresh.event_id, event.event.id);
    for d in &waiting {
        assert_eq!(d.status, DeliveryStatus::Pending);
        assert_eq!(
            delivery(&b, &org, &d.id).await.status,
            DeliveryStatus::Pending
        );
    }
    let to_c = &event.deliveries[1];
    assert_eq!(
        delivery(&b, &org, &to_c.id).await.status,
        DeliveryStatus::Dead
    );

    let requeued = audit_of(&b, &org, "delivery.requeued").await;
    assert_eq!(requeued.len(), 1);
    assert_eq!(requeued[0].entity_id, to_a.id.as_str());
    assert_eq!(requeued[0].actor, "key_op");
    let created = audit_of(&b, &org, "delivery.created").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].entity_id, to_fresh.id.as_str());
    assert_eq!(
        created[0].after,
        Some(json!({
            "status": "pending",
            "event_id": event.event.id,
            "destination_id": fresh,
        }))
    );
    let replayed = audit_of(&b, &org, "event.replayed").await;
    assert_eq!(replayed.len(), 1);
    assert_eq!(replayed[0].entity_id, event.event.id.as_str());
    let waiting_ids: Vec<&str> = waiting.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(
        replayed[0].after,
        Some(json!({ "deliveries": waiting_ids }))
    );

    // The queue was given both: they lease.
    let leased = b
        .queue
        .lease_due(10, &lease("w", now()), &[])
        .await
        .unwrap();
    let mut got = ids(&leased);
    got.sort();
    let mut want: Vec<_> = waiting.iter().map(|d| d.id.clone()).collect();
    want.sort();
    assert_eq!(got, want);

    // Replayed again while they wait: nothing settled, nothing new, and the
    // replay itself is still audited.
    let again = replay(&b, &org, &event.event.id, Some(&listed))
        .await
        .unwrap()
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(audit_of(&b, &org, "event.replayed").await.len(), 2);
    assert_eq!(audit_of(&b, &org, "delivery.created").await.len(), 1);
}

pub async fn replay_without_a_list_requeues_every_settled_delivery<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let org = org(&b).await;
    let (a, c) = (
        destination(&b, &org, "a").await,
        destination(&b, &org, "c").await,
    );
    let t = now();
    let event = new_event_at(&org, "order.paid", &[&a, &c], t - secs(5));
    ingest(&b, std::slice::from_ref(&event)).await;
    let leased = b.queue.lease_due(10, &lease("w", t), &[]).await.unwrap();
    let ends: Vec<_> = leased
        .iter()
        .map(|l| completion(l, "w", DeliveryStatus::Delivered, None, true))
        .collect();
    b.queue.complete(&ends).await.unwrap();

    let waiting = replay(&b, &org, &event.event.id, None)
        .await
        .unwrap()
        .unwrap();
    let mut got: Vec<_> = waiting.iter().map(|d| d.id.clone()).collect();
    got.sort();
    let mut want: Vec<_> = event.deliveries.iter().map(|d| d.id.clone()).collect();
    want.sort();
    assert_eq!(got, want);
    assert!(audit_of(&b, &org, "delivery.created").await.is_empty());
}

pub async fn a_failed_replay_writes_nothing<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let org = org(&b).await;
    let (a, fresh) = (
        destination(&b, &org, "a").await,
        destination(&b, &org, "fresh").await,
    );
    let t = now();
    let event = new_event_at(&org, "order.paid", &[&a], t - secs(5));
    ingest(&b, std::slice::from_ref(&event)).await;
    let leased = b.queue.lease_due(10, &lease("w", t), &[]).await.unwrap();
    let ends: Vec<_> = leased
        .iter()
        .map(|l| completion(l, "w", DeliveryStatus::Dead, None, true))
        .collect();
    b.queue.complete(&ends).await.unwrap();

    // The last write of the replay fails: the requeue and the new delivery
    // before it go with it.
    fixture.refuse_audit("event.replayed").await;
    let listed = [a.clone(), fresh];
    assert!(
        b.store
            .replay_event(&org, &event.event.id, Some(&listed), "key_op")
            .await
            .is_err()
    );
    let (_, deliveries) = b
        .store
        .get_event(&org, &event.event.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    assert_eq!(deliveries[0].status, DeliveryStatus::Dead);
    assert!(audit_of(&b, &org, "delivery.requeued").await.is_empty());
    assert!(audit_of(&b, &org, "delivery.created").await.is_empty());
}

pub async fn deliveries_join_an_existing_event<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let org = org(&b).await;
    let (a, later) = (
        destination(&b, &org, "a").await,
        destination(&b, &org, "later").await,
    );
    let event = new_event(&org, &[&a]);
    ingest(&b, std::slice::from_ref(&event)).await;
    let (stored, _) = b
        .store
        .get_event(&org, &event.event.id)
        .await
        .unwrap()
        .unwrap();
    let added = ferry_core::delivery::Delivery::new_now(&stored, later.clone());
    let record = audit(&org, "delivery", "delivery.created");
    b.store
        .insert_deliveries(std::slice::from_ref(&added), std::slice::from_ref(&record))
        .await
        .unwrap();
    b.queue.enqueue(std::slice::from_ref(&added)).await.unwrap();

    let (_, deliveries) = b
        .store
        .get_event(&org, &event.event.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(deliveries.len(), 2);
    assert_eq!(delivery(&b, &org, &added.id).await.destination_id, later);
    assert_eq!(audit_of(&b, &org, "delivery.created").await.len(), 1);
    let leased = b
        .queue
        .lease_due(10, &lease("w", now()), &[])
        .await
        .unwrap();
    assert!(ids(&leased).contains(&added.id), "the new delivery is due");
}
