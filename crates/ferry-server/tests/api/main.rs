//! Integration tests of the whole server: the real HTTP API on port 0, the
//! embedded store in a temp dir, and a real HTTP receiver.

mod harness;

mod delivery;
mod ingest;
mod operations;
mod resilience;
mod security;
mod sources;
