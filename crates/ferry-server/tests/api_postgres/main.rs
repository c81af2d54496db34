//! The server's API tests again, on PostgreSQL (each server in a schema of
//! its own in `FERRY_TEST_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`).

/// Which store the harness starts servers on.
pub const POSTGRES: bool = true;

#[path = "../api/harness.rs"]
mod harness;

#[path = "../api/alerting.rs"]
mod alerting;
#[path = "../api/backlog.rs"]
mod backlog;
#[path = "../api/config_transfer.rs"]
mod config_transfer;
#[path = "../api/delivery.rs"]
mod delivery;
#[path = "../api/export_schedules.rs"]
mod export_schedules;
#[path = "../api/exports.rs"]
mod exports;
#[path = "../api/incremental.rs"]
mod incremental;
#[path = "../api/ingest.rs"]
mod ingest;
#[path = "../api/integrations.rs"]
mod integrations;
#[path = "../api/metrics_export.rs"]
mod metrics_export;
#[path = "../api/operations.rs"]
mod operations;
#[path = "../api/resilience.rs"]
mod resilience;
#[path = "../api/security.rs"]
mod security;
#[path = "../api/sources.rs"]
mod sources;
#[path = "../api/traces.rs"]
mod traces;

mod schedules_shared;
mod split_traces;
mod worker_joins;
