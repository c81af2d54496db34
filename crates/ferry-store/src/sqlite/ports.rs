//! `Store`, `Queue`, `SourceStore`, `ExportStore`, `ScheduleStore`,
//! `MetricsStore`, `ConfigStore`, `Ownership` and `Resealing` for
//! [`SqliteStore`](super::SqliteStore): the shared delegation of `crate::ports`.

use super::SqliteStore;

crate::ports::store_ports!(SqliteStore);
