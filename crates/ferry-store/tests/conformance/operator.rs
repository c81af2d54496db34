//! Conformance cases for what operators do and see: requeue (retry,
//! replay, DLQ replay), deleting a destination, list filters and the audit
//! log, and durability across reopening.

use chrono::Utc;
use ferry_core::audit::AuditFilter;
use ferry_core::delivery::{DeliveryFilter, DeliveryStatus};
use ferry_core::ports::{Reclaim, RequeueSelector};
use ferry_core::state::Transition;
use serde_json::json;

use crate::support::*;

pub async fn requeue_moves_terminal_deliveries_back<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let s = &b.store;
    let org = org(&b).await;
    let (d1, d2) = (
        destination(&b, &org, "a").await,
        destination(&b, &org, "b").await,
    );
    let t = now();
    let paid = new_event_at(&org, "order.paid", &[&d1, &d2], t - secs(10));
    let shipped = new_event_at(&org, "order.shipped", &[&d1], t - secs(9));
    let open = new_event_at(&org, "order.open", &[&d1], t + secs(3600));
    ingest(&b, &[paid.clone(), shipped.clone(), open.clone()]).await;

    // paid→d1 dead, paid→d2 dead, shipped→d1 delivered; `open` stays pending.
    let leased = b.queue.lease_due(10, &lease("w", t), &[]).await.unwrap();
    assert_eq!(leased.len(), 3);
    let ends: Vec<_> = leased
        .iter()
        .map(|l| {
            let status = if l.event.id == shipped.event.id {
                DeliveryStatus::Delivered
            } else {
                DeliveryStatus::Dead
            };
            completion(l, "w", status, None, true)
        })
        .collect();
    b.queue.complete(&ends).await.unwrap();

    // Not terminal: nothing to do.
    let pending = open.deliveries[0].id.clone();
    assert!(
        requeue(&b, &org, &RequeueSelector::Delivery(pending), "key_op")
            .await
            .unwrap()
            .is_empty()
    );

    // DLQ replay honours the filter and touches only dead deliveries.
    let filter = DeliveryFilter {
        status: Some(DeliveryStatus::Delivered), // ignored
        destination_id: Some(d1.clone()),
        ..DeliveryFilter::default()
    };
    let requeued = requeue(&b, &org, &RequeueSelector::Dead(filter), "key_op")
        .await
        .unwrap();
    assert_eq!(requeued.len(), 1);
    let r = &requeued[0];
    assert_eq!(
        (r.id.clone(), r.status),
        (paid.deliveries[0].id.clone(), DeliveryStatus::Pending)
    );
    assert_eq!((r.attempt_count, r.failures_counted), (1, 0));
    assert_eq!(r.last_error.as_deref(), Some("HTTP 400"), "last error kept");
    assert!(r.next_attempt_at.unwrap() <= micros(Utc::now()));
    assert_eq!(delivery(&b, &org, &r.id).await, *r);

    let log = s
        .list_audit(
            &org,
            &AuditFilter {
                action: Some("delivery.requeued".into()),
                ..AuditFilter::default()
            },
            page(10),
        )
        .await
        .unwrap()
        .items;
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].actor.as_str(), log[0].entity_type.as_str()),
        ("key_op", "delivery")
    );
    assert_eq!(log[0].entity_id, r.id.to_string());
    assert_eq!(log[0].before, Some(json!({"status": "dead"})));
    assert_eq!(log[0].after, Some(json!({"status": "pending"})));

    // By event type, then time window.
    let by_type = DeliveryFilter {
        event_type: Some("order.shipped".into()),
        ..DeliveryFilter::default()
    };
    assert!(
        requeue(&b, &org, &RequeueSelector::Dead(by_type), "k")
            .await
            .unwrap()
            .is_empty(),
        "delivered, not dead"
    );
    let window = DeliveryFilter {
        since: Some(t - secs(11)),
        until: Some(t - secs(10)),
        ..DeliveryFilter::default()
    };
    assert!(
        requeue(&b, &org, &RequeueSelector::Dead(window), "k")
            .await
            .unwrap()
            .is_empty(),
        "until is exclusive"
    );
    let window = DeliveryFilter {
        since: Some(t - secs(10)),
        until: Some(t),
        ..DeliveryFilter::default()
    };
    let again = requeue(&b, &org, &RequeueSelector::Dead(window), "k")
        .await
        .unwrap();
    assert_eq!(
        again.iter().map(|d| &d.id).collect::<Vec<_>>(),
        [&paid.deliveries[1].id]
    );

    // Replay of an event: its terminal deliveries, optionally some.
    let only_d2 = RequeueSelector::Event {
        event_id: shipped.event.id.clone(),
        destinations: Some(vec![d2.clone()]),
    };
    assert!(requeue(&b, &org, &only_d2, "k").await.unwrap().is_empty());
    let replay = RequeueSelector::Event {
        event_id: shipped.event.id.clone(),
        destinations: None,
    };
    let replayed = requeue(&b, &org, &replay, "k").await.unwrap();
    assert_eq!(replayed.len(), 1);
    assert_eq!(replayed[0].status, DeliveryStatus::Pending);
    let leased = b
        .queue
        .lease_due(10, &lease("w", now()), &[])
        .await
        .unwrap();
    assert_eq!(leased.len(), 3);

    // A delivery waiting for its retry can be retried now if the state
    // machine allows it (`sources_of(Requeue)`).
    let backoff = completion(
        &leased[0],
        "w",
        DeliveryStatus::Retrying,
        Some(t + secs(3600)),
        true,
    );
    b.queue.complete(&[backoff]).await.unwrap();
    let retry_now = RequeueSelector::Delivery(leased[0].delivery.id.clone());
    let moved = requeue(&b, &org, &retry_now, "k").await.unwrap();
    if DeliveryStatus::sources_of(Transition::Requeue).contains(&DeliveryStatus::Retrying) {
        assert_eq!(moved.len(), 1);
        assert_eq!(
            (moved[0].status, moved[0].failures_counted),
            (DeliveryStatus::Pending, 0)
        );
        assert!(moved[0].next_attempt_at.unwrap() < t + secs(3600));
    } else {
        assert!(moved.is_empty());
    }
}

pub async fn deleting_a_destination_fails_its_deliveries<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let s = &b.store;
    let org = org(&b).await;
    let (gone, kept) = (
        destination(&b, &org, "gone").await,
        destination(&b, &org, "kept").await,
    );
    let t = now();
    let done = new_event_at(&org, "order.created", &[&gone], t - secs(5));
    let delivers = new_event_at(&org, "order.created", &[&gone], t - secs(4));
    let fails = new_event_at(&org, "order.created", &[&gone], t - secs(3));
    let given_back = new_event_at(&org, "order.created", &[&gone], t - secs(2));
    let waiting = new_event_at(&org, "order.created", &[&gone, &kept], t + secs(60));
    let all = [&done, &delivers, &fails, &given_back, &waiting].map(|e| (*e).clone());
    ingest(&b, &all).await;
    let first = b.queue.lease_due(1, &lease("w", t), &[]).await.unwrap();
    b.queue
        .complete(&[completion(
            &first[0],
            "w",
            DeliveryStatus::Delivered,
            None,
            false,
        )])
        .await
        .unwrap();
    let in_flight = b.queue.lease_due(3, &lease("w", t), &[]).await.unwrap();
    let ids: Vec<_> = in_flight.iter().map(|l| l.delivery.id.clone()).collect();
    assert_eq!(
        ids,
        [&delivers, &fails, &given_back].map(|e| e.deliveries[0].id.clone())
    );

    let record = audit(&org, gone.as_str(), "destination.deleted");
    assert!(s.delete_destination(&org, &gone, &record).await.unwrap());
    assert!(!s.delete_destination(&org, &gone, &record).await.unwrap());
    assert!(s.get_destination(&org, &gone).await.unwrap().is_none());

    // Waiting deliveries fail with it; those in flight keep their lease.
    let d = delivery(&b, &org, &waiting.deliveries[0].id).await;
    assert_eq!(d.status, DeliveryStatus::Failed);
    assert_eq!(d.last_error.as_deref(), Some("destination deleted"));
    for id in &ids {
        assert_eq!(
            delivery(&b, &org, id).await.status,
            DeliveryStatus::Delivering
        );
    }
    assert_eq!(
        delivery(&b, &org, &done.deliveries[0].id).await.status,
        DeliveryStatus::Delivered
    );
    assert_eq!(
        delivery(&b, &org, &waiting.deliveries[1].id).await.status,
        DeliveryStatus::Pending
    );

    // An attempt that delivered says so; one that failed cannot be retried,
    // nor can one whose lease is given back.
    let retry_at = Some(t + secs(30));
    b.queue
        .complete(&[
            completion(&in_flight[0], "w", DeliveryStatus::Delivered, None, false),
            completion(&in_flight[1], "w", DeliveryStatus::Retrying, retry_at, true),
        ])
        .await
        .unwrap();
    b.queue.release(&ids[2..], "w").await.unwrap();
    let (d, attempts) = s.get_delivery(&org, &ids[0]).await.unwrap().unwrap();
    assert_eq!((d.status, attempts.len()), (DeliveryStatus::Delivered, 1));
    for id in &ids[1..] {
        let d = delivery(&b, &org, id).await;
        assert_eq!(
            (d.status, d.last_error.as_deref(), d.next_attempt_at),
            (DeliveryStatus::Failed, Some("destination deleted"), None)
        );
    }
    let (_, attempts) = s.get_delivery(&org, &ids[1]).await.unwrap().unwrap();
    assert_eq!(attempts.len(), 1, "the failed attempt is in the history");
    for (id, action) in [
        (&ids[0], "delivery.delivered"),
        (&ids[1], "delivery.failed"),
    ] {
        let filter = AuditFilter {
            entity_id: Some(id.to_string()),
            ..AuditFilter::default()
        };
        let log = s.list_audit(&org, &filter, page(10)).await.unwrap().items;
        let actions: Vec<&str> = log.iter().map(|r| r.action.as_str()).collect();
        assert_eq!(actions, [action]);
    }
    assert_eq!(
        b.queue
            .reclaim(&Reclaim::NotOwnedBy("other".into()))
            .await
            .unwrap(),
        0
    );

    // Failed for lack of a destination: no retry can help.
    let retry = RequeueSelector::Delivery(ids[1].clone());
    assert!(requeue(&b, &org, &retry, "k").await.unwrap().is_empty());

    let log = s
        .list_audit(
            &org,
            &AuditFilter {
                entity_id: Some(gone.to_string()),
                ..AuditFilter::default()
            },
            page(10),
        )
        .await
        .unwrap()
        .items;
    let actions: Vec<&str> = log.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["destination.deleted", "destination.created"]);
}

pub async fn filters_select_what_they_name<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let s = &b.store;
    let org = org(&b).await;
    let (d1, d2) = (
        destination(&b, &org, "a").await,
        destination(&b, &org, "b").await,
    );
    let t = now();
    let a = new_event_at(&org, "order.created", &[&d1, &d2], t - secs(20));
    let c = new_event_at(&org, "invoice.sent", &[&d2], t - secs(10));
    ingest(&b, &[a.clone(), c.clone()]).await;
    let leased = b.queue.lease_due(1, &lease("w", t), &[]).await.unwrap();
    b.queue
        .complete(&[completion(
            &leased[0],
            "w",
            DeliveryStatus::Delivered,
            None,
            false,
        )])
        .await
        .unwrap();

    let org = &org;
    let list = |filter: DeliveryFilter| async move {
        s.list_deliveries(org, &filter, page(100))
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|d| d.id)
            .collect::<Vec<_>>()
    };
    let f = DeliveryFilter::default;
    assert_eq!(
        list(DeliveryFilter {
            status: Some(DeliveryStatus::Delivered),
            ..f()
        })
        .await,
        [a.deliveries[0].id.clone()]
    );
    assert_eq!(
        list(DeliveryFilter {
            destination_id: Some(d2.clone()),
            ..f()
        })
        .await,
        [c.deliveries[0].id.clone(), a.deliveries[1].id.clone()]
    );
    assert_eq!(
        list(DeliveryFilter {
            event_type: Some("invoice.sent".into()),
            ..f()
        })
        .await,
        [c.deliveries[0].id.clone()]
    );
    assert_eq!(
        list(DeliveryFilter {
            since: Some(t - secs(10)),
            ..f()
        })
        .await,
        [c.deliveries[0].id.clone()]
    );
    assert_eq!(
        list(DeliveryFilter {
            until: Some(t - secs(10)),
            ..f()
        })
        .await
        .len(),
        2
    );
    let none = DeliveryFilter {
        status: Some(DeliveryStatus::Pending),
        event_type: Some("order.created".into()),
        destination_id: Some(d1.clone()),
        ..f()
    };
    assert!(list(none).await.is_empty());

    let (_, attempts) = s
        .get_delivery(org, &a.deliveries[0].id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].response.as_ref().unwrap().body, "ünïcode ok");

    let mut old = audit(org, "thing_1", "thing.made");
    old.at = t - secs(100);
    s.append_audit(&[old.clone(), audit(org, "thing_2", "thing.made")])
        .await
        .unwrap();
    let audit_list = |filter: AuditFilter| async move {
        s.list_audit(org, &filter, page(100)).await.unwrap().items
    };
    let by_entity = audit_list(AuditFilter {
        entity_id: Some("thing_1".into()),
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(by_entity, [old.clone()]);
    let by_action = audit_list(AuditFilter {
        action: Some("thing.made".into()),
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(by_action.len(), 2);
    let recent = audit_list(AuditFilter {
        since: Some(t - secs(50)),
        action: Some("thing.made".into()),
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(recent.len(), 1);
    let early = audit_list(AuditFilter {
        until: Some(t - secs(50)),
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(early, [old]);
}

pub async fn committed_data_survives_reopening<F: Fixture>(fixture: &F) {
    let (org, e, dst) = {
        let b = fixture.open().await;
        let org = org(&b).await;
        let dst = destination(&b, &org, "a").await;
        let e = new_event(&org, &[&dst]);
        ingest(&b, std::slice::from_ref(&e)).await;
        let leased = b
            .queue
            .lease_due(10, &lease("w", now()), &[])
            .await
            .unwrap();
        b.queue
            .complete(&[completion(
                &leased[0],
                "w",
                DeliveryStatus::Retrying,
                Some(now()),
                true,
            )])
            .await
            .unwrap();
        (org, e, dst)
    };
    let b = fixture.open().await;
    let (event, deliveries) = b.store.get_event(&org, &e.event.id).await.unwrap().unwrap();
    assert_eq!(event, e.event);
    assert_eq!(deliveries.len(), 1);
    assert_eq!(
        (deliveries[0].status, deliveries[0].failures_counted),
        (DeliveryStatus::Retrying, 1)
    );
    assert!(b.store.get_destination(&org, &dst).await.unwrap().is_some());
    let counts = b.store.delivery_counts().await.unwrap();
    assert!(
        counts.contains(&(DeliveryStatus::Retrying, 1)),
        "{counts:?}"
    );
    assert_eq!(
        b.queue
            .lease_due(10, &lease("w", now()), &[])
            .await
            .unwrap()
            .len(),
        1
    );
}
