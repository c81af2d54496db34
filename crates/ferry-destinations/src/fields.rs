//! Reading a kind's `config` object field by field, collecting one
//! [`FieldError`] per invalid field (`config.<name>`) instead of stopping at
//! the first, and refusing fields the kind does not know.

use ferry_core::FieldError;
use serde_json::{Map, Value};

use crate::template::Template;

/// A config object being read; every getter records an error for a bad
/// value and returns `None`, so callers read every field before reporting.
pub struct Fields<'a> {
    map: Map<String, Value>,
    errors: Vec<FieldError>,
    known: &'a [&'a str],
}

impl<'a> Fields<'a> {
    /// Starts reading `config`, which must be an object whose keys are all
    /// in `known`.
    pub fn new(config: &Value, known: &'a [&'a str]) -> Self {
        let mut errors = Vec::new();
        let map = match config {
            Value::Object(map) => map.clone(),
            _ => {
                errors.push(FieldError::new("config", "must be an object"));
                Map::new()
            }
        };
        for key in map.keys() {
            if !known.contains(&key.as_str()) {
                errors.push(FieldError::new(
                    format!("config.{key}"),
                    format!("unknown field (expected {})", known.join(", ")),
                ));
            }
        }
        Self { map, errors, known }
    }

    /// Records an error on `config.<field>` (or on an `auth.` field).
    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        let field = if field.starts_with("auth") || field.starts_with("config") {
            field.to_owned()
        } else {
            format!("config.{field}")
        };
        self.errors.push(FieldError::new(field, message));
    }

    /// The raw value of a field, `None` when absent or `null`.
    pub fn raw(&self, name: &str) -> Option<&Value> {
        debug_assert!(self.known.contains(&name), "`{name}` is not a known field");
        self.map.get(name).filter(|v| !v.is_null())
    }

    /// A string field; `default` when absent (`None` and an error when
    /// required and absent, or not a string).
    fn string(&mut self, name: &str, default: Option<&str>) -> Option<String> {
        match self.raw(name) {
            None => match default {
                Some(default) => Some(default.to_owned()),
                None => {
                    self.error(name, "is required");
                    None
                }
            },
            Some(Value::String(text)) => Some(text.clone()),
            Some(_) => {
                self.error(name, "must be a string");
                None
            }
        }
    }

    /// A required string.
    pub fn required_str(&mut self, name: &str) -> Option<String> {
        self.string(name, None)
    }

    /// A string with a default.
    pub fn str_or(&mut self, name: &str, default: &str) -> Option<String> {
        self.string(name, Some(default))
    }

    /// An optional string: `Some(None)` when absent.
    pub fn optional_str(&mut self, name: &str) -> Option<Option<String>> {
        match self.raw(name) {
            None => Some(None),
            Some(_) => self.string(name, None).map(Some),
        }
    }

    /// A boolean with a default.
    pub fn bool_or(&mut self, name: &str, default: bool) -> Option<bool> {
        match self.raw(name) {
            None => Some(default),
            Some(Value::Bool(value)) => Some(*value),
            Some(_) => {
                self.error(name, "must be true or false");
                None
            }
        }
    }

    /// An integer in `min..=max`, with a default.
    pub fn u64_in(&mut self, name: &str, min: u64, max: u64, default: u64) -> Option<u64> {
        match self.raw(name) {
            None => Some(default),
            Some(value) => match value.as_u64() {
                Some(n) if (min..=max).contains(&n) => Some(n),
                _ => {
                    self.error(name, format!("must be an integer between {min} and {max}"));
                    None
                }
            },
        }
    }

    /// A name template (see [`Template`]) that must render to something:
    /// required unless `default` is given.
    pub fn template(&mut self, name: &str, default: Option<&str>) -> Option<Template> {
        let text = self.string(name, default)?;
        if text.is_empty() {
            self.error(name, "must not be empty");
            return None;
        }
        match Template::parse(&format!("config.{name}"), &text) {
            Ok(template) => Some(template),
            Err(error) => {
                self.errors.push(error);
                None
            }
        }
    }

    /// A string of at most `max_len` bytes, not empty and without control
    /// characters; `default` when absent (`None` and an error when required
    /// and absent, or not such a string).
    pub fn text(&mut self, name: &str, default: Option<&str>, max_len: usize) -> Option<String> {
        let text = self.string(name, default)?;
        let problem = if text.is_empty() {
            Some("must not be empty".to_owned())
        } else if text.len() > max_len {
            Some(format!("must be at most {max_len} bytes"))
        } else if text.chars().any(char::is_control) {
            Some("must not contain control characters".to_owned())
        } else {
            None
        };
        match problem {
            Some(problem) => {
                self.error(name, problem);
                None
            }
            None => Some(text),
        }
    }

    /// An optional [`text`](Self::text): `Some(None)` when absent.
    pub fn optional_text(&mut self, name: &str, max_len: usize) -> Option<Option<String>> {
        match self.raw(name) {
            None => Some(None),
            Some(_) => self.text(name, None, max_len).map(Some),
        }
    }

    /// One of `choices`; `default` when absent (`None`: required).
    pub fn choice(
        &mut self,
        name: &str,
        choices: &[&'static str],
        default: Option<&'static str>,
    ) -> Option<&'static str> {
        let found = match self.raw(name) {
            None => {
                if default.is_none() {
                    self.error(name, format!("is required (one of {})", choices.join(", ")));
                }
                return default;
            }
            Some(Value::String(text)) => choices
                .iter()
                .find(|c| **c == text.as_str())
                .copied()
                .ok_or_else(|| format!("`{text}` is not one of {}", choices.join(", "))),
            Some(_) => Err(format!("must be one of {}", choices.join(", "))),
        };
        found.map_err(|message| self.error(name, message)).ok()
    }

    /// `value` when `check` accepts it; otherwise records `check`'s reason
    /// on `name` and gives `None`.
    pub fn checked<T>(
        &mut self,
        name: &str,
        value: Option<T>,
        check: impl FnOnce(&T) -> Result<(), String>,
    ) -> Option<T> {
        let value = value?;
        match check(&value) {
            Ok(()) => Some(value),
            Err(message) => {
                self.error(name, message);
                None
            }
        }
    }

    /// Whether no error was recorded so far.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// Adds errors found elsewhere (the auth's).
    pub fn extend(&mut self, errors: impl IntoIterator<Item = FieldError>) {
        self.errors.extend(errors);
    }

    /// The value built from the fields when every field was valid, else
    /// every error.
    pub fn finish<T>(self, value: Option<T>) -> Result<T, Vec<FieldError>> {
        match value {
            Some(value) if self.errors.is_empty() => Ok(value),
            _ => Err(self.errors),
        }
    }
}

/// Joins field errors into one line, for a stored config that no longer
/// validates (reported by `build`).
pub fn join_errors(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The error of an auth type a kind does not take.
pub fn unsupported_auth(kind: &str, auth_type: &str, supported: &str) -> FieldError {
    FieldError::new(
        "auth.type",
        format!("`{auth_type}` is not supported by {kind} destinations (use {supported})"),
    )
}

/// Checks an SQL or broker identifier-like name: 1 to `max` characters of
/// ASCII letters, digits, `_`, and the extra characters in `extra`, not
/// starting with a digit. Returns the reason when it is not one.
pub fn check_name(text: &str, max: usize, extra: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if text.len() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if text.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("must not start with a digit".to_owned());
    }
    match text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || extra.contains(*c)))
    {
        Some(c) => Err(format!(
            "may contain only ASCII letters, digits and `_`{}; `{}` is not allowed",
            if extra.is_empty() {
                String::new()
            } else {
                format!(
                    ", {}",
                    extra
                        .chars()
                        .map(|c| format!("`{c}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
            c.escape_default()
        )),
        None => Ok(()),
    }
}
