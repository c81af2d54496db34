//! `Store`, `Queue`, `SourceStore`, `ExportStore`, `ScheduleStore`,
//! `Ownership` and `Resealing` for
//! [`PgStore`](super::PgStore): the shared delegation of `crate::ports`.

use super::PgStore;

crate::ports::store_ports!(PgStore);
