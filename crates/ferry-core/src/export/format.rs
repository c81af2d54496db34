//! The formats an export is written in, each as a streaming [`Encoder`]:
//! `begin`, then one call per row, then `finish`, each appending to a
//! buffer that the caller drains to the target as it grows.

use serde::{Deserialize, Serialize};

use super::value::Value;

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

/// The encoder of `format` for rows of `columns`.
pub fn encoder(format: Format, columns: Vec<String>) -> Box<dyn Encoder> {
    let _ = (format, columns);
    todo!("filled in by the encoders")
}
