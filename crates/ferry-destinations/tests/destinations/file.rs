//! The `file` kind on the real disk: atomic files, fsync'd appends, and the
//! directories it may not write to.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use ferry_core::destination::{Auth, DestinationKind};
use ferry_core::ports::AttemptError;
use serde_json::{Value, json};

use ferry_destinations::{Catalog, CatalogOptions};

use crate::compliance::{deliverer, deliverer_in, envelope, expected_payload};

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn ndjson_appends_one_whole_line_per_event_and_a_retry_adds_none() {
    let dir = tempfile::tempdir().unwrap();
    let config = json!({"directory": dir.path(), "file_name": "events.ndjson", "format": "ndjson"});
    let deliverer = deliverer(DestinationKind::File, &config, &Auth::None);
    let envelopes: Vec<_> = (0..20).map(|n| envelope(n, 1)).collect();
    let tasks: Vec<_> = envelopes
        .iter()
        .cloned()
        .map(|envelope| {
            let deliverer = deliverer.clone();
            tokio::spawn(async move { deliverer.deliver(&envelope).await.result })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap().is_ok());
    }
    let mut retry = envelopes[3].clone();
    retry.attempt = 2;
    assert!(deliverer.deliver(&retry).await.result.is_ok());

    let text = std::fs::read_to_string(dir.path().join("events.ndjson")).unwrap();
    assert!(text.ends_with('\n'));
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 20, "{text}");
    for envelope in &envelopes {
        assert_eq!(
            lines
                .iter()
                .filter(|l| **l == expected_payload(envelope))
                .count(),
            1
        );
    }
}

#[tokio::test]
async fn a_line_cut_short_by_a_crash_does_not_swallow_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("events.ndjson"), b"{\"id\":\"evt_cut").unwrap();
    let config = json!({"directory": dir.path(), "file_name": "events.ndjson", "format": "ndjson"});
    let deliverer = deliverer(DestinationKind::File, &config, &Auth::None);
    let event = envelope(1, 1);
    assert!(deliverer.deliver(&event).await.result.is_ok());
    let text = std::fs::read_to_string(dir.path().join("events.ndjson")).unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last, expected_payload(&event));
}

#[tokio::test]
async fn templates_make_subdirectories_and_leave_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = json!({"directory": dir.path(), "file_name": "{date}/{type}/{id}.json"});
    let deliverer = deliverer(DestinationKind::File, &config, &Auth::None);
    let event = envelope(4, 1);
    let report = deliverer.deliver(&event).await;
    assert!(report.result.is_ok(), "{report:?}");
    let date = event.event.created_at.format("%Y-%m-%d").to_string();
    let sub = dir.path().join(&date).join(&event.event.event_type);
    assert_eq!(files_in(&sub), [format!("{}.json", event.event.id)]);
    let written: Value = serde_json::from_slice(
        &std::fs::read(sub.join(format!("{}.json", event.event.id))).unwrap(),
    )
    .unwrap();
    assert_eq!(written, expected_payload(&event));
    let captured = report.request.unwrap();
    assert_eq!(
        captured.headers["file"],
        format!("{date}/{}/{}.json", event.event.event_type, event.event.id)
    );
}

#[tokio::test]
async fn a_missing_or_unwritable_directory_is_permanent_and_fails_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let absent = deliverer(
        DestinationKind::File,
        &json!({ "directory": missing }),
        &Auth::None,
    );
    let report = absent.deliver(&envelope(1, 1)).await;
    match report.result {
        Err(AttemptError::Permanent { reason: error }) => {
            assert_eq!(
                error,
                format!("directory {} does not exist", missing.display())
            );
        }
        other => panic!("{other:?}"),
    }
    let check = absent.check().await;
    assert!(!check.ok);
    assert!(
        check.message.contains("does not exist"),
        "{}",
        check.message
    );

    // Root ignores permissions: only meaningful as another user.
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o500)).unwrap();
    if std::fs::write(locked.join("probe"), b"x").is_err() {
        let locked = deliverer(
            DestinationKind::File,
            &json!({ "directory": locked }),
            &Auth::None,
        );
        let report = locked.deliver(&envelope(1, 1)).await;
        assert!(
            matches!(report.result, Err(AttemptError::Permanent { .. })),
            "{report:?}"
        );
    }
}

#[tokio::test]
async fn a_symbolic_link_out_of_the_roots_is_refused_at_delivery() {
    // The only root is `dir`; `outside` is a sibling of it.
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("escape")).unwrap();
    let catalog = Catalog::new(CatalogOptions {
        file_roots: vec![dir.path().to_owned()],
        ..CatalogOptions::default()
    });
    let config = json!({"directory": dir.path(), "file_name": "escape/{id}.json"});
    let deliverer = deliverer_in(&catalog, DestinationKind::File, &config, &Auth::None);
    let report = deliverer.deliver(&envelope(1, 1)).await;
    match report.result {
        Err(AttemptError::Permanent { reason: error }) => assert!(
            error.contains("outside the directories file destinations may write under"),
            "{error}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(files_in(outside.path()).is_empty());
}

#[tokio::test]
async fn check_writes_and_removes_a_test_file() {
    let dir = tempfile::tempdir().unwrap();
    let deliverer = deliverer(
        DestinationKind::File,
        &json!({ "directory": dir.path() }),
        &Auth::None,
    );
    let check = deliverer.check().await;
    assert!(check.ok, "{}", check.message);
    assert!(
        check
            .message
            .starts_with("wrote and removed a test file in ")
    );
    assert!(files_in(dir.path()).is_empty());
}
