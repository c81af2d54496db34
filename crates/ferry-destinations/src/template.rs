//! Name templates of subjects, routing keys, topics, stream keys, object
//! keys and file names: text with `{placeholder}`s filled from the event.
//!
//! Placeholders: `{id}` (event id), `{type}`, `{org}` (organization id),
//! `{date}` (`YYYY-MM-DD` of the event's creation, UTC), `{timestamp}` (its
//! unix seconds). `{{` and `}}` stand for literal braces. Nothing in a
//! rendering depends on the attempt, so a re-delivery of the same event
//! renders the same name (object keys and file names stay idempotent).

use std::fmt;
use std::path::{Path, PathBuf};

use ferry_core::FieldError;
use ferry_core::event::Event;
use serde::{Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placeholder {
    Id,
    Type,
    Org,
    Date,
    Timestamp,
}

impl Placeholder {
    const ALL: [(&'static str, Placeholder); 5] = [
        ("id", Placeholder::Id),
        ("type", Placeholder::Type),
        ("org", Placeholder::Org),
        ("date", Placeholder::Date),
        ("timestamp", Placeholder::Timestamp),
    ];
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Value(Placeholder),
}

/// A parsed template; [`Template::render`] never fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

impl Template {
    /// Parses `text`; the error names `field` and what is wrong (an unknown
    /// placeholder, an unclosed `{`, a lone `}`).
    pub fn parse(field: &str, text: &str) -> Result<Self, FieldError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => {
                                return Err(FieldError::new(
                                    field,
                                    "has a `{` without its closing `}` (write `{{` for a literal brace)",
                                ));
                            }
                        }
                    }
                    let Some((_, placeholder)) = Placeholder::ALL.iter().find(|(n, _)| *n == name)
                    else {
                        return Err(FieldError::new(
                            field,
                            format!(
                                "has an unknown placeholder `{{{name}}}` (known: {{id}}, {{type}}, {{org}}, {{date}}, {{timestamp}})"
                            ),
                        ));
                    };
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Value(*placeholder));
                }
                '}' => {
                    return Err(FieldError::new(
                        field,
                        "has a `}` without an opening `{` (write `}}` for a literal brace)",
                    ));
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Self {
            source: text.to_owned(),
            parts,
        })
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the template has no placeholder (renders the same for every
    /// event).
    pub fn is_constant(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Text(_)))
    }

    /// The template filled in from `event`.
    pub fn render(&self, event: &Event) -> String {
        let mut out = String::with_capacity(self.source.len() + 32);
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Value(Placeholder::Id) => out.push_str(event.id.as_str()),
                Part::Value(Placeholder::Type) => out.push_str(&event.event_type),
                Part::Value(Placeholder::Org) => out.push_str(event.org_id.as_str()),
                Part::Value(Placeholder::Date) => {
                    out.push_str(&event.created_at.format("%Y-%m-%d").to_string());
                }
                Part::Value(Placeholder::Timestamp) => {
                    out.push_str(&event.created_at.timestamp().to_string());
                }
            }
        }
        out
    }
}

/// A fresh event to render templates with when checking a config (each
/// call has a new id, so two renderings tell whether a template uses it).
pub fn sample_event() -> Event {
    Event {
        id: ferry_core::EventId::generate(),
        org_id: ferry_core::OrgId::generate(),
        event_type: "sample.event".into(),
        data: serde_json::Value::Null,
        metadata: serde_json::Value::Null,
        idempotency_key: None,
        created_at: chrono::Utc::now(),
        trace: None,
    }
}

/// Longest file name or directory accepted.
pub const MAX_PATH_LEN: usize = 1024;

/// Checks a rendered file name (file and SFTP destinations): relative, at
/// most 1024 bytes, no empty, `.` or `..` part, no part starting with `.`
/// (temporary files are hidden names), no control character.
pub fn relative_path(name: &str) -> Result<PathBuf, String> {
    if name.is_empty() || name.len() > MAX_PATH_LEN {
        return Err(format!("must render to 1 to {MAX_PATH_LEN} bytes"));
    }
    if name.chars().any(char::is_control) {
        return Err(format!(
            "renders to `{}`, which contains control characters",
            name.escape_debug()
        ));
    }
    let path = Path::new(name);
    if path.is_absolute() {
        return Err(format!(
            "renders to `{name}`, which is absolute (it is relative to `directory`)"
        ));
    }
    // Split by hand: `Path::components` silently drops `.` parts.
    for part in name.split('/') {
        if part.is_empty() && name.ends_with('/') {
            return Err(format!("renders to `{name}`, which names a directory"));
        }
        if part.is_empty() || part.starts_with('.') {
            return Err(format!(
                "renders to `{name}`, which has an empty, `.`, `..` or hidden part"
            ));
        }
    }
    Ok(path.to_path_buf())
}

/// A template is stored as it was written.
impl Serialize for Template {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use ferry_core::{EventId, OrgId};
    use serde_json::json;

    use super::*;

    fn event() -> Event {
        Event {
            id: EventId::generate(),
            org_id: OrgId::generate(),
            event_type: "order.created".into(),
            data: json!({}),
            metadata: json!({}),
            idempotency_key: None,
            created_at: chrono::Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).unwrap(),
            trace: None,
        }
    }

    #[test]
    fn placeholders_render_from_the_event() {
        let event = event();
        let template = Template::parse("config.key", "{org}/{type}/{date}/{id}.json").unwrap();
        assert_eq!(
            template.render(&event),
            format!(
                "{}/order.created/2026-03-04/{}.json",
                event.org_id, event.id
            )
        );
        let stamp = Template::parse("f", "{{x}} at {timestamp}").unwrap();
        assert_eq!(stamp.render(&event), "{x} at 1772600767");
        assert!(!template.is_constant());
        assert!(Template::parse("f", "orders").unwrap().is_constant());
    }

    #[test]
    fn mistakes_are_named() {
        for (text, needle) in [
            ("{nope}", "unknown placeholder `{nope}`"),
            ("a/{type", "without its closing"),
            ("a}b", "without an opening"),
        ] {
            let error = Template::parse("config.subject", text).unwrap_err();
            assert_eq!(error.field, "config.subject");
            assert!(error.message.contains(needle), "{text}: {}", error.message);
        }
    }
}
