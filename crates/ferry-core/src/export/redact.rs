//! Redaction: named fields and JSON pointers replaced whole, and (with
//! `redact_secrets`) values that look like credentials masked wherever they
//! appear. A redacted value never reaches the output, even in part.
//!
//! Redaction runs on the row, before any format sees it, so every format
//! writes the same redacted data. What a cell held decides what replaces
//! it: a redacted cell or JSON value becomes the text `[REDACTED]`, except a
//! null, which hid nothing and stays null (so "absent" still reads as
//! absent). Only JSON cells are navigated by pointers: text that happens to
//! hold JSON is free text, which only the secrets rules look into.

mod secrets;

pub use secrets::mask_secrets;

use crate::error::FieldError;

use super::value::Value;

/// What replaces a redacted value.
pub const REDACTED: &str = "[REDACTED]";

/// Redacts the rows of one export.
#[derive(Debug, Clone)]
pub struct Redactor {
    /// Per column, whether it is redacted whole.
    whole: Vec<bool>,
    /// A column and a JSON pointer into its JSON cells (`/card/number`).
    pointers: Vec<(usize, String)>,
    secrets: bool,
}

impl Redactor {
    /// A redactor for rows of `columns`. Each entry of `redact` is a column
    /// name (`last_error`) or a JSON pointer whose first segment is a column
    /// (`/data/card/number`); an entry naming no column is an error naming
    /// it (`redact[2]`). `secrets` also masks what looks like a credential.
    ///
    /// An entry that starts with `/` is always a pointer (RFC 6901: `~1` is
    /// a `/` inside a segment, `~0` a `~`); `/data` alone is the whole
    /// column, like `data`. Array indices are segments like any other
    /// (`/data/items/0/card`).
    pub fn new(columns: &[String], redact: &[String], secrets: bool) -> Result<Self, FieldError> {
        let mut redactor = Redactor {
            whole: vec![false; columns.len()],
            pointers: Vec::new(),
            secrets,
        };
        for (i, entry) in redact.iter().enumerate() {
            let field = || format!("redact[{i}]");
            let fields = || columns.join(", ");
            if entry.is_empty() {
                return Err(FieldError::new(
                    field(),
                    "is empty: name a field (`data`) or a JSON pointer into one (`/data/card/number`)",
                ));
            }
            let Some(pointer) = entry.strip_prefix('/') else {
                let Some(column) = columns.iter().position(|c| c == entry) else {
                    let hint = if entry.contains('/') {
                        " (a JSON pointer starts with `/`)"
                    } else {
                        ""
                    };
                    return Err(FieldError::new(
                        field(),
                        format!(
                            "`{entry}` names no field of this export{hint}; fields: {}",
                            fields()
                        ),
                    ));
                };
                redactor.whole[column] = true;
                continue;
            };
            if let Some(at) = bad_escape(entry) {
                return Err(FieldError::new(
                    field(),
                    format!(
                        "`{entry}` is not a valid JSON pointer: `~` at byte {at} must be followed by `0` (for `~`) or `1` (for `/`)"
                    ),
                ));
            }
            let (first, rest) = pointer.split_at(pointer.find('/').unwrap_or(pointer.len()));
            let name = unescape(first);
            let Some(column) = columns.iter().position(|c| *c == name) else {
                return Err(FieldError::new(
                    field(),
                    format!(
                        "`{entry}` starts with `{name}`, which names no field of this export; fields: {}",
                        fields()
                    ),
                ));
            };
            if rest.is_empty() {
                redactor.whole[column] = true;
            } else {
                redactor.pointers.push((column, rest.to_owned()));
            }
        }
        Ok(redactor)
    }

    /// Whether it changes nothing (no field, no secrets).
    pub fn is_noop(&self) -> bool {
        !self.secrets && self.pointers.is_empty() && !self.whole.contains(&true)
    }

    /// Redacts one row, in place.
    pub fn apply(&self, row: &mut [Value]) {
        for (cell, &whole) in row.iter_mut().zip(&self.whole) {
            if whole && !matches!(cell, Value::Null) {
                *cell = Value::Text(REDACTED.to_owned());
            }
        }
        for (column, pointer) in &self.pointers {
            if let Some(Value::Json(json)) = row.get_mut(*column)
                && let Some(target) = json.pointer_mut(pointer)
                && !target.is_null()
            {
                *target = serde_json::Value::String(REDACTED.to_owned());
            }
        }
        if self.secrets {
            for cell in row.iter_mut() {
                mask_cell(cell);
            }
        }
    }
}

/// The byte offset of a `~` not followed by `0` or `1`, if any.
fn bad_escape(pointer: &str) -> Option<usize> {
    let bytes = pointer.as_bytes();
    (0..bytes.len()).find(|&i| bytes[i] == b'~' && !matches!(bytes.get(i + 1), Some(b'0' | b'1')))
}

/// A pointer segment's text: `~1` is `/`, then `~0` is `~` (in that order,
/// so that `~01` is `~1`).
fn unescape(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}

/// Masks the credentials a cell may hold.
fn mask_cell(cell: &mut Value) {
    match cell {
        Value::Text(text) => {
            if let std::borrow::Cow::Owned(masked) = mask_secrets(text) {
                *text = masked;
            }
        }
        Value::Int(n) => {
            if u64::try_from(*n).is_ok_and(secrets::is_card_number) {
                *cell = Value::Text(REDACTED.to_owned());
            }
        }
        Value::Json(json) => mask_json(json),
        Value::Null | Value::Bool(_) | Value::Float(_) | Value::Time(_) => {}
    }
}

/// Masks the credentials inside a JSON value: every string (and object
/// key) through [`mask_secrets`], card numbers written as numbers, and the
/// whole value of a member whose key names a secret (an object's, or the
/// second of a two-item `[name, value]` array, as headers are sometimes
/// listed).
fn mask_json(json: &mut serde_json::Value) {
    use serde_json::Value as Json;
    match json {
        Json::String(text) => {
            if let std::borrow::Cow::Owned(masked) = mask_secrets(text) {
                *text = masked;
            }
        }
        Json::Number(n) => {
            if n.as_u64().is_some_and(secrets::is_card_number) {
                *json = Json::String(REDACTED.to_owned());
            }
        }
        Json::Array(items) => {
            // A `[name, value]` pair (headers as a list) is a member too.
            if let [Json::String(name), value] = items.as_mut_slice()
                && is_secret_key(name)
                && !value.is_null()
            {
                *value = Json::String(REDACTED.to_owned());
            }
            items.iter_mut().for_each(mask_json);
        }
        Json::Object(members) => {
            for (key, value) in members.iter_mut() {
                if is_secret_key(key) {
                    if !value.is_null() {
                        *value = Json::String(REDACTED.to_owned());
                    }
                } else {
                    mask_json(value);
                }
            }
            // A key holding a credential (rare) is renamed: collected first,
            // since keys cannot change in place.
            let renamed: Vec<(String, String)> = members
                .keys()
                .filter_map(|key| match mask_secrets(key) {
                    std::borrow::Cow::Owned(masked) => Some((key.clone(), masked)),
                    std::borrow::Cow::Borrowed(_) => None,
                })
                .collect();
            for (key, masked) in renamed {
                if let Some(value) = members.remove(&key) {
                    members.insert(masked, value);
                }
            }
        }
        Json::Null | Json::Bool(_) => {}
    }
}

/// Parts of a member's name that say its value is a credential, compared
/// with the name lower-cased and without `_`, `-`, `.` and spaces
/// (`client_secret`, `X-Api-Key`, `privateKey`).
const SECRET_KEY_PARTS: [&str; 12] = [
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "secret",
    "token",
    "apikey",
    "authorization",
    "privatekey",
    "accesskey",
    "credential",
    "cookie",
];

/// Names that are a credential only when they are the whole name.
const SECRET_KEYS: [&str; 3] = ["pass", "pw", "auth"];

/// Whether a JSON member named `key` holds a credential.
fn is_secret_key(key: &str) -> bool {
    let mut buf = [0u8; 64];
    let mut len = 0;
    for b in key
        .bytes()
        .filter(|b| !matches!(b, b'_' | b'-' | b'.' | b' '))
    {
        if len == buf.len() {
            // Longer than any name worth a stack buffer: the slow way.
            let name: String = key
                .chars()
                .filter(|c| !matches!(c, '_' | '-' | '.' | ' '))
                .collect();
            return matches_secret(name.to_ascii_lowercase().as_bytes());
        }
        buf[len] = b.to_ascii_lowercase();
        len += 1;
    }
    matches_secret(&buf[..len])
}

fn matches_secret(name: &[u8]) -> bool {
    SECRET_KEYS.iter().any(|k| name == k.as_bytes())
        || SECRET_KEY_PARTS
            .iter()
            .any(|part| name.windows(part.len()).any(|w| w == part.as_bytes()))
}

#[cfg(test)]
mod tests;
