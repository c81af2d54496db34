//! `Store`, `Queue`, `SourceStore`, `ExportStore`, `ScheduleStore`,
//! `MetricsStore`, `ConfigStore`, `Ownership` and `Resealing` for
//! [`PgStore`](super::PgStore): the shared delegation of `crate::ports`.

use super::PgStore;

crate::ports::store_ports!(PgStore);
