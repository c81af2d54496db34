//! The formats an export is written in, each as a streaming [`Encoder`]:
//! `begin`, then one call per row, then `finish`, each appending to a
//! buffer that the caller drains to the target as it grows.
//!
//! Memory is bounded by a row, not by the export: every encoder but `text`
//! writes each row as it comes, and `text` holds at most its first
//! [`text::WIDTH_ROWS`] rows to size its columns. Characters a format cannot
//! hold are escaped, never dropped, and no cell is ever truncated. Encoders
//! reuse their scratch buffers, so a row costs no allocation per cell in the
//! formats that matter for size (CSV, NDJSON).
//!
//! What each writes, for callers and readers:
//! - `csv`: RFC 4180, `\r\n` line ends, a header row, quotes only where
//!   needed. Null is an empty cell, times RFC 3339, JSON its compact text.
//!   Text that a spreadsheet would run as a formula (starting with `=`, `+`,
//!   `-`, `@`, tab or carriage return) gets a leading `'` (OWASP's advice);
//!   numbers, including JSON numbers, never do.
//! - `json`: `[`, then one object per line separated by `,`, then `]`; `[]`
//!   when there are no rows. No trailing newline.
//! - `ndjson`: one compact object per line, each ending in `\n`; nothing when
//!   there are no rows. A newline inside a string is always escaped.
//! - `yaml`: one block sequence of mappings (`- a: 1`), `[]` when there are no
//!   rows; null is `null`, strings that would read as something else are
//!   quoted, and strings with control characters or line breaks are
//!   double-quoted with escapes (no block scalars, which lose trailing
//!   spaces and some line ends).
//! - `text`: see [`text`].

use serde::{Deserialize, Serialize};

use super::value::Value;

mod cell;
mod csv;
mod json;
pub mod text;
mod yaml;

/// An export's format.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// RFC 4180 with a header row; cells a spreadsheet would run as a
    /// formula are escaped.
    Csv,
    /// One JSON array of objects.
    Json,
    /// One JSON object per line.
    Ndjson,
    /// One YAML sequence of mappings.
    Yaml,
    /// Aligned columns, for people.
    Text,
}

impl Format {
    pub const ALL: [Format; 5] = [
        Format::Csv,
        Format::Json,
        Format::Ndjson,
        Format::Yaml,
        Format::Text,
    ];

    /// Its name in requests (`csv`).
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Ndjson => "ndjson",
            Format::Yaml => "yaml",
            Format::Text => "text",
        }
    }

    /// The file extension, without the dot (`csv`, `txt`).
    pub fn extension(self) -> &'static str {
        match self {
            Format::Text => "txt",
            other => other.as_str(),
        }
    }

    /// The media type of an uncompressed output.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json",
            Format::Ndjson => "application/x-ndjson",
            Format::Yaml => "application/yaml",
            Format::Text => "text/plain; charset=utf-8",
        }
    }
}

/// Writes rows in one format. Each method appends to `out`; the caller
/// drains `out` between calls.
pub trait Encoder: Send {
    /// Before the first row (a CSV header, JSON's `[`).
    fn begin(&mut self, out: &mut Vec<u8>);
    /// One row, its cells in the order of the columns the encoder was made
    /// with.
    fn row(&mut self, row: &[Value], out: &mut Vec<u8>);
    /// After the last row (JSON's `]`); also when there were no rows.
    fn finish(&mut self, out: &mut Vec<u8>);
}

/// The encoder of `format` for rows of `columns`. A row shorter than the
/// columns is written with nulls for the missing cells; a longer one is a
/// caller's bug (its extra cells are not written).
pub fn encoder(format: Format, columns: Vec<String>) -> Box<dyn Encoder> {
    match format {
        Format::Csv => Box::new(csv::CsvEncoder::new(columns)),
        Format::Json => Box::new(json::JsonEncoder::new(columns, json::Layout::Array)),
        Format::Ndjson => Box::new(json::JsonEncoder::new(columns, json::Layout::Lines)),
        Format::Yaml => Box::new(yaml::YamlEncoder::new(columns)),
        Format::Text => Box::new(text::TextEncoder::new(columns)),
    }
}

/// The cell of `row` in column `i`, null where the row is short.
fn cell(row: &[Value], i: usize) -> &Value {
    row.get(i).unwrap_or(&Value::Null)
}

#[cfg(test)]
mod tests;
