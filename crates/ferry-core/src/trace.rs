//! W3C Trace Context (`traceparent` and `tracestate`): the trace an event
//! belongs to. A producer's request carries it in; Ferry stores it with the
//! event, so every attempt of every delivery — after a restart, on another
//! worker process — joins the same trace, and sends it on to the receiver.
//!
//! Parsing follows the W3C recommendation: an unknown future version is
//! read by its first four fields, and a header that does not parse is
//! ignored rather than refused (the event starts a trace of its own); a
//! request is never rejected because of its tracing headers.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::source::HeaderLookup;

/// Longest `tracestate` kept (the W3C limit for what a vendor must
/// propagate); a longer one is dropped, the trace itself is kept.
pub const MAX_TRACESTATE_LEN: usize = 512;

/// A validated trace context: which trace, which span is the parent, its
/// flags (bit 0: sampled), and the vendors' `tracestate`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Stored", into = "Stored")]
pub struct TraceContext {
    trace_id: [u8; 16],
    parent_id: [u8; 8],
    flags: u8,
    state: Option<String>,
}

/// The stored and serialized form: the two header values.
#[derive(Serialize, Deserialize)]
struct Stored {
    traceparent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tracestate: Option<String>,
}

impl TryFrom<Stored> for TraceContext {
    type Error = String;

    fn try_from(s: Stored) -> Result<Self, String> {
        TraceContext::parse(&s.traceparent, s.tracestate.as_deref())
            .ok_or_else(|| format!("not a W3C traceparent: {}", s.traceparent))
    }
}

impl From<TraceContext> for Stored {
    fn from(t: TraceContext) -> Self {
        Stored {
            traceparent: t.traceparent(),
            tracestate: t.state,
        }
    }
}

impl TraceContext {
    /// Builds a context from its parts; `None` when an id is all zeros
    /// (invalid in W3C Trace Context).
    pub fn new(
        trace_id: [u8; 16],
        parent_id: [u8; 8],
        flags: u8,
        state: Option<String>,
    ) -> Option<Self> {
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        Some(TraceContext {
            trace_id,
            parent_id,
            flags,
            state: state.filter(|s| valid_state(s)),
        })
    }

    /// Reads a `traceparent` header and, optionally, its `tracestate`.
    /// `None` when the `traceparent` is not valid: the caller then starts
    /// a new trace. An invalid `tracestate` alone is dropped.
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<Self> {
        let text = traceparent.trim_matches(|c| c == ' ' || c == '\t');
        let bytes = text.as_bytes();
        // version "-" trace-id "-" parent-id "-" flags: 55 characters.
        if bytes.len() < 55 || !text.is_ascii() {
            return None;
        }
        let version = hex_lower::<1>(&text[0..2])?;
        if version[0] == 0xff || bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
            return None;
        }
        // Version 00 has exactly four fields; a later version may append
        // more after a dash, which a version-00 reader ignores.
        if (version[0] == 0 && bytes.len() != 55) || (bytes.len() > 55 && bytes[55] != b'-') {
            return None;
        }
        let trace_id = hex_lower::<16>(&text[3..35])?;
        let parent_id = hex_lower::<8>(&text[36..52])?;
        let flags = hex_lower::<1>(&text[53..55])?[0];
        let state = tracestate.map(str::trim).filter(|s| !s.is_empty());
        TraceContext::new(trace_id, parent_id, flags, state.map(str::to_owned))
    }

    /// The context of a request's `traceparent` and `tracestate` headers.
    pub fn from_headers(headers: &(impl HeaderLookup + ?Sized)) -> Option<Self> {
        TraceContext::parse(headers.get("traceparent")?, headers.get("tracestate"))
    }

    /// The `traceparent` header value (always version 00).
    pub fn traceparent(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            hex::encode(self.trace_id),
            hex::encode(self.parent_id),
            self.flags
        )
    }

    /// The `tracestate` header value, when there is one.
    pub fn tracestate(&self) -> Option<&str> {
        self.state.as_deref()
    }

    pub fn trace_id(&self) -> [u8; 16] {
        self.trace_id
    }

    /// The trace id as 32 lowercase hex digits (as logs and UIs show it).
    pub fn trace_id_hex(&self) -> String {
        hex::encode(self.trace_id)
    }

    /// The span the next hop is a child of.
    pub fn parent_id(&self) -> [u8; 8] {
        self.parent_id
    }

    pub fn flags(&self) -> u8 {
        self.flags
    }

    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }

    /// The same trace, with `parent_id` as the parent of the next hop.
    pub fn with_parent(&self, parent_id: [u8; 8]) -> Self {
        TraceContext {
            parent_id,
            ..self.clone()
        }
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.traceparent())
    }
}

/// `N` bytes from exactly `2 * N` lowercase hex digits (W3C forbids
/// uppercase).
fn hex_lower<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// A `tracestate` worth propagating: bounded, printable ASCII, at most 32
/// `key=value` members. Its members are opaque to Ferry.
fn valid_state(state: &str) -> bool {
    state.len() <= MAX_TRACESTATE_LEN
        && state.bytes().all(|b| (0x20..0x7f).contains(&b))
        && state.split(',').filter(|m| !m.trim().is_empty()).count() <= 32
        && state
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .all(|m| {
                m.split_once('=')
                    .is_some_and(|(k, v)| !k.is_empty() && !v.is_empty())
            })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn reads_and_writes_the_w3c_example() {
        let t = TraceContext::parse(SAMPLE, Some("congo=t61rcWkgMzE")).unwrap();
        assert_eq!(t.traceparent(), SAMPLE);
        assert_eq!(t.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(hex::encode(t.parent_id()), "00f067aa0ba902b7");
        assert!(t.sampled());
        assert_eq!(t.tracestate(), Some("congo=t61rcWkgMzE"));
        let next = t.with_parent([1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(
            next.traceparent(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0102030405060708-01"
        );
        assert_eq!(next.tracestate(), t.tracestate());
    }

    #[test]
    fn refuses_what_the_recommendation_refuses() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01é",
        ] {
            assert_eq!(TraceContext::parse(bad, None), None, "{bad:?}");
        }
    }

    #[test]
    fn a_later_version_is_read_by_its_known_fields() {
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future";
        let t = TraceContext::parse(later, None).unwrap();
        assert_eq!(t.traceparent(), SAMPLE);
        assert_eq!(
            TraceContext::parse(
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01future",
                None
            ),
            None
        );
    }

    #[test]
    fn a_bad_tracestate_is_dropped_and_the_trace_kept() {
        let long = format!("k={}", "v".repeat(MAX_TRACESTATE_LEN));
        for bad in [long.as_str(), "novalue", "a=1,=2", "a=\u{7}"] {
            let t = TraceContext::parse(SAMPLE, Some(bad)).unwrap();
            assert_eq!(t.tracestate(), None, "{bad:?}");
        }
        let blank = TraceContext::parse(SAMPLE, Some("  ")).unwrap();
        assert_eq!(blank.tracestate(), None);
    }

    #[test]
    fn serializes_as_the_two_header_values() {
        let t = TraceContext::parse(SAMPLE, Some("a=1")).unwrap();
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"traceparent": SAMPLE, "tracestate": "a=1"})
        );
        let back: TraceContext = serde_json::from_value(json).unwrap();
        assert_eq!(back, t);
        assert!(
            serde_json::from_value::<TraceContext>(serde_json::json!({"traceparent": "x"}))
                .is_err()
        );
    }
}
