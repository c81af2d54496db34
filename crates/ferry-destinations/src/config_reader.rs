//! Reading a kind's `config` object field by field: each accessor checks
//! one field's type and range, records a `config.<field>` error when it is
//! wrong, and fills in the default when it is absent; [`ConfigReader::finish`]
//! refuses the fields no accessor asked for. Kinds then build their typed,
//! normalized config only when no error was recorded.

// Only s3 reads with it now, and not with every accessor.
#![allow(dead_code)]

use ferry_core::FieldError;
use serde_json::{Map, Value};

/// One `config` object being read; collects every field error.
pub struct ConfigReader<'a> {
    fields: Option<&'a Map<String, Value>>,
    known: Vec<&'static str>,
    pub errors: Vec<FieldError>,
}

impl<'a> ConfigReader<'a> {
    /// Starts reading `config`; an error when it is not an object.
    pub fn new(config: &'a Value) -> Self {
        let fields = config.as_object();
        let errors = match fields {
            Some(_) => Vec::new(),
            None => vec![FieldError::new("config", "must be an object")],
        };
        Self {
            fields,
            known: Vec::new(),
            errors,
        }
    }

    /// Records an error of `config.<name>`.
    pub fn error(&mut self, name: &str, message: impl Into<String>) {
        self.errors
            .push(FieldError::new(format!("config.{name}"), message));
    }

    /// The raw value of a field (`None` when absent or null).
    pub fn value(&mut self, name: &'static str) -> Option<&'a Value> {
        self.known.push(name);
        self.fields?.get(name).filter(|v| !v.is_null())
    }

    /// A string field; `default` when absent (`None`: required). Strings
    /// must be non-empty, at most `max_len` bytes, without control
    /// characters.
    pub fn string(
        &mut self,
        name: &'static str,
        default: Option<&str>,
        max_len: usize,
    ) -> Option<String> {
        match self.value(name) {
            None => match default {
                Some(default) => Some(default.to_owned()),
                None => {
                    self.error(name, "is required");
                    None
                }
            },
            Some(Value::String(text)) if text.is_empty() => {
                self.error(name, "must not be empty");
                None
            }
            Some(Value::String(text)) if text.len() > max_len => {
                self.error(name, format!("must be at most {max_len} bytes"));
                None
            }
            Some(Value::String(text)) if text.chars().any(char::is_control) => {
                self.error(name, "must not contain control characters");
                None
            }
            Some(Value::String(text)) => Some(text.clone()),
            Some(_) => {
                self.error(name, "must be a string");
                None
            }
        }
    }

    /// An optional string field (absent stays `None`; `Err(())` when wrong).
    pub fn optional_string(
        &mut self,
        name: &'static str,
        max_len: usize,
    ) -> Result<Option<String>, ()> {
        if self
            .fields
            .and_then(|f| f.get(name))
            .is_none_or(Value::is_null)
        {
            self.known.push(name);
            return Ok(None);
        }
        self.string(name, None, max_len).map(Some).ok_or(())
    }

    /// An integer field within `min..=max`; `default` when absent.
    pub fn integer(
        &mut self,
        name: &'static str,
        default: Option<u64>,
        min: u64,
        max: u64,
    ) -> Option<u64> {
        match self.value(name) {
            None => {
                if default.is_none() {
                    self.error(name, "is required");
                }
                default
            }
            Some(value) => match value.as_u64() {
                Some(n) if (min..=max).contains(&n) => Some(n),
                _ => {
                    self.error(name, format!("must be an integer between {min} and {max}"));
                    None
                }
            },
        }
    }

    /// A boolean field; `default` when absent.
    pub fn boolean(&mut self, name: &'static str, default: bool) -> Option<bool> {
        match self.value(name) {
            None => Some(default),
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                self.error(name, "must be true or false");
                None
            }
        }
    }

    /// One of `choices`; `default` when absent.
    pub fn choice(
        &mut self,
        name: &'static str,
        choices: &[&'static str],
        default: Option<&'static str>,
    ) -> Option<&'static str> {
        let value = self.value(name);
        match value {
            None => {
                if default.is_none() {
                    self.error(name, format!("is required (one of {})", choices.join(", ")));
                }
                default
            }
            Some(Value::String(text)) => {
                let found = choices.iter().find(|c| **c == text.as_str()).copied();
                if found.is_none() {
                    self.error(
                        name,
                        format!("`{text}` is not one of {}", choices.join(", ")),
                    );
                }
                found
            }
            Some(_) => {
                self.error(name, format!("must be one of {}", choices.join(", ")));
                None
            }
        }
    }

    /// Refuses every field no accessor asked for, and returns the errors.
    pub fn finish(mut self) -> Vec<FieldError> {
        if let Some(fields) = self.fields {
            let expected = self.known.join(", ");
            for key in fields.keys() {
                if !self.known.contains(&key.as_str()) {
                    self.errors.push(FieldError::new(
                        format!("config.{key}"),
                        format!("unknown field (expected {expected})"),
                    ));
                }
            }
        }
        self.errors
    }
}

/// Joins field errors into one line (`config.x: …; auth.y: …`), for a stored
/// config that no longer validates.
pub fn describe(errors: &[FieldError]) -> String {
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
