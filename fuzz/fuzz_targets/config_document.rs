//! Configuration documents as an import reads them, JSON or YAML: whatever
//! the bytes, reading never panics, and a document it takes writes back
//! (JSON and YAML) to text that reads as the same document.
#![no_main]

use ferry_core::config_doc::ConfigDocument;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let parsed = if text.trim_start().starts_with('{') {
        serde_json::from_str::<ConfigDocument>(text).ok()
    } else {
        serde_saphyr::from_str::<ConfigDocument>(text).ok()
    };
    let Some(doc) = parsed else { return };
    let json = serde_json::to_string(&doc).expect("a document writes as JSON");
    let again: ConfigDocument = serde_json::from_str(&json).expect("its JSON reads back");
    assert_eq!(again, doc);
});
