//! Stored objects as the configuration document writes them: secrets out,
//! or sealed as one value per object; everything else as the API shows it.
//! The import compares an object's document entry with the one its stored
//! state would give, so both sides are written by these same functions.

use ferry_core::config_doc::{DestinationDoc, OrgDoc, ScheduleDoc, Sealer, SourceDoc};
use ferry_core::destination::Destination;
use ferry_core::export::ExportSchedule;
use ferry_core::org::Org;
use ferry_core::source::{Extractor, Source};
use serde::Serialize;
use serde_json::Value;

use crate::views::ExportSpecView;

fn json(value: impl Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

fn sealed(sealer: Option<&Sealer>, secret: impl Serialize) -> Option<String> {
    let sealer = sealer?;
    let bytes = serde_json::to_vec(&secret).unwrap_or_default();
    Some(sealer.seal(&bytes))
}

pub(super) fn destination(d: &Destination, sealer: Option<&Sealer>) -> DestinationDoc {
    DestinationDoc {
        id: d.id.clone(),
        name: d.name.clone(),
        kind: d.kind.as_str().to_owned(),
        config: d.config.clone(),
        filter: json(&d.filter),
        retry: json(&d.retry),
        default: d.is_default,
        enabled: d.enabled,
        max_in_flight: d.max_in_flight,
        alerts: d.alerts.clone(),
        auth: d.secrets.auth.redacted(),
        signing: d
            .secrets
            .signing
            .secrets
            .first()
            .map(|k| k.secret.scheme().to_owned()),
        sealed_secrets: sealed(sealer, &d.secrets),
    }
}

pub(super) fn source(s: &Source, sealer: Option<&Sealer>) -> SourceDoc {
    SourceDoc {
        id: s.id.clone(),
        name: s.name.clone(),
        verification: s.verification.redacted(),
        id_from: s.id_from.as_ref().map(Extractor::as_text),
        type_from: s.type_from.as_text(),
        required: s.required.clone(),
        destinations: s.destinations.clone(),
        sealed_secrets: sealed(sealer, &s.verification),
    }
}

pub(super) fn schedule(s: &ExportSchedule) -> ScheduleDoc {
    ScheduleDoc {
        id: s.id.clone(),
        name: s.name.clone(),
        cron: s.cron.clone(),
        timezone: s.timezone.clone(),
        enabled: s.enabled,
        export: json(ExportSpecView::from(&s.export)),
        retention: s.retention,
    }
}

/// An organization's entry, its objects in id order (ids are created in
/// time order, so this is also the order they were made in).
pub(super) fn org(
    org: &Org,
    default: bool,
    mut destinations: Vec<DestinationDoc>,
    mut sources: Vec<SourceDoc>,
    mut schedules: Vec<ScheduleDoc>,
) -> OrgDoc {
    destinations.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    sources.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    schedules.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    OrgDoc {
        id: (!default).then(|| org.id.clone()),
        default,
        name: org.name.clone(),
        alert_destinations: org.alert_destinations.clone(),
        alerts: org.alerts.clone(),
        destinations,
        sources,
        export_schedules: schedules,
    }
}
