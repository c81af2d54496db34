//! W3C Trace Context parsing (`traceparent`, `tracestate` from any request
//! or source): any header pair is read or ignored, never a panic, and what
//! is read writes back as a `traceparent` that reads the same again.
#![no_main]

use ferry_core::trace::{MAX_TRACESTATE_LEN, TraceContext};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (parent, state) = match text.split_once('\n') {
        Some((p, s)) => (p, Some(s)),
        None => (text.as_ref(), None),
    };
    let Some(trace) = TraceContext::parse(parent, state) else {
        return;
    };
    let written = trace.traceparent();
    assert_eq!(written.len(), 55);
    let again = TraceContext::parse(&written, trace.tracestate()).expect("its own output parses");
    assert_eq!(again, trace);
    assert!(trace.tracestate().is_none_or(|s| s.len() <= MAX_TRACESTATE_LEN));
    assert_ne!(trace.trace_id(), [0; 16]);
    let stored = serde_json::to_string(&trace).expect("serializes");
    let back: TraceContext = serde_json::from_str(&stored).expect("deserializes");
    assert_eq!(back, trace);
});
