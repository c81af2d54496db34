//! A small performance-evaluation service that exports every result
//! through Ferry.
//!
//! It scores a classifier's predictions against a labelled data set
//! ([`evaluation`]), keeps each result in its own SQLite database
//! ([`results`]), and hands an `evaluation.completed` event per result to
//! an [`IntegrationPort`](ferry::port::IntegrationPort) ([`export`]). The
//! use case knows Ferry only through `ferry::port`; the binary
//! (`main.rs`) is the one place that builds a Ferry — embedded, or a
//! client of a remote server — and hands its port in.

pub mod evaluation;
pub mod export;
pub mod results;
