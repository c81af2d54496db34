//! An SMTP server (aiosmtpd, `python/smtp_server.py`) that saves every
//! message it accepts, parsed by Python's email package, as JSON.

use std::process::Command;

use serde_json::Value;
use tempfile::TempDir;

use super::{Process, python, script};
use crate::free_port;

/// aiosmtpd on 127.0.0.1, killed on drop.
pub struct SmtpServer {
    _process: Process,
    port: u16,
    maildir: TempDir,
}

impl SmtpServer {
    /// A server that accepts mail without authentication.
    pub fn start() -> Self {
        Self::spawn(&[])
    }

    /// A server that requires AUTH (PLAIN or LOGIN) with these credentials.
    pub fn with_auth(user: &str, password: &str) -> Self {
        Self::spawn(&["--login", user, password])
    }

    /// A server that offers and requires only AUTH XOAUTH2, for this user
    /// and bearer token; it refuses a wrong one as Gmail does (an error
    /// challenge, then 535).
    pub fn with_xoauth2(user: &str, token: &str) -> Self {
        Self::spawn(&["--xoauth2", user, token])
    }

    fn spawn(auth: &[&str]) -> Self {
        let maildir = tempfile::tempdir().expect("a temporary directory");
        let port = free_port();
        let mut command = Command::new(python());
        command
            .arg(script("smtp_server.py"))
            .arg(port.to_string())
            .arg(maildir.path())
            .args(auth);
        let process = Process::start("aiosmtpd", command, port);
        Self {
            _process: process,
            port,
            maildir,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every message accepted so far, oldest first: `{"mail_from",
    /// "rcpt_tos", "headers" (lower-case names), "text", "attachments":
    /// [{"filename", "content_type", "content"}]}`.
    pub fn messages(&self) -> Vec<Value> {
        let mut names: Vec<_> = std::fs::read_dir(self.maildir.path())
            .expect("the mail directory")
            .map(|e| e.expect("a directory entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| serde_json::from_slice(&std::fs::read(p).expect("a message")).expect("JSON"))
            .collect()
    }
}
