//! Conformance cases for organizations and the ports beside `Store`:
//! updating an organization, inbound sources, the ownership lookup of any
//! id, re-sealing secrets after a master-key rotation, and the words a
//! conflict is reported in.

use ferry_core::StoreError;
use ferry_core::audit::AuditFilter;
use ferry_core::crypto::Cipher;
use ferry_core::ids::{ApiKeyId, EventId, OrgId, SourceId};
use ferry_core::org::Org;
use ferry_core::secret::Secret;
use ferry_core::source::{Extractor, Source, Verification};

use crate::support::*;

pub fn source_value(org: &OrgId, name: &str) -> Source {
    Source {
        id: SourceId::generate(),
        org_id: org.clone(),
        name: name.into(),
        verification: Verification::StandardWebhooks {
            secrets: vec![Secret::new("whsec_c2VjcmV0LWZvci10ZXN0cw==".into())],
            tolerance_s: 300,
        },
        id_from: Some(Extractor::Header("webhook-id".into())),
        type_from: Extractor::Pointer("/type".into()),
        required: vec!["/data".into()],
        destinations: Vec::new(),
        created_at: now(),
    }
}

async fn source(b: &Backend, org: &OrgId, name: &str) -> Source {
    let source = source_value(org, name);
    b.sources
        .insert_source(&source, &audit(org, "source", "source.created"))
        .await
        .unwrap();
    source
}

pub async fn organizations_update_with_an_audit_record<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let org = org(&b).await;
    let dst = destination(&b, &org, "alerts").await;
    let mut changed = b.store.get_org(&org).await.unwrap().unwrap();
    changed.name = "acme-renamed".into();
    changed.alert_destinations = vec![dst];
    let record = audit(&org, "org", "org.updated");
    assert!(b.store.update_org(&changed, &record).await.unwrap());
    assert_eq!(b.store.get_org(&org).await.unwrap(), Some(changed.clone()));
    let log = b
        .store
        .list_audit(&org, &AuditFilter::default(), page(50))
        .await
        .unwrap()
        .items;
    assert!(log.iter().any(|r| r.action == "org.updated"));

    let missing = Org {
        id: OrgId::generate(),
        ..changed
    };
    assert!(!b.store.update_org(&missing, &record).await.unwrap());
    assert!(b.store.get_org(&missing.id).await.unwrap().is_none());
}

pub async fn sources_round_trip_within_their_org<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let (org, other) = (org(&b).await, org(&b).await);
    let dst = destination(&b, &org, "a").await;
    let mut first = source_value(&org, "partner-a");
    first.destinations = vec![dst];
    b.sources
        .insert_source(&first, &audit(&org, "source", "source.created"))
        .await
        .unwrap();
    let second = source(&b, &org, "partner-b").await;

    let got = b.sources.get_source(&org, &first.id).await.unwrap();
    assert_eq!(got.as_ref(), Some(&first));
    assert_eq!(
        b.sources.source_by_id(&first.id).await.unwrap().as_ref(),
        Some(&first)
    );
    assert!(
        b.sources
            .get_source(&other, &first.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        b.sources
            .source_by_id(&SourceId::generate())
            .await
            .unwrap()
            .is_none()
    );

    let listed = b.sources.list_sources(&org, page(1)).await.unwrap();
    assert_eq!(listed.items, vec![second.clone()], "newest first");
    let rest = b
        .sources
        .list_sources(
            &org,
            ferry_core::page::PageRequest {
                limit: 10,
                after: listed.next,
            },
        )
        .await
        .unwrap();
    assert_eq!(rest.items, vec![first.clone()]);
    assert!(
        b.sources
            .list_sources(&other, page(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );

    let deleted = audit(&org, "source", "source.deleted");
    assert!(
        !b.sources
            .delete_source(&other, &first.id, &deleted)
            .await
            .unwrap()
    );
    assert!(
        b.sources
            .delete_source(&org, &first.id, &deleted)
            .await
            .unwrap()
    );
    assert!(
        !b.sources
            .delete_source(&org, &first.id, &deleted)
            .await
            .unwrap()
    );
    assert!(
        b.sources
            .get_source(&org, &first.id)
            .await
            .unwrap()
            .is_none()
    );
    let log = b
        .store
        .list_audit(&org, &AuditFilter::default(), page(50))
        .await
        .unwrap()
        .items;
    let actions: Vec<&str> = log.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(
        actions.iter().filter(|a| **a == "source.created").count(),
        2
    );
    assert_eq!(
        actions.iter().filter(|a| **a == "source.deleted").count(),
        1,
        "a delete that found nothing is not audited"
    );
}

pub async fn every_id_names_its_owner<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let (org, other) = (org(&b).await, org(&b).await);
    let dst = destination(&b, &org, "a").await;
    let event = new_event(&org, &[&dst]);
    ingest(&b, std::slice::from_ref(&event)).await;
    let src = source(&b, &org, "partner").await;
    let key = api_key(&org, [9; 32]);
    b.store
        .insert_api_key(&key, &audit(&org, "api_key", "api_key.created"))
        .await
        .unwrap();

    for id in [
        org.as_str(),
        dst.as_str(),
        event.event.id.as_str(),
        event.deliveries[0].id.as_str(),
        src.id.as_str(),
        key.id.as_str(),
    ] {
        assert_eq!(
            b.ownership.owner_of(id).await.unwrap(),
            Some(org.clone()),
            "{id}"
        );
    }
    assert_eq!(
        b.ownership.owner_of(other.as_str()).await.unwrap(),
        Some(other)
    );
    let unknown_event = EventId::generate();
    let unknown_key = ApiKeyId::generate();
    for id in [
        unknown_event.as_str(),
        unknown_key.as_str(),
        "nonsense",
        "zzz_abc",
    ] {
        assert_eq!(b.ownership.owner_of(id).await.unwrap(), None, "{id}");
    }
}

pub async fn resealing_moves_every_secret_to_the_new_key<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let org = org(&b).await;
    let dst = destination(&b, &org, "a").await;
    let before = b.store.get_destination(&org, &dst).await.unwrap().unwrap();
    let src = source(&b, &org, "partner").await;

    b.cipher.rotate(&Cipher::generate_key()).unwrap();
    assert_eq!(b.resealing.reseal_secrets().await.unwrap(), 2);
    b.cipher.forget_older_keys();

    let after = b.store.get_destination(&org, &dst).await.unwrap().unwrap();
    assert_eq!(after.secrets, before.secrets);
    assert_eq!(
        b.sources.get_source(&org, &src.id).await.unwrap(),
        Some(src)
    );
}

/// A conflict answers in Ferry's words, the same on every backend: never
/// the driver's text (table, constraint or SQL).
pub async fn conflicts_are_reported_in_ferrys_words<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let org = org(&b).await;
    let same = Org {
        id: org.clone(),
        name: "again".into(),
        alert_destinations: Vec::new(),
        alerts: Default::default(),
        created_at: now(),
    };
    let conflict = |r: Result<(), StoreError>| match r {
        Err(StoreError::Conflict(message)) => message,
        other => panic!("expected a conflict, got {other:?}"),
    };
    assert_eq!(
        conflict(b.store.create_org(&same).await),
        "an organization with this id already exists"
    );

    let dst = destination_value(&org, "a", "token-for-tests");
    let created = audit(&org, "destination", "destination.created");
    b.store.insert_destination(&dst, &created).await.unwrap();
    assert_eq!(
        conflict(b.store.insert_destination(&dst, &created).await),
        "a destination with this id already exists"
    );

    let key = api_key(&org, [3; 32]);
    let made = audit(&org, "api_key", "api_key.created");
    b.store.insert_api_key(&key, &made).await.unwrap();
    let twin = api_key(&org, [3; 32]);
    assert_eq!(
        conflict(b.store.insert_api_key(&twin, &made).await),
        "an API key with this id or secret already exists"
    );

    let src = source(&b, &org, "partner").await;
    assert_eq!(
        conflict(b.sources.insert_source(&src, &made).await),
        "a source with this id already exists"
    );

    // A row of an organization that does not exist.
    let orphan = destination_value(&OrgId::generate(), "b", "token-for-tests");
    assert_eq!(
        conflict(b.store.insert_destination(&orphan, &created).await),
        "it refers to something that does not exist"
    );
}
