//! The dependency rule: the use case (`export`), the scoring
//! (`evaluation`) and the service's own store (`results`) know Ferry only
//! through `ferry::port`. Building a Ferry — embedded or remote — is the
//! composition root's business (`main.rs`).

const USE_CASE: [(&str, &str); 4] = [
    ("src/lib.rs", include_str!("../../src/lib.rs")),
    ("src/evaluation.rs", include_str!("../../src/evaluation.rs")),
    ("src/export.rs", include_str!("../../src/export.rs")),
    ("src/results.rs", include_str!("../../src/results.rs")),
];

/// Every mention of Ferry in `source` other than `ferry::port`, as
/// `line: text`.
fn beyond_the_port(source: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (i, line) in source.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = find_ferry(rest) {
            let after = &rest[at..];
            let allowed = after
                .strip_prefix("ferry::port")
                .is_some_and(|tail| !tail.starts_with(|c: char| c.is_alphanumeric() || c == '_'));
            if !allowed {
                found.push(format!("{}: {}", i + 1, line.trim()));
                break;
            }
            rest = &after["ferry::port".len()..];
        }
    }
    found
}

/// Where the next `ferry` crate path starts: `ferry::…`, `ferry_*` crates,
/// `use ferry;`/`ferry as`, `extern crate ferry`.
fn find_ferry(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(pos) = text[from..].find("ferry") {
        let at = from + pos;
        let before_ok =
            at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
        let tail = &text[at + "ferry".len()..];
        let crate_path = tail.starts_with("::")
            || tail.starts_with('_') && tail.contains("::")
            || tail.starts_with(';')
            || tail.starts_with(" as ")
            || text[..at].trim_end().ends_with("crate");
        if before_ok && crate_path {
            return Some(at);
        }
        from = at + "ferry".len();
    }
    None
}

#[test]
fn the_use_case_knows_ferry_only_through_its_port() {
    for (path, source) in USE_CASE {
        let offending = beyond_the_port(source);
        assert!(
            offending.is_empty(),
            "{path} reaches past ferry::port:\n{}",
            offending.join("\n")
        );
    }
    // It does use the port (the check reads the right files).
    assert!(USE_CASE[2].1.contains("use ferry::port::{"));
}

#[test]
fn the_check_catches_every_way_around_the_port() {
    for bad in [
        "use ferry::Ferry;",
        "use ferry::{port::ExternalEvent, NewDestination};",
        "let f = ferry::Ferry::builder(dir);",
        "use ferry_server::app::App;",
        "use ferry_core::EventId;",
        "fn f(p: ferry::portal::X) {}",
        "use ferry::port::ExternalEvent; use ferry::Port;",
        "use ferry as f;",
        "extern crate ferry;",
    ] {
        assert_eq!(beyond_the_port(bad).len(), 1, "missed: {bad}");
    }
    for good in [
        "use ferry::port::{DeliveryStatus, IntegrationPort};",
        "fn f(p: &dyn ferry::port::IntegrationPort) {}",
        "//! Ferry delivers; the ferry crate's port is all we use.",
    ] {
        assert!(beyond_the_port(good).is_empty(), "flagged: {good}");
    }
}
