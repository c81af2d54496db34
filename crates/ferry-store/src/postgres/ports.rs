//! `Store` and `Queue` for [`PgStore`](super::PgStore): the shared
//! delegation of `crate::ports`.

use super::PgStore;

crate::ports::store_ports!(PgStore, pool, crate::resealing::RowLocks::ForUpdate);
