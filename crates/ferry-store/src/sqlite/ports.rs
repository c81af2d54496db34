//! `Store` and `Queue` for [`SqliteStore`](super::SqliteStore): the shared
//! delegation of `crate::ports`.

use super::SqliteStore;

crate::ports::store_ports!(SqliteStore, reader, crate::resealing::RowLocks::Writer);
