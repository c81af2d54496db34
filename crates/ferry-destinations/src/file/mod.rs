//! The `file` kind: each event written to a file on the server's disk, for
//! local pipelines and for exports.
//!
//! ```json
//! {"kind": "file",
//!  "config": {"directory": "/var/lib/ferry/files/orders",
//!             "file_name": "{date}/{id}.json", "format": "json"}}
//! ```
//!
//! `directory` must be absolute and inside one of the directories the
//! server lets file destinations write under (its `file_roots` option,
//! default `<data_dir>/files`); `..` parts and symbolic links leading out
//! are refused. `file_name` is a name template (`{id}`, `{type}`, `{org}`,
//! `{date}`, `{timestamp}`; subdirectories are created).
//!
//! - `json` (default, file name `{id}.json`): one file per event holding
//!   its body `{"id","type","timestamp","data"}`, written to a hidden
//!   temporary name, fsync'd and renamed into place, so a reader never sees
//!   a partial file. A re-delivery writes the same name with the same
//!   content.
//! - `ndjson` (default file name `{date}.ndjson`): one body per line,
//!   appended and fsync'd; a retry appends nothing when the event's line is
//!   already there.
//!
//! A missing directory or a refused permission is a permanent failure; a
//! full disk, a timeout or another I/O error is retried.

mod config;
mod deliverer;

pub use config::{FileConfig, FileFormat};
pub use deliverer::{FileAdapter, FileDeliverer};

#[cfg(test)]
mod tests;
