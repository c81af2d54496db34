//! A configuration moved between two servers with `ferry config export`
//! and `ferry config import`: the document carries a destination's bearer
//! token only sealed, a dry run on the fresh server changes nothing, the
//! import makes the destination deliver with its token, a second import
//! changes nothing, and both servers then export the same document. A
//! wrong passphrase is refused by name.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use ferry_testkit::Receiver;

use crate::commands::{ferry, json, refused, stdout};
use crate::process::{ADMIN_KEY, FerryProcess};

/// The destination's bearer token: it must never appear in the document.
const TOKEN: &str = "tok_carried_sealed_only_0123456789";

/// The passphrase the secrets are sealed with.
const PASSPHRASE: &str = "correct horse battery staple";

/// `ferry …` with `input` on its stdin.
fn ferry_with_stdin(base: &str, args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .env("FERRY_URL", base)
        .env("FERRY_API_KEY", ADMIN_KEY)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn destination_ids(base: &str) -> Vec<String> {
    let listed = json(&ferry(base, &["--json", "destinations", "list"]));
    listed["data"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {listed}"))
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect()
}

// The CLI runs as a blocking child process: a second worker thread keeps
// the receiver answering meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_moves_to_a_fresh_server_with_its_secrets_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let server_a = FerryProcess::start(&dir.path().join("a")).await;
    let a = server_a.base.as_str();
    let receiver = Receiver::start().await;
    let created = json(&ferry(
        a,
        &[
            "--json",
            "destinations",
            "create",
            "--name",
            "orders",
            "--webhook-url",
            &receiver.url(),
            "--event-type",
            "order.*",
            "--bearer-token",
            TOKEN,
        ],
    ));
    let dst = created["id"].as_str().unwrap().to_owned();

    let pass = dir.path().join("pass.txt");
    std::fs::write(&pass, format!("{PASSPHRASE}\n")).unwrap();
    let pass = pass.to_str().unwrap();
    let doc = dir.path().join("doc.yaml");
    let doc = doc.to_str().unwrap();

    // Too short a passphrase is refused by name, and nothing is written.
    let short = dir.path().join("short.txt");
    std::fs::write(&short, "short\n").unwrap();
    refused(
        &ferry(
            a,
            &[
                "config",
                "export",
                "--include-secrets",
                "--passphrase-file",
                short.to_str().unwrap(),
                "-o",
                doc,
            ],
        ),
        &["passphrase"],
    );
    assert!(!std::path::Path::new(doc).exists());

    let saved = ferry(
        a,
        &[
            "config",
            "export",
            "--format",
            "yaml",
            "--include-secrets",
            "--passphrase-file",
            pass,
            "-o",
            doc,
        ],
    );
    assert_eq!(stdout(&saved), "");
    let said = String::from_utf8_lossy(&saved.stderr);
    assert!(
        said.starts_with(&format!("Saved the configuration to {doc} (YAML, "))
            && said.ends_with("; secrets sealed.\n"),
        "{said}"
    );
    assert!(!said.contains(PASSPHRASE), "{said}");
    let text = std::fs::read_to_string(doc).unwrap();
    assert!(
        text.contains(&dst) && text.contains("sealed_secrets"),
        "{text}"
    );
    assert!(!text.contains(TOKEN), "the bearer token is in the document");
    assert!(!text.contains(PASSPHRASE));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(doc).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }

    // A fresh server: the dry run shows the plan and changes nothing.
    let server_b = FerryProcess::start(&dir.path().join("b")).await;
    let b = server_b.base.as_str();
    let create_line = format!("+ create destination {dst} \"orders\"\n");
    let planned = stdout(&ferry(
        b,
        &[
            "config",
            "import",
            doc,
            "--dry-run",
            "--passphrase-file",
            pass,
        ],
    ));
    assert!(planned.starts_with(&create_line), "{planned}");
    assert!(
        planned.contains("\nDry run: 1 created, 0 changed, ")
            && planned.ends_with(" (nothing was changed)\n"),
        "{planned}"
    );
    assert!(destination_ids(b).is_empty(), "a dry run created something");

    // A wrong passphrase is refused by name, and changes nothing.
    let wrong = dir.path().join("wrong.txt");
    std::fs::write(&wrong, "not the passphrase it was sealed with\n").unwrap();
    refused(
        &ferry(
            b,
            &[
                "config",
                "import",
                doc,
                "--passphrase-file",
                wrong.to_str().unwrap(),
            ],
        ),
        &["passphrase"],
    );
    assert!(destination_ids(b).is_empty());

    let applied = stdout(&ferry(
        b,
        &["config", "import", doc, "--passphrase-file", pass],
    ));
    assert!(applied.starts_with(&create_line), "{applied}");
    assert!(
        applied.contains("\nApplied: 1 created, 0 changed, "),
        "{applied}"
    );
    assert_eq!(destination_ids(b), [dst.as_str()]);

    // The destination came with its token: B delivers with it.
    let sent = json(&ferry(b, &["--json", "send", "order.created"]));
    let event = sent["id"].as_str().unwrap();
    receiver.wait_for(1, Duration::from_secs(10)).await.unwrap();
    let got = &receiver.requests()[0];
    assert_eq!(got.header("webhook-id"), Some(event));
    assert_eq!(
        got.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );

    // Again, the document from stdin: nothing left to change.
    let again = stdout(&ferry_with_stdin(
        b,
        &["config", "import", "-", "--passphrase-file", pass],
        text.as_bytes(),
    ));
    assert!(
        again.starts_with("Nothing to apply: 0 created, 0 changed, ")
            && again.ends_with(" unchanged, 0 removed, 0 skipped\n"),
        "{again}"
    );
    let report = json(&ferry(
        b,
        &["--json", "config", "import", doc, "--passphrase-file", pass],
    ));
    assert_eq!(report["applied"], false, "{report}");
    assert_eq!(report["changes"], serde_json::json!([]), "{report}");
    assert_eq!(report["summary"]["created"], 0, "{report}");

    // Both servers now hold the same configuration.
    let export_json = |base: &str| stdout(&ferry(base, &["config", "export", "--format", "json"]));
    let from_a = export_json(a);
    assert!(!from_a.contains("sealed_secrets"), "{from_a}");
    assert_eq!(from_a, export_json(b));
    let parsed: serde_json::Value = serde_json::from_str(&from_a).unwrap();
    assert!(parsed.is_object(), "{from_a}");
}
