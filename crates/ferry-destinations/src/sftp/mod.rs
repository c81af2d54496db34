//! The `sftp` kind: each event uploaded as one file to an SSH server,
//! through russh and russh-sftp.
//!
//! ```json
//! {"kind": "sftp",
//!  "config": {"host": "files.partner.example", "port": 22,
//!             "directory": "/incoming/ferry", "file_name": "{date}/{id}.json",
//!             "host_key_fingerprint": "SHA256:…"},
//!  "auth": {"type": "private_key", "username": "ferry",
//!           "private_key": "-----BEGIN OPENSSH PRIVATE KEY-----…"}}
//! ```
//!
//! `auth` is `{"type": "password", "username", "password"}` or
//! `{"type": "private_key", "username", "private_key", "passphrase"?}`.
//! The server's host key must match `host_key_fingerprint` (as
//! `ssh-keygen -lf` prints it); unknown keys are refused unless
//! `trust_on_first_use` is set, which accepts the first key seen and then
//! holds the destination to it while the process runs (the connection test
//! shows the key to pin).
//! `file_name` (default `{id}.json`) must contain `{id}`; subdirectories are
//! created. `timeout_ms` (default 30 s) bounds connecting and each upload.
//!
//! The body `{"id","type","timestamp","data"}` is written to a hidden
//! temporary name in the target directory and renamed into place, so a
//! reader never sees a partial file; a re-delivery finds the same name
//! (already written: delivered). One SSH connection per destination is
//! shared by its deliveries and re-made with backoff after a failure. A
//! changed host key, refused credentials, a missing directory or a refused
//! permission are permanent failures; connection errors and timeouts are
//! retried.
//!
//! An `sftp` destination also takes exports (`export`): each is written
//! under a hidden temporary name on its own connection and renamed into
//! place once whole.

mod classify;
mod config;
mod connection;
mod deliverer;
mod export;

pub use config::SftpConfig;
pub use deliverer::{SftpAdapter, SftpDeliverer};

#[cfg(test)]
mod tests;
