//! An S3 server (moto's `moto_server`) and reading objects back with boto3.

use std::process::Command;

use serde::Deserialize;

use super::{Process, installed, run_python, venv};
use crate::free_port;

/// `moto_server` on 127.0.0.1, killed on drop. moto accepts any access key.
pub struct S3Server {
    _process: Process,
    port: u16,
}

/// An object as boto3 read it back.
#[derive(Debug, Clone, Deserialize)]
pub struct S3Object {
    pub key: String,
    pub size: u64,
    /// The ETag without quotes; multipart uploads end in `-<parts>`.
    pub etag: String,
    pub content_type: Option<String>,
    pub storage_class: Option<String>,
    pub server_side_encryption: Option<String>,
    /// User metadata (`x-amz-meta-*`), lower-case names.
    pub metadata: std::collections::BTreeMap<String, String>,
    /// The body as text, for objects up to 1 MiB.
    pub body: Option<String>,
    /// The hex SHA-256 of the body.
    pub sha256: String,
}

impl S3Server {
    /// Starts a server on a free port.
    pub fn start() -> Self {
        let port = free_port();
        let program = installed(venv().join("bin/moto_server"), "moto_server");
        let mut command = Command::new(program);
        command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        let process = Process::start("moto_server", command, port);
        Self {
            _process: process,
            port,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket (with boto3).
    pub fn create_bucket(&self, bucket: &str) {
        run_python("s3.py", &[&self.endpoint(), "create-bucket", bucket]);
    }

    /// Every object of a bucket, read back with boto3.
    pub fn objects(&self, bucket: &str) -> Vec<S3Object> {
        let out = run_python("s3.py", &[&self.endpoint(), "objects", bucket]);
        serde_json::from_slice(&out).expect("s3.py prints a JSON list")
    }
}
