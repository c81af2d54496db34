//! Operational log lines read back: whatever a log file holds (a line cut
//! short by a crash, bytes edited by hand), reading it never panics; a line
//! it takes has a known level that reads back, and its fields never
//! repeat the columns.
#![no_main]

use ferry_core::export::{LogEntry, LogLevel};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else { return };
    let Some(entry) = LogEntry::parse(line) else { return };
    assert_eq!(LogLevel::parse(entry.level.as_str()), Some(entry.level));
    for column in ["timestamp", "level", "target", "message"] {
        assert!(!entry.fields.contains_key(column), "{column} kept in fields");
    }
});
