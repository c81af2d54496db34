use std::path::PathBuf;

use ferry_core::destination::Auth;
use ferry_core::secret::Secret;
use serde_json::json;

use super::*;
use crate::kind_config::KindConfig;
use crate::template::relative_path;

fn roots() -> Vec<PathBuf> {
    vec![PathBuf::from("/srv/ferry/files")]
}

fn errors(config: serde_json::Value) -> Vec<(String, String)> {
    FileConfig::validate(&config, &Auth::None, &roots())
        .unwrap_err()
        .into_iter()
        .map(|e| (e.field, e.message))
        .collect()
}

#[test]
fn defaults_are_filled_in() {
    let config = FileConfig::validate(
        &json!({"directory": "/srv/ferry/files/orders"}),
        &Auth::None,
        &roots(),
    )
    .unwrap();
    assert_eq!(
        config,
        json!({"directory": "/srv/ferry/files/orders", "file_name": "{id}.json", "format": "json"})
    );
    let config = FileConfig::validate(
        &json!({"directory": "/srv/ferry/files", "format": "ndjson"}),
        &Auth::None,
        &roots(),
    )
    .unwrap();
    assert_eq!(config["file_name"], "{date}.ndjson");
}

#[test]
fn directories_outside_the_roots_are_refused() {
    for (directory, needle) in [
        (
            "/etc",
            "must be inside a directory file destinations may write under (/srv/ferry/files)",
        ),
        ("/srv/ferry/filesystem", "must be inside"),
        (
            "/srv/ferry/files/../../../etc",
            "must not contain `.` or `..` parts",
        ),
        ("relative/dir", "must be an absolute path"),
    ] {
        let found = errors(json!({ "directory": directory }));
        assert_eq!(found.len(), 1, "{directory}: {found:?}");
        assert_eq!(found[0].0, "config.directory");
        assert!(found[0].1.contains(needle), "{directory}: {}", found[0].1);
    }
    let none = FileConfig::validate(&json!({"directory": "/srv/ferry/files"}), &Auth::None, &[])
        .unwrap_err();
    assert!(
        none[0].message.contains("file destinations are disabled"),
        "{none:?}"
    );
}

#[test]
fn file_names_must_stay_inside_and_name_each_event() {
    for (file_name, needle) in [
        ("../{id}.json", "`..` or hidden part"),
        ("/abs/{id}.json", "which is absolute"),
        ("a/./{id}", "`..` or hidden part"),
        (".hidden-{id}", "hidden part"),
        ("orders.json", "must contain {id}"),
        ("{nope}.json", "unknown placeholder"),
        ("{date}/", "names a directory"),
    ] {
        let found = errors(json!({"directory": "/srv/ferry/files", "file_name": file_name}));
        assert_eq!(found.len(), 1, "{file_name}: {found:?}");
        assert_eq!(found[0].0, "config.file_name");
        assert!(found[0].1.contains(needle), "{file_name}: {}", found[0].1);
    }
    // An ndjson file collects many events.
    assert!(
        FileConfig::validate(
            &json!({"directory": "/srv/ferry/files", "file_name": "all.ndjson", "format": "ndjson"}),
            &Auth::None,
            &roots()
        )
        .is_ok()
    );
}

#[test]
fn unknown_fields_wrong_types_and_auth_are_named() {
    let found = errors(json!({"directory": 7, "format": "xml", "mode": "0600"}));
    let fields: Vec<_> = found.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(fields, ["config.mode", "config.format", "config.directory"]);
    assert_eq!(
        found[0].1,
        "unknown field (expected format, directory, file_name)"
    );
    assert!(found[2].1.contains("must be a string"));
    assert!(found[1].1.contains("`xml` is not one of json, ndjson"));

    let auth = Auth::Basic {
        username: "u".into(),
        password: Secret::new("p".into()),
    };
    let found = FileConfig::validate(&json!({"directory": "/srv/ferry/files"}), &auth, &roots())
        .unwrap_err();
    assert_eq!(found[0].field, "auth.type");
    assert!(found[0].message.contains("use none"));
}

#[test]
fn rendered_names_are_checked_again() {
    assert!(relative_path("2026-01-01/evt_1.json").is_ok());
    for bad in ["", "../x", "a/../../x", "/x", "a\nb", "x/.."] {
        assert!(relative_path(bad).is_err(), "{bad}");
    }
}
