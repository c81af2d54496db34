//! Conformance cases for the `Store` port's state: group insert and
//! duplicates, organization scoping, pagination, API keys, and destinations
//! with their secrets, and the write probe.

use ferry_core::StoreError;
use ferry_core::audit::AuditFilter;
use ferry_core::delivery::{DeliveryFilter, DeliveryStatus};
use ferry_core::destination::{Auth, Health, SigningKey};
use ferry_core::event::{InsertOutcome, NewEvent};
use ferry_core::ids::{DeliveryId, OrgId};
use ferry_core::org::Org;
use ferry_core::page::PageRequest;
use ferry_core::ports::RequeueSelector;
use ferry_core::secret::Secret;
use ferry_core::signing::SigningSecret;

use crate::support::*;

pub async fn insert_events_reports_duplicates<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let org = org(&b).await;
    let (d1, d2) = (
        destination(&b, &org, "a").await,
        destination(&b, &org, "b").await,
    );

    assert!(b.store.insert_events(&[]).await.unwrap().is_empty());

    // Within a batch: the second occurrence is a duplicate of the first.
    let e1 = new_event(&org, &[&d1, &d2]);
    let e2 = new_event(&org, &[&d1]);
    let mut e1_again = new_event(&org, &[&d1]);
    e1_again.event = e1.event.clone();
    let out = b
        .store
        .insert_events(&[e1.clone(), e2.clone(), e1_again.clone()])
        .await
        .unwrap();
    assert_eq!(out.len(), 3);
    assert!(matches!(out[0], InsertOutcome::Inserted));
    assert!(matches!(out[1], InsertOutcome::Inserted));
    match &out[2] {
        InsertOutcome::Duplicate(original) => assert_eq!(original, &e1.deliveries),
        other => panic!("expected a duplicate, got {other:?}"),
    }

    // Across batches: the stored deliveries are reported, nothing is added.
    let e3 = new_event(&org, &[&d2]);
    let out = b
        .store
        .insert_events(&[e1_again.clone(), e3.clone()])
        .await
        .unwrap();
    match &out[0] {
        InsertOutcome::Duplicate(original) => assert_eq!(original, &e1.deliveries),
        other => panic!("expected a duplicate, got {other:?}"),
    }
    assert!(matches!(out[1], InsertOutcome::Inserted));

    let (event, deliveries) = b
        .store
        .get_event(&org, &e1.event.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event, e1.event);
    assert_eq!(deliveries, e1.deliveries);
    let all = b
        .store
        .list_deliveries(&org, &DeliveryFilter::default(), page(100))
        .await
        .unwrap();
    assert_eq!(
        all.items.len(),
        4,
        "e1 ×2, e2, e3; no delivery of a duplicate"
    );

    // All or nothing: a conflicting delivery id aborts the whole batch.
    let e4 = new_event(&org, &[&d1]);
    let mut e5 = new_event(&org, &[&d1]);
    e5.deliveries[0].id = e2.deliveries[0].id.clone();
    let err = b.store.insert_events(&[e4.clone(), e5]).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert!(
        b.store
            .get_event(&org, &e4.event.id)
            .await
            .unwrap()
            .is_none()
    );

    // An event without deliveries is stored too.
    let lonely = new_event(&org, &[]);
    ingest(&b, std::slice::from_ref(&lonely)).await;
    let (_, none) = b
        .store
        .get_event(&org, &lonely.event.id)
        .await
        .unwrap()
        .unwrap();
    assert!(none.is_empty());
}

pub async fn large_batches_commit_whole<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let org = org(&b).await;
    let d = destination(&b, &org, "a").await;
    let batch: Vec<NewEvent> = (0..2500).map(|_| new_event(&org, &[&d, &d])).collect();
    ingest(&b, &batch).await;
    let counts = b.store.delivery_counts().await.unwrap();
    assert!(
        counts.contains(&(DeliveryStatus::Pending, 5000)),
        "{counts:?}"
    );
    let out = b.store.insert_events(&batch).await.unwrap();
    assert!(
        out.iter()
            .all(|o| matches!(o, InsertOutcome::Duplicate(d) if d.len() == 2))
    );
}

pub async fn organizations_are_isolated<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let (a, other) = (org(&b).await, org(&b).await);
    let dst = destination(&b, &a, "a").await;
    let e = new_event(&a, &[&dst]);
    ingest(&b, std::slice::from_ref(&e)).await;
    let dlv = e.deliveries[0].id.clone();
    let key = api_key(&a, [7; 32]);
    b.store
        .insert_api_key(&key, &audit(&a, key.id.as_str(), "api_key.created"))
        .await
        .unwrap();

    let s = &b.store;
    assert!(s.get_destination(&other, &dst).await.unwrap().is_none());
    assert!(s.org_destinations(&other).await.unwrap().is_empty());
    assert!(
        s.list_destinations(&other, page(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(s.get_event(&other, &e.event.id).await.unwrap().is_none());
    assert!(s.get_delivery(&other, &dlv).await.unwrap().is_none());
    assert!(
        s.list_deliveries(&other, &DeliveryFilter::default(), page(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        s.list_api_keys(&other, page(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        s.list_audit(&other, &AuditFilter::default(), page(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        !s.delete_api_key(&other, &key.id, &audit(&other, "k", "x"))
            .await
            .unwrap()
    );
    let mut stolen = s.get_destination(&a, &dst).await.unwrap().unwrap();
    stolen.org_id = other.clone();
    stolen.name = "stolen".into();
    assert!(
        !s.update_destination(&stolen, &audit(&other, "d", "x"))
            .await
            .unwrap()
    );
    assert!(
        !s.delete_destination(&other, &dst, &audit(&other, "d", "x"))
            .await
            .unwrap()
    );

    // Terminal in `a`, still not reachable from `other`.
    let leased = b
        .queue
        .lease_due(10, &lease("w", now()), &[])
        .await
        .unwrap();
    let done = completion(&leased[0], "w", DeliveryStatus::Dead, None, true);
    b.queue.complete(&[done]).await.unwrap();
    assert!(
        requeue(&b, &other, &RequeueSelector::Delivery(dlv.clone()), "k")
            .await
            .unwrap()
            .is_empty()
    );
    let dead = RequeueSelector::Dead(DeliveryFilter::default());
    assert!(requeue(&b, &other, &dead, "k").await.unwrap().is_empty());

    // Nothing changed in `a`.
    assert_eq!(
        s.get_destination(&a, &dst).await.unwrap().unwrap().name,
        "a"
    );
    assert_eq!(delivery(&b, &a, &dlv).await.status, DeliveryStatus::Dead);
    assert!(
        s.destination_by_id(&dst).await.unwrap().is_some(),
        "the engine's lookup spans orgs"
    );
    assert_eq!(
        s.api_key_by_hash(&[7; 32]).await.unwrap().unwrap().org_id,
        a
    );
}

/// Walks every page of a list, `limit` at a time.
async fn walk<T, Fut>(limit: u32, mut fetch: impl FnMut(PageRequest) -> Fut) -> Vec<Vec<T>>
where
    Fut: std::future::Future<Output = ferry_core::page::Page<T>>,
{
    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let page = fetch(PageRequest { limit, after }).await;
        pages.push(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => return pages,
        }
    }
}

pub async fn lists_page_newest_first<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let s = &b.store;
    let mut orgs = Vec::new();
    for _ in 0..5 {
        orgs.push(org(&b).await);
    }
    let pages = walk(2, |p| async move { s.list_orgs(p).await.unwrap() }).await;
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [2, 2, 1]);
    let seen: Vec<OrgId> = pages.concat().into_iter().map(|o: Org| o.id).collect();
    assert_eq!(seen, orgs.iter().rev().cloned().collect::<Vec<_>>());

    let org = &orgs[0];
    let mut dsts = Vec::new();
    for name in ["d1", "d2", "d3"] {
        dsts.push(destination(&b, org, name).await);
    }
    let oldest_first: Vec<_> = s
        .org_destinations(org)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(oldest_first, dsts);
    let pages = walk(
        2,
        |p| async move { s.list_destinations(org, p).await.unwrap() },
    )
    .await;
    let newest_first: Vec<_> = pages.concat().into_iter().map(|d| d.id).collect();
    assert_eq!(newest_first, dsts.iter().rev().cloned().collect::<Vec<_>>());

    let batch: Vec<NewEvent> = (0..7).map(|_| new_event(org, &[&dsts[0]])).collect();
    ingest(&b, &batch).await;
    let all = DeliveryFilter::default();
    let pages = walk(3, |p| {
        let all = &all;
        async move { s.list_deliveries(org, all, p).await.unwrap() }
    })
    .await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 1]);
    let listed: Vec<DeliveryId> = pages.concat().into_iter().map(|d| d.id).collect();
    let expected: Vec<DeliveryId> = batch
        .iter()
        .rev()
        .map(|e| e.deliveries[0].id.clone())
        .collect();
    assert_eq!(listed, expected);

    // Exactly a page's worth: no next cursor.
    let exact = s.list_deliveries(org, &all, page(7)).await.unwrap();
    assert_eq!((exact.items.len(), exact.next), (7, None));

    for i in 0..3 {
        let key = api_key(org, [i; 32]);
        s.insert_api_key(&key, &audit(org, key.id.as_str(), "api_key.created"))
            .await
            .unwrap();
    }
    let pages = walk(2, |p| async move { s.list_api_keys(org, p).await.unwrap() }).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 1]);
    let pages = walk(4, |p| {
        let f = AuditFilter::default();
        async move { s.list_audit(org, &f, p).await.unwrap() }
    })
    .await;
    // 3 destinations and 3 keys created.
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [4, 2]);
    assert_eq!(pages[0][0].action, "api_key.created");
    assert_eq!(pages[1][1].action, "destination.created");
}

/// The probe that readiness runs after a failed write: it commits, again
/// and again and from many callers at once (processes sharing PostgreSQL
/// probe the same row), and changes nothing anyone can see.
pub async fn the_write_probe_commits_and_changes_nothing_else<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let org = org(&b).await;
    b.store.probe_write().await.unwrap();
    let probes: Vec<_> = (0..8)
        .map(|_| {
            let store = b.store.clone();
            tokio::spawn(async move { store.probe_write().await })
        })
        .collect();
    for probe in probes {
        probe.await.unwrap().unwrap();
    }
    let audit = b
        .store
        .list_audit(&org, &AuditFilter::default(), page(10))
        .await
        .unwrap();
    assert!(audit.items.is_empty(), "{:?}", audit.items);
    let counts = b.store.delivery_counts().await.unwrap();
    assert!(counts.iter().all(|(_, n)| *n == 0), "{counts:?}");
    assert_eq!(b.store.list_orgs(page(10)).await.unwrap().items.len(), 1);
}

pub async fn api_keys<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let s = &b.store;
    let org = org(&b).await;
    let key = api_key(&org, [1; 32]);
    s.insert_api_key(&key, &audit(&org, key.id.as_str(), "api_key.created"))
        .await
        .unwrap();
    assert_eq!(
        s.api_key_by_hash(&[1; 32]).await.unwrap(),
        Some(key.clone())
    );
    assert_eq!(s.api_key_by_hash(&[2; 32]).await.unwrap(), None);

    let same_hash = api_key(&org, [1; 32]);
    let err = s
        .insert_api_key(&same_hash, &audit(&org, "k", "x"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

    let t = now();
    s.touch_api_keys(&[(key.id.clone(), t)]).await.unwrap();
    s.touch_api_keys(&[(key.id.clone(), t - secs(60))])
        .await
        .unwrap();
    let touched = s.api_key_by_hash(&[1; 32]).await.unwrap().unwrap();
    assert_eq!(touched.last_used_at, Some(t), "never moves backwards");

    assert!(
        s.delete_api_key(
            &org,
            &key.id,
            &audit(&org, key.id.as_str(), "api_key.deleted")
        )
        .await
        .unwrap()
    );
    assert!(s.api_key_by_hash(&[1; 32]).await.unwrap().is_none());
    assert!(
        !s.delete_api_key(&org, &key.id, &audit(&org, "k", "x"))
            .await
            .unwrap()
    );
    let log = s
        .list_audit(&org, &AuditFilter::default(), page(10))
        .await
        .unwrap()
        .items;
    let actions: Vec<&str> = log.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["api_key.deleted", "api_key.created"]);

    let org_again = Org {
        alert_destinations: Vec::new(),
        alerts: Default::default(),
        id: org.clone(),
        name: "dup".into(),
        created_at: now(),
    };
    assert!(matches!(
        s.create_org(&org_again).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.get_org(&org).await.unwrap().unwrap().name, "acme");
    s.ping().await.unwrap();
}

pub async fn destinations_round_trip<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let s = &b.store;
    let org = org(&b).await;
    let mut d = destination_value(&org, "billing", "bearer-token");
    d.secrets.auth = Auth::Basic {
        username: "u".into(),
        password: Secret::new("p".into()),
    };
    s.insert_destination(&d, &audit(&org, d.id.as_str(), "destination.created"))
        .await
        .unwrap();
    assert_eq!(
        s.get_destination(&org, &d.id).await.unwrap(),
        Some(d.clone())
    );
    assert_eq!(s.destination_by_id(&d.id).await.unwrap(), Some(d.clone()));

    // Rotate the secret, rename, disable.
    let old = d.secrets.signing.secrets[0].secret.clone();
    d.secrets.signing.secrets = vec![
        SigningKey {
            secret: SigningSecret::generate(),
            expires_at: None,
        },
        SigningKey {
            secret: old,
            expires_at: Some(now() + secs(86_400)),
        },
    ];
    d.name = "billing v2".into();
    d.enabled = false;
    d.updated_at = now();
    assert!(
        s.update_destination(&d, &audit(&org, d.id.as_str(), "destination.updated"))
            .await
            .unwrap()
    );
    assert_eq!(
        s.get_destination(&org, &d.id).await.unwrap(),
        Some(d.clone())
    );

    let health = Health {
        consecutive_failures: 3,
        last_failure_at: Some(now()),
        last_error: Some("HTTP 503".into()),
        failure_count: 3,
        next_probe_at: Some(now() + secs(5)),
        probe_backoff_ms: 5000,
        ..Health::default()
    };
    s.save_health(&[(d.id.clone(), health.clone())])
        .await
        .unwrap();
    let stored = s.get_destination(&org, &d.id).await.unwrap().unwrap();
    assert_eq!(stored.health, health);
    assert_eq!(stored.name, "billing v2");
}
