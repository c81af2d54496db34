//! Event JSON: whatever parses as JSON has a canonical form that parses back
//! to the same value, and the same content always derives the same id.
#![no_main]

use ferry_core::event::canonical_json;
use ferry_core::{EventId, OrgId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let canonical = canonical_json(&value);
    let reparsed: serde_json::Value = serde_json::from_str(&canonical).expect("canonical JSON parses");
    assert_eq!(reparsed, value);
    assert_eq!(canonical_json(&reparsed), canonical);
    let org = OrgId::parse("org_fuzz").expect("a valid org id");
    let id = EventId::from_content(&org, "t", &canonical);
    assert!(EventId::parse(id.as_str()).is_ok());
    // A remote client and the server derive a port event's id each from
    // their own parse of the same JSON text: they must agree.
    let dst = ferry_core::DestinationId::parse("dst_fuzz").expect("a valid destination id");
    assert_eq!(
        EventId::for_destination_content(&dst, "t", &canonical),
        EventId::for_destination_content(&dst, "t", &canonical_json(&reparsed)),
    );
    if let Some(text) = value.as_str() {
        let _ = ferry_core::signing::SigningSecret::parse(text);
    }
});
