//! Tests of the `ferry` binary as a user runs it: as a child process on a
//! temp data dir, killed with SIGKILL mid-load, and driven by its CLI.

mod process;

mod commands;
mod crash;
