//! The INI dialect of the AWS shared `config` and `credentials` files:
//! `[section]` lines, `name = value` properties, whole-line `#` and `;`
//! comments (and trailing ones after a space), and indented continuation
//! lines, which belong to the property above them (nested settings such as
//! `s3 =` followed by indented lines). A section that appears twice is
//! merged, the later value of a property winning.
//!
//! Errors name the line but never quote it: these files hold secrets.

use std::collections::BTreeMap;

/// The properties of one section, by name.
pub type Section = BTreeMap<String, String>;

/// Every section of a file, by name (the text between the brackets,
/// trimmed).
pub fn parse(text: &str) -> Result<BTreeMap<String, Section>, String> {
    let mut sections: BTreeMap<String, Section> = BTreeMap::new();
    let mut current: Option<String> = None;
    // The property the next indented line continues.
    let mut last_property: Option<String> = None;
    for (index, raw) in text.lines().enumerate() {
        let line_number = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with(['#', ';']) {
            continue;
        }
        let indented = raw.starts_with([' ', '\t']);
        if let (true, Some(section), Some(name)) = (indented, &current, &last_property) {
            let value = sections
                .get_mut(section)
                .and_then(|s| s.get_mut(name))
                .expect("the property of a continuation line was recorded");
            value.push('\n');
            value.push_str(strip_comment(trimmed));
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix('[') {
            let Some((name, after)) = rest.split_once(']') else {
                return Err(format!("line {line_number}: a section name lacks its `]`"));
            };
            let after = after.trim();
            if !(after.is_empty() || after.starts_with(['#', ';'])) {
                return Err(format!(
                    "line {line_number}: only a comment may follow a section name"
                ));
            }
            let name = name.trim();
            if name.is_empty() {
                return Err(format!("line {line_number}: a section name is empty"));
            }
            sections.entry(name.to_owned()).or_default();
            current = Some(name.to_owned());
            last_property = None;
            continue;
        }
        let Some((name, value)) = trimmed.split_once('=') else {
            return Err(format!(
                "line {line_number}: expected `[section]` or `name = value`"
            ));
        };
        let name = name.trim();
        if name.is_empty() {
            return Err(format!("line {line_number}: a property has no name"));
        }
        let Some(section) = &current else {
            return Err(format!(
                "line {line_number}: a property comes before any `[section]`"
            ));
        };
        sections
            .get_mut(section)
            .expect("the current section was recorded")
            .insert(name.to_owned(), strip_comment(value.trim()).to_owned());
        last_property = Some(name.to_owned());
    }
    Ok(sections)
}

/// A value without a trailing comment (`#` or `;` after white space).
fn strip_comment(value: &str) -> &str {
    let mut previous_space = false;
    for (at, c) in value.char_indices() {
        if previous_space && (c == '#' || c == ';') {
            return value[..at].trim_end();
        }
        previous_space = c.is_whitespace();
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_properties_comments_and_continuations() {
        let text = "# a comment\n\
                    [default]\n\
                    aws_access_key_id = AKIA1 ; trailing\n\
                    aws_secret_access_key=se#cret\n\
                    \n\
                    [profile ci]   # why\n\
                    region = eu-west-1\n\
                    s3 =\n  max_concurrent_requests = 10\n\
                    ; another comment\n\
                    [default]\n\
                    region = us-west-2\n";
        let sections = parse(text).unwrap();
        let default = &sections["default"];
        assert_eq!(default["aws_access_key_id"], "AKIA1");
        // `#` without a space before it is part of the value.
        assert_eq!(default["aws_secret_access_key"], "se#cret");
        assert_eq!(default["region"], "us-west-2", "repeated sections merge");
        let ci = &sections["profile ci"];
        assert_eq!(ci["region"], "eu-west-1");
        assert_eq!(ci["s3"], "\nmax_concurrent_requests = 10");
    }

    #[test]
    fn malformed_lines_are_named_without_quoting_them() {
        for (text, expected) in [
            ("[default\nx = 1", "line 1: a section name lacks its `]`"),
            ("[default] x = 1", "line 1: only a comment may follow"),
            ("[ ]", "line 1: a section name is empty"),
            ("[default]\nAKIASECRET", "line 2: expected `[section]`"),
            ("[default]\n = v", "line 2: a property has no name"),
            ("key = secret", "line 1: a property comes before any"),
        ] {
            let error = parse(text).unwrap_err();
            assert!(error.starts_with(expected), "{text:?}: {error}");
            assert!(!error.contains("SECRET") && !error.contains("secret"));
        }
    }

    #[test]
    fn an_empty_file_has_no_sections() {
        assert!(parse("").unwrap().is_empty());
        assert!(parse("# only comments\n\n").unwrap().is_empty());
    }
}
