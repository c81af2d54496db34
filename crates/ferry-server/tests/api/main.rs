//! Integration tests of the whole server on the embedded store: the real
//! HTTP API on port 0, SQLite in a temp dir, and a real HTTP receiver. The
//! same modules (but `embedded`) run on PostgreSQL in `api_postgres`.

/// Which store the harness starts servers on.
pub const POSTGRES: bool = false;

mod harness;

mod alerting;
mod backlog;
mod config_transfer;
mod dashboard;
mod delivery;
mod destination_kinds;
mod embedded;
mod export_schedules;
mod export_targets;
mod exports;
mod file_destination;
mod incremental;
mod ingest;
mod integrations;
mod metrics_export;
mod openapi;
mod operations;
mod resilience;
mod security;
mod sources;
mod traces;
