//! Tests of the `ferry` binary as a user runs it: as a child process on a
//! temp data dir, killed with SIGKILL mid-load, driven by its CLI, and as
//! separate ingest and worker processes on PostgreSQL, with the queue in
//! PostgreSQL or on Redis Streams, and the load tool against the real
//! brokers and databases; on a disk that fills up, and with a log that
//! cannot be written; a configuration moved from one server to another.
//! And of the `ferry` library as an application uses
//! it: the integration port's conformance suite (`port`).

mod process;

mod commands;
mod config_transfer;
mod crash;
mod export_schedules;
mod full_disk;
mod loadtest;
mod oplog;
mod outage;
mod port;
mod scale;
mod scale_redis;
mod traces;
