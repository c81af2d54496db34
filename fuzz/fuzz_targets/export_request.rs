//! Export requests: whatever JSON arrives, parsing it into a spec never
//! panics; a spec it accepts names only fields of its source, each once, and
//! a redaction its rows accept; and a local target path, whatever its text,
//! resolves under a file root or is refused.
#![no_main]

use std::path::{Component, PathBuf};

use ferry_core::export::request::{ExportRequest, columns, parse, resolve_file};
use ferry_core::export::{ExportTarget, Redactor};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let roots = [PathBuf::from("/srv/ferry/files"), PathBuf::from("/data/out")];
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(path) = resolve_file(text, &roots) {
            assert!(roots.iter().any(|r| path.starts_with(r)), "{path:?}");
            assert!(
                path.components()
                    .all(|c| !matches!(c, Component::ParentDir | Component::CurDir)),
                "{path:?}"
            );
        }
    }
    let Ok(request) = serde_json::from_slice::<ExportRequest>(data) else { return };
    let Ok(spec) = parse(request) else { return };
    let known = columns(spec.source);
    for (i, field) in spec.fields.iter().enumerate() {
        assert!(known.contains(&field.as_str()), "{field}");
        assert!(!spec.fields[..i].contains(field), "{field} twice");
    }
    assert!(Redactor::new(&spec.fields, &spec.redact, spec.redact_secrets).is_ok());
    if let ExportTarget::File { file } = &spec.target {
        let _ = resolve_file(file, &roots);
    }
});
