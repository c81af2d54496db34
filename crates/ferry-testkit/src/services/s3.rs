//! An S3 server (moto's `moto_server`) and reading objects back with boto3.

use std::process::Command;

use serde::Deserialize;

use super::{Process, installed, run_python, venv};
use crate::free_port;

/// `moto_server` on 127.0.0.1, killed on drop. Started with
/// [`S3Server::start`] it accepts any access key; with
/// [`S3Server::start_with_iam`], only the key of its IAM user.
pub struct S3Server {
    _process: Process,
    port: u16,
    /// The IAM user's access key id and secret, when it checks keys.
    keys: Option<(String, String)>,
}

/// An IAM user's new access key, as `s3.py create-user` prints it.
#[derive(Deserialize)]
struct AccessKey {
    access_key_id: String,
    secret_access_key: String,
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
        Self::spawn(None)
    }

    /// Starts a server that authenticates every request (checking the
    /// signature) and authorizes it by IAM policy: its one IAM user, which
    /// may do everything on S3, has the key [`S3Server::access_key`].
    pub fn start_with_iam() -> Self {
        // moto lets this many requests through unauthenticated: the three
        // that make the user, its policy and its key.
        let mut server = Self::spawn(Some(3));
        let out = run_python("s3.py", &[&server.endpoint(), "create-user", "ferry-test"]);
        let key: AccessKey = serde_json::from_slice(&out).expect("s3.py prints the new key");
        server.keys = Some((key.access_key_id, key.secret_access_key));
        server
    }

    fn spawn(unauthenticated_requests: Option<u32>) -> Self {
        let port = free_port();
        let program = installed(venv().join("bin/moto_server"), "moto_server");
        let mut command = Command::new(program);
        command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        if let Some(count) = unauthenticated_requests {
            command.env("INITIAL_NO_AUTH_ACTION_COUNT", count.to_string());
        }
        let process = Process::start("moto_server", command, port);
        Self {
            _process: process,
            port,
            keys: None,
        }
    }

    /// The access key id and secret the server accepts (see
    /// [`S3Server::start_with_iam`]); `None` when it accepts any.
    pub fn access_key(&self) -> Option<(&str, &str)> {
        self.keys
            .as_ref()
            .map(|(id, secret)| (id.as_str(), secret.as_str()))
    }

    /// `s3.py` with this server's endpoint, the command and the bucket, and
    /// the IAM user's key when the server checks keys.
    fn s3_py(&self, command: &str, bucket: &str) -> Vec<u8> {
        let endpoint = self.endpoint();
        let mut args = vec![endpoint.as_str(), command, bucket];
        if let Some((id, secret)) = self.access_key() {
            args.extend([id, secret]);
        }
        run_python("s3.py", &args)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket (with boto3).
    pub fn create_bucket(&self, bucket: &str) {
        self.s3_py("create-bucket", bucket);
    }

    /// The keys of a bucket's unfinished multipart uploads.
    pub fn unfinished_uploads(&self, bucket: &str) -> Vec<String> {
        let out = self.s3_py("uploads", bucket);
        serde_json::from_slice(&out).expect("s3.py prints a JSON list")
    }

    /// Every object of a bucket, read back with boto3.
    pub fn objects(&self, bucket: &str) -> Vec<S3Object> {
        let out = self.s3_py("objects", bucket);
        serde_json::from_slice(&out).expect("s3.py prints a JSON list")
    }
}
