//! Export schedule requests as a client sends them: whatever the body
//! (cron expressions, time zones, output paths with placeholders),
//! checking it never panics. A schedule it takes fires strictly after any
//! time asked, in order, and its paths filled in hold no placeholder.
#![no_main]

use chrono::{DateTime, Utc};
use ferry_core::export::schedule::{Run, fill_path};
use ferry_core::export::schedule_request::parse;
use ferry_core::export::{ExportTarget, ScheduleRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = serde_json::from_slice::<ScheduleRequest>(data) else { return };
    let Ok(draft) = parse(request) else { return };
    let start = DateTime::<Utc>::from_timestamp(1_767_225_600, 0).expect("a time");
    let first = draft.trigger.next_after(start);
    if let Some(first) = first {
        assert!(first > start, "{first} is not after {start}");
        let second = draft.trigger.next_after(first).expect("fires again after firing once");
        assert!(second > first, "{second} is not after {first}");
        let path = match &draft.export.target {
            ExportTarget::File { file } => file,
            ExportTarget::Destination { path, .. } => path,
        };
        let run = Run { scheduled_for: first, attempt: 1 };
        let filled = fill_path(path, &draft.trigger, run, "exp_x");
        for p in ["{date}", "{time}", "{id}"] {
            assert!(!filled.contains(p), "{filled} still holds {p}");
        }
    }
});
