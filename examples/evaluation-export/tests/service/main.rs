//! The service as a user runs it: the real binary as a child process, with
//! a real HTTP receiver as the export destination; and the use case's
//! dependency rule.

mod app;
mod crash;
mod layering;
mod outage;
mod refusals;
mod remote;
