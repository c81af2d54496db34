//! Conformance cases of the `ConfigStore` port: an import applies every
//! change with its audit records, or (when any of it fails) nothing at all;
//! an updated destination keeps its health, an updated schedule is written
//! only over the revision its importer read, a replaced source is the given
//! one, and a deleted destination takes its waiting deliveries with it as an
//! operator's delete does.

use ferry_core::StoreError;
use ferry_core::audit::{AuditFilter, AuditRecord};
use ferry_core::delivery::{Delivery, DeliveryStatus};
use ferry_core::destination::{Auth, Destination, Health};
use ferry_core::export::ExportSchedule;
use ferry_core::ids::{OrgId, ScheduleId, SourceId};
use ferry_core::org::Org;
use ferry_core::ports::ConfigChange;
use ferry_core::secret::Secret;
use ferry_core::source::{Source, Verification};
use serde_json::json;

use crate::schedules::schedule;
use crate::sources::source_value;
use crate::support::*;

fn org_value(name: &str) -> Org {
    Org {
        id: OrgId::generate(),
        name: name.into(),
        alert_destinations: Vec::new(),
        alerts: Default::default(),
        created_at: now(),
    }
}

async fn insert_destination(b: &Backend, d: &Destination) {
    b.store
        .insert_destination(d, &audit(&d.org_id, d.id.as_str(), "destination.created"))
        .await
        .unwrap();
}

async fn insert_source(b: &Backend, s: &Source) {
    b.sources
        .insert_source(s, &audit(&s.org_id, s.id.as_str(), "source.created"))
        .await
        .unwrap();
}

async fn insert_schedule(b: &Backend, s: &ExportSchedule) {
    b.schedules
        .insert_schedule(s, &audit(&s.org_id, s.id.as_str(), "schedule.created"))
        .await
        .unwrap();
}

/// One `config.*` audit record per change, as an import writes them.
fn import_audit(changes: &[ConfigChange]) -> Vec<AuditRecord> {
    changes
        .iter()
        .map(|change| {
            let (org, entity, action) = match change {
                ConfigChange::CreateOrg(o) => (&o.id, o.id.as_str(), "config.org.created"),
                ConfigChange::UpdateOrg(o) => (&o.id, o.id.as_str(), "config.org.updated"),
                ConfigChange::CreateDestination(d) => {
                    (&d.org_id, d.id.as_str(), "config.destination.created")
                }
                ConfigChange::UpdateDestination(d) => {
                    (&d.org_id, d.id.as_str(), "config.destination.updated")
                }
                ConfigChange::DeleteDestination(o, id) => {
                    (o, id.as_str(), "config.destination.deleted")
                }
                ConfigChange::CreateSource(s) => {
                    (&s.org_id, s.id.as_str(), "config.source.created")
                }
                ConfigChange::ReplaceSource(s) => {
                    (&s.org_id, s.id.as_str(), "config.source.replaced")
                }
                ConfigChange::DeleteSource(o, id) => (o, id.as_str(), "config.source.deleted"),
                ConfigChange::CreateSchedule(s) => {
                    (&s.org_id, s.id.as_str(), "config.schedule.created")
                }
                ConfigChange::UpdateSchedule(s) => {
                    (&s.org_id, s.id.as_str(), "config.schedule.updated")
                }
                ConfigChange::DeleteSchedule(o, id) => (o, id.as_str(), "config.schedule.deleted"),
            };
            audit(org, entity, action)
        })
        .collect()
}

/// The org's audit log, oldest first: (entity id, action).
async fn audit_log(b: &Backend, org: &OrgId) -> Vec<(String, String)> {
    let mut log: Vec<_> = b
        .store
        .list_audit(org, &AuditFilter::default(), page(200))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|r| (r.entity_id, r.action))
        .collect();
    log.reverse();
    log
}

fn conflict(result: Result<(), StoreError>) -> String {
    match result {
        Err(StoreError::Conflict(message)) => message,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

pub async fn an_import_applies_every_change_with_its_audit<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let org = org(&b).await;
    let updated_dst = destination_value(&org, "updated", "old-token");
    let deleted_dst = destination_value(&org, "deleted", "token-for-tests");
    insert_destination(&b, &updated_dst).await;
    insert_destination(&b, &deleted_dst).await;
    let deleted_src = source_value(&org, "deleted");
    insert_source(&b, &deleted_src).await;
    let deleted_sch = schedule(&org, "deleted", now() + secs(3600));
    insert_schedule(&b, &deleted_sch).await;

    let new_org = org_value("imported");
    let created_dst = destination_value(&new_org.id, "created", "created-token-0123");
    let second_dst = destination_value(&org, "second", "second-token-4567");
    let mut updated = Destination {
        name: "updated-renamed".into(),
        config: json!({"url": "https://receiver.test/other", "timeout_ms": 5000}),
        enabled: false,
        updated_at: now(),
        ..updated_dst.clone()
    };
    updated.secrets.auth = Auth::Bearer {
        token: Secret::new("new-token-89ab".into()),
    };
    let mut renamed = b.store.get_org(&org).await.unwrap().unwrap();
    renamed.name = "acme-imported".into();
    renamed.alert_destinations = vec![second_dst.id.clone()];
    renamed.alerts.debounce_s = Some(600);
    let mut created_src = source_value(&new_org.id, "partner");
    created_src.destinations = vec![created_dst.id.clone()];
    let created_sch = schedule(&new_org.id, "nightly", now() + secs(3600));

    let changes = vec![
        ConfigChange::CreateOrg(new_org.clone()),
        ConfigChange::UpdateOrg(renamed.clone()),
        ConfigChange::CreateDestination(created_dst.clone()),
        ConfigChange::CreateDestination(second_dst.clone()),
        ConfigChange::UpdateDestination(updated.clone()),
        ConfigChange::DeleteDestination(org.clone(), deleted_dst.id.clone()),
        ConfigChange::CreateSource(created_src.clone()),
        ConfigChange::DeleteSource(org.clone(), deleted_src.id.clone()),
        ConfigChange::CreateSchedule(created_sch.clone()),
        ConfigChange::DeleteSchedule(org.clone(), deleted_sch.id.clone()),
    ];
    let records = import_audit(&changes);
    b.config.apply_config(&changes, &records).await.unwrap();

    assert_eq!(
        b.store.get_org(&new_org.id).await.unwrap().as_ref(),
        Some(&new_org)
    );
    assert_eq!(b.store.get_org(&org).await.unwrap(), Some(renamed));
    for d in [&created_dst, &second_dst, &updated] {
        let stored = b.store.get_destination(&d.org_id, &d.id).await.unwrap();
        assert_eq!(stored.as_ref(), Some(d), "{}", d.name);
        assert_eq!(stored.unwrap().secrets, d.secrets, "secrets open again");
    }
    assert_eq!(
        b.store
            .get_destination(&org, &deleted_dst.id)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        b.sources
            .get_source(&new_org.id, &created_src.id)
            .await
            .unwrap(),
        Some(created_src)
    );
    assert_eq!(
        b.sources.get_source(&org, &deleted_src.id).await.unwrap(),
        None
    );
    assert_eq!(
        b.schedules
            .get_schedule(&new_org.id, &created_sch.id)
            .await
            .unwrap(),
        Some(created_sch)
    );
    assert_eq!(
        b.schedules
            .get_schedule(&org, &deleted_sch.id)
            .await
            .unwrap(),
        None
    );

    // Every record, in the order given, after what the setup wrote.
    for o in [&org, &new_org.id] {
        let expected: Vec<_> = records
            .iter()
            .filter(|r| &r.org_id == o)
            .map(|r| (r.entity_id.clone(), r.action.clone()))
            .collect();
        let log = audit_log(&b, o).await;
        assert_eq!(log[log.len() - expected.len()..], expected[..]);
    }
}

/// What a failed import must leave as it was.
#[derive(Debug, PartialEq)]
struct Snapshot {
    orgs: Vec<Option<Org>>,
    destinations: Vec<Option<Destination>>,
    sources: Vec<Option<Source>>,
    schedules: Vec<Option<ExportSchedule>>,
    deliveries: Vec<Delivery>,
    audit: Vec<Vec<(String, String)>>,
}

struct Setup {
    org: OrgId,
    new_org: Org,
    taken_dst: Destination,
    updated_dst: Destination,
    deleted_dst: Destination,
    created_dst: Destination,
    replaced_src: Source,
    deleted_src: Source,
    created_src: Source,
    updated_sch: ExportSchedule,
    deleted_sch: ExportSchedule,
    created_sch: ExportSchedule,
    waiting: Vec<Delivery>,
}

impl Setup {
    async fn new(b: &Backend) -> Self {
        let org = org(b).await;
        let taken_dst = destination_value(&org, "taken", "token-for-tests");
        let updated_dst = destination_value(&org, "updated", "token-for-tests");
        let deleted_dst = destination_value(&org, "deleted", "token-for-tests");
        for d in [&taken_dst, &updated_dst, &deleted_dst] {
            insert_destination(b, d).await;
        }
        let event = new_event_at(&org, "order.created", &[&deleted_dst.id], now() + secs(60));
        ingest(b, std::slice::from_ref(&event)).await;
        let replaced_src = source_value(&org, "replaced");
        let deleted_src = source_value(&org, "deleted");
        for s in [&replaced_src, &deleted_src] {
            insert_source(b, s).await;
        }
        let updated_sch = schedule(&org, "updated", now() + secs(3600));
        let deleted_sch = schedule(&org, "deleted", now() + secs(3600));
        for s in [&updated_sch, &deleted_sch] {
            insert_schedule(b, s).await;
        }
        let new_org = org_value("imported");
        Self {
            created_dst: destination_value(&new_org.id, "created", "created-token-0123"),
            created_src: source_value(&new_org.id, "created"),
            created_sch: schedule(&new_org.id, "created", now() + secs(3600)),
            org,
            new_org,
            taken_dst,
            updated_dst,
            deleted_dst,
            replaced_src,
            deleted_src,
            updated_sch,
            deleted_sch,
            waiting: event.deliveries,
        }
    }

    /// A change of every kind, each of which succeeds on its own.
    fn changes(&self) -> Vec<ConfigChange> {
        let renamed = Org {
            id: self.org.clone(),
            name: "acme-imported".into(),
            alert_destinations: vec![self.taken_dst.id.clone()],
            alerts: Default::default(),
            created_at: now(),
        };
        let updated_dst = Destination {
            name: "updated-renamed".into(),
            enabled: false,
            ..self.updated_dst.clone()
        };
        let replaced_src = Source {
            name: "replaced-renamed".into(),
            ..self.replaced_src.clone()
        };
        let updated_sch = ExportSchedule {
            name: "updated-renamed".into(),
            enabled: false,
            revision: self.updated_sch.revision + 1,
            ..self.updated_sch.clone()
        };
        vec![
            ConfigChange::CreateOrg(self.new_org.clone()),
            ConfigChange::UpdateOrg(renamed),
            ConfigChange::CreateDestination(self.created_dst.clone()),
            ConfigChange::UpdateDestination(updated_dst),
            ConfigChange::DeleteDestination(self.org.clone(), self.deleted_dst.id.clone()),
            ConfigChange::CreateSource(self.created_src.clone()),
            ConfigChange::ReplaceSource(replaced_src),
            ConfigChange::DeleteSource(self.org.clone(), self.deleted_src.id.clone()),
            ConfigChange::CreateSchedule(self.created_sch.clone()),
            ConfigChange::UpdateSchedule(updated_sch),
            ConfigChange::DeleteSchedule(self.org.clone(), self.deleted_sch.id.clone()),
        ]
    }

    async fn snapshot(&self, b: &Backend) -> Snapshot {
        let mut snapshot = Snapshot {
            orgs: Vec::new(),
            destinations: Vec::new(),
            sources: Vec::new(),
            schedules: Vec::new(),
            deliveries: Vec::new(),
            audit: Vec::new(),
        };
        for org in [&self.org, &self.new_org.id] {
            snapshot.orgs.push(b.store.get_org(org).await.unwrap());
            snapshot.audit.push(audit_log(b, org).await);
        }
        for d in [
            &self.taken_dst,
            &self.updated_dst,
            &self.deleted_dst,
            &self.created_dst,
        ] {
            let stored = b.store.get_destination(&d.org_id, &d.id).await.unwrap();
            snapshot.destinations.push(stored);
        }
        for s in [&self.replaced_src, &self.deleted_src, &self.created_src] {
            let stored = b.sources.get_source(&s.org_id, &s.id).await.unwrap();
            snapshot.sources.push(stored);
        }
        for s in [&self.updated_sch, &self.deleted_sch, &self.created_sch] {
            let stored = b.schedules.get_schedule(&s.org_id, &s.id).await.unwrap();
            snapshot.schedules.push(stored);
        }
        for d in &self.waiting {
            snapshot
                .deliveries
                .push(delivery(b, &self.org, &d.id).await);
        }
        snapshot
    }
}

pub async fn a_failed_import_changes_nothing<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let s = Setup::new(&b).await;
    let before = s.snapshot(&b).await;
    assert!(before.orgs[0].is_some() && before.orgs[1].is_none());
    assert_eq!(before.deliveries[0].status, DeliveryStatus::Pending);

    // Each batch fails at its last change, after every other kind of
    // change has run in the same transaction.
    let taken_name = ExportSchedule {
        id: ScheduleId::generate(),
        ..s.created_sch.clone()
    };
    let missing = destination_value(&s.org, "missing", "token-for-tests");
    let other_orgs = Destination {
        org_id: s.new_org.id.clone(),
        ..s.taken_dst.clone()
    };
    let missing_src = SourceId::generate();
    let last_changes = [
        (
            ConfigChange::CreateDestination(s.taken_dst.clone()),
            "a destination with this id already exists".to_owned(),
        ),
        (
            ConfigChange::CreateSchedule(taken_name),
            "an export schedule with this id or name already exists".to_owned(),
        ),
        (
            ConfigChange::UpdateDestination(missing.clone()),
            format!(
                "destination {} no longer exists or was changed meanwhile",
                missing.id
            ),
        ),
        (
            ConfigChange::UpdateDestination(other_orgs),
            format!(
                "destination {} no longer exists or was changed meanwhile",
                s.taken_dst.id
            ),
        ),
        (
            ConfigChange::DeleteSource(s.org.clone(), missing_src.clone()),
            format!("source {missing_src} no longer exists or was changed meanwhile"),
        ),
    ];
    for (last, expected) in last_changes {
        let mut changes = s.changes();
        changes.push(last.clone());
        let applied = b
            .config
            .apply_config(&changes, &import_audit(&changes))
            .await;
        assert_eq!(conflict(applied), expected);
        assert_eq!(s.snapshot(&b).await, before, "after a failed {last:?}");
    }

    // An audit record that cannot be written undoes the changes too.
    fixture.refuse_audit("config.refused").await;
    let changes = s.changes();
    let mut records = import_audit(&changes);
    records.push(audit(&s.org, s.org.as_str(), "config.refused"));
    assert!(b.config.apply_config(&changes, &records).await.is_err());
    assert_eq!(s.snapshot(&b).await, before, "after a refused audit record");

    // Without its failing part, the same batch applies whole.
    let records = import_audit(&changes);
    b.config.apply_config(&changes, &records).await.unwrap();
    let after = s.snapshot(&b).await;
    assert_eq!(after.orgs[1].as_ref(), Some(&s.new_org));
    assert_eq!(after.orgs[0].as_ref().unwrap().name, "acme-imported");
    assert_eq!(
        after.destinations[1].as_ref().unwrap().name,
        "updated-renamed"
    );
    assert_eq!(after.destinations[2], None);
    assert_eq!(after.destinations[3].as_ref(), Some(&s.created_dst));
    assert_eq!(after.sources[0].as_ref().unwrap().name, "replaced-renamed");
    assert_eq!(
        (&after.sources[1], &after.sources[2]),
        (&None, &Some(s.created_src.clone()))
    );
    assert_eq!(
        after.schedules[0].as_ref().unwrap().revision,
        s.updated_sch.revision + 1
    );
    assert_eq!(
        (&after.schedules[1], &after.schedules[2]),
        (&None, &Some(s.created_sch.clone()))
    );
    assert_eq!(after.deliveries[0].status, DeliveryStatus::Failed);
    let written = after.audit.concat().len() - before.audit.concat().len();
    assert_eq!(written, records.len());
}

pub async fn an_updated_destination_keeps_its_health<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let org = org(&b).await;
    let d = destination_value(&org, "a", "token-for-tests");
    insert_destination(&b, &d).await;
    let t = now();
    let health = Health {
        consecutive_failures: 4,
        last_success_at: Some(t - secs(600)),
        last_failure_at: Some(t - secs(5)),
        last_error: Some("HTTP 503".into()),
        success_count: 120,
        failure_count: 9,
        next_probe_at: Some(t + secs(30)),
        probe_backoff_ms: 8000,
        failed_in_a_row: 6,
        failing_since: Some(t - secs(60)),
        failing_alert_at: Some(t - secs(30)),
    };
    b.store
        .save_health(&[(d.id.clone(), health.clone())])
        .await
        .unwrap();

    let mut changed = Destination {
        name: "renamed".into(),
        max_in_flight: 3,
        alerts: Default::default(),
        health: Health::default(),
        updated_at: now(),
        ..d.clone()
    };
    changed.secrets.auth = Auth::Bearer {
        token: Secret::new("rotated-token-cdef".into()),
    };
    let changes = [ConfigChange::UpdateDestination(changed.clone())];
    b.config
        .apply_config(&changes, &import_audit(&changes))
        .await
        .unwrap();

    let stored = b.store.get_destination(&org, &d.id).await.unwrap().unwrap();
    assert_eq!(stored.health, health, "the stored health stays");
    assert_eq!(stored, Destination { health, ..changed });
}

pub async fn an_updated_schedule_is_written_over_the_revision_read<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let org = org(&b).await;
    let s = schedule(&org, "nightly", now() - secs(5));
    insert_schedule(&b, &s).await;
    let due = |b: &Backend| {
        let b = b.clone();
        async move {
            let due = b.schedules.due_schedules(now(), 100).await.unwrap();
            due.into_iter().map(|s| s.id).collect::<Vec<_>>()
        }
    };
    assert!(due(&b).await.contains(&s.id));

    // An import that read an older revision than the one stored is
    // refused whole: something claimed or changed the schedule since.
    let stale = ExportSchedule {
        name: "nightly-off".into(),
        enabled: false,
        revision: 77,
        updated_at: now(),
        ..s.clone()
    };
    let changes = [ConfigChange::UpdateSchedule(stale.clone())];
    assert!(matches!(
        b.config
            .apply_config(&changes, &import_audit(&changes))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        b.schedules.get_schedule(&org, &s.id).await.unwrap(),
        Some(s.clone())
    );

    // One that read the stored revision disables it.
    let disabled = ExportSchedule {
        revision: s.revision + 1,
        ..stale
    };
    let changes = [ConfigChange::UpdateSchedule(disabled.clone())];
    b.config
        .apply_config(&changes, &import_audit(&changes))
        .await
        .unwrap();
    let stored = b
        .schedules
        .get_schedule(&org, &s.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored, disabled);
    assert!(!due(&b).await.contains(&s.id), "due_at follows `enabled`");

    // A claim that read the old revision loses; one that read the new wins.
    let claimed = ExportSchedule {
        revision: stored.revision + 1,
        ..stored.clone()
    };
    let no_audit: [AuditRecord; 0] = [];
    assert!(
        !b.schedules
            .save_schedule(&claimed, s.revision, None, &no_audit)
            .await
            .unwrap()
    );
    assert!(
        b.schedules
            .save_schedule(&claimed, stored.revision, None, &no_audit)
            .await
            .unwrap()
    );

    // Enabled again, due at its next run.
    let enabled = ExportSchedule {
        enabled: true,
        revision: claimed.revision + 1,
        ..claimed.clone()
    };
    let changes = [ConfigChange::UpdateSchedule(enabled)];
    b.config
        .apply_config(&changes, &import_audit(&changes))
        .await
        .unwrap();
    let stored = b
        .schedules
        .get_schedule(&org, &s.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.revision, claimed.revision + 1);
    assert!(due(&b).await.contains(&s.id));
}

pub async fn a_replaced_source_is_the_given_one<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let org = org(&b).await;
    let dst = destination(&b, &org, "a").await;
    let old = source_value(&org, "partner");
    insert_source(&b, &old).await;

    let mut new = source_value(&org, "partner-v2");
    new.id = old.id.clone();
    new.verification = Verification::StandardWebhooks {
        secrets: vec![Secret::new("whsec_bmV3LXNlY3JldC1mb3ItdGVzdHM=".into())],
        tolerance_s: 60,
    };
    new.id_from = None;
    new.required = vec!["/data/id".into(), "/type".into()];
    new.destinations = vec![dst];
    new.created_at = now() - secs(30);
    let changes = [ConfigChange::ReplaceSource(new.clone())];
    b.config
        .apply_config(&changes, &import_audit(&changes))
        .await
        .unwrap();

    assert_eq!(
        b.sources.get_source(&org, &old.id).await.unwrap(),
        Some(new.clone())
    );
    assert_eq!(b.sources.source_by_id(&old.id).await.unwrap(), Some(new));
    let listed = b.sources.list_sources(&org, page(10)).await.unwrap().items;
    assert_eq!(listed.len(), 1, "replaced, not added");
}

pub async fn deleting_a_destination_in_an_import_fails_its_deliveries<F: Fixture>(fixture: &F) {
    let b = fixture.open().await;
    let org = org(&b).await;
    let (gone, kept) = (
        destination(&b, &org, "gone").await,
        destination(&b, &org, "kept").await,
    );
    let t = now();
    let done = new_event_at(&org, "order.created", &[&gone], t - secs(3));
    let flying = new_event_at(&org, "order.created", &[&gone], t - secs(2));
    let waiting = new_event_at(&org, "order.created", &[&gone, &kept], t + secs(60));
    ingest(&b, &[done.clone(), flying.clone(), waiting.clone()]).await;
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
    let in_flight = b.queue.lease_due(1, &lease("w", t), &[]).await.unwrap();
    assert_eq!(in_flight[0].delivery.id, flying.deliveries[0].id);

    let changes = [ConfigChange::DeleteDestination(org.clone(), gone.clone())];
    b.config
        .apply_config(&changes, &import_audit(&changes))
        .await
        .unwrap();
    assert!(
        b.store
            .get_destination(&org, &gone)
            .await
            .unwrap()
            .is_none()
    );
    let log = audit_log(&b, &org).await;
    assert_eq!(
        log.last(),
        Some(&(gone.to_string(), "config.destination.deleted".to_owned()))
    );

    // As `delete_destination`: waiting deliveries fail with it, the one in
    // flight keeps its lease, the rest stay as they were.
    let d = delivery(&b, &org, &waiting.deliveries[0].id).await;
    assert_eq!(
        (d.status, d.last_error.as_deref(), d.next_attempt_at),
        (DeliveryStatus::Failed, Some("destination deleted"), None)
    );
    let status = |id| {
        let b = b.clone();
        let org = org.clone();
        async move { delivery(&b, &org, &id).await.status }
    };
    assert_eq!(
        status(flying.deliveries[0].id.clone()).await,
        DeliveryStatus::Delivering
    );
    assert_eq!(
        status(done.deliveries[0].id.clone()).await,
        DeliveryStatus::Delivered
    );
    assert_eq!(
        status(waiting.deliveries[1].id.clone()).await,
        DeliveryStatus::Pending
    );

    // Its attempt, once it fails, cannot be retried.
    b.queue
        .complete(&[completion(
            &in_flight[0],
            "w",
            DeliveryStatus::Retrying,
            Some(t + secs(30)),
            true,
        )])
        .await
        .unwrap();
    assert_eq!(
        status(flying.deliveries[0].id.clone()).await,
        DeliveryStatus::Failed
    );
}
