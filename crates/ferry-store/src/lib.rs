//! Ferry's storage adapters: the `Store` and `Queue` ports of `ferry-core`.
//!
//! [`SqliteStore`] is the embedded backend: one SQLite file in WAL mode,
//! durable on every commit, holding both the state (organizations, keys,
//! destinations, events, deliveries, attempts, audit) and the delivery queue
//! (the deliveries table). [`PgStore`] is the scale-out backend: the same
//! tables in a PostgreSQL schema shared by any number of Ferry processes,
//! which lease deliveries with `FOR UPDATE SKIP LOCKED`; with [`RedisQueue`]
//! the queue moves to Redis Streams while PostgreSQL keeps the state.
//!
//! Both SQL backends run one implementation of every statement (`sql`),
//! generic over sqlx's `Database`; each backend module (`sqlite`,
//! `postgres`) holds only what is its own: connecting, transactions, batch
//! statements, leasing SQL and error mapping. Migrations live as `.sql`
//! files under `migrations/<backend>/` and run when the store opens. Every
//! backend runs the conformance suite in `tests/conformance.rs`.

mod deleted;
mod failure;
mod ports;
mod postgres;
mod redis_queue;
mod replay;
mod rows;
mod sql;
mod sqlite;
mod values;

pub use postgres::{PgOptions, PgStore, WorkListener};
pub use redis_queue::{RedisOptions, RedisQueue};
pub use sql::queue::Waiting;
pub use sqlite::SqliteStore;
